"""Alipay (支付宝) payment provider plugin for cetgql.

Installed as the distribution ``cetgql-alipay``; cetgql finds it through the ``cetgql`` entry
point (``cetgql_alipay.plugin``). The sandbox (``cetgql_alipay.sandbox``) plays Alipay offline.
"""

from cetgql_alipay.provider import AlipayProvider, AlipaySettings

__all__ = ["AlipayProvider", "AlipaySettings"]
__version__ = "0.1.0"
