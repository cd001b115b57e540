"""CMB 一网通 signatures, shared by the provider and the sandbox bank.

Two kinds of signature travel on the wire:

* requests from the merchant (pay, query, refund, close) carry ``signType: "SHA-256"``: the
  lower-case hex SHA-256 of the canonical string of ``reqData`` followed by ``&`` and the
  merchant's payment key (商户支付密钥), a secret shared with the bank;
* the bank's payment notice carries ``signType: "RSA"``: an RSA PKCS#1 v1.5 signature, base64,
  over the canonical string of ``noticeData``, made with the bank's private key and checked
  with the bank's public key (招行公钥). CMB has historically used SHA1withRSA; the hash is an
  explicit merchant setting so nothing is ever guessed from the message itself.

The canonical string follows CMB's published rule: every field, *empty values included*, as
``k=v`` joined by ``&``, keys in dictionary order compared without regard to case (CMB's own
example orders ``bank_msg`` before ``bankSerialNo``). Values are the raw, un-encoded strings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from enum import StrEnum
from functools import lru_cache
from importlib.resources import files

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class RsaAlgorithm(StrEnum):
    """The hash under the bank's RSA signature, named the way CMB's Java SDK names it."""

    SHA1 = "SHA1withRSA"
    SHA256 = "SHA256withRSA"

    def hash(self) -> hashes.HashAlgorithm:
        return hashes.SHA1() if self is RsaAlgorithm.SHA1 else hashes.SHA256()  # noqa: S303


def _key_order(key: str) -> tuple[str, str]:
    # Case-insensitive first (CMB's rule); the exact key breaks ties so the order is total.
    return (key.lower(), key)


def canonical_string(data: Mapping[str, str]) -> str:
    """The string CMB signs: sorted ``k=v`` pairs joined by ``&``, empty values kept."""
    return "&".join(f"{key}={data[key]}" for key in sorted(data, key=_key_order))


def sha256_sign(data: Mapping[str, str], merchant_key: str) -> str:
    """The request signature: ``sha256_hex(canonical_string + "&" + merchant_key)``."""
    message = f"{canonical_string(data)}&{merchant_key}".encode()
    return hashlib.sha256(message).hexdigest()


def sha256_verify(data: Mapping[str, str], merchant_key: str, sign: str) -> bool:
    """Constant-time check of a SHA-256 signature (hex, either case)."""
    return hmac.compare_digest(sha256_sign(data, merchant_key), sign.strip().lower())


def rsa_sign(
    data: Mapping[str, str], private_key: rsa.RSAPrivateKey, algorithm: RsaAlgorithm
) -> str:
    """The bank's signature (the sandbox plays the bank): base64 of RSA PKCS#1 v1.5."""
    signature = private_key.sign(
        canonical_string(data).encode(), padding.PKCS1v15(), algorithm.hash()
    )
    return base64.b64encode(signature).decode("ascii")


def rsa_verify(
    data: Mapping[str, str], public_key: rsa.RSAPublicKey, algorithm: RsaAlgorithm, sign: str
) -> bool:
    """True when ``sign`` (base64) is the bank's signature of ``data`` with ``algorithm``."""
    try:
        signature = base64.b64decode(sign.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        public_key.verify(
            signature, canonical_string(data).encode(), padding.PKCS1v15(), algorithm.hash()
        )
    except InvalidSignature:
        return False
    return True


def string_fields(data: object) -> dict[str, str]:
    """A JSON object as the flat ``str -> str`` mapping CMB signs; ValueError otherwise.

    CMB sends every value as a string. Numbers are accepted in their JSON spelling and a JSON
    null as the empty string, so a harmless variation does not fail verification; nested
    objects and lists cannot be signed this way and are refused.
    """
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    fields: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise ValueError("field names must be strings")
        if isinstance(value, str):
            fields[key] = value
        elif value is None:
            fields[key] = ""
        elif isinstance(value, bool):
            raise ValueError(f"field {key!r} is not a string")
        elif isinstance(value, int | float):
            fields[key] = str(value)
        else:
            raise ValueError(f"field {key!r} is not a string")
    return fields


@lru_cache(maxsize=64)
def load_public_key(text: str) -> rsa.RSAPublicKey:
    """The bank's public key from a PEM block or the bare base64 DER that CMB's key query
    (FBPK) returns, so an admin can paste either; ValueError when it is not an RSA key."""
    stripped = text.strip()
    try:
        if stripped.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(stripped.encode())
        else:
            der = base64.b64decode("".join(stripped.split()), validate=True)
            key = serialization.load_der_public_key(der)
    except (ValueError, binascii.Error, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a public key: {exc}") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the bank public key must be an RSA key")
    return key


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("expected an RSA private key")
    return key


def sandbox_bank_public_key_pem() -> str:
    """The sandbox bank's public key (test material shipped with the plugin)."""
    return files("cetgql_cmb").joinpath("keys/sandbox-bank-public.pem").read_text("ascii")


@lru_cache(maxsize=1)
def sandbox_bank_private_key() -> rsa.RSAPrivateKey:
    """The sandbox bank's private key: TEST ONLY, it is public in this repository."""
    pem = files("cetgql_cmb").joinpath("keys/sandbox-bank-private.pem").read_bytes()
    return load_private_key(pem)
