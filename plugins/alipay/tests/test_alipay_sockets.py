"""Over real sockets: uvicorn on 127.0.0.1 serving the sandbox mounted as cetgql mounts it
(``/sandbox/alipay``) next to a notify endpoint, plus gateways that are down or too slow."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
import uvicorn
from alipay_testing import FakeClock, Receiver, World
from cetgql_alipay import AlipayProvider
from cetgql_alipay.sandbox import AlipaySandbox
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from cetgql.payments import ChargeRequest, MerchantConfig, PaymentError, RefundRequest, TradeState


def _bound_socket() -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def _serve(app: ASGIApp, sock: socket.socket) -> Iterator[None]:
    """Run ``app`` with uvicorn in a thread on an already bound socket."""
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


async def test_whole_flow_over_sockets_with_the_sandbox_mounted() -> None:
    sock, base = _bound_socket()
    notify_url = f"{base}/payments/alipay/notify"
    provider = AlipayProvider(timeout=5.0)
    sandbox = provider.sandbox(notify_url)
    assert isinstance(sandbox, AlipaySandbox)
    sandbox.retry_delays = (0.05,)
    merchant = MerchantConfig("alipay", provider.sandbox_merchant(f"{base}/sandbox/alipay/"))
    assert merchant["gateway_url"] == f"{base}/sandbox/alipay/gateway.do"
    world = World(provider=provider, sandbox=sandbox, merchant=merchant, clock=FakeClock())
    receiver = Receiver(world)
    app = Starlette(
        routes=[
            Route("/payments/alipay/notify", receiver.notify, methods=["POST"]),
            Mount("/sandbox/alipay", app=sandbox),
        ]
    )
    with _serve(app, sock):
        request = ChargeRequest(
            out_trade_no="CET2026H1000200",
            amount_fen=3000,
            subject="2026年上半年 CET6 笔试报名费",
            created_at=world.clock.now,
            expires_at=world.clock.now + timedelta(hours=24),
            notify_url=notify_url,
            return_url=f"{base}/payments/alipay/return",
        )
        world.ours.add(request.out_trade_no)
        result = await provider.charge(merchant, request)
        assert result.redirect is not None
        assert (await provider.query(merchant, request.out_trade_no)).state == TradeState.NOT_FOUND

        async with httpx.AsyncClient() as browser:
            cashier = await browser.post(
                result.redirect.url, data=dict(result.redirect.fields), follow_redirects=True
            )
            assert cashier.status_code == 200
            assert cashier.url.path.startswith("/sandbox/alipay/cashier/")
            # Press the cashier's own "pay" button: its form action must work under the mount.
            actions = re.findall(r'<form method="post" action="([^"]+)"', cashier.text)
            pay_action = next(a for a in actions if a.endswith("/pay"))
            assert pay_action.startswith("/sandbox/alipay/cashier/")
            paid = await browser.post(f"{base}{pay_action}")
        assert paid.status_code == 303
        assert paid.headers["location"].startswith(f"{base}/payments/alipay/return?")

        [notification] = receiver.notifications
        assert (notification.state, notification.amount_fen) == (TradeState.SUCCEEDED, 3000)
        status = await provider.query(merchant, request.out_trade_no)
        assert status.state == TradeState.SUCCEEDED

        refund = RefundRequest(request.out_trade_no, "REFUND1", 3000, 3000, "退款")
        assert (await provider.refund(merchant, refund)).accepted
        assert (await provider.query(merchant, request.out_trade_no)).state == TradeState.REFUNDED
        # The refund notification runs on the server's loop, after the refund answer.
        for _ in range(200):
            if len(receiver.notifications) == 2:
                break
            await asyncio.sleep(0.01)
        assert [n.state for n in receiver.notifications] == [
            TradeState.SUCCEEDED,
            TradeState.REFUNDED,
        ]


async def test_a_gateway_that_refuses_connections_raises_payment_error() -> None:
    sock, base = _bound_socket()
    sock.close()  # nothing listens on that port any more
    provider = AlipayProvider(timeout=2.0)
    merchant = MerchantConfig("alipay", provider.sandbox_merchant(f"{base}/sandbox/alipay"))
    with pytest.raises(PaymentError, match="unreachable"):
        await provider.query(merchant, "CET2026H1000201")
    with pytest.raises(PaymentError):
        await provider.close(merchant, "CET2026H1000201")
    with pytest.raises(PaymentError):
        await provider.refund(merchant, RefundRequest("CET2026H1000201", "R1", 3000, 3000, "退款"))


async def test_a_gateway_slower_than_the_timeout_raises_payment_error() -> None:
    async def slow(request: Request) -> Response:
        await asyncio.sleep(1.5)
        return Response("{}", media_type="application/json")

    sock, base = _bound_socket()
    app = Starlette(routes=[Route("/sandbox/alipay/gateway.do", slow, methods=["POST"])])
    provider = AlipayProvider(timeout=0.2)
    merchant = MerchantConfig("alipay", provider.sandbox_merchant(f"{base}/sandbox/alipay"))
    with _serve(app, sock), pytest.raises(PaymentError, match="Timeout"):
        await provider.query(merchant, "CET2026H1000202")
