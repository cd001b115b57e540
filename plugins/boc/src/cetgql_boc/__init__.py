"""Bank of China B2C (中银智慧付) payment provider plugin for cetgql.

The entry point ``cetgql: boc = cetgql_boc.plugin`` registers :class:`BocProvider`; the sandbox
bank that demo mode mounts is :class:`cetgql_boc.sandbox.BocSandbox`.
"""

from cetgql_boc.provider import BocProvider

__all__ = ["BocProvider"]
__version__ = "0.1.0"
