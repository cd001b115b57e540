"""The provider against the sandbox bank over real HTTP, the way demo mode runs them.

A "browser" here is an httpx client that posts what the provider's Redirect says and then the
form of the cashier page it got back; the notification travels from the sandbox to the
stand-in cetgql's notify endpoint, which calls ``callback`` and answers with ``reply``.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import urlencode, urljoin

import httpx
import pytest
from boc_testing import World
from cetgql_boc import BocProvider, cms, protocol, sandbox_keys
from cetgql_boc.sandbox import Trade

from cetgql.payments import (
    ChargeResult,
    InvalidNotification,
    MerchantConfig,
    NotifyRequest,
    PaymentError,
    RefundRequest,
    TradeState,
)

TLS = ssl.create_default_context()  # the servers are plain HTTP; built once, it is slow to build


async def browser_get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(verify=TLS) as client:
        return await client.get(url)


async def browser_post(url: str, fields: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(follow_redirects=False, verify=TLS) as client:
        return await client.post(url, data=fields)


async def open_cashier(world: World, result: ChargeResult) -> httpx.Response:
    """What the browser does with the charge: post the form to the bank."""
    assert result.redirect is not None
    assert result.redirect.method == "POST"
    return await browser_post(result.redirect.url, dict(result.redirect.fields))


async def press(world: World, cashier: httpx.Response, action: str) -> httpx.Response:
    """Press a button of the cashier page: post its form where the page's form points."""
    assert cashier.status_code == 200, cashier.text
    form_action = unescape(re.search(r'<form method="post" action="([^"]+)"', cashier.text)[1])  # type: ignore[index]
    hidden = {
        unescape(name): unescape(value)
        for name, value in re.findall(
            r'<input type="hidden" name="([^"]+)" value="([^"]*)">', cashier.text
        )
    }
    return await browser_post(
        urljoin(str(cashier.url), form_action), {**hidden, "cardTyp": "01", "action": action}
    )


async def charge_and_pay(world: World, out_trade_no: str, amount_fen: int = 3000) -> None:
    result = await world.provider.charge(
        world.merchant, world.charge_request(out_trade_no, amount_fen)
    )
    paid = await press(world, await open_cashier(world, result), "pay")
    assert paid.status_code == 303
    assert paid.headers["location"] == world.return_url


def notify_request(fields: dict[str, str]) -> NotifyRequest:
    body = urlencode(fields).encode()
    return NotifyRequest(
        method="POST",
        headers={"content-type": "application/x-www-form-urlencoded"},
        query={},
        body=body,
        form=fields,
    )


# --- charge --------------------------------------------------------------------------------


async def test_charge_builds_the_signed_bank_form(world: World) -> None:
    created = datetime(2026, 3, 1, 16, 30, 5, tzinfo=UTC)
    request = world.charge_request(
        "CET2026000001", 3750, created_at=created, expires_at=created + timedelta(hours=24)
    )
    result = await world.provider.charge(world.merchant, request)
    assert result.redirect is not None
    assert result.redirect.url == f"{world.sandbox_url}/RecvOrder.do"
    fields = dict(result.redirect.fields)
    assert [name for name, _ in result.redirect.fields] == [
        *protocol.PAY_FIELDS,
        protocol.RETURN_URL_FIELD,
    ]
    assert fields["merchantNo"] == sandbox_keys.SANDBOX_MERCHANT_NO
    assert fields["payType"] == "1"
    assert fields["curCode"] == "001"
    assert fields["orderAmount"] == "37.50"
    assert fields["orderTime"] == "20260302003005"  # Asia/Shanghai
    assert fields["orderTimeoutDate"] == "20260303003005"
    assert fields["orderUrl"] == world.notify_url
    assert fields["returnUrl"] == world.return_url
    assert fields["orderNote"] == request.subject
    signed = b"CET2026000001|20260302003005|001|37.50|104110000009999"
    merchant_certificate = cms.load_certificate(world.merchant["merchantCert"])
    cms.verify(fields["signData"], signed, merchant_certificate)


async def test_the_sandbox_accepts_the_charge_and_shows_the_cashier(world: World) -> None:
    result = await world.provider.charge(world.merchant, world.charge_request("CET2026000002"))
    cashier = await open_cashier(world, result)
    assert cashier.status_code == 200
    assert "CET2026000002" in cashier.text
    assert "¥30.00" in cashier.text
    assert "确认支付" in cashier.text
    assert 'action="/sandbox/boc/cashier"' in cashier.text  # works under the demo mount
    trade = world.sandbox.trades[(sandbox_keys.SANDBOX_MERCHANT_NO, "CET2026000002")]
    assert trade.amount_fen == 3000
    assert trade.return_url == world.return_url


async def test_charging_twice_is_one_trade(world: World) -> None:
    request = world.charge_request("CET2026000003")
    for _ in range(2):
        result = await world.provider.charge(world.merchant, request)
        assert (await open_cashier(world, result)).status_code == 200
    assert len(world.sandbox.trades) == 1


async def test_the_sandbox_refuses_a_tampered_or_foreign_form(world: World) -> None:
    result = await world.provider.charge(world.merchant, world.charge_request("CET2026000004"))
    assert result.redirect is not None
    tampered = {**dict(result.redirect.fields), "orderAmount": "0.01"}
    page = await browser_post(result.redirect.url, tampered)
    assert page.status_code == 400
    assert "签名验证失败" in page.text
    foreign = {**dict(result.redirect.fields), "merchantNo": "104110000000000"}
    page = await browser_post(result.redirect.url, foreign)
    assert page.status_code == 400
    assert "商户不存在" in page.text
    assert world.sandbox.trades == {}


async def test_the_same_order_number_with_another_amount_is_refused(world: World) -> None:
    first = await world.provider.charge(world.merchant, world.charge_request("CET2026000005"))
    assert (await open_cashier(world, first)).status_code == 200
    other = world.charge_request("CET2026000005", 5000)
    page = await open_cashier(world, await world.provider.charge(world.merchant, other))
    assert page.status_code == 400
    assert "订单号重复" in page.text


async def test_bad_order_numbers_never_reach_a_signed_string(world: World) -> None:
    with pytest.raises(ValueError):
        await world.provider.charge(world.merchant, world.charge_request("CET|1"))
    with pytest.raises(ValueError):
        await world.provider.charge(world.merchant, world.charge_request("CET1", 0))


# --- pay and notify ------------------------------------------------------------------------


async def test_paying_notifies_cetgql_which_verifies_it(world: World) -> None:
    await charge_and_pay(world, "CET2026000010", 3000)
    assert len(world.cetgql.received) == 1
    assert world.cetgql.refused == []
    [notification] = world.cetgql.accepted
    assert notification.out_trade_no == "CET2026000010"
    assert notification.state is TradeState.SUCCEEDED
    assert notification.amount_fen == 3000
    assert notification.merchant_id == sandbox_keys.SANDBOX_MERCHANT_NO
    trade = world.sandbox.trades[(sandbox_keys.SANDBOX_MERCHANT_NO, "CET2026000010")]
    assert notification.provider_trade_no == trade.order_seq
    assert notification.paid_at is not None
    assert abs(notification.paid_at - world.clock.now) < timedelta(seconds=1)
    # The bank got "success" once and stopped.
    assert [attempt.accepted for attempt in trade.notifications] == [True]
    assert trade.notifications[0].body == "success"


async def test_cancelling_at_the_cashier_notifies_closed(world: World) -> None:
    result = await world.provider.charge(world.merchant, world.charge_request("CET2026000011"))
    back = await press(world, await open_cashier(world, result), "cancel")
    assert back.status_code == 303
    [notification] = world.cetgql.accepted
    assert notification.state is TradeState.CLOSED
    assert notification.paid_at is None


async def test_the_sandbox_retries_until_it_hears_success(world: World) -> None:
    world.cetgql.script = [False, False]  # "fail" twice, then the real verification
    await charge_and_pay(world, "CET2026000012")
    trade = world.sandbox.trades[(sandbox_keys.SANDBOX_MERCHANT_NO, "CET2026000012")]
    assert [attempt.body for attempt in trade.notifications] == ["fail", "fail", "success"]
    assert len(world.cetgql.accepted) == 1


async def test_the_sandbox_gives_up_quickly_and_can_resend(world: World) -> None:
    world.cetgql.script = [False, False, False]
    await charge_and_pay(world, "CET2026000013")
    trade = world.sandbox.trades[(sandbox_keys.SANDBOX_MERCHANT_NO, "CET2026000013")]
    assert [attempt.accepted for attempt in trade.notifications] == [False, False, False]
    assert world.cetgql.accepted == []
    index = await browser_get(f"{world.sandbox_url}/")
    assert "CET2026000013" in index.text
    assert "未确认" in index.text
    resent = await browser_post(
        f"{world.sandbox_url}/renotify",
        {"merchantNo": sandbox_keys.SANDBOX_MERCHANT_NO, "orderNo": "CET2026000013"},
    )
    assert resent.status_code == 303
    assert trade.notifications[-1].accepted
    assert world.cetgql.accepted[0].state is TradeState.SUCCEEDED


# --- what callback refuses -----------------------------------------------------------------


@pytest.fixture
def paid_notification(world: World) -> Iterator[dict[str, str]]:
    """A genuine notification of a paid trade, as the sandbox bank signs it."""
    world.cetgql.merchants["CET2026000020"] = world.merchant
    trade = Trade(
        merchant_no=sandbox_keys.SANDBOX_MERCHANT_NO,
        order_no="CET2026000020",
        amount_fen=3000,
        order_seq="S2026030100000001",
        status=protocol.OrderStatus.PAID,
        card_typ="01",
        pay_time="20260301093000",
    )
    yield world.sandbox.notification(trade)


async def test_callback_accepts_the_genuine_notification(
    world: World, paid_notification: dict[str, str]
) -> None:
    notification = await world.provider.callback(
        notify_request(paid_notification), world.cetgql.lookup
    )
    assert notification.state is TradeState.SUCCEEDED
    assert notification.amount_fen == 3000
    assert notification.paid_at == datetime(2026, 3, 1, 1, 30, tzinfo=UTC)
    assert notification.raw["acctNo"] == paid_notification["acctNo"]


async def test_callback_refuses_a_forged_signature(
    world: World, paid_notification: dict[str, str]
) -> None:
    """Signed correctly, but by someone else's key (here the merchant's own) than the bank's."""
    forged = {
        **paid_notification,
        "signData": cms.sign(
            protocol.notify_signed(paid_notification),
            cms.load_certificate(sandbox_keys.pem(sandbox_keys.MERCHANT_CERT)),
            cms.load_private_key(sandbox_keys.pem(sandbox_keys.MERCHANT_KEY)),
        ),
    }
    with pytest.raises(InvalidNotification, match="signature"):
        await world.provider.callback(notify_request(forged), world.cetgql.lookup)


async def test_callback_refuses_a_tampered_amount(
    world: World, paid_notification: dict[str, str]
) -> None:
    tampered = {**paid_notification, "payAmount": "3000.00"}
    with pytest.raises(InvalidNotification, match="signature"):
        await world.provider.callback(notify_request(tampered), world.cetgql.lookup)


async def test_callback_refuses_another_merchant(world: World) -> None:
    """A genuine bank signature, but for a merchant other than the one this trade belongs to."""
    world.cetgql.merchants["CET2026000021"] = world.merchant
    trade = Trade(
        merchant_no="104110000008888",
        order_no="CET2026000021",
        amount_fen=3000,
        order_seq="S1",
        status=protocol.OrderStatus.PAID,
        card_typ="01",
        pay_time="20260301093000",
    )
    fields = world.sandbox.notification(trade)
    with pytest.raises(InvalidNotification, match="another merchant"):
        await world.provider.callback(notify_request(fields), world.cetgql.lookup)


async def test_callback_refuses_an_unknown_trade(
    world: World, paid_notification: dict[str, str]
) -> None:
    del world.cetgql.merchants["CET2026000020"]
    with pytest.raises(InvalidNotification, match="unknown trade"):
        await world.provider.callback(notify_request(paid_notification), world.cetgql.lookup)


async def test_callback_refuses_malformed_requests(
    world: World, paid_notification: dict[str, str]
) -> None:
    lookup = world.cetgql.lookup
    with pytest.raises(InvalidNotification):
        await world.provider.callback(
            replace(notify_request(paid_notification), method="GET"), lookup
        )
    missing = {k: v for k, v in paid_notification.items() if k != "payTime"}
    with pytest.raises(InvalidNotification, match="missing"):
        await world.provider.callback(notify_request(missing), lookup)
    twice = notify_request(paid_notification)
    twice = replace(twice, body=twice.body + b"&payAmount=0.01")
    with pytest.raises(InvalidNotification, match="twice"):
        await world.provider.callback(twice, lookup)
    with pytest.raises(InvalidNotification):
        await world.provider.callback(notify_request({"orderNo": ""}), lookup)


async def test_callback_refuses_a_signed_but_malformed_amount(world: World) -> None:
    world.cetgql.merchants["CET2026000022"] = world.merchant
    fields = {
        "merchantNo": sandbox_keys.SANDBOX_MERCHANT_NO,
        "orderNo": "CET2026000022",
        "orderSeq": "S1",
        "cardTyp": "01",
        "payTime": "20260301093000",
        "orderStatus": "1",
        "payAmount": "30",
    }
    fields["signData"] = cms.sign(
        protocol.notify_signed(fields), world.sandbox.bank_certificate, world.sandbox.bank_key
    )
    with pytest.raises(InvalidNotification, match="amount"):
        await world.provider.callback(notify_request(fields), world.cetgql.lookup)


async def test_callback_uses_the_form_when_there_is_no_raw_body(
    world: World, paid_notification: dict[str, str]
) -> None:
    request = replace(notify_request(paid_notification), body=b"")
    notification = await world.provider.callback(request, world.cetgql.lookup)
    assert notification.amount_fen == 3000


def test_reply_is_what_the_bank_expects() -> None:
    provider = BocProvider()
    yes, no = provider.reply(True), provider.reply(False)
    assert (yes.status_code, yes.body) == (200, b"success")
    assert (no.status_code, no.body) == (200, b"fail")
    assert yes.content_type.startswith("text/plain")


# --- query ---------------------------------------------------------------------------------


async def test_query_follows_the_trade(world: World) -> None:
    provider, merchant = world.provider, world.merchant
    assert (await provider.query(merchant, "CET2026000030")).state is TradeState.NOT_FOUND

    result = await provider.charge(merchant, world.charge_request("CET2026000030", 3200))
    cashier = await open_cashier(world, result)
    pending = await provider.query(merchant, "CET2026000030")
    assert pending.state is TradeState.PENDING
    assert pending.amount_fen == 3200
    assert pending.paid_at is None

    await press(world, cashier, "pay")
    paid = await provider.query(merchant, "CET2026000030")
    assert paid.state is TradeState.SUCCEEDED
    assert paid.amount_fen == 3200
    assert paid.paid_at is not None
    trade = world.sandbox.trades[(sandbox_keys.SANDBOX_MERCHANT_NO, "CET2026000030")]
    assert paid.provider_trade_no == trade.order_seq
    assert paid.raw["hdlSts"] == "A"


async def test_a_query_answer_not_signed_by_the_configured_bank_is_unknown(
    world: World,
) -> None:
    await charge_and_pay(world, "CET2026000031")
    other_bank = MerchantConfig(
        "boc", {**world.merchant.values, "bankCert": world.merchant["merchantCert"]}
    )
    with pytest.raises(PaymentError, match="signature"):
        await world.provider.query(other_bank, "CET2026000031")


async def test_a_query_with_a_wrong_merchant_key_is_refused_by_the_bank(world: World) -> None:
    wrong_key = MerchantConfig(
        "boc",
        {
            **world.merchant.values,
            "merchantCert": sandbox_keys.pem(sandbox_keys.BANK_CERT),
            "merchantKey": sandbox_keys.pem(sandbox_keys.BANK_KEY),
        },
    )
    with pytest.raises(PaymentError, match="E0001"):
        await world.provider.query(wrong_key, "CET2026000032")


# --- close ---------------------------------------------------------------------------------


async def test_close_stops_payment(world: World) -> None:
    provider, merchant = world.provider, world.merchant
    result = await provider.charge(merchant, world.charge_request("CET2026000040"))
    cashier = await open_cashier(world, result)
    assert await provider.close(merchant, "CET2026000040") is True
    assert (await provider.query(merchant, "CET2026000040")).state is TradeState.CLOSED
    refused = await press(world, cashier, "pay")
    assert refused.status_code == 409
    again = await open_cashier(world, result)
    assert again.status_code == 409
    assert world.cetgql.received == []


async def test_close_before_the_browser_arrives_still_stops_payment(world: World) -> None:
    provider, merchant = world.provider, world.merchant
    result = await provider.charge(merchant, world.charge_request("CET2026000041"))
    assert await provider.close(merchant, "CET2026000041") is True
    assert (await open_cashier(world, result)).status_code == 409
    assert (await provider.query(merchant, "CET2026000041")).state is TradeState.CLOSED


async def test_close_does_not_undo_a_payment(world: World) -> None:
    await charge_and_pay(world, "CET2026000042")
    assert await world.provider.close(world.merchant, "CET2026000042") is False
    assert (await world.provider.query(world.merchant, "CET2026000042")).state is (
        TradeState.SUCCEEDED
    )


# --- refund --------------------------------------------------------------------------------


def refund_request(out_trade_no: str, refund_no: str, amount_fen: int = 3000) -> RefundRequest:
    return RefundRequest(out_trade_no, refund_no, amount_fen, 3000, "重复支付，自动退款")


async def test_refund_then_query_is_refunded(world: World) -> None:
    provider, merchant = world.provider, world.merchant
    await charge_and_pay(world, "CET2026000050")
    result = await provider.refund(merchant, refund_request("CET2026000050", "RF2026000050"))
    assert result.accepted
    assert result.provider_refund_no
    assert (await provider.query(merchant, "CET2026000050")).state is TradeState.REFUNDED

    again = await provider.refund(merchant, refund_request("CET2026000050", "RF2026000050"))
    assert again.accepted
    assert again.provider_refund_no == result.provider_refund_no
    trade = world.sandbox.trades[(sandbox_keys.SANDBOX_MERCHANT_NO, "CET2026000050")]
    assert trade.refunded_fen == 3000  # asked twice, refunded once


async def test_partial_refunds_and_refusals(world: World) -> None:
    provider, merchant = world.provider, world.merchant
    unpaid = await provider.refund(merchant, refund_request("CET2026000051", "RF1"))
    assert not unpaid.accepted
    assert unpaid.raw["rtnCd"] == protocol.RTN_UNKNOWN_ORDER

    await charge_and_pay(world, "CET2026000051")
    part = await provider.refund(merchant, refund_request("CET2026000051", "RF2", 1000))
    assert part.accepted
    assert (await provider.query(merchant, "CET2026000051")).state is TradeState.SUCCEEDED
    too_much = await provider.refund(merchant, refund_request("CET2026000051", "RF3", 2001))
    assert not too_much.accepted
    assert too_much.raw["rtnCd"] == protocol.RTN_AMOUNT_EXCEEDED
    reused = await provider.refund(merchant, refund_request("CET2026000051", "RF2", 500))
    assert not reused.accepted
    assert reused.raw["rtnCd"] == protocol.RTN_REFUND_SEQ_REUSED
    rest = await provider.refund(merchant, refund_request("CET2026000051", "RF4", 2000))
    assert rest.accepted
    assert (await provider.query(merchant, "CET2026000051")).state is TradeState.REFUNDED


# --- deadlines -----------------------------------------------------------------------------


async def test_an_expired_order_is_refused_by_the_cashier(world: World) -> None:
    created = datetime.now(UTC) - timedelta(hours=25)
    request = world.charge_request(
        "CET2026000060", created_at=created, expires_at=created + timedelta(hours=24)
    )
    page = await open_cashier(world, await world.provider.charge(world.merchant, request))
    assert page.status_code == 400
    assert "超过支付截止时间" in page.text


async def test_an_order_that_expires_at_the_cashier_cannot_be_paid(world: World) -> None:
    result = await world.provider.charge(world.merchant, world.charge_request("CET2026000061"))
    cashier = await open_cashier(world, result)
    world.clock.advance(hours=24, seconds=1)
    refused = await press(world, cashier, "pay")
    assert refused.status_code == 409
    assert "超过支付截止时间" in refused.text
    assert world.cetgql.received == []
    closed = await world.provider.query(world.merchant, "CET2026000061")
    assert closed.state is TradeState.CLOSED


# --- an unreachable or confused bank is an unknown state -----------------------------------


@pytest.fixture
def silent_bank() -> Iterator[str]:
    """A socket that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def pointed_at(world: World, url: str) -> MerchantConfig:
    return MerchantConfig("boc", {**world.merchant.values, "gatewayUrl": url})


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda p, m: p.query(m, "CET2026000070"), id="query"),
        pytest.param(lambda p, m: p.close(m, "CET2026000070"), id="close"),
        pytest.param(
            lambda p, m: p.refund(m, refund_request("CET2026000070", "RF70")), id="refund"
        ),
    ],
)
async def test_a_timeout_is_a_payment_error(
    world: World, silent_bank: str, call: Callable[..., object]
) -> None:
    provider = BocProvider(timeout=0.3)
    started = asyncio.get_running_loop().time()
    with pytest.raises(PaymentError):
        await call(provider, pointed_at(world, silent_bank))  # type: ignore[misc]
    assert asyncio.get_running_loop().time() - started < 5


async def test_a_refused_connection_is_a_payment_error(world: World) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{placeholder.getsockname()[1]}"
    with pytest.raises(PaymentError):
        await world.provider.query(pointed_at(world, url), "CET2026000071")


async def test_an_answer_that_is_not_the_banks_is_a_payment_error(world: World) -> None:
    # A gateway address without the bank behind it: the host answers 404.
    with pytest.raises(PaymentError, match="HTTP 404"):
        await world.provider.query(pointed_at(world, f"{world.base}/nowhere"), "T1")

    def plain_text(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>maintenance</html>")

    provider = BocProvider(transport=httpx.MockTransport(plain_text))
    with pytest.raises(PaymentError, match="root element"):
        await provider.query(world.merchant, "T1")


async def test_broken_settings_are_payment_errors(world: World) -> None:
    no_key = MerchantConfig("boc", {**world.merchant.values, "merchantKey": "x"})
    with pytest.raises(PaymentError, match="key"):
        await world.provider.charge(no_key, world.charge_request("CET2026000072"))
    no_gateway = MerchantConfig("boc", {**world.merchant.values, "gatewayUrl": ""})
    with pytest.raises(PaymentError, match="gatewayUrl"):
        await world.provider.query(no_gateway, "CET2026000072")


async def test_an_interface_path_can_be_a_full_url(world: World) -> None:
    """A province whose branch names the query interface differently sets it in settings."""
    seen: list[str] = []

    def bank(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, content=protocol.build_answer({"hdlSts": "A"}))

    provider = BocProvider(transport=httpx.MockTransport(bank))
    renamed = MerchantConfig(
        "boc",
        {
            **world.merchant.values,
            "gatewayUrl": "https://ebspay.example/PGWPortal/",
            "queryPath": "/QueryOrder.do",
            "cancelPath": "https://other.example/B2C/Cancel.do",
        },
    )
    assert (await provider.query(renamed, "T1")).state is TradeState.NOT_FOUND
    with pytest.raises(PaymentError):
        await provider.close(renamed, "T1")
    assert seen == [
        "https://ebspay.example/PGWPortal/QueryOrder.do",
        "https://other.example/B2C/Cancel.do",
    ]
