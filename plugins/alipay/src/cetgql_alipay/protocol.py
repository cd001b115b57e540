"""Alipay OpenAPI wire format, shared by the provider (merchant side) and the sandbox (Alipay side).

Everything here is pure: no I/O and no cetgql types, so both ends of the protocol use exactly the
same rules for amounts, times, signing strings and response extraction, and a test can exercise
them against an independent implementation.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# China has had no daylight saving time since 1991, so a fixed offset is exact for every time
# this system handles and needs no tz database (absent on some platforms).
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # Alipay's "yyyy-MM-dd HH:mm:ss", Beijing local time

PRODUCTION_GATEWAY = "https://openapi.alipay.com/gateway.do"

PAGE_PAY = "alipay.trade.page.pay"
WAP_PAY = "alipay.trade.wap.pay"
TRADE_QUERY = "alipay.trade.query"
TRADE_CLOSE = "alipay.trade.close"
TRADE_REFUND = "alipay.trade.refund"

# product_code per pay method (Alipay's own spelling: "QUICK_WAP_WAY", not "..._PAY").
PRODUCT_CODES = {PAGE_PAY: "FAST_INSTANT_TRADE_PAY", WAP_PAY: "QUICK_WAP_WAY"}

SUCCESS_CODE = "10000"
BUSINESS_FAILED = "40004"
TRADE_NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
TRADE_STATUS_ERROR = "ACQ.TRADE_STATUS_ERROR"

WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
TRADE_SUCCESS = "TRADE_SUCCESS"
TRADE_FINISHED = "TRADE_FINISHED"
TRADE_CLOSED = "TRADE_CLOSED"

NOTIFY_TYPE = "trade_status_sync"
NOTIFY_ACCEPTED = "success"  # the bare text that stops Alipay's retries
NOTIFY_REFUSED = "failure"

# Alipay limits: out_trade_no is at most 64 letters, digits and underscores; amounts are
# 0.01 to 100,000,000.00 yuan; the subject is at most 256 characters.
OUT_TRADE_NO_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
MAX_AMOUNT_FEN = 100_000_000_00
MAX_SUBJECT_LENGTH = 256
_AMOUNT_RE = re.compile(r"^(0|[1-9][0-9]{0,9})(?:\.([0-9]{1,2}))?$")
# Characters Alipay refuses in a subject (it documents "/", "=", "&" as forbidden).
_SUBJECT_FORBIDDEN = re.compile(r"[/=&]")


class ProtocolError(ValueError):
    """Data that does not follow the Alipay wire format."""


# --- money ---------------------------------------------------------------------------------


def fen_to_yuan(fen: int) -> str:
    """Integer fen to Alipay's yuan string ("30.00"), with integer arithmetic only."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise ProtocolError(f"amount must be integer fen, got {fen!r}")
    if not 0 < fen <= MAX_AMOUNT_FEN:
        raise ProtocolError(f"amount {fen} fen is outside Alipay's 0.01-100000000.00 range")
    return f"{fen // 100}.{fen % 100:02d}"


def yuan_to_fen(text: str) -> int:
    """Alipay's yuan string to integer fen; refuses anything but a plain decimal (no floats,
    signs, exponents, spaces or more than two decimals), so a malformed amount never passes."""
    match = _AMOUNT_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ProtocolError(f"malformed amount {text!r}")
    whole, cents = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(cents)


# --- time ----------------------------------------------------------------------------------


def format_time(moment: datetime) -> str:
    """An instant as Alipay's Beijing local time. Naive datetimes are taken as UTC, which is
    how cetgql stores times."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(SHANGHAI).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """Alipay's Beijing local time to an aware UTC datetime."""
    try:
        local = datetime.strptime(text, TIME_FORMAT)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"malformed time {text!r}") from exc
    return local.replace(tzinfo=SHANGHAI).astimezone(UTC)


def clean_subject(subject: str) -> str:
    """The subject as Alipay accepts it: forbidden characters become spaces, at most 256."""
    cleaned = " ".join(_SUBJECT_FORBIDDEN.sub(" ", subject).split())
    return cleaned[:MAX_SUBJECT_LENGTH] or "-"


def compact_json(value: object) -> str:
    """biz_content and response bodies: compact JSON, non-ASCII kept as UTF-8 like Alipay."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --- keys ----------------------------------------------------------------------------------


def _pem(text: str, label: str) -> bytes:
    """Accept a PEM, or the bare base64 body that Alipay's key tool and console hand out."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return text.encode("ascii")
    body = "".join(text.split())
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (
        "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\n"
    ).encode("ascii")


@lru_cache(maxsize=64)
def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PKCS#8 or PKCS#1 PEM (or bare base64 of either).

    Cached because parsing and checking an RSA key costs far more than one signature."""
    errors: list[Exception] = []
    for label in ("PRIVATE KEY", "RSA PRIVATE KEY"):
        try:
            key = serialization.load_pem_private_key(_pem(text, label), password=None)
        except (ValueError, TypeError, UnicodeError) as exc:
            errors.append(exc)
            continue
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ProtocolError("the private key is not an RSA key (RSA2 needs RSA)")
        return key
    raise ProtocolError(f"unreadable RSA private key: {errors[-1]}")


@lru_cache(maxsize=64)
def load_public_key(text: str) -> rsa.RSAPublicKey:
    """An RSA public key from SubjectPublicKeyInfo or PKCS#1 PEM (or bare base64 of either)."""
    errors: list[Exception] = []
    for label in ("PUBLIC KEY", "RSA PUBLIC KEY"):
        try:
            key = serialization.load_pem_public_key(_pem(text, label))
        except (ValueError, TypeError, UnicodeError) as exc:
            errors.append(exc)
            continue
        if not isinstance(key, rsa.RSAPublicKey):
            raise ProtocolError("the public key is not an RSA key (RSA2 needs RSA)")
        return key
    raise ProtocolError(f"unreadable RSA public key: {errors[-1]}")


# --- signatures ----------------------------------------------------------------------------


def signing_string(params: Mapping[str, str], exclude: Iterable[str] = ("sign",)) -> str:
    """Alipay's content to sign: every parameter but the excluded ones, empty values dropped,
    sorted by key, ``k=v`` joined by ``&``, values as they are (not URL-encoded).

    Requests exclude only ``sign``; notifications and return redirects also ``sign_type``."""
    skipped = set(exclude)
    return "&".join(
        f"{key}={params[key]}"
        for key in sorted(params)
        if key not in skipped and params[key] is not None and params[key] != ""
    )


def rsa2_sign(content: str, private_key_pem: str) -> str:
    """RSA PKCS#1 v1.5 over SHA-256 of the UTF-8 content, base64 (Alipay's RSA2)."""
    key = load_private_key(private_key_pem)
    signature = key.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def rsa2_verify(content: str, signature: str, public_key_pem: str) -> bool:
    """True only when ``signature`` is a valid RSA2 signature of ``content`` by that key."""
    key = load_public_key(public_key_pem)
    try:
        raw = base64.b64decode("".join(signature.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        key.verify(raw, content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def sign_params(params: Mapping[str, str], private_key_pem: str) -> dict[str, str]:
    """A request's parameters with empty values dropped and ``sign`` added."""
    clean = {k: v for k, v in params.items() if v is not None and v != "" and k != "sign"}
    return {**clean, "sign": rsa2_sign(signing_string(clean), private_key_pem)}


# --- responses -----------------------------------------------------------------------------


def response_key(method: str) -> str:
    """``alipay.trade.query`` answers under ``alipay_trade_query_response``."""
    return method.replace(".", "_") + "_response"


def top_level_members(raw: str) -> dict[str, tuple[str, object]]:
    """Each member of the top-level JSON object as (exact source text, parsed value).

    Alipay signs the response object's text exactly as sent (escapes, spacing and key order
    included), so the text must be cut from the body, not re-serialised. Walking the object
    with the JSON decoder finds the true end of each value even when strings contain braces,
    which simple brace counting gets wrong."""
    decoder = json.JSONDecoder()
    length = len(raw)

    def skip(i: int) -> int:
        while i < length and raw[i] in " \t\r\n":
            i += 1
        return i

    def expect(i: int, char: str) -> int:
        if i >= length or raw[i] != char:
            raise ProtocolError(f"expected {char!r} at offset {i} of the response")
        return i + 1

    members: dict[str, tuple[str, object]] = {}
    try:
        i = expect(skip(0), "{")
        i = skip(i)
        if i < length and raw[i] == "}":
            return members
        while True:
            key, i = decoder.raw_decode(raw, skip(i))
            if not isinstance(key, str):
                raise ProtocolError("response object key is not a string")
            i = skip(expect(skip(i), ":"))
            start = i
            value, i = decoder.raw_decode(raw, start)
            members[key] = (raw[start:i], value)
            i = skip(i)
            if i < length and raw[i] == ",":
                i += 1
                continue
            i = expect(i, "}")
            break
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"response is not JSON: {exc}") from exc
    if skip(i) != length:
        raise ProtocolError("trailing data after the response object")
    return members


def signed_response_body(method: str, payload: Mapping[str, object], private_key_pem: str) -> str:
    """A gateway answer as Alipay writes it: the ``*_response`` object and the signature of
    its exact text."""
    inner = compact_json(dict(payload))
    sign = rsa2_sign(inner, private_key_pem)
    return f'{{"{response_key(method)}":{inner},"sign":{json.dumps(sign)}}}'
