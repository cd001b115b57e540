"""The pure wire rules: money, times, signing strings, keys and response extraction."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cetgql_alipay import protocol, testkeys
from cetgql_alipay.protocol import ProtocolError
from cryptography.hazmat.primitives import serialization


@pytest.mark.parametrize(
    ("fen", "yuan"),
    [(1, "0.01"), (10, "0.10"), (3000, "30.00"), (3705, "37.05"), (10_000_000_000, "100000000.00")],
)
def test_fen_and_yuan_convert_exactly_both_ways(fen: int, yuan: str) -> None:
    assert protocol.fen_to_yuan(fen) == yuan
    assert protocol.yuan_to_fen(yuan) == fen


def test_yuan_with_fewer_decimals_is_still_exact() -> None:
    assert protocol.yuan_to_fen("30") == 3000
    assert protocol.yuan_to_fen("30.5") == 3050
    assert protocol.yuan_to_fen("0.07") == 7


@pytest.mark.parametrize(
    "text",
    ["", "30.001", "-30.00", "+30", "3e1", "30.00 ", " 30", "030.00", "30,00", "1_000", "NaN"],
)
def test_malformed_yuan_is_refused(text: str) -> None:
    with pytest.raises(ProtocolError):
        protocol.yuan_to_fen(text)


@pytest.mark.parametrize("fen", [0, -1, 10_000_000_001, True])
def test_amounts_alipay_cannot_take_are_refused(fen: int) -> None:
    with pytest.raises(ProtocolError):
        protocol.fen_to_yuan(fen)


def test_times_are_beijing_local_and_round_trip() -> None:
    moment = datetime(2026, 3, 1, 16, 30, 5, tzinfo=UTC)
    assert protocol.format_time(moment) == "2026-03-02 00:30:05"
    assert protocol.parse_time("2026-03-02 00:30:05") == moment
    # Naive datetimes are cetgql's UTC; other offsets are converted.
    assert protocol.format_time(moment.replace(tzinfo=None)) == "2026-03-02 00:30:05"
    tokyo = moment.astimezone(timezone(timedelta(hours=9)))
    assert protocol.format_time(tokyo) == "2026-03-02 00:30:05"
    with pytest.raises(ProtocolError):
        protocol.parse_time("2026-03-02T00:30:05")


def test_signing_string_sorts_drops_empties_and_excludes() -> None:
    params = {"b": "2", "a": "1", "sign": "x", "sign_type": "RSA2", "empty": "", "c": "a=b&c"}
    assert protocol.signing_string(params) == "a=1&b=2&c=a=b&c&sign_type=RSA2"
    assert protocol.signing_string(params, exclude=("sign", "sign_type")) == "a=1&b=2&c=a=b&c"


def test_sign_and_verify_round_trip_and_detect_tampering() -> None:
    content = 'app_id=1&biz_content={"subject":"四级"}'
    sign = protocol.rsa2_sign(content, testkeys.app_private_key())
    assert protocol.rsa2_verify(content, sign, testkeys.app_public_key())
    assert not protocol.rsa2_verify(content + " ", sign, testkeys.app_public_key())
    assert not protocol.rsa2_verify(content, sign, testkeys.alipay_public_key())
    assert not protocol.rsa2_verify(content, "not base64!", testkeys.app_public_key())


def test_keys_load_from_pkcs8_pkcs1_and_bare_base64() -> None:
    """Alipay's key tool hands out bare base64 (no PEM armour), in PKCS#1 or PKCS#8."""
    key = protocol.load_private_key(testkeys.app_private_key())
    pkcs1 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    bare_pkcs8 = "".join(testkeys.app_private_key().splitlines()[1:-1])
    bare_pkcs1 = "".join(pkcs1.splitlines()[1:-1])
    bare_public = "".join(testkeys.app_public_key().splitlines()[1:-1])
    content = "x=1"
    for private in (pkcs1, bare_pkcs8, bare_pkcs1):
        sign = protocol.rsa2_sign(content, private)
        assert protocol.rsa2_verify(content, sign, bare_public)
    with pytest.raises(ProtocolError):
        protocol.load_private_key("not a key")
    with pytest.raises(ProtocolError):
        protocol.load_public_key("not a key")


def test_response_text_is_cut_exactly_even_with_braces_and_escapes_in_strings() -> None:
    inner = '{"code":"10000","msg":"Success","subject":"a}b{\\"c\\u56db","url":"http:\\/\\/x"}'
    raw = f'{{ "alipay_trade_query_response" : {inner} ,\n "sign":"abc"}}'
    members = protocol.top_level_members(raw)
    text, value = members["alipay_trade_query_response"]
    assert text == inner
    assert value == json.loads(inner)
    assert members["sign"] == ('"abc"', "abc")


@pytest.mark.parametrize("raw", ["", "[]", "{", '{"a":1', '{"a":1} x', '{"a" 1}', "{1:2}"])
def test_broken_responses_are_refused(raw: str) -> None:
    with pytest.raises(ProtocolError):
        protocol.top_level_members(raw)


def test_signed_response_body_verifies_over_the_inner_text() -> None:
    body = protocol.signed_response_body(
        protocol.TRADE_QUERY, {"code": "10000", "subject": "六级"}, testkeys.alipay_private_key()
    )
    members = protocol.top_level_members(body)
    text, _ = members["alipay_trade_query_response"]
    assert "六级" in text  # UTF-8 as Alipay sends it, not \\u escapes
    assert protocol.rsa2_verify(text, str(members["sign"][1]), testkeys.alipay_public_key())


def test_subject_loses_the_characters_alipay_forbids() -> None:
    assert protocol.clean_subject("CET4/CET6 = 报名&缴费") == "CET4 CET6 报名 缴费"
    assert len(protocol.clean_subject("考" * 300)) == 256
