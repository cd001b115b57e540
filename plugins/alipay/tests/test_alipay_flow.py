"""The provider against its sandbox: charge, cashier, notification, query, close, refund."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from alipay_testing import NOTIFY_URL, RETURN_URL, SUBJECT, World, as_request, resign
from cetgql_alipay import AlipayProvider, protocol, testkeys
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cetgql.payments import (
    InvalidNotification,
    MerchantConfig,
    PaymentError,
    PaymentProvider,
    RefundRequest,
    TradeState,
)


def _refund(out_trade_no: str, refund_no: str, amount_fen: int = 3000) -> RefundRequest:
    return RefundRequest(
        out_trade_no=out_trade_no,
        refund_no=refund_no,
        amount_fen=amount_fen,
        total_fen=3000,
        reason="重复缴费退款",
    )


def test_provider_implements_the_contract() -> None:
    provider = AlipayProvider()
    assert isinstance(provider, PaymentProvider)
    assert (provider.name, provider.display_name) == ("alipay", "支付宝")
    fields = {f.name: f for f in provider.settings_fields}
    assert list(fields) == [
        "app_id",
        "app_private_key",
        "alipay_public_key",
        "gateway_url",
        "seller_id",
    ]
    assert fields["app_private_key"].secret and fields["app_private_key"].multiline
    assert fields["alipay_public_key"].multiline and not fields["alipay_public_key"].secret
    assert not fields["gateway_url"].required and not fields["seller_id"].required


async def test_charge_builds_a_signed_page_pay_form(world: World) -> None:
    result = await world.charge("CET2026H1000001", 3000)
    redirect = result.redirect
    assert redirect is not None
    assert (redirect.method, redirect.url) == ("POST", "http://sandbox.test/gateway.do")
    fields = dict(redirect.fields)
    assert fields["app_id"] == testkeys.SANDBOX_APP_ID
    assert fields["method"] == "alipay.trade.page.pay"
    assert (fields["format"], fields["charset"], fields["sign_type"], fields["version"]) == (
        "JSON",
        "utf-8",
        "RSA2",
        "1.0",
    )
    assert (fields["notify_url"], fields["return_url"]) == (NOTIFY_URL, RETURN_URL)
    protocol.parse_time(fields["timestamp"])  # "yyyy-MM-dd HH:mm:ss"
    # Compact JSON, Chinese kept as UTF-8, the deadline in Beijing local time.
    biz = json.loads(fields["biz_content"])
    assert fields["biz_content"] == json.dumps(biz, ensure_ascii=False, separators=(",", ":"))
    assert biz == {
        "out_trade_no": "CET2026H1000001",
        "total_amount": "30.00",
        "subject": SUBJECT,
        "product_code": "FAST_INSTANT_TRADE_PAY",
        "time_expire": protocol.format_time(world.clock.now + timedelta(hours=24)),
    }
    content = protocol.signing_string(fields)  # every field but sign; sign_type included
    assert protocol.rsa2_verify(content, fields["sign"], testkeys.app_public_key())


async def test_mobile_charge_uses_wap_pay(world: World) -> None:
    result = await world.charge("CET2026H1000002", 5000, mobile=True)
    assert result.redirect is not None
    fields = dict(result.redirect.fields)
    assert fields["method"] == "alipay.trade.wap.pay"
    biz = json.loads(fields["biz_content"])
    assert (biz["product_code"], biz["total_amount"], biz["quit_url"]) == (
        "QUICK_WAP_WAY",
        "50.00",
        RETURN_URL,
    )
    page = await world.open_cashier(result)
    assert page.status_code == 200 and "手机网站支付" in page.text


async def test_sandbox_accepts_the_form_and_shows_the_cashier(world: World) -> None:
    page = await world.open_cashier(await world.charge("CET2026H1000003", 3705))
    assert page.status_code == 200
    assert "¥ 37.05" in page.text and SUBJECT in page.text and "确认付款" in page.text
    assert "CET2026H1000003" in page.text


async def test_sandbox_refuses_a_tampered_form(world: World) -> None:
    result = await world.charge("CET2026H1000004", 3000)
    assert result.redirect is not None
    fields = dict(result.redirect.fields)
    fields["biz_content"] = fields["biz_content"].replace('"30.00"', '"0.01"')
    async with world.browser() as browser:
        page = await browser.post(result.redirect.url, data=fields, follow_redirects=True)
    assert page.status_code == 400 and "isv.invalid-signature" in page.text
    assert world.sandbox.trade("CET2026H1000004") is None


async def test_sandbox_refuses_a_form_signed_with_another_key(world: World) -> None:
    forged = MerchantConfig(
        "alipay", {**world.merchant.values, "app_private_key": testkeys.alipay_private_key()}
    )
    result = await world.provider.charge(forged, world.request("CET2026H1000005"))
    page = await world.open_cashier(result)
    assert page.status_code == 400 and "isv.invalid-signature" in page.text


async def test_pay_notifies_cetgql_and_returns_the_browser_signed(world: World) -> None:
    paid = await world.charge_and_pay("CET2026H1000006", 3000)
    # The browser goes back to return_url with Alipay's signed return parameters.
    assert paid.status_code == 303
    location = urlsplit(paid.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == RETURN_URL
    back = dict(parse_qsl(location.query))
    assert back["method"] == "alipay.trade.page.pay.return"
    assert (back["out_trade_no"], back["total_amount"]) == ("CET2026H1000006", "30.00")
    content = protocol.signing_string(back, exclude=("sign", "sign_type"))
    assert protocol.rsa2_verify(content, back["sign"], testkeys.alipay_public_key())

    # The notification reached the notify endpoint, in Alipay's form format, and verified.
    assert world.receiver is not None
    [request] = world.receiver.requests
    assert request.method == "POST"
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert request.form["notify_type"] == "trade_status_sync"
    [notification] = world.receiver.notifications
    assert notification.out_trade_no == "CET2026H1000006"
    assert notification.state == TradeState.SUCCEEDED
    assert notification.amount_fen == 3000
    assert notification.merchant_id == testkeys.SANDBOX_APP_ID
    trade = world.sandbox.trade("CET2026H1000006")
    assert trade is not None
    assert notification.provider_trade_no == trade.trade_no
    assert notification.paid_at == world.clock.now
    # Our reply was the bare "success", so Alipay stops.
    assert [a.accepted for a in trade.notifications] == [True]
    assert [a.body for a in trade.notifications] == ["success"]


async def test_notification_is_retried_until_cetgql_answers_success(world: World) -> None:
    assert world.receiver is not None
    world.receiver.scripted = [b"failure", b"Success\n"]  # only the exact text counts
    await world.charge_and_pay("CET2026H1000007")
    await world.sandbox.drain()
    trade = world.sandbox.trade("CET2026H1000007")
    assert trade is not None
    assert [a.accepted for a in trade.notifications] == [False, False, True]
    assert len(world.receiver.requests) == 3
    # Every retry is the same signed notification.
    assert len({tuple(sorted(r.form.items())) for r in world.receiver.requests}) == 1
    [notification] = world.receiver.notifications
    assert notification.state == TradeState.SUCCEEDED


async def test_query_follows_the_trade_from_not_found_to_paid(world: World) -> None:
    result = await world.charge("CET2026H1000008", 3000)
    before = await world.provider.query(world.merchant, "CET2026H1000008")
    # A page.pay trade exists at Alipay only once the buyer reaches the cashier.
    assert before.state == TradeState.NOT_FOUND
    await world.open_cashier(result)
    waiting = await world.provider.query(world.merchant, "CET2026H1000008")
    assert (waiting.state, waiting.amount_fen, waiting.paid_at) == (TradeState.PENDING, 3000, None)
    await world.pay("CET2026H1000008")
    paid = await world.provider.query(world.merchant, "CET2026H1000008")
    trade = world.sandbox.trade("CET2026H1000008")
    assert trade is not None
    assert paid.state == TradeState.SUCCEEDED
    assert (paid.amount_fen, paid.provider_trade_no) == (3000, trade.trade_no)
    assert paid.paid_at == world.clock.now
    assert paid.raw["trade_status"] == "TRADE_SUCCESS"


async def test_charging_again_reaches_the_same_trade(world: World) -> None:
    await world.open_cashier(await world.charge("CET2026H1000009", 3000))
    first = world.sandbox.trade("CET2026H1000009")
    again = await world.open_cashier(await world.charge("CET2026H1000009", 3000))
    assert again.status_code == 200
    assert world.sandbox.trade("CET2026H1000009") is first
    assert len(world.sandbox.trades) == 1
    changed = await world.open_cashier(await world.charge("CET2026H1000009", 3100))
    assert changed.status_code == 400 and "ACQ.CONTEXT_INCONSISTENT" in changed.text
    await world.pay("CET2026H1000009")
    after_paid = await world.open_cashier(await world.charge("CET2026H1000009", 3000))
    assert after_paid.status_code == 400 and "ACQ.TRADE_HAS_SUCCESS" in after_paid.text


async def test_close_stops_payment(world: World) -> None:
    await world.open_cashier(await world.charge("CET2026H1000010"))
    assert await world.provider.close(world.merchant, "CET2026H1000010") is True
    refused = await world.pay("CET2026H1000010")
    assert refused.status_code == 403
    status = await world.provider.query(world.merchant, "CET2026H1000010")
    assert status.state == TradeState.CLOSED
    # Closing again is still "closed" (Alipay says TRADE_STATUS_ERROR; a query settles it).
    assert await world.provider.close(world.merchant, "CET2026H1000010") is True
    reopened = await world.open_cashier(await world.charge("CET2026H1000010"))
    assert reopened.status_code == 400 and "ACQ.TRADE_HAS_CLOSE" in reopened.text
    assert world.receiver is not None and world.receiver.requests == []


async def test_close_of_unknown_or_paid_trades_is_false(world: World) -> None:
    assert await world.provider.close(world.merchant, "CET2026H1000011") is False
    await world.charge_and_pay("CET2026H1000012")
    assert await world.provider.close(world.merchant, "CET2026H1000012") is False
    status = await world.provider.query(world.merchant, "CET2026H1000012")
    assert status.state == TradeState.SUCCEEDED


async def test_full_refund_makes_the_trade_refunded(world: World) -> None:
    await world.charge_and_pay("CET2026H1000013")
    result = await world.provider.refund(world.merchant, _refund("CET2026H1000013", "R1"))
    assert result.accepted
    assert (result.raw["fund_change"], result.raw["refund_fee"]) == ("Y", "30.00")
    status = await world.provider.query(world.merchant, "CET2026H1000013")
    assert status.state == TradeState.REFUNDED
    assert status.raw["trade_status"] == "TRADE_CLOSED"
    # The same refund number again is the same refund: accepted, no money moves.
    again = await world.provider.refund(world.merchant, _refund("CET2026H1000013", "R1"))
    assert again.accepted and again.raw["fund_change"] == "N"
    # Alipay also notifies the refund: TRADE_CLOSED with refund_fee, which reads REFUNDED.
    await world.sandbox.drain()
    assert world.receiver is not None
    states = [n.state for n in world.receiver.notifications]
    assert states == [TradeState.SUCCEEDED, TradeState.REFUNDED]
    assert world.receiver.notifications[-1].raw["out_biz_no"] == "R1"


async def test_partial_refunds_keep_the_trade_paid_until_refused(world: World) -> None:
    await world.charge_and_pay("CET2026H1000014")
    first = await world.provider.refund(world.merchant, _refund("CET2026H1000014", "P1", 1000))
    assert first.accepted
    status = await world.provider.query(world.merchant, "CET2026H1000014")
    assert status.state == TradeState.SUCCEEDED
    too_much = await world.provider.refund(world.merchant, _refund("CET2026H1000014", "P2", 2500))
    assert not too_much.accepted
    assert too_much.raw["sub_code"] == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    rest = await world.provider.refund(world.merchant, _refund("CET2026H1000014", "P3", 2000))
    assert rest.accepted
    status = await world.provider.query(world.merchant, "CET2026H1000014")
    assert status.state == TradeState.REFUNDED


async def test_refund_of_an_unpaid_trade_is_refused(world: World) -> None:
    await world.open_cashier(await world.charge("CET2026H1000015"))
    result = await world.provider.refund(world.merchant, _refund("CET2026H1000015", "R1"))
    assert not result.accepted and result.raw["sub_code"] == "ACQ.TRADE_STATUS_ERROR"
    unknown = await world.provider.refund(world.merchant, _refund("CET2026H1000099", "R1"))
    assert not unknown.accepted and unknown.raw["sub_code"] == "ACQ.TRADE_NOT_EXIST"


async def test_the_cashier_refuses_payment_after_the_deadline(world: World) -> None:
    result = await world.charge("CET2026H1000016", expires_in=timedelta(minutes=30))
    page = await world.open_cashier(result)
    assert page.status_code == 200
    world.clock.advance(timedelta(minutes=30, seconds=1))
    refused = await world.pay("CET2026H1000016")
    assert refused.status_code == 403 and "已过付款截止时间" in refused.text
    status = await world.provider.query(world.merchant, "CET2026H1000016")
    assert status.state == TradeState.CLOSED
    assert world.receiver is not None and world.receiver.requests == []


async def test_the_gateway_refuses_a_trade_already_past_its_deadline(world: World) -> None:
    result = await world.charge("CET2026H1000017", expires_in=timedelta(seconds=-1))
    page = await world.open_cashier(result)
    assert page.status_code == 400 and "ACQ.TRADE_HAS_CLOSE" in page.text
    status = await world.provider.query(world.merchant, "CET2026H1000017")
    assert status.state == TradeState.NOT_FOUND


# --- notifications cetgql must refuse ----------------------------------------------------


async def _paid_notification(world: World, out_trade_no: str) -> dict[str, str]:
    await world.charge_and_pay(out_trade_no)
    assert world.receiver is not None
    return dict(world.receiver.requests[-1].form)


async def test_a_genuine_notification_verifies_from_the_raw_body_too(world: World) -> None:
    fields = await _paid_notification(world, "CET2026H1000020")
    notification = await world.provider.callback(as_request(fields, form=False), world.lookup)
    assert (notification.state, notification.amount_fen) == (TradeState.SUCCEEDED, 3000)


async def test_forged_signature_is_refused(world: World) -> None:
    fields = await _paid_notification(world, "CET2026H1000021")
    forged = resign(fields, testkeys.app_private_key())  # not Alipay's key
    with pytest.raises(InvalidNotification, match="signature"):
        await world.provider.callback(as_request(forged), world.lookup)
    with pytest.raises(InvalidNotification):
        await world.provider.callback(as_request({**fields, "sign": ""}), world.lookup)


async def test_tampered_amount_is_refused(world: World) -> None:
    fields = await _paid_notification(world, "CET2026H1000022")
    with pytest.raises(InvalidNotification, match="signature"):
        await world.provider.callback(as_request({**fields, "total_amount": "0.01"}), world.lookup)


async def test_another_merchant_is_refused_even_when_alipay_signed_it(world: World) -> None:
    fields = await _paid_notification(world, "CET2026H1000023")
    alipay = testkeys.alipay_private_key()
    other_app = resign({**fields, "app_id": "9021000140600999"}, alipay)
    with pytest.raises(InvalidNotification, match="app_id"):
        await world.provider.callback(as_request(other_app), world.lookup)
    other_seller = resign({**fields, "seller_id": "2088000000000999"}, alipay)
    with pytest.raises(InvalidNotification, match="seller_id"):
        await world.provider.callback(as_request(other_seller), world.lookup)


async def test_unknown_trade_is_refused(world: World) -> None:
    fields = await _paid_notification(world, "CET2026H1000024")
    world.ours.clear()  # cetgql's lookup no longer knows the trade
    with pytest.raises(InvalidNotification, match="not ours"):
        await world.provider.callback(as_request(fields), world.lookup)
    with pytest.raises(InvalidNotification):
        await world.provider.callback(as_request({"trade_status": "TRADE_SUCCESS"}), world.lookup)


async def test_weaker_sign_type_and_malformed_fields_are_refused(world: World) -> None:
    fields = await _paid_notification(world, "CET2026H1000025")
    with pytest.raises(InvalidNotification, match="RSA2"):
        await world.provider.callback(as_request({**fields, "sign_type": "RSA"}), world.lookup)
    alipay = testkeys.alipay_private_key()
    malformed = resign({**fields, "total_amount": "30.0.0"}, alipay)
    with pytest.raises(InvalidNotification, match="amount"):
        await world.provider.callback(as_request(malformed), world.lookup)
    unknown = resign({**fields, "trade_status": "TRADE_PENDING"}, alipay)
    with pytest.raises(InvalidNotification, match="trade_status"):
        await world.provider.callback(as_request(unknown), world.lookup)


async def test_the_sandbox_retries_a_refused_notification(world: World) -> None:
    """End to end: cetgql refuses (the merchant forgot the trade), so Alipay keeps trying."""
    assert world.receiver is not None
    result = await world.charge("CET2026H1000026")
    world.ours.discard("CET2026H1000026")
    await world.open_cashier(result)
    await world.pay("CET2026H1000026")
    await world.sandbox.drain()
    trade = world.sandbox.trade("CET2026H1000026")
    assert trade is not None
    assert [a.body for a in trade.notifications] == ["failure"] * 4
    assert all(isinstance(r, InvalidNotification) for r in world.receiver.results)


def test_reply_is_the_bare_text_alipay_expects() -> None:
    provider = AlipayProvider()
    accepted, refused = provider.reply(True), provider.reply(False)
    assert (accepted.status_code, accepted.body) == (200, b"success")
    assert refused.body == b"failure"
    assert accepted.content_type.startswith("text/plain")


# --- answers cetgql must not believe -----------------------------------------------------


def _fake_gateway(handler: object) -> httpx.AsyncBaseTransport:
    app = Starlette(routes=[Route("/gateway.do", handler, methods=["POST"])])  # type: ignore[arg-type]
    return httpx.ASGITransport(app=app)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        # Signed with the merchant's key instead of Alipay's.
        (
            protocol.signed_response_body(
                protocol.TRADE_QUERY,
                {"code": "10000", "trade_status": "TRADE_SUCCESS", "total_amount": "30.00"},
                testkeys.app_private_key(),
            ),
            200,
        ),
        # No signature at all.
        ('{"alipay_trade_query_response":{"code":"10000","trade_status":"TRADE_SUCCESS"}}', 200),
        # Gateway-level error (Alipay cannot sign without knowing the app).
        ('{"error_response":{"code":"40002","sub_code":"isv.invalid-app-id"}}', 200),
        ("<html>502 Bad Gateway</html>", 502),
        ("not json", 200),
    ],
)
async def test_untrustworthy_answers_raise_payment_error(
    world: World, body: str, status: int
) -> None:
    async def gateway(request: Request) -> Response:
        return Response(body, status_code=status, media_type="application/json")

    provider = AlipayProvider(transport=_fake_gateway(gateway))
    with pytest.raises(PaymentError):
        await provider.query(world.merchant, "CET2026H1000030")


async def test_a_tampered_answer_fails_its_signature(world: World) -> None:
    await world.charge_and_pay("CET2026H1000031")
    assert world.transport is not None
    real = world.transport

    class Tamper(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await real.handle_async_request(request)
            body = (await response.aread()).replace(b'"30.00"', b'"3.00"')
            return httpx.Response(response.status_code, headers=response.headers, content=body)

    provider = AlipayProvider(transport=Tamper())
    with pytest.raises(PaymentError, match="signature"):
        await provider.query(world.merchant, "CET2026H1000031")


async def test_unusable_settings_raise_payment_error(world: World) -> None:
    incomplete = MerchantConfig("alipay", {**world.merchant.values, "app_private_key": ""})
    with pytest.raises(PaymentError, match="app_private_key"):
        await world.provider.charge(incomplete, world.request("CET2026H1000032"))
    garbled = MerchantConfig("alipay", {**world.merchant.values, "app_private_key": "garbage"})
    with pytest.raises(PaymentError):
        await world.provider.query(garbled, "CET2026H1000032")


async def test_amounts_alipay_cannot_take_are_refused_before_any_call(world: World) -> None:
    with pytest.raises(ValueError):
        await world.charge("CET2026H1000033", 0)
    with pytest.raises(ValueError):
        await world.charge("CET-2026/1", 3000)
