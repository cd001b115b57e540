"""The sandbox's fixed test identity: an app (merchant) key pair and an "Alipay" key pair.

These keys are public test material committed with the plugin so the demo works offline.
They are known to everyone and must never be entered as real merchant settings.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

# Shaped like real identifiers (Alipay sandbox app ids start 9021..., user ids 2088...) so the
# sandbox exercises the same validation as production values would.
SANDBOX_APP_ID = "9021000140600001"
SANDBOX_SELLER_ID = "2088721000000001"
SANDBOX_BUYER_ID = "2088722000000002"
SANDBOX_BUYER_LOGON_ID = "cet***@sandbox.com"


@cache
def _read(name: str) -> str:
    return (files("cetgql_alipay") / "keys" / name).read_text(encoding="ascii")


def app_private_key() -> str:
    """The sandbox merchant's private key (PEM): what a province would keep secret."""
    return _read("sandbox_app_private_key.pem")


def app_public_key() -> str:
    """The sandbox merchant's public key (PEM), registered with the sandbox for its app id."""
    return _read("sandbox_app_public_key.pem")


def alipay_private_key() -> str:
    """The sandbox's own "Alipay" private key (PEM): signs notifications and answers."""
    return _read("sandbox_alipay_private_key.pem")


def alipay_public_key() -> str:
    """The sandbox's "Alipay" public key (PEM): what a merchant verifies Alipay with."""
    return _read("sandbox_alipay_public_key.pem")
