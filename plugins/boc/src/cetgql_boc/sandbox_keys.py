"""The committed TEST-ONLY keys of the sandbox merchant and the sandbox bank (see keys/README.md).

They are public. They exist so demo mode and the tests work offline, and nothing else.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

SANDBOX_MERCHANT_NO = "104110000009999"

MERCHANT_CERT = "sandbox-merchant-cert.pem"
MERCHANT_KEY = "sandbox-merchant-key.pem"
BANK_CERT = "sandbox-bank-cert.pem"
BANK_KEY = "sandbox-bank-key.pem"


@cache
def pem(name: str) -> str:
    """One of the shipped PEM files, read from the installed package."""
    return (resources.files("cetgql_boc") / "keys" / name).read_text(encoding="ascii")
