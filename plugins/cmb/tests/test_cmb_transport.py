"""The network edge: real sockets end to end, and every way an answer can be unusable, which
must leave the state unknown (PaymentError), never failed."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Callable

import httpx
import pytest
from cetgql_cmb.provider import CmbProvider
from cetgql_cmb.sandbox import SANDBOX_MERCHANT_KEY, CmbSandbox
from cetgql_cmb.signing import RsaAlgorithm, rsa_sign, sandbox_bank_private_key, sha256_sign
from cmb_testkit import Clock, Receiver, mounted, serve
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from cetgql.payments import ChargeRequest, MerchantConfig, PaymentError, TradeState

TRADE = "26051510000012345678"


def _merchant(base: str) -> MerchantConfig:
    return MerchantConfig("cmb", CmbProvider().sandbox_merchant(base))


async def test_the_whole_flow_over_real_sockets(clock: Clock) -> None:
    """Provider, sandbox bank and notify receiver each behind their own uvicorn server."""
    receiver = Receiver()
    with serve(receiver.app) as cetgql_url:
        sandbox = CmbSandbox(f"{cetgql_url}/payments/cmb/notify", clock=clock)
        with serve(mounted(sandbox)) as bank_url:
            provider = CmbProvider(clock=clock)
            receiver.provider = provider
            merchant = _merchant(f"{bank_url}/sandbox/cmb")
            now = clock()
            charge = await provider.charge(
                merchant,
                ChargeRequest(
                    out_trade_no=TRADE,
                    amount_fen=5000,
                    subject="CET-SET4 口试报名费",
                    created_at=now,
                    expires_at=now.replace(hour=now.hour + 1),
                    notify_url=f"{cetgql_url}/payments/cmb/notify",
                    return_url=f"{cetgql_url}/payments/cmb/return?trade={TRADE}",
                ),
            )
            receiver.merchants[TRADE] = merchant
            assert charge.redirect is not None
            assert (await provider.query(merchant, TRADE)).state is TradeState.NOT_FOUND
            async with httpx.AsyncClient(base_url=bank_url) as browser:
                page = await browser.post(
                    charge.redirect.url, data=dict(charge.redirect.fields), follow_redirects=True
                )
                assert page.status_code == 200 and "¥50.00" in page.text
                action = re.search(r"action='([^']+/pay)'", page.text)
                assert action
                paid = await browser.post(action.group(1))
            assert paid.status_code == 303
            assert paid.headers["location"].endswith(f"/payments/cmb/return?trade={TRADE}")
            [notification] = receiver.notifications
            assert notification.amount_fen == 5000
            assert notification.state is TradeState.SUCCEEDED
            status = await provider.query(merchant, TRADE)
            assert status.state is TradeState.SUCCEEDED and status.amount_fen == 5000


async def test_a_bank_that_does_not_answer_in_time_is_a_payment_error() -> None:
    async def slow(request: Request) -> Response:
        await asyncio.sleep(1)
        return PlainTextResponse("too late")

    app = Starlette(routes=[Route("/merchserv/BaseHttp.dll", slow, methods=["POST"])])
    with serve(app) as url:
        provider = CmbProvider(timeout=0.3)
        merchant = _merchant(url)
        with pytest.raises(PaymentError, match="Timeout"):
            await provider.query(merchant, TRADE)
        with pytest.raises(PaymentError, match="Timeout"):
            await provider.close(merchant, TRADE)


async def test_an_unreachable_bank_is_a_payment_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    merchant = _merchant(f"http://127.0.0.1:{port}")
    with pytest.raises(PaymentError, match="ConnectError"):
        await CmbProvider(timeout=2).query(merchant, TRADE)


def _fake_bank(answer: Callable[[str, dict[str, str]], Response]) -> CmbProvider:
    """A provider talking to a bank whose answers the test writes."""

    async def merchserv(request: Request) -> Response:
        form = await request.body()
        from urllib.parse import parse_qs

        envelope = json.loads(parse_qs(form.decode())["jsonRequestData"][0])
        return answer(request.url.query, envelope["reqData"])

    app = Starlette(routes=[Route("/merchserv/BaseHttp.dll", merchserv, methods=["POST"])])
    return CmbProvider(transport=httpx.ASGITransport(app=app))


def _signed(rsp: dict[str, str], key: rsa.RSAPrivateKey | None = None) -> JSONResponse:
    sign = rsa_sign(rsp, key or sandbox_bank_private_key(), RsaAlgorithm.SHA256)
    return JSONResponse(
        {"version": "1.0", "charset": "UTF-8", "signType": "RSA", "sign": sign, "rspData": rsp}
    )


PAID = {
    "rspCode": "SUC0000",
    "rspMsg": "",
    "orderNo": TRADE,
    "orderAmount": "30.00",
    "orderStatus": "0",
    "bankSerialNo": "26051500000000000001",
    "settleDate": "20260515",
    "settleTime": "101500",
}
NO_REFUNDS = {"rspCode": "SUC0000", "rspMsg": "", "dataCount": "0", "dataList": ""}


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda c, r: PlainTextResponse("busy", status_code=502), "HTTP 502"),
        (lambda c, r: PlainTextResponse("<html>maintenance</html>"), "not JSON"),
        (lambda c, r: JSONResponse([1, 2]), "not a JSON object"),
        (lambda c, r: JSONResponse({"rspData": {"rspCode": "MSS3411"}}), "unsigned"),
        (
            lambda c, r: _signed(
                PAID, rsa.generate_private_key(public_exponent=65537, key_size=2048)
            ),
            "signature",
        ),
        (
            lambda c, r: JSONResponse({"signType": "MD5", "sign": "x", "rspData": PAID}),
            "signType",
        ),
        (lambda c, r: _signed({"rspCode": "MSS9999", "rspMsg": "系统忙"}), "MSS9999"),
        (lambda c, r: _signed({**PAID, "orderStatus": "2"}), "orderStatus"),
        (lambda c, r: _signed({**PAID, "orderNo": "999"}), "another order"),
        (
            lambda c, r: _signed(
                PAID if c == "QuerySingleOrder" else {"rspCode": "MSS9999", "rspMsg": ""}
            ),
            "QuerySettledRefundV2",
        ),
    ],
)
async def test_unusable_answers_leave_the_state_unknown(answer, reason: str) -> None:  # type: ignore[no-untyped-def]
    provider = _fake_bank(answer)
    with pytest.raises(PaymentError, match=reason):
        await provider.query(_merchant("https://bank.test"), TRADE)


async def test_an_answer_signed_with_the_merchant_key_is_accepted() -> None:
    """CMB documents answers signed like requests (SHA-256 with the merchant key)."""

    def answer(command: str, req: dict[str, str]) -> Response:
        rsp = PAID if command == "QuerySingleOrder" else NO_REFUNDS
        return JSONResponse(
            {
                "version": "1.0",
                "charset": "UTF-8",
                "signType": "SHA-256",
                "sign": sha256_sign(rsp, SANDBOX_MERCHANT_KEY),
                "rspData": rsp,
            }
        )

    status = await _fake_bank(answer).query(_merchant("https://bank.test"), TRADE)
    assert status.state is TradeState.SUCCEEDED
    assert status.provider_trade_no == "26051500000000000001"
    assert status.paid_at is not None and status.paid_at.isoformat() == "2026-05-15T02:15:00+00:00"


@pytest.mark.parametrize(
    ("order_status", "state"),
    [
        ("0", TradeState.SUCCEEDED),
        ("7", TradeState.SUCCEEDED),
        ("4", TradeState.PENDING),
        ("6", TradeState.PENDING),
        ("1", TradeState.CLOSED),
    ],
)
async def test_order_status_mapping(order_status: str, state: TradeState) -> None:
    def answer(command: str, req: dict[str, str]) -> Response:
        return _signed(
            {**PAID, "orderStatus": order_status} if command == "QuerySingleOrder" else NO_REFUNDS
        )

    status = await _fake_bank(answer).query(_merchant("https://bank.test"), TRADE)
    assert status.state is state
    assert (status.paid_at is not None) is (state is TradeState.SUCCEEDED)


async def test_the_query_looks_back_over_recent_order_dates() -> None:
    asked: list[str] = []

    def answer(command: str, req: dict[str, str]) -> Response:
        asked.append(req["date"])
        return _signed({"rspCode": "MSS3101", "rspMsg": "订单不存在"})

    clock = Clock()
    provider = _fake_bank(answer)
    provider._clock = clock  # type: ignore[attr-defined]
    status = await provider.query(_merchant("https://bank.test"), TRADE)
    assert status.state is TradeState.NOT_FOUND
    assert asked == ["20260515", "20260514", "20260513", "20260512"]


async def test_trade_numbers_cmb_cannot_take_are_refused_before_any_call(clock: Clock) -> None:
    provider = CmbProvider(clock=clock)
    merchant = _merchant("https://bank.test")
    with pytest.raises(PaymentError, match="letters or digits"):
        await provider.query(merchant, "P-2026-0001")
    with pytest.raises(PaymentError, match="letters or digits"):
        await provider.close(merchant, "x" * 33)
