"""The provider against the sandbox bank over HTTP: charge, cashier, notice, query, close,
refund and expiry, with real signatures on every message."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import httpx
import pytest
from cetgql_cmb.provider import CmbProvider
from cetgql_cmb.sandbox import SANDBOX_MERCHANT_KEY, CmbSandbox
from cetgql_cmb.signing import RsaAlgorithm
from cmb_testkit import BANK, NOTIFY_URL, SANDBOX_URL, Env, Receiver, mounted

from cetgql.payments import MerchantConfig, PaymentError, RefundRequest, TradeState


def _envelope(fields: tuple[tuple[str, str], ...]) -> dict[str, object]:
    assert [name for name, _ in fields] == ["jsonRequestData"]
    return json.loads(fields[0][1])


async def test_charge_builds_a_signed_cashier_form(env: Env) -> None:
    trade = env.trade_no()
    redirect = await env.charge(trade, amount_fen=3050, minutes=90.5)
    assert redirect.method == "POST"
    assert redirect.url == f"{SANDBOX_URL}/netpayment/BaseHttp.dll?PC_EUserPay"
    envelope = _envelope(redirect.fields)
    assert {k: envelope[k] for k in ("version", "charset", "signType")} == {
        "version": "1.0",
        "charset": "UTF-8",
        "signType": "SHA-256",
    }
    req = envelope["reqData"]
    assert isinstance(req, dict)
    assert req == {
        "dateTime": "20260515100000",  # Beijing time
        "branchNo": "0755",
        "merchantNo": "000054",
        "date": "20260515",
        "orderNo": trade,
        "amount": "30.50",
        "expireTimeSpan": "90",  # 90.5 minutes, rounded down
        "payNoticeUrl": NOTIFY_URL,
        "returnUrl": f"http://cetgql.test/payments/cmb/return?trade={trade}",
    }
    # The sign, recomputed by hand from the rule.
    plain = "&".join(f"{k}={req[k]}" for k in sorted(req, key=str.lower))
    expected = hashlib.sha256(f"{plain}&{SANDBOX_MERCHANT_KEY}".encode()).hexdigest()
    assert envelope["sign"] == expected

    page = await env.open_cashier(redirect)
    assert "一网通支付" in page.text and "¥30.50" in page.text and trade in page.text
    mobile = await env.charge(env.trade_no(), mobile=True)
    assert mobile.url.endswith("/netpayment/BaseHttp.dll?MB_EUserPay")
    assert (await env.open_cashier(mobile)).status_code == 200


async def test_the_sandbox_refuses_a_bad_signature(env: Env) -> None:
    redirect = await env.charge(env.trade_no())
    envelope = _envelope(redirect.fields)
    envelope["reqData"]["amount"] = "0.01"  # type: ignore[index]
    response = await env.browser.post(redirect.url, data={"jsonRequestData": json.dumps(envelope)})
    assert response.status_code == 400
    assert "签名错误" in response.text and "MSS3411" in response.text
    assert env.sandbox.trades == {}


async def test_pay_posts_a_notice_that_verifies_into_success(env: Env) -> None:
    trade = env.trade_no()
    response = await env.pay(trade, amount_fen=3700)
    assert response.status_code == 303
    assert response.headers["location"] == f"http://cetgql.test/payments/cmb/return?trade={trade}"

    [notification] = env.receiver.notifications
    assert notification.out_trade_no == trade
    assert notification.state is TradeState.SUCCEEDED
    assert notification.amount_fen == 3700
    assert notification.merchant_id == "0755000054"
    bank_trade = env.sandbox.trade(trade)
    assert bank_trade is not None and bank_trade.status == "PAID"
    assert notification.provider_trade_no == bank_trade.bank_serial_no
    assert notification.paid_at == env.clock()
    assert bank_trade.deliveries == ["10:00:00 第 1 次：HTTP 200"]
    # The notice is a form post of jsonRequestData, RSA-signed over noticeData.
    [posted] = env.receiver.requests
    envelope = json.loads(posted.form["jsonRequestData"])
    assert envelope["signType"] == "RSA"
    assert envelope["noticeData"]["noticeType"] == "BKPAYRTN"
    assert envelope["noticeData"]["amount"] == "37.00"


async def test_the_bank_retries_until_it_gets_http_200(env: Env) -> None:
    env.receiver.refuse_next = 2
    trade = env.trade_no()
    assert (await env.pay(trade)).status_code == 303
    assert len(env.receiver.requests) == 3
    bank_trade = env.sandbox.trade(trade)
    assert bank_trade is not None
    assert [line.split("：")[1] for line in bank_trade.deliveries] == [
        "HTTP 400",
        "HTTP 400",
        "HTTP 200",
    ]
    # Every attempt carried the same verifiable notice.
    assert len(env.receiver.notifications) == 3


async def test_a_json_body_notice_verifies_too(clock, env: Env) -> None:  # type: ignore[no-untyped-def]
    sandbox = CmbSandbox(
        NOTIFY_URL,
        transport=httpx.ASGITransport(app=env.receiver.app),
        clock=clock,
        notice_format="json",
    )
    host = mounted(sandbox)
    provider = CmbProvider(transport=httpx.ASGITransport(app=host), clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=host), base_url=BANK) as browser:
        json_env = Env(clock, provider, sandbox, env.receiver, env.merchant, browser)
        trade = json_env.trade_no()
        assert (await json_env.pay(trade)).status_code == 303
    [posted] = env.receiver.requests
    assert posted.form == {} and posted.headers["content-type"].startswith("application/json")
    [notification] = env.receiver.notifications
    assert notification.out_trade_no == trade and notification.amount_fen == 3000


async def test_sha1_bank_with_sha1_setting_verifies_and_a_mismatch_does_not(
    clock,  # type: ignore[no-untyped-def]
) -> None:
    receiver = Receiver()
    sandbox = CmbSandbox(
        NOTIFY_URL,
        transport=httpx.ASGITransport(app=receiver.app),
        clock=clock,
        sign_algorithm=RsaAlgorithm.SHA1,
        notice_attempts=1,
    )
    host = mounted(sandbox)
    provider = CmbProvider(transport=httpx.ASGITransport(app=host), clock=clock)
    receiver.provider = provider
    sha1 = MerchantConfig(
        "cmb", {**provider.sandbox_merchant(SANDBOX_URL), "bankSignAlgorithm": "SHA1withRSA"}
    )
    sha256 = MerchantConfig("cmb", provider.sandbox_merchant(SANDBOX_URL))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=host), base_url=BANK) as browser:
        bank = Env(clock, provider, sandbox, receiver, sha1, browser)
        good, bad = bank.trade_no(), bank.trade_no()
        await bank.pay(good)
        assert (await provider.query(sha1, good)).state is TradeState.SUCCEEDED
        redirect = await bank.charge(bad)
        receiver.merchants[bad] = sha256  # a province that configured the wrong hash
        await bank.press(await bank.open_cashier(redirect), "pay")
    assert [type(r).__name__ for r in receiver.results] == ["Notification", "InvalidNotification"]
    assert "signature" in str(receiver.results[1])


async def test_query_before_and_after_payment(env: Env) -> None:
    trade = env.trade_no()
    before = await env.provider.query(env.merchant, trade)
    assert before.state is TradeState.NOT_FOUND
    page = await env.open_cashier(await env.charge(trade))
    # Opened but not paid: the bank has no order yet.
    assert (await env.provider.query(env.merchant, trade)).state is TradeState.NOT_FOUND
    await env.press(page, "pay")
    after = await env.provider.query(env.merchant, trade)
    assert after.state is TradeState.SUCCEEDED
    assert after.amount_fen == 3000
    bank_trade = env.sandbox.trade(trade)
    assert bank_trade is not None
    assert after.provider_trade_no == bank_trade.bank_serial_no
    assert after.paid_at == env.clock()
    assert after.raw["orderStatus"] == "0"


async def test_query_finds_an_order_dated_yesterday(env: Env) -> None:
    trade = env.trade_no()
    env.clock.advance(hours=13, minutes=30)  # 23:30 in Beijing
    await env.pay(trade)
    env.clock.advance(hours=1)  # 00:30 the next day: the order date is yesterday's
    status = await env.provider.query(env.merchant, trade)
    assert status.state is TradeState.SUCCEEDED
    assert status.raw["date"] == "20260515"


async def test_cancel_on_the_cashier_goes_back_unpaid(env: Env) -> None:
    trade = env.trade_no()
    page = await env.open_cashier(await env.charge(trade))
    response = await env.press(page, "cancel")
    assert response.status_code == 303
    assert response.headers["location"].endswith(f"trade={trade}")
    assert env.receiver.requests == []
    assert (await env.provider.query(env.merchant, trade)).state is TradeState.NOT_FOUND


async def test_the_same_charge_twice_is_one_trade(env: Env) -> None:
    trade = env.trade_no()
    first = await env.open_cashier(await env.charge(trade))
    env.clock.advance(minutes=1)
    second = await env.open_cashier(await env.charge(trade))
    assert first.url == second.url  # the same cashier page: the same trade
    assert len(env.sandbox.trades) == 1
    await env.press(second, "pay")
    # Posting the form of a paid trade again does not take the money twice.
    again = await env.post_form(await env.charge(trade))
    assert again.status_code == 200 and "已支付" in again.text
    assert len(env.receiver.requests) == 1
    # Another amount under the same order number is refused.
    other = await env.post_form(await env.charge(trade, amount_fen=5000))
    assert other.status_code == 409 and "订单号重复" in other.text


async def test_close_before_payment_stops_the_cashier(env: Env) -> None:
    trade = env.trade_no()
    page = await env.open_cashier(await env.charge(trade))
    assert await env.provider.close(env.merchant, trade) is True
    assert await env.provider.close(env.merchant, trade) is True  # idempotent
    refused = await env.press(page, "pay")
    assert refused.status_code == 409 and "订单已关闭" in refused.text
    assert env.receiver.requests == []
    status = await env.provider.query(env.merchant, trade)
    assert status.state is TradeState.CLOSED


async def test_close_before_the_browser_arrives_refuses_it_later(env: Env) -> None:
    trade = env.trade_no()
    redirect = await env.charge(trade)
    assert await env.provider.close(env.merchant, trade) is True
    response = await env.post_form(redirect)
    assert response.status_code == 409 and "订单已关闭" in response.text


async def test_a_paid_trade_cannot_be_closed(env: Env) -> None:
    trade = env.trade_no()
    await env.pay(trade)
    assert await env.provider.close(env.merchant, trade) is False
    assert (await env.provider.query(env.merchant, trade)).state is TradeState.SUCCEEDED


def _refund(trade: str, refund_no: str, amount_fen: int = 3000) -> RefundRequest:
    return RefundRequest(
        out_trade_no=trade,
        refund_no=refund_no,
        amount_fen=amount_fen,
        total_fen=3000,
        reason="重复缴费退款",
    )


async def test_refund_then_query_says_refunded(env: Env) -> None:
    trade = env.trade_no()
    await env.pay(trade)
    result = await env.provider.refund(env.merchant, _refund(trade, "26051510000099990001"))
    assert result.accepted
    bank_trade = env.sandbox.trade(trade)
    assert bank_trade is not None
    [refund] = bank_trade.refunds
    assert result.provider_refund_no == refund.bank_serial_no
    assert refund.merchant_serial_no == "26051510000099990001"
    assert refund.amount_fen == 3000 and refund.desc == "重复缴费退款"
    status = await env.provider.query(env.merchant, trade)
    assert status.state is TradeState.REFUNDED
    assert status.amount_fen == 3000


async def test_refund_is_idempotent_per_refund_number(env: Env) -> None:
    trade = env.trade_no()
    await env.pay(trade)
    first = await env.provider.refund(env.merchant, _refund(trade, "R0001"))
    second = await env.provider.refund(env.merchant, _refund(trade, "R0001"))
    assert first.accepted and second.accepted
    assert second.provider_refund_no == first.provider_refund_no
    assert second.raw["rspCode"] == "MSS3202"  # the bank refused the repeat; the list confirmed
    bank_trade = env.sandbox.trade(trade)
    assert bank_trade is not None and len(bank_trade.refunds) == 1


async def test_partial_and_excessive_refunds(env: Env) -> None:
    trade = env.trade_no()
    await env.pay(trade)
    assert (await env.provider.refund(env.merchant, _refund(trade, "R1", 1000))).accepted
    assert (await env.provider.query(env.merchant, trade)).state is TradeState.SUCCEEDED
    too_much = await env.provider.refund(env.merchant, _refund(trade, "R2", 2500))
    assert not too_much.accepted and too_much.raw["rspCode"] == "MSS3804"
    assert (await env.provider.refund(env.merchant, _refund(trade, "R3", 2000))).accepted
    assert (await env.provider.query(env.merchant, trade)).state is TradeState.REFUNDED


async def test_refund_of_an_unpaid_trade_is_refused(env: Env) -> None:
    trade = env.trade_no()
    await env.open_cashier(await env.charge(trade))
    result = await env.provider.refund(env.merchant, _refund(trade, "R1"))
    assert not result.accepted


async def test_the_cashier_refuses_payment_after_the_deadline(env: Env) -> None:
    trade = env.trade_no()
    page = await env.open_cashier(await env.charge(trade, minutes=30))
    env.clock.advance(minutes=30, seconds=1)
    refused = await env.press(page, "pay")
    assert refused.status_code == 403 and "支付时限" in refused.text
    assert env.receiver.requests == []
    assert (await env.provider.query(env.merchant, trade)).state is TradeState.NOT_FOUND


async def test_a_form_posted_after_the_deadline_is_refused(env: Env) -> None:
    trade = env.trade_no()
    redirect = await env.charge(trade, minutes=5)
    env.clock.advance(minutes=6)
    response = await env.post_form(redirect)
    assert response.status_code == 403 and "支付时限" in response.text
    assert env.sandbox.trades == {}


async def test_charging_past_the_deadline_is_refused_up_front(env: Env) -> None:
    request = env.charge_request(env.trade_no(), minutes=-1)
    with pytest.raises(PaymentError, match="deadline"):
        await env.provider.charge(env.merchant, request)


async def test_the_sandbox_index_lists_trades(env: Env) -> None:
    trade = env.trade_no()
    await env.pay(trade)
    page = await env.browser.get("/sandbox/cmb/")
    assert page.status_code == 200 and trade in page.text and "已支付" in page.text
    # The resend button posts the notice again.
    action = page.text.split("action='")[1].split("'")[0]
    assert (await env.browser.post(action)).status_code == 303
    assert len(env.receiver.notifications) == 2


async def test_expiry_window_matches_the_order_deadline(env: Env) -> None:
    trade = env.trade_no()
    await env.open_cashier(await env.charge(trade, minutes=24 * 60))
    bank_trade = env.sandbox.trade(trade)
    assert bank_trade is not None
    assert bank_trade.deadline == env.clock() + timedelta(hours=24)


async def test_the_merchant_api_refuses_a_wrong_key(env: Env) -> None:
    trade = env.trade_no()
    await env.pay(trade)
    wrong = MerchantConfig("cmb", {**env.merchant.values, "merchantKey": "NotTheRightKey00"})
    with pytest.raises(PaymentError, match="MSS3411"):
        await env.provider.query(wrong, trade)
    with pytest.raises(PaymentError, match="MSS3411"):
        await env.provider.refund(wrong, _refund(trade, "R1"))
    bank_trade = env.sandbox.trade(trade)
    assert bank_trade is not None and bank_trade.refunds == []
