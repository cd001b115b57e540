"""Test kit: the sandbox bank mounted like cetgql mounts it, the provider talking to it over
HTTP (ASGI transport, or real sockets through uvicorn), a receiver playing cetgql's notify
endpoint, and a clock both sides share so deadlines can be crossed without waiting."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import httpx
import uvicorn
from cetgql_cmb.provider import CmbProvider
from cetgql_cmb.sandbox import CmbSandbox
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from cetgql.payments import (
    ChargeRequest,
    InvalidNotification,
    MerchantConfig,
    Notification,
    NotifyRequest,
    Redirect,
)

BANK = "http://bank.test"
SANDBOX_URL = f"{BANK}/sandbox/cmb"
CETGQL = "http://cetgql.test"
NOTIFY_URL = f"{CETGQL}/payments/cmb/notify"
# 2026-05-15 10:00 in Beijing.
START = datetime(2026, 5, 15, 2, 0, tzinfo=UTC)


class Clock:
    """A settable clock shared by the provider and the sandbox bank."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Receiver:
    """cetgql's notify endpoint in miniature: the request reaches ``provider.callback`` as
    cetgql builds it, and the answer is ``provider.reply``. ``refuse_next`` makes it answer
    with a refusal that many times, whatever the notice, to exercise the bank's retries."""

    def __init__(self) -> None:
        self.provider: CmbProvider | None = None
        self.merchants: dict[str, MerchantConfig] = {}
        self.requests: list[NotifyRequest] = []
        self.results: list[Notification | InvalidNotification] = []
        self.refuse_next = 0
        self.app = Starlette(routes=[Route("/payments/cmb/notify", self.notify, methods=["POST"])])

    async def lookup(self, out_trade_no: str) -> MerchantConfig | None:
        return self.merchants.get(out_trade_no)

    async def notify(self, request: Request) -> Response:
        assert self.provider is not None
        body = await request.body()
        form: dict[str, str] = {}
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = dict(parse_qsl(body.decode()))
        notify = NotifyRequest(
            method=request.method,
            headers=dict(request.headers),
            query=dict(request.query_params),
            body=body,
            form=form,
        )
        self.requests.append(notify)
        result: Notification | InvalidNotification
        try:
            result = await self.provider.callback(notify, self.lookup)
            accepted = True
        except InvalidNotification as error:
            result, accepted = error, False
        self.results.append(result)
        if self.refuse_next > 0:
            self.refuse_next -= 1
            accepted = False
        reply = self.provider.reply(accepted)
        return Response(reply.body, status_code=reply.status_code, media_type=reply.content_type)

    @property
    def notifications(self) -> list[Notification]:
        return [r for r in self.results if isinstance(r, Notification)]


@dataclass
class Env:
    clock: Clock
    provider: CmbProvider
    sandbox: CmbSandbox
    receiver: Receiver
    merchant: MerchantConfig
    browser: httpx.AsyncClient
    counter: list[int] = field(default_factory=lambda: [0])

    def trade_no(self) -> str:
        """A trade number shaped like cetgql's: 20 digits."""
        self.counter[0] += 1
        return f"{self.clock():%y%m%d%H%M%S}{self.counter[0]:08d}"

    def charge_request(
        self, out_trade_no: str, amount_fen: int = 3000, minutes: float = 30, mobile: bool = False
    ) -> ChargeRequest:
        now = self.clock()
        return ChargeRequest(
            out_trade_no=out_trade_no,
            amount_fen=amount_fen,
            subject="CET 报名费",
            created_at=now,
            expires_at=now + timedelta(minutes=minutes),
            notify_url=NOTIFY_URL,
            return_url=f"{CETGQL}/payments/cmb/return?trade={out_trade_no}",
            mobile=mobile,
        )

    async def charge(self, out_trade_no: str, **kwargs: object) -> Redirect:
        result = await self.provider.charge(
            self.merchant,
            self.charge_request(out_trade_no, **kwargs),  # type: ignore[arg-type]
        )
        assert result.redirect is not None
        self.receiver.merchants[out_trade_no] = self.merchant
        return result.redirect

    async def post_form(self, redirect: Redirect) -> httpx.Response:
        """What the candidate's browser does with the redirect: post the form."""
        assert redirect.method == "POST"
        return await self.browser.post(redirect.url, data=dict(redirect.fields))

    async def open_cashier(self, redirect: Redirect) -> httpx.Response:
        response = await self.post_form(redirect)
        assert response.status_code == 303, response.text
        page = await self.browser.get(response.headers["location"])
        assert page.status_code == 200, page.text
        return page

    async def press(self, page: httpx.Response, button: str) -> httpx.Response:
        """Submit the cashier page's pay or cancel form."""
        match = re.search(rf"action='([^']+/{button})'", page.text)
        assert match, page.text
        return await self.browser.post(match.group(1))

    async def pay(self, out_trade_no: str, **kwargs: object) -> httpx.Response:
        page = await self.open_cashier(await self.charge(out_trade_no, **kwargs))
        return await self.press(page, "pay")


def mounted(sandbox: ASGIApp) -> Starlette:
    """The sandbox where cetgql mounts it in demo mode."""
    return Starlette(routes=[Mount("/sandbox/cmb", app=sandbox)])


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
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
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
