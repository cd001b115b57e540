"""Test helpers: a live HTTP server on 127.0.0.1 carrying the sandbox bank and a stand-in for
cetgql (in a module of its own, named so it cannot clash with another suite's helpers).

The layout mirrors demo mode: the sandbox is mounted at ``/sandbox/boc`` and the stand-in
cetgql answers ``/payments/boc/notify`` by calling the provider's ``callback`` and ``reply``,
exactly as the host does, so provider and sandbox only ever talk through real HTTP.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import uvicorn
from cetgql_boc import BocProvider
from cetgql_boc.sandbox import BocSandbox
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cetgql.payments import (
    ChargeRequest,
    InvalidNotification,
    MerchantConfig,
    Notification,
    NotifyRequest,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Switch:
    """An ASGI app that forwards to whichever app the current test installed."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "no app installed for this test"
        await self.app(scope, receive, send)


class LiveServer:
    """uvicorn in a thread on 127.0.0.1; one for the session, each test installs its app."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.switch = Switch()
        config = uvicorn.Config(
            self.switch, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Clock:
    """The sandbox's idea of now, which a test can move forward."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Cetgql:
    """A stand-in for the host: what its notify endpoint received, decided and answered."""

    provider: BocProvider
    merchants: dict[str, MerchantConfig] = field(default_factory=dict)  # by out_trade_no
    received: list[NotifyRequest] = field(default_factory=list)
    accepted: list[Notification] = field(default_factory=list)
    refused: list[InvalidNotification] = field(default_factory=list)
    # Scripted answers before the real one: e.g. [False, False] refuses twice, then decides.
    script: list[bool] = field(default_factory=list)

    async def lookup(self, out_trade_no: str) -> MerchantConfig | None:
        return self.merchants.get(out_trade_no)

    async def notify(self, request: Request) -> Response:
        body = await request.body()
        form = await request.form()
        notify_request = NotifyRequest(
            method=request.method,
            headers=dict(request.headers),
            query=dict(request.query_params),
            body=body,
            form={key: str(value) for key, value in form.items()},
        )
        self.received.append(notify_request)
        if self.script:
            reply = self.provider.reply(self.script.pop(0))
        else:
            try:
                self.accepted.append(await self.provider.callback(notify_request, self.lookup))
                reply = self.provider.reply(True)
            except InvalidNotification as exc:
                self.refused.append(exc)
                reply = self.provider.reply(False)
        return Response(reply.body, status_code=reply.status_code, media_type=reply.content_type)

    async def returned(self, request: Request) -> Response:
        return PlainTextResponse("back at cetgql")


@dataclass
class World:
    """One live server with the sandbox bank and the stand-in cetgql, and the test merchant."""

    base: str
    provider: BocProvider
    sandbox: BocSandbox
    cetgql: Cetgql
    merchant: MerchantConfig
    clock: Clock

    @property
    def sandbox_url(self) -> str:
        return f"{self.base}/sandbox/boc"

    @property
    def notify_url(self) -> str:
        return f"{self.base}/payments/boc/notify"

    @property
    def return_url(self) -> str:
        return f"{self.base}/payments/boc/return?order=demo"

    def charge_request(self, out_trade_no: str, amount_fen: int = 3000, **changes: object):
        """A ChargeRequest like the host makes, registered with the stand-in's lookup."""
        self.cetgql.merchants[out_trade_no] = self.merchant
        now = datetime.now(UTC)
        values: dict[str, object] = {
            "out_trade_no": out_trade_no,
            "amount_fen": amount_fen,
            "subject": "2026年上半年 CET4 笔试报名费",
            "created_at": now,
            "expires_at": now + timedelta(hours=24),
            "notify_url": self.notify_url,
            "return_url": self.return_url,
            **changes,
        }
        return ChargeRequest(**values)  # type: ignore[arg-type]
