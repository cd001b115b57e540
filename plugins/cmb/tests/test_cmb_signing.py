"""The signature rules and wire values, pinned by hand-computed vectors."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from cetgql_cmb.provider import (
    CmbProvider,
    expire_minutes,
    fen_to_yuan,
    parse_refund_list,
    refund_serial,
    yuan_to_fen,
)
from cetgql_cmb.signing import (
    RsaAlgorithm,
    canonical_string,
    load_public_key,
    rsa_sign,
    rsa_verify,
    sandbox_bank_private_key,
    sandbox_bank_public_key_pem,
    sha256_sign,
    sha256_verify,
)
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cetgql.payments import MerchantConfig, PaymentError

KEY = "CetgqlSandboxKey"
PAY_REQ_DATA = {
    "dateTime": "20260515100000",
    "branchNo": "0755",
    "merchantNo": "000054",
    "date": "20260515",
    "orderNo": "26051510000012345678",
    "amount": "30.00",
    "expireTimeSpan": "30",
    "payNoticeUrl": "https://cet.example.cn/payments/cmb/notify",
    "returnUrl": "",
}
# Written out by hand: keys sorted, the empty returnUrl kept as "returnUrl=", then "&" + key.
PAY_SIGN_INPUT = (
    "amount=30.00&branchNo=0755&date=20260515&dateTime=20260515100000&expireTimeSpan=30"
    "&merchantNo=000054&orderNo=26051510000012345678"
    "&payNoticeUrl=https://cet.example.cn/payments/cmb/notify&returnUrl=&CetgqlSandboxKey"
)
PAY_SIGN = "90292ad3b949dd2060a08e2cf48e248020d503ed0b8fc3ed3bc7bbd633d4f4e7"
# The same data with the empty field left out, as the Alipay rule would do: a different sign.
SIGN_WITHOUT_EMPTY = "c7592c1986091f8ddff45a14248673cd461cb15a109767eb826777d0bf20854a"


def test_sha256_sign_includes_empty_values() -> None:
    assert hashlib.sha256(PAY_SIGN_INPUT.encode()).hexdigest() == PAY_SIGN
    assert canonical_string(PAY_REQ_DATA) + "&" + KEY == PAY_SIGN_INPUT
    assert sha256_sign(PAY_REQ_DATA, KEY) == PAY_SIGN
    without_empty = {k: v for k, v in PAY_REQ_DATA.items() if v}
    assert sha256_sign(without_empty, KEY) == SIGN_WITHOUT_EMPTY != PAY_SIGN


def test_sha256_verify_is_exact_but_case_blind_on_hex() -> None:
    assert sha256_verify(PAY_REQ_DATA, KEY, PAY_SIGN.upper())
    assert not sha256_verify(PAY_REQ_DATA, KEY + "x", PAY_SIGN)
    assert not sha256_verify({**PAY_REQ_DATA, "amount": "0.01"}, KEY, PAY_SIGN)
    assert not sha256_verify(PAY_REQ_DATA, KEY, "")


def test_keys_sort_without_regard_to_case() -> None:
    # CMB's published examples: bank_msg before bankSerialNo, sDate before sdateTime.
    data = {"bankSerialNo": "1", "bank_msg": "2", "sdateTime": "3", "sDate": "4"}
    assert canonical_string(data) == "bank_msg=2&bankSerialNo=1&sDate=4&sdateTime=3"
    assert canonical_string({"sDateTime": "a", "sdate": "b"}) == "sdate=b&sDateTime=a"


def test_values_are_signed_raw_not_url_encoded() -> None:
    assert canonical_string({"email": "test@msn.com", "name": "考生 甲"}) == (
        "email=test@msn.com&name=考生 甲"
    )


@pytest.mark.parametrize("algorithm", list(RsaAlgorithm))
def test_rsa_signatures_verify_with_the_named_hash_only(algorithm: RsaAlgorithm) -> None:
    notice = {"orderNo": "1", "amount": "30.00", "merchantPara": ""}
    private = sandbox_bank_private_key()
    public = load_public_key(sandbox_bank_public_key_pem())
    sign = rsa_sign(notice, private, algorithm)
    # Check against cryptography directly, not through our own verify.
    chosen = hashes.SHA1() if algorithm is RsaAlgorithm.SHA1 else hashes.SHA256()  # noqa: S303
    public.verify(
        base64.b64decode(sign), b"amount=30.00&merchantPara=&orderNo=1", padding.PKCS1v15(), chosen
    )
    assert rsa_verify(notice, public, algorithm, sign)
    other = RsaAlgorithm.SHA256 if algorithm is RsaAlgorithm.SHA1 else RsaAlgorithm.SHA1
    assert not rsa_verify(notice, public, other, sign)
    assert not rsa_verify({**notice, "amount": "31.00"}, public, algorithm, sign)
    assert not rsa_verify(notice, public, algorithm, "not base64!")


def test_public_key_as_pem_or_bare_base64() -> None:
    pem = sandbox_bank_public_key_pem()
    from_pem = load_public_key(pem)
    der = from_pem.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    from_b64 = load_public_key(base64.b64encode(der).decode())
    assert from_b64.public_numbers() == from_pem.public_numbers()
    with pytest.raises(ValueError):
        load_public_key("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----")
    with pytest.raises(ValueError):
        load_public_key("")


@pytest.mark.parametrize(
    ("fen", "yuan"),
    [(1, "0.01"), (10, "0.10"), (3000, "30.00"), (3700, "37.00"), (123456789, "1234567.89")],
)
def test_fen_to_yuan_and_back(fen: int, yuan: str) -> None:
    assert fen_to_yuan(fen) == yuan
    assert yuan_to_fen(yuan) == fen


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("30", 3000),
        ("30.5", 3050),
        ("0.01", 1),
        ("0", 0),
        ("-1.00", None),
        ("1e3", None),
        (" 1.00", None),
        ("1.001", None),
        ("01.00", None),
        ("1,000.00", None),
        ("", None),
        ("３０.00", None),  # full-width digits
    ],
)
def test_yuan_parsing_is_strict(text: str, fen: int | None) -> None:
    assert yuan_to_fen(text) == fen


def test_expire_time_span_rounds_down_to_at_least_one_minute() -> None:
    now = datetime(2026, 5, 15, 2, 0, tzinfo=UTC)
    assert expire_minutes(now, now + timedelta(minutes=30)) == 30
    assert expire_minutes(now, now + timedelta(minutes=30, seconds=59)) == 30
    assert expire_minutes(now, now + timedelta(hours=24)) == 1440
    assert expire_minutes(now, now + timedelta(seconds=20)) == 1
    with pytest.raises(PaymentError):
        expire_minutes(now, now)


def test_refund_serial_fits_cmb_twenty_characters() -> None:
    assert refund_serial("26051510000012345678") == "26051510000012345678"
    long = refund_serial("R-2026-05-15-000000000001")
    assert len(long) == 20 and long == refund_serial("R-2026-05-15-000000000001")


def test_refund_list_columns_are_found_by_name() -> None:
    data_list = (
        "amount,`orderStatus,`merchantSerialNo,`bankSerialNo\r\n"
        "30.00,`210,`R1,`B1\r\n"
        "`5.00,`219,`R2,`B2\r\n"
    )
    records = parse_refund_list(data_list)
    assert [(r.merchant_serial_no, r.bank_serial_no, r.status, r.amount_fen) for r in records] == [
        ("R1", "B1", "210", 3000),
        ("R2", "B2", "219", 500),
    ]
    assert parse_refund_list("") == []
    with pytest.raises(ValueError):
        parse_refund_list("bankSerialNo,`amount\r\nB1,`1.00\r\n")


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("branchNo", "755"),
        ("merchantNo", "00005X"),
        ("merchantKey", ""),
        ("bankPublicKey", "not a key"),
        ("bankSignAlgorithm", "MD5withRSA"),
        ("netpayUrl", "ftp://bank"),
    ],
)
async def test_bad_merchant_settings_are_a_payment_error(setting: str, value: str) -> None:
    provider = CmbProvider()
    values = {**provider.sandbox_merchant("http://bank.test/sandbox/cmb"), setting: value}
    with pytest.raises(PaymentError, match=setting):
        await provider.query(MerchantConfig("cmb", values), "26051510000012345678")


def test_the_shipped_test_keys_are_a_pair() -> None:
    private = sandbox_bank_private_key()
    public = load_public_key(sandbox_bank_public_key_pem())
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.public_key().public_numbers() == public.public_numbers()
    assert public.key_size >= 2048
