"""China Merchants Bank 一网通 (招商银行一网通支付) payment provider for cetgql."""

from cetgql_cmb.provider import CmbProvider

__version__ = "0.1.0"
__all__ = ["CmbProvider", "__version__"]
