"""Signed, expiring download URLs (photos, tickets, reports, certificates).

A file route cannot rely on the ``Authorization`` header: the URL ends up in an ``<img>`` tag,
a browser download or a PDF renderer, none of which send our bearer token. So the GraphQL
layer, which has already checked who may see the file, hands out a URL that carries its own
proof: an expiry time and an HMAC-SHA256 over path and expiry, keyed with the server's secret.
Every API process shares the secret, so any of them can check a URL another one issued.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from urllib.parse import urlencode

from cetgql.services import clock
from cetgql.settings import get_settings

DEFAULT_TTL = timedelta(minutes=15)


def _signature(path: str, expires: int) -> str:
    key = get_settings().secret_key.encode()
    message = f"{path}\n{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(path: str, ttl: timedelta | int = DEFAULT_TTL) -> str:
    """The absolute URL of ``path`` (like ``/files/...``), valid for ``ttl`` (or seconds).

    The signature covers the path only, not ``public_url``, so a proxy that mounts the API
    under a prefix does not break URLs.
    """
    seconds = ttl if isinstance(ttl, int) else int(ttl.total_seconds())
    expires = int(clock.now().timestamp()) + seconds
    query = urlencode({"expires": expires, "signature": _signature(path, expires)})
    return f"{get_settings().public_url}{path}?{query}"


def verify(path: str, expires: str | int | None, signature: str | None) -> bool:
    """True when the signature is ours for this path and the expiry has not passed."""
    if expires is None or signature is None:
        return False
    try:
        expires_at = int(expires)
    except (TypeError, ValueError):
        return False
    if expires_at < clock.now().timestamp():
        return False
    # Constant-time: a byte-by-byte early exit would let an attacker guess the MAC.
    return hmac.compare_digest(_signature(path, expires_at), signature)
