"""What ``callback`` trusts and what it refuses, starting from a notice the sandbox bank really
posted, then altered the way an attacker or a broken proxy would."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from cetgql_cmb.signing import RsaAlgorithm, rsa_sign, sandbox_bank_private_key
from cmb_testkit import Env
from cryptography.hazmat.primitives.asymmetric import rsa

from cetgql.payments import (
    InvalidNotification,
    MerchantConfig,
    NotifyRequest,
    TradeState,
)


async def _real_notice(env: Env) -> tuple[str, dict]:  # type: ignore[type-arg]
    trade = env.trade_no()
    await env.pay(trade, amount_fen=3000)
    [posted] = env.receiver.requests
    return trade, json.loads(posted.form["jsonRequestData"])


def _form(envelope: dict) -> NotifyRequest:  # type: ignore[type-arg]
    text = json.dumps(envelope, ensure_ascii=False)
    return NotifyRequest(
        method="POST",
        headers={"content-type": "application/x-www-form-urlencoded"},
        query={},
        body=urlencode({"jsonRequestData": text}).encode(),
        form={"jsonRequestData": text},
    )


def _resign(envelope: dict, key: rsa.RSAPrivateKey | None = None) -> dict:  # type: ignore[type-arg]
    key = key or sandbox_bank_private_key()
    return {**envelope, "sign": rsa_sign(envelope["noticeData"], key, RsaAlgorithm.SHA256)}


async def test_the_real_notice_verifies(env: Env) -> None:
    trade, envelope = await _real_notice(env)
    note = await env.provider.callback(_form(envelope), env.receiver.lookup)
    assert (note.out_trade_no, note.state, note.amount_fen) == (trade, TradeState.SUCCEEDED, 3000)
    assert note.raw["noticeData"]["orderNo"] == trade  # type: ignore[index]


async def test_a_body_without_parsed_form_still_verifies(env: Env) -> None:
    # A host that hands over only the raw urlencoded body.
    trade, envelope = await _real_notice(env)
    request = _form(envelope)
    bare = NotifyRequest(method="POST", headers={}, query={}, body=request.body, form={})
    assert (await env.provider.callback(bare, env.receiver.lookup)).out_trade_no == trade


async def test_a_forged_signature_is_refused(env: Env) -> None:
    _, envelope = await _real_notice(env)
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(InvalidNotification, match="signature"):
        await env.provider.callback(_form(_resign(envelope, impostor)), env.receiver.lookup)
    with pytest.raises(InvalidNotification, match="signature"):
        await env.provider.callback(_form({**envelope, "sign": ""}), env.receiver.lookup)


async def test_a_tampered_amount_is_refused(env: Env) -> None:
    _, envelope = await _real_notice(env)
    envelope["noticeData"]["amount"] = "0.01"
    with pytest.raises(InvalidNotification, match="signature"):
        await env.provider.callback(_form(envelope), env.receiver.lookup)


async def test_a_notice_for_another_merchant_is_refused(env: Env) -> None:
    _, envelope = await _real_notice(env)
    # Genuinely signed by the bank, but for a merchant that is not this province's.
    envelope["noticeData"]["merchantNo"] = "000055"
    with pytest.raises(InvalidNotification, match="another merchant"):
        await env.provider.callback(_form(_resign(envelope)), env.receiver.lookup)
    envelope["noticeData"]["merchantNo"] = "000054"
    envelope["noticeData"]["branchNo"] = "0571"
    with pytest.raises(InvalidNotification, match="another merchant"):
        await env.provider.callback(_form(_resign(envelope)), env.receiver.lookup)


async def test_our_notice_checked_against_another_province_is_refused(env: Env) -> None:
    trade, envelope = await _real_notice(env)
    other = MerchantConfig("cmb", {**env.merchant.values, "merchantNo": "000099"})

    async def lookup(out_trade_no: str) -> MerchantConfig | None:
        return other if out_trade_no == trade else None

    with pytest.raises(InvalidNotification, match="another merchant"):
        await env.provider.callback(_form(envelope), lookup)


async def test_an_unknown_trade_is_refused(env: Env) -> None:
    _, envelope = await _real_notice(env)

    async def nobody(out_trade_no: str) -> MerchantConfig | None:
        return None

    with pytest.raises(InvalidNotification, match="unknown trade"):
        await env.provider.callback(_form(envelope), nobody)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: {**e, "signType": "SHA-256"}, "RSA"),
        (lambda e: {**e, "noticeData": "x"}, "noticeData"),
        (lambda e: {k: v for k, v in e.items() if k != "noticeData"}, "noticeData"),
        (lambda e: {**e, "noticeData": {**e["noticeData"], "orderNo": ""}}, "orderNo"),
        (lambda e: {**e, "noticeData": {**e["noticeData"], "orderNo": "1' OR '1"}}, "orderNo"),
        (lambda e: {**e, "noticeData": {**e["noticeData"], "extra": {"a": 1}}}, "noticeData"),
    ],
)
async def test_malformed_notices_are_refused(env: Env, change, reason: str) -> None:  # type: ignore[no-untyped-def]
    _, envelope = await _real_notice(env)
    with pytest.raises(InvalidNotification, match=reason):
        await env.provider.callback(_form(change(envelope)), env.receiver.lookup)


@pytest.mark.parametrize("amount", ["abc", "-30.00", "0.00", "30.001"])
async def test_a_signed_but_malformed_amount_is_refused(env: Env, amount: str) -> None:
    _, envelope = await _real_notice(env)
    envelope["noticeData"]["amount"] = amount
    with pytest.raises(InvalidNotification, match="amount"):
        await env.provider.callback(_form(_resign(envelope)), env.receiver.lookup)


async def test_another_notice_type_is_refused(env: Env) -> None:
    _, envelope = await _real_notice(env)
    envelope["noticeData"]["noticeType"] = "BKQY"  # the card-agreement notice
    with pytest.raises(InvalidNotification, match="noticeType"):
        await env.provider.callback(_form(_resign(envelope)), env.receiver.lookup)


@pytest.mark.parametrize(
    "body", [b"", b"jsonRequestData=not-json", b"{not json", b"[1, 2]", b"other=1", b"\xff\xfe"]
)
async def test_garbage_is_refused(env: Env, body: bytes) -> None:
    request = NotifyRequest(method="POST", headers={}, query={}, body=body, form={})
    with pytest.raises(InvalidNotification):
        await env.provider.callback(request, env.receiver.lookup)


def test_reply_is_http_200_only_when_accepted(env: Env) -> None:
    ok = env.provider.reply(True)
    assert ok.status_code == 200
    assert json.loads(ok.body) == {"rspCode": "SUC0000", "rspMsg": "OK"}
    assert ok.content_type == "application/json"
    refused = env.provider.reply(False)
    assert refused.status_code != 200
    assert json.loads(refused.body)["rspCode"] != "SUC0000"
