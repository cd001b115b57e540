"""Test helpers for the Alipay plugin: the provider, its sandbox and a stand-in for cetgql.

Everything talks real HTTP through httpx: one transport routes each host name to an in-process
ASGI app (the sandbox at ``sandbox.test``, cetgql's notify endpoint at ``cetgql.test``), so the
provider's gateway calls, the sandbox's notifications and the "browser" all go through the same
wire format and signatures they would over sockets (test_alipay_sockets.py does that too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode

import httpx
from cetgql_alipay import AlipayProvider, protocol
from cetgql_alipay.sandbox import AlipaySandbox
from starlette.requests import Request
from starlette.responses import Response

from cetgql.payments import (
    ChargeRequest,
    ChargeResult,
    InvalidNotification,
    MerchantConfig,
    Notification,
    NotifyRequest,
)

SANDBOX = "http://sandbox.test"
CETGQL = "http://cetgql.test"
NOTIFY_URL = f"{CETGQL}/payments/alipay/notify"
RETURN_URL = f"{CETGQL}/payments/alipay/return"
SUBJECT = "2026年上半年 CET4 笔试报名费"


class HostRouter(httpx.AsyncBaseTransport):
    """Send each request to the ASGI app registered for its host, like DNS would."""

    def __init__(self, apps: dict[str, object]) -> None:
        self._transports = {
            host: httpx.ASGITransport(app=app)  # type: ignore[arg-type]
            for host, app in apps.items()
        }

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._transports.get(request.url.host)
        if transport is None:
            raise httpx.ConnectError(f"no route to {request.url.host}", request=request)
        return await transport.handle_async_request(request)


class FakeClock:
    """The sandbox's notion of now, which tests move forward to expire trades."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Receiver:
    """cetgql's notify endpoint, reduced to what it does with the plugin: build a
    NotifyRequest from the raw request, call ``callback`` and answer with ``reply``.

    ``scripted`` replies (raw bodies) are sent instead, first, to make the sandbox retry."""

    world: World
    requests: list[NotifyRequest] = field(default_factory=list)
    results: list[Notification | InvalidNotification] = field(default_factory=list)
    scripted: list[bytes] = field(default_factory=list)

    async def notify(self, request: Request) -> Response:
        body = await request.body()
        notify_request = NotifyRequest(
            method=request.method,
            headers=dict(request.headers),
            query=dict(request.query_params),
            body=body,
            form=dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True)),
        )
        self.requests.append(notify_request)
        if self.scripted:
            return Response(self.scripted.pop(0), media_type="text/plain")
        try:
            result: Notification | InvalidNotification = await self.world.provider.callback(
                notify_request, self.world.lookup
            )
            accepted = True
        except InvalidNotification as exc:
            result, accepted = exc, False
        self.results.append(result)
        reply = self.world.provider.reply(accepted)
        return Response(reply.body, status_code=reply.status_code, media_type=reply.content_type)

    @property
    def notifications(self) -> list[Notification]:
        return [r for r in self.results if isinstance(r, Notification)]


@dataclass
class World:
    provider: AlipayProvider
    sandbox: AlipaySandbox
    merchant: MerchantConfig
    clock: FakeClock
    transport: HostRouter | None = None
    receiver: Receiver | None = None
    ours: set[str] = field(default_factory=set)  # trade numbers cetgql knows

    async def lookup(self, out_trade_no: str) -> MerchantConfig | None:
        return self.merchant if out_trade_no in self.ours else None

    def request(
        self,
        out_trade_no: str,
        amount_fen: int = 3000,
        *,
        mobile: bool = False,
        expires_in: timedelta = timedelta(hours=24),
    ) -> ChargeRequest:
        self.ours.add(out_trade_no)
        return ChargeRequest(
            out_trade_no=out_trade_no,
            amount_fen=amount_fen,
            subject=SUBJECT,
            created_at=self.clock.now,
            expires_at=self.clock.now + expires_in,
            notify_url=NOTIFY_URL,
            return_url=RETURN_URL,
            mobile=mobile,
        )

    async def charge(self, out_trade_no: str, amount_fen: int = 3000, **kw: object) -> ChargeResult:
        return await self.provider.charge(
            self.merchant,
            self.request(out_trade_no, amount_fen, **kw),  # type: ignore[arg-type]
        )

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport, base_url=SANDBOX)

    async def open_cashier(self, result: ChargeResult) -> httpx.Response:
        """Post the redirect form like the candidate's browser, and follow to the cashier."""
        assert result.redirect is not None
        async with self.browser() as browser:
            return await browser.request(
                result.redirect.method,
                result.redirect.url,
                data=dict(result.redirect.fields),
                follow_redirects=True,
            )

    async def pay(self, out_trade_no: str) -> httpx.Response:
        trade = self.sandbox.trade(out_trade_no)
        assert trade is not None
        async with self.browser() as browser:
            return await browser.post(f"/cashier/{trade.trade_no}/pay")

    async def charge_and_pay(self, out_trade_no: str, amount_fen: int = 3000) -> httpx.Response:
        opened = await self.open_cashier(await self.charge(out_trade_no, amount_fen))
        assert opened.status_code == 200, opened.text
        return await self.pay(out_trade_no)


def resign(fields: dict[str, str], private_key: str) -> dict[str, str]:
    """The fields signed by ``private_key`` the way Alipay signs notifications."""
    unsigned = {k: v for k, v in fields.items() if k not in ("sign", "sign_type")}
    content = protocol.signing_string(unsigned)
    return {**unsigned, "sign": protocol.rsa2_sign(content, private_key), "sign_type": "RSA2"}


def as_request(fields: dict[str, str], *, form: bool = True) -> NotifyRequest:
    """A notification POST as cetgql hands it over (with or without a parsed form)."""
    body = urlencode(fields).encode()
    return NotifyRequest(
        method="POST",
        headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
        query={},
        body=body,
        form=fields if form else {},
    )
