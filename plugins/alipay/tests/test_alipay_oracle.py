"""An independent implementation checks our signatures: the published ``python-alipay-sdk``.

The SDK (PyPI ``python-alipay-sdk``, import ``alipay``, BSD-2-Clause licence, by fzlee) signs
with pycryptodomex rather than ``cryptography`` and builds its own signing strings, so
agreement with it means our signing rules are Alipay's, not merely self-consistent.

SDK API used (read from its source): ``sign_data(dict)`` sorts, joins and signs every item
with the app private key and returns the URL-encoded string with ``sign`` appended;
``_verify(content, sign)`` checks an RSA2 signature with the key given as
``alipay_public_key_string``; ``verify(dict, sign)`` does the notification rule (drops
``sign_type``); ``build_body`` makes the common parameters; ``_verify_and_return_sync_response``
cuts and verifies a gateway answer.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import pytest
from alipay_testing import NOTIFY_URL, RETURN_URL, SUBJECT, World, as_request
from cetgql_alipay import protocol, testkeys

from cetgql.payments import TradeState

alipay_sdk = pytest.importorskip("alipay")


def _sdk(private_key: str, public_key: str) -> Any:
    return alipay_sdk.AliPay(
        appid=testkeys.SANDBOX_APP_ID,
        app_notify_url=None,
        app_private_key_string=private_key,
        alipay_public_key_string=public_key,
        sign_type="RSA2",
    )


def _merchant_sdk() -> Any:
    """The SDK as a merchant would configure it: app private key, Alipay public key."""
    return _sdk(testkeys.app_private_key(), testkeys.alipay_public_key())


def _alipay_side_sdk() -> Any:
    """The SDK holding the keys the other way round, to play Alipay (signs notifications
    with the "Alipay" key) and to check merchant signatures (app public key)."""
    return _sdk(testkeys.alipay_private_key(), testkeys.app_public_key())


async def _page_pay_fields(world: World) -> dict[str, str]:
    result = await world.charge("CET2026H1000100", 3000)
    assert result.redirect is not None
    return dict(result.redirect.fields)


async def test_sdk_verifies_our_page_pay_signature(world: World) -> None:
    fields = await _page_pay_fields(world)
    sign = fields.pop("sign")
    sdk = _alipay_side_sdk()
    # Requests sign sign_type too, so use the SDK's raw verifier over its own signing string
    # (its verify() drops sign_type, which is the notification rule).
    content = "&".join(f"{k}={v}" for k, v in sdk._ordered_data(dict(fields)))
    assert sdk._verify(content, sign)
    assert not sdk._verify(content.replace("30.00", "0.01"), sign)


async def test_sdk_signs_the_same_parameters_to_the_same_signature(world: World) -> None:
    fields = await _page_pay_fields(world)
    ours = fields.pop("sign")
    signed = dict(parse_qsl(_merchant_sdk().sign_data(dict(fields))))
    assert signed["sign"] == ours  # PKCS#1 v1.5 is deterministic: same string, same bytes
    # And the SDK's own common parameters, given our values, sign the same too.
    body = _merchant_sdk().build_body(
        fields["method"],
        fields["biz_content"],  # a string, so the SDK does not re-serialise it
        notify_url=NOTIFY_URL,
        return_url=RETURN_URL,
    )
    body.update(timestamp=fields["timestamp"], format="JSON")
    assert dict(parse_qsl(_merchant_sdk().sign_data(body)))["sign"] == ours


async def test_sandbox_accepts_a_page_pay_built_entirely_by_the_sdk(world: World) -> None:
    query = _merchant_sdk().api_alipay_trade_page_pay(
        subject=SUBJECT,
        out_trade_no="CET2026H1000101",
        total_amount="30.00",
        return_url=RETURN_URL,
        notify_url=NOTIFY_URL,
    )
    async with world.browser() as browser:
        page = await browser.get(f"/gateway.do?{query}", follow_redirects=True)
    assert page.status_code == 200 and "确认付款" in page.text and "¥ 30.00" in page.text
    status = await world.provider.query(world.merchant, "CET2026H1000101")
    assert status.state == TradeState.PENDING


async def test_our_callback_accepts_a_notification_signed_by_the_sdk(world: World) -> None:
    world.ours.add("CET2026H1000102")
    fields = {
        "notify_time": "2026-03-02 10:00:05",
        "notify_type": "trade_status_sync",
        "notify_id": "ac05099524730693a8b330c5ecf72da9786",
        "charset": "utf-8",
        "version": "1.0",
        "app_id": testkeys.SANDBOX_APP_ID,
        "auth_app_id": testkeys.SANDBOX_APP_ID,
        "trade_no": "2026030222001400000000012345",
        "out_trade_no": "CET2026H1000102",
        "buyer_id": testkeys.SANDBOX_BUYER_ID,
        "seller_id": testkeys.SANDBOX_SELLER_ID,
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "37.00",
        "receipt_amount": "37.00",
        "subject": SUBJECT,
        "gmt_create": "2026-03-02 09:59:40",
        "gmt_payment": "2026-03-02 10:00:04",
        "fund_bill_list": json.dumps([{"amount": "37.00", "fundChannel": "ALIPAYACCOUNT"}]),
    }
    signed = dict(parse_qsl(_alipay_side_sdk().sign_data(dict(fields))))
    signed["sign_type"] = "RSA2"  # sent, but not signed (the notification rule)
    notification = await world.provider.callback(as_request(signed), world.lookup)
    assert notification.state == TradeState.SUCCEEDED
    assert notification.amount_fen == 3700
    assert notification.provider_trade_no == "2026030222001400000000012345"
    assert protocol.format_time(notification.paid_at) == "2026-03-02 10:00:04"  # type: ignore[arg-type]


async def test_sdk_verifies_the_sandbox_notification_and_return(world: World) -> None:
    paid = await world.charge_and_pay("CET2026H1000103", 3000)
    assert world.receiver is not None
    form = dict(world.receiver.requests[-1].form)
    sign = form.pop("sign")
    assert _merchant_sdk().verify(form, sign)
    back = dict(parse_qsl(paid.headers["location"].split("?", 1)[1]))
    back_sign = back.pop("sign")
    assert _merchant_sdk().verify(back, back_sign)


async def test_sandbox_answers_sdk_requests_and_the_sdk_verifies_the_answers(
    world: World,
) -> None:
    await world.charge_and_pay("CET2026H1000104", 3000)
    sdk = _merchant_sdk()
    query = sdk.sign_data(sdk.build_body("alipay.trade.query", {"out_trade_no": "CET2026H1000104"}))
    async with world.browser() as browser:
        raw = (await browser.get(f"/gateway.do?{query}")).text
    answer = sdk._verify_and_return_sync_response(raw, "alipay_trade_query_response")
    assert (answer["code"], answer["trade_status"], answer["total_amount"]) == (
        "10000",
        "TRADE_SUCCESS",
        "30.00",
    )
    refund = sdk.sign_data(
        sdk.build_body(
            "alipay.trade.refund",
            {"out_trade_no": "CET2026H1000104", "refund_amount": "30.00", "out_request_no": "R9"},
        )
    )
    async with world.browser() as browser:
        raw = (await browser.get(f"/gateway.do?{refund}")).text
    refunded = sdk._verify_and_return_sync_response(raw, "alipay_trade_refund_response")
    assert (refunded["code"], refunded["refund_fee"]) == ("10000", "30.00")
    status = await world.provider.query(world.merchant, "CET2026H1000104")
    assert status.state == TradeState.REFUNDED
