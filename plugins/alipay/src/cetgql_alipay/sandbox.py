"""An offline Alipay: OpenAPI gateway, cashier page, signed notifications and return redirects.

It plays Alipay's side of the same wire protocol the provider speaks, with the committed test
keys: it verifies the merchant's RSA2 request signatures with the public key registered for
the app id, signs its JSON answers (the exact ``*_response`` text) and its notifications with
its own "Alipay" key, and keeps every trade in memory for the life of the app instance.

Routes, relative to where the app is mounted (``/sandbox/alipay`` in cetgql's demo mode):

- ``GET|POST /gateway.do``: ``alipay.trade.page.pay`` / ``wap.pay`` (browser; answers with the
  cashier) and ``alipay.trade.query`` / ``close`` / ``refund`` (server; answers signed JSON).
- ``GET /cashier/{trade_no}``, ``POST .../pay``, ``POST .../cancel``: the cashier a person uses.
- ``GET /``: the trades this sandbox has seen, with their notification attempts.

Where real Alipay's behaviour is observable it is followed: a page.pay trade exists only
once the browser reaches the gateway (query says ACQ.TRADE_NOT_EXIST before), an unpaid trade
closes at its ``time_expire``, a full refund turns TRADE_SUCCESS into TRADE_CLOSED, and a
notification is repeated until the merchant answers the bare text ``success`` (here a few
quick retries instead of Alipay's 25 hours).
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import secrets
import ssl
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from cetgql_alipay import protocol, testkeys
from cetgql_alipay.protocol import ProtocolError

logger = logging.getLogger("cetgql_alipay.sandbox")

# Real Alipay closes an unpaid trade after 15 days when the merchant sets no time_expire.
DEFAULT_TIMEOUT = timedelta(days=15)


@dataclass(frozen=True)
class SandboxApp:
    """A merchant app registered with the sandbox: whose public key verifies its requests."""

    app_id: str
    public_key: str
    seller_id: str


@dataclass(frozen=True)
class NotifyAttempt:
    """One POST of a notification to the merchant, and what the merchant answered."""

    at: datetime
    fields: Mapping[str, str]
    status_code: int | None
    body: str
    accepted: bool


@dataclass
class SandboxTrade:
    app_id: str
    out_trade_no: str
    trade_no: str
    method: str
    total_fen: int
    subject: str
    time_expire: datetime
    notify_url: str
    return_url: str
    created_at: datetime
    status: str = protocol.WAIT_BUYER_PAY
    paid_at: datetime | None = None
    closed_at: datetime | None = None
    refunded_fen: int = 0
    refunded_at: datetime | None = None
    refunds: dict[str, int] = field(default_factory=dict)  # out_request_no -> fen
    notifications: list[NotifyAttempt] = field(default_factory=list)

    @property
    def total_amount(self) -> str:
        return protocol.fen_to_yuan(self.total_fen)


class GatewayError(Exception):
    """An error answer of the gateway: ``code``/``sub_code`` as Alipay spells them."""

    def __init__(self, code: str, msg: str, sub_code: str, sub_msg: str, *, signed: bool = True):
        super().__init__(f"{code} {sub_code} {sub_msg}")
        self.code, self.msg, self.sub_code, self.sub_msg = code, msg, sub_code, sub_msg
        self.signed = signed  # False when the app (hence the key to sign with) is unknown

    def payload(self) -> dict[str, object]:
        return {
            "code": self.code,
            "msg": self.msg,
            "sub_code": self.sub_code,
            "sub_msg": self.sub_msg,
        }


def _missing(name: str) -> GatewayError:
    return GatewayError(
        "40001", "Missing Required Arguments", f"isv.missing-{name}", f"缺少参数 {name}"
    )


def _invalid(name: str, sub_msg: str) -> GatewayError:
    return GatewayError("40002", "Invalid Arguments", f"isv.invalid-{name}", sub_msg)


def _business(sub_code: str, sub_msg: str) -> GatewayError:
    return GatewayError(protocol.BUSINESS_FAILED, "Business Failed", sub_code, sub_msg)


def _utcnow() -> datetime:
    return datetime.now(UTC)


_tls_context: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    """One TLS context for every notification: httpx builds a new one (loading the CA bundle)
    for each client otherwise, about 10 ms of CPU, more than the rest of a notification."""
    global _tls_context
    if _tls_context is None:
        _tls_context = ssl.create_default_context()
    return _tls_context


class AlipaySandbox:
    """The sandbox as an ASGI app; its attributes are there for tests to look inside.

    ``notify_url`` is where notifications go (cetgql's notify endpoint); when empty, each
    trade's own ``notify_url`` from its page.pay request is used, as real Alipay does.
    ``transport`` lets tests deliver notifications in-process; ``clock`` lets them move time;
    ``retry_delays`` are the pauses before the repeated notification attempts.
    """

    def __init__(
        self,
        notify_url: str = "",
        *,
        apps: Sequence[SandboxApp] | None = None,
        alipay_private_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = _utcnow,
        retry_delays: Sequence[float] = (1.0, 3.0, 10.0),
        notify_timeout: float = 5.0,
    ) -> None:
        self.notify_url = notify_url
        default = SandboxApp(
            testkeys.SANDBOX_APP_ID, testkeys.app_public_key(), testkeys.SANDBOX_SELLER_ID
        )
        self.apps: dict[str, SandboxApp] = {app.app_id: app for app in (apps or [default])}
        self.alipay_private_key = alipay_private_key or testkeys.alipay_private_key()
        self.transport = transport
        self.clock = clock
        self.retry_delays = tuple(retry_delays)
        self.notify_timeout = notify_timeout
        self.trades: dict[tuple[str, str], SandboxTrade] = {}
        self._by_trade_no: dict[str, SandboxTrade] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sequence = 0
        self.app = Starlette(
            routes=[
                Route("/", self.index, methods=["GET"]),
                Route("/gateway.do", self.gateway, methods=["GET", "POST"]),
                Route("/cashier/{trade_no}", self.cashier, methods=["GET"]),
                Route("/cashier/{trade_no}/pay", self.pay, methods=["POST"]),
                Route("/cashier/{trade_no}/cancel", self.cancel, methods=["POST"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def trade(
        self, out_trade_no: str, app_id: str = testkeys.SANDBOX_APP_ID
    ) -> SandboxTrade | None:
        return self.trades.get((app_id, out_trade_no))

    async def drain(self) -> None:
        """Wait for notifications still under way (tests, orderly shutdown); call it on the
        event loop that serves the sandbox, which is where those tasks run."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- gateway ---------------------------------------------------------------------------

    async def gateway(self, request: Request) -> Response:
        params = await _request_params(request)
        method = params.get("method", "")
        browser = method in protocol.PRODUCT_CODES
        app: SandboxApp | None = None
        try:
            app = self._authenticate(params)
            biz = _biz_content(params)
            if browser:
                return self._page_pay(request, app, method, params, biz)
            if method == protocol.TRADE_QUERY:
                payload = self._query(app, biz)
            elif method == protocol.TRADE_CLOSE:
                payload = self._close(app, biz)
            elif method == protocol.TRADE_REFUND:
                payload = self._refund(app, biz)
            else:
                raise _invalid("method", f"不存在的方法名 {method}")
        except GatewayError as error:
            logger.info("sandbox gateway refused %s: %s", method or "?", error)
            if browser:
                return _error_page(error)
            return self._answer(method, error.payload(), signed=error.signed and app is not None)
        return self._answer(method, payload, signed=True)

    def _authenticate(self, params: Mapping[str, str]) -> SandboxApp:
        """The common-parameter checks and the merchant's RSA2 signature over every parameter
        but ``sign`` (``sign_type`` included, unlike notifications)."""
        for name in ("app_id", "method", "sign_type", "sign", "timestamp", "version", "charset"):
            if not params.get(name):
                raise _missing({"sign": "signature", "sign_type": "signature-type"}.get(name, name))
        app = self.apps.get(params["app_id"])
        if app is None:
            error = _invalid("app-id", "无效的 AppID 参数")
            error.signed = False
            raise error
        if params["sign_type"] != "RSA2":
            raise _invalid("signature-type", "签名类型只支持 RSA2")
        if params["charset"].lower() != "utf-8":
            raise _invalid("charset", "沙箱只支持 utf-8 编码")
        if params["version"] != "1.0":
            raise _invalid("version", "version 固定为 1.0")
        if params.get("format", "JSON").upper() != "JSON":
            raise _invalid("format", "format 只支持 JSON")
        try:
            protocol.parse_time(params["timestamp"])
        except ProtocolError as exc:
            raise _invalid("timestamp", "timestamp 格式应为 yyyy-MM-dd HH:mm:ss") from exc
        content = protocol.signing_string(params, exclude=("sign",))
        if not protocol.rsa2_verify(content, params["sign"], app.public_key):
            raise _invalid("signature", "验签出错，请确认商户私钥与上传的应用公钥是否匹配")
        return app

    def _answer(self, method: str, payload: Mapping[str, object], *, signed: bool) -> Response:
        key = protocol.response_key(method) if method else "error_response"
        if signed:
            # response_key("error") is "error_response", Alipay's key when no method applies.
            body = protocol.signed_response_body(
                method or "error", payload, self.alipay_private_key
            )
        else:
            body = f'{{"{key}":{protocol.compact_json(dict(payload))}}}'
        return Response(body, media_type="application/json;charset=utf-8")

    # --- page.pay / wap.pay ----------------------------------------------------------------

    def _page_pay(
        self,
        request: Request,
        app: SandboxApp,
        method: str,
        params: Mapping[str, str],
        biz: Mapping[str, object],
    ) -> Response:
        now = self.clock()
        out_trade_no = _biz_str(biz, "out_trade_no")
        if not protocol.OUT_TRADE_NO_RE.fullmatch(out_trade_no):
            raise _business(
                "ACQ.INVALID_PARAMETER", "out_trade_no 只能是 64 位以内的字母、数字和下划线"
            )
        total_fen = _biz_amount(biz, "total_amount")
        subject = _biz_str(biz, "subject")
        if not subject:
            raise _business("ACQ.INVALID_PARAMETER", "缺少 subject")
        expected_product = protocol.PRODUCT_CODES[method]
        if _biz_str(biz, "product_code") != expected_product:
            raise _business(
                "ACQ.INVALID_PARAMETER", f"{method} 的 product_code 应为 {expected_product}"
            )
        raw_expire = _biz_str(biz, "time_expire")
        try:
            time_expire = protocol.parse_time(raw_expire) if raw_expire else now + DEFAULT_TIMEOUT
        except ProtocolError as exc:
            raise _business(
                "ACQ.INVALID_PARAMETER", "time_expire 格式应为 yyyy-MM-dd HH:mm:ss"
            ) from exc

        trade = self.trades.get((app.app_id, out_trade_no))
        if trade is not None:
            if trade.total_fen != total_fen:
                raise _business(
                    "ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改：同一商户订单号的金额不一致"
                )
            self._expire(trade)
            if trade.status in (protocol.TRADE_SUCCESS, protocol.TRADE_FINISHED):
                raise _business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
            if trade.status == protocol.TRADE_CLOSED:
                raise _business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            # The same trade, asked for again: the browser comes back to its cashier.
            trade.notify_url = params.get("notify_url", trade.notify_url)
            trade.return_url = params.get("return_url", trade.return_url)
        else:
            if now >= time_expire:
                raise _business(
                    "ACQ.TRADE_HAS_CLOSE", "已过付款截止时间 (time_expire)，交易无法创建"
                )
            trade = SandboxTrade(
                app_id=app.app_id,
                out_trade_no=out_trade_no,
                trade_no=self._new_trade_no(now),
                method=method,
                total_fen=total_fen,
                subject=subject,
                time_expire=time_expire,
                notify_url=params.get("notify_url", ""),
                return_url=params.get("return_url", ""),
                created_at=now,
            )
            self.trades[(app.app_id, out_trade_no)] = trade
            self._by_trade_no[trade.trade_no] = trade
        return RedirectResponse(_base(request) + f"/cashier/{trade.trade_no}", status_code=303)

    def _new_trade_no(self, now: datetime) -> str:
        # Alipay trade numbers are 28 digits starting with the Beijing date.
        self._sequence += 1
        day = now.astimezone(protocol.SHANGHAI).strftime("%Y%m%d")
        return f"{day}22001{self._sequence:07d}{secrets.randbelow(10**8):08d}"

    def _expire(self, trade: SandboxTrade) -> None:
        """Close an unpaid trade whose time_expire has passed, as Alipay does on its own."""
        if trade.status == protocol.WAIT_BUYER_PAY and self.clock() >= trade.time_expire:
            trade.status = protocol.TRADE_CLOSED
            trade.closed_at = trade.time_expire

    # --- cashier ---------------------------------------------------------------------------

    def _cashier_trade(self, request: Request) -> SandboxTrade | None:
        trade = self._by_trade_no.get(request.path_params["trade_no"])
        if trade is not None:
            self._expire(trade)
        return trade

    async def cashier(self, request: Request) -> Response:
        trade = self._cashier_trade(request)
        if trade is None:
            return _page("交易不存在", "<p>没有这笔交易。</p>", status_code=404)
        return _page("支付宝收银台", _cashier_html(trade, _base(request)), mobile=_mobile(trade))

    async def pay(self, request: Request) -> Response:
        """The buyer pays: record it, notify the merchant, send the browser back signed."""
        trade = self._cashier_trade(request)
        if trade is None:
            return _page("交易不存在", "<p>没有这笔交易。</p>", status_code=404)
        if trade.status == protocol.TRADE_CLOSED:
            reason = (
                "已过付款截止时间，交易已关闭，不能再付款。"
                if trade.closed_at == trade.time_expire and not trade.refunded_fen
                else "交易已关闭，不能再付款。"
            )
            return _page(
                "无法付款", f"<p class=err>{reason}</p>", status_code=403, mobile=_mobile(trade)
            )
        if trade.status != protocol.WAIT_BUYER_PAY:
            return _page("无法付款", "<p class=err>这笔交易已经付过款了。</p>", status_code=409)
        now = self.clock()
        trade.status = protocol.TRADE_SUCCESS
        trade.paid_at = now
        await self._notify(trade, self._notification(trade), retry_later=True)
        if not trade.return_url:
            return _page(
                "付款成功", "<p>付款成功。请回到商户页面查看订单。</p>", mobile=_mobile(trade)
            )
        return RedirectResponse(_with_query(trade.return_url, self._return_params(trade)), 303)

    async def cancel(self, request: Request) -> Response:
        """The buyer leaves the cashier unpaid; like Alipay, the trade stays payable until its
        time_expire, and the browser goes back to the merchant without payment parameters."""
        trade = self._cashier_trade(request)
        if trade is None:
            return _page("交易不存在", "<p>没有这笔交易。</p>", status_code=404)
        if trade.return_url:
            return RedirectResponse(trade.return_url, status_code=303)
        return _page("已取消", "<p>已取消付款。订单在付款截止时间前仍可支付。</p>")

    async def index(self, request: Request) -> Response:
        rows = "".join(
            _trade_row(trade, _base(request)) for trade in reversed(self.trades.values())
        )
        body = (
            "<p>本沙箱中的交易（仅保存在内存中）。</p>"
            "<table><tr><th>商户订单号</th><th>支付宝交易号</th><th>金额</th><th>状态</th>"
            f"<th>通知</th></tr>{rows}</table>"
        )
        return _page("支付宝沙箱", body)

    # --- server APIs -----------------------------------------------------------------------

    def _find(self, app: SandboxApp, biz: Mapping[str, object]) -> SandboxTrade:
        trade_no, out_trade_no = _biz_str(biz, "trade_no"), _biz_str(biz, "out_trade_no")
        if not trade_no and not out_trade_no:
            raise _business("ACQ.INVALID_PARAMETER", "out_trade_no 和 trade_no 不能同时为空")
        trade = (
            self._by_trade_no.get(trade_no)
            if trade_no
            else self.trades.get((app.app_id, out_trade_no))
        )
        if trade is None or trade.app_id != app.app_id:
            raise _business(protocol.TRADE_NOT_EXIST, "交易不存在")
        self._expire(trade)
        return trade

    def _query(self, app: SandboxApp, biz: Mapping[str, object]) -> dict[str, object]:
        try:
            trade = self._find(app, biz)
        except GatewayError as error:
            if error.sub_code != protocol.TRADE_NOT_EXIST:
                raise
            # Alipay's not-found answer carries zero amounts beside the error.
            return {
                **error.payload(),
                "buyer_pay_amount": "0.00",
                "invoice_amount": "0.00",
                "out_trade_no": _biz_str(biz, "out_trade_no"),
                "point_amount": "0.00",
                "receipt_amount": "0.00",
            }
        paid = trade.paid_at is not None
        answer: dict[str, object] = {
            "code": protocol.SUCCESS_CODE,
            "msg": "Success",
            "buyer_pay_amount": trade.total_amount if paid else "0.00",
            "invoice_amount": trade.total_amount if paid else "0.00",
            "out_trade_no": trade.out_trade_no,
            "point_amount": "0.00",
            "receipt_amount": trade.total_amount if paid else "0.00",
            "total_amount": trade.total_amount,
            "trade_no": trade.trade_no,
            "trade_status": trade.status,
        }
        if trade.paid_at is not None:
            answer["buyer_logon_id"] = testkeys.SANDBOX_BUYER_LOGON_ID
            answer["buyer_user_id"] = testkeys.SANDBOX_BUYER_ID
            answer["send_pay_date"] = protocol.format_time(trade.paid_at)
            answer["fund_bill_list"] = [
                {"amount": trade.total_amount, "fund_channel": "ALIPAYACCOUNT"}
            ]
        return answer

    def _close(self, app: SandboxApp, biz: Mapping[str, object]) -> dict[str, object]:
        trade = self._find(app, biz)
        if trade.status != protocol.WAIT_BUYER_PAY:
            raise _business(protocol.TRADE_STATUS_ERROR, "交易状态不合法")
        trade.status = protocol.TRADE_CLOSED
        trade.closed_at = self.clock()
        return {
            "code": protocol.SUCCESS_CODE,
            "msg": "Success",
            "out_trade_no": trade.out_trade_no,
            "trade_no": trade.trade_no,
        }

    def _refund(self, app: SandboxApp, biz: Mapping[str, object]) -> dict[str, object]:
        amount = _biz_amount(biz, "refund_amount")
        trade = self._find(app, biz)
        # Without out_request_no Alipay takes the trade number: one (full) refund only.
        request_no = _biz_str(biz, "out_request_no") or trade.out_trade_no
        fund_change = "Y"
        if request_no in trade.refunds:
            if trade.refunds[request_no] != amount:
                raise _business("ACQ.DISCORDANT_REPEAT_REQUEST", "同一退款请求号的退款金额不一致")
            fund_change = "N"  # the same refund asked for again: nothing moves twice
        elif trade.status == protocol.TRADE_CLOSED:
            raise _business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
        elif trade.status != protocol.TRADE_SUCCESS:
            raise _business(protocol.TRADE_STATUS_ERROR, "交易状态不合法")
        elif amount > trade.total_fen - trade.refunded_fen:
            raise _business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
        else:
            now = self.clock()
            trade.refunds[request_no] = amount
            trade.refunded_fen += amount
            trade.refunded_at = now
            if trade.refunded_fen == trade.total_fen:
                trade.status = protocol.TRADE_CLOSED
                trade.closed_at = now
            self._schedule(self._notify(trade, self._notification(trade, request_no)))
        return {
            "code": protocol.SUCCESS_CODE,
            "msg": "Success",
            "buyer_logon_id": testkeys.SANDBOX_BUYER_LOGON_ID,
            "buyer_user_id": testkeys.SANDBOX_BUYER_ID,
            "fund_change": fund_change,
            "gmt_refund_pay": protocol.format_time(trade.refunded_at or self.clock()),
            "out_trade_no": trade.out_trade_no,
            "refund_fee": protocol.fen_to_yuan(trade.refunded_fen)
            if trade.refunded_fen
            else "0.00",
            "send_back_fee": protocol.fen_to_yuan(amount),
            "trade_no": trade.trade_no,
        }

    # --- notifications ---------------------------------------------------------------------

    def _notification(self, trade: SandboxTrade, refund_request_no: str = "") -> dict[str, str]:
        """Alipay's trade_status_sync form, signed over every field but sign and sign_type."""
        app = self.apps[trade.app_id]
        fields = {
            "notify_time": protocol.format_time(self.clock()),
            "notify_type": protocol.NOTIFY_TYPE,
            "notify_id": secrets.token_hex(16),
            "charset": "utf-8",
            "version": "1.0",
            "app_id": trade.app_id,
            "auth_app_id": trade.app_id,
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_id": testkeys.SANDBOX_BUYER_ID,
            "buyer_logon_id": testkeys.SANDBOX_BUYER_LOGON_ID,
            "seller_id": app.seller_id,
            "trade_status": trade.status,
            "total_amount": trade.total_amount,
            "receipt_amount": trade.total_amount,
            "invoice_amount": trade.total_amount,
            "buyer_pay_amount": trade.total_amount,
            "point_amount": "0.00",
            "subject": trade.subject,
            "gmt_create": protocol.format_time(trade.created_at),
            "gmt_payment": protocol.format_time(trade.paid_at) if trade.paid_at else "",
            "fund_bill_list": protocol.compact_json(
                [{"amount": trade.total_amount, "fundChannel": "ALIPAYACCOUNT"}]
            ),
        }
        if refund_request_no:
            fields["out_biz_no"] = refund_request_no
            fields["refund_fee"] = protocol.fen_to_yuan(trade.refunded_fen)
            fields["gmt_refund"] = protocol.format_time(trade.refunded_at or self.clock())
            if trade.closed_at is not None:
                fields["gmt_close"] = protocol.format_time(trade.closed_at)
        fields = {k: v for k, v in fields.items() if v}
        content = protocol.signing_string(fields, exclude=("sign", "sign_type"))
        fields["sign"] = protocol.rsa2_sign(content, self.alipay_private_key)
        fields["sign_type"] = "RSA2"
        return fields

    def _return_params(self, trade: SandboxTrade) -> dict[str, str]:
        """The signed GET parameters Alipay appends to return_url after a payment."""
        params = {
            "charset": "utf-8",
            "out_trade_no": trade.out_trade_no,
            "method": f"{trade.method}.return",
            "total_amount": trade.total_amount,
            "trade_no": trade.trade_no,
            "auth_app_id": trade.app_id,
            "version": "1.0",
            "app_id": trade.app_id,
            "seller_id": self.apps[trade.app_id].seller_id,
            "timestamp": protocol.format_time(self.clock()),
        }
        content = protocol.signing_string(params, exclude=("sign", "sign_type"))
        params["sign"] = protocol.rsa2_sign(content, self.alipay_private_key)
        params["sign_type"] = "RSA2"
        return params

    async def _notify(
        self, trade: SandboxTrade, fields: Mapping[str, str], *, retry_later: bool = False
    ) -> None:
        """Deliver once; when the merchant does not answer ``success``, retry after each of
        ``retry_delays``: in the background when ``retry_later`` (so the buyer's browser is
        kept waiting for the first attempt only), else before returning."""
        url = self.notify_url or trade.notify_url
        if not url:
            return
        if await self._attempt(trade, url, fields):
            return
        retry = self._retry(trade, url, fields)
        if retry_later:
            self._schedule(retry)
        else:
            await retry

    async def _retry(self, trade: SandboxTrade, url: str, fields: Mapping[str, str]) -> None:
        for delay in self.retry_delays:
            await asyncio.sleep(delay)
            if await self._attempt(trade, url, fields):
                return
        logger.warning("sandbox gave up notifying %s for %s", url, trade.out_trade_no)

    async def _attempt(self, trade: SandboxTrade, url: str, fields: Mapping[str, str]) -> bool:
        body = urlencode(fields).encode("utf-8")
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        try:
            async with httpx.AsyncClient(
                transport=self.transport, timeout=self.notify_timeout, verify=_tls()
            ) as client:
                response = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            trade.notifications.append(
                NotifyAttempt(self.clock(), dict(fields), None, repr(exc), False)
            )
            logger.info("sandbox notification to %s failed: %r", url, exc)
            return False
        # Alipay accepts exactly the seven characters "success", nothing else.
        accepted = response.content == protocol.NOTIFY_ACCEPTED.encode("ascii")
        trade.notifications.append(
            NotifyAttempt(
                self.clock(), dict(fields), response.status_code, response.text[:200], accepted
            )
        )
        return accepted

    def _schedule(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


# --- request parsing ---------------------------------------------------------------------


async def _request_params(request: Request) -> dict[str, str]:
    """Query string and url-encoded form together, as Alipay's gateway reads them (its SDKs
    send everything in the query, or the common parameters there and biz_content in the
    form)."""
    params = dict(request.query_params)
    if request.method == "POST":
        body = await request.body()
        # Bytes that are not UTF-8 become U+FFFD, so such a request fails its signature check.
        params.update(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    return params


def _biz_content(params: Mapping[str, str]) -> dict[str, object]:
    raw = params.get("biz_content", "")
    if not raw:
        raise _business("ACQ.INVALID_PARAMETER", "缺少 biz_content")
    try:
        biz = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _business("ACQ.INVALID_PARAMETER", "biz_content 不是合法的 JSON") from exc
    if not isinstance(biz, dict):
        raise _business("ACQ.INVALID_PARAMETER", "biz_content 应为 JSON 对象")
    return biz


def _biz_str(biz: Mapping[str, object], name: str) -> str:
    value = biz.get(name, "")
    return value if isinstance(value, str) else str(value)


def _biz_amount(biz: Mapping[str, object], name: str) -> int:
    try:
        fen = protocol.yuan_to_fen(_biz_str(biz, name))
    except ProtocolError as exc:
        raise _business("ACQ.INVALID_PARAMETER", f"{name} 格式错误") from exc
    if not 0 < fen <= protocol.MAX_AMOUNT_FEN:
        raise _business("ACQ.INVALID_PARAMETER", f"{name} 超出范围 0.01 至 100000000.00")
    return fen


def _base(request: Request) -> str:
    """Where this app is mounted (``/sandbox/alipay`` in the demo; empty when standalone)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _with_query(url: str, params: Mapping[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _mobile(trade: SandboxTrade) -> bool:
    return trade.method == protocol.WAP_PAY


# --- pages ---------------------------------------------------------------------------------

_STATUS_TEXT = {
    protocol.WAIT_BUYER_PAY: "等待付款",
    protocol.TRADE_SUCCESS: "已付款",
    protocol.TRADE_FINISHED: "交易结束",
    protocol.TRADE_CLOSED: "已关闭",
}

_CSS = """
body{margin:0;background:#f5f6f7;color:#222;
  font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif}
header{background:#1677ff;color:#fff;padding:12px 20px;font-size:18px}
.tag{background:#ffb000;color:#222;border-radius:4px;padding:1px 6px;font-size:12px;margin-left:8px}
main{max-width:560px;margin:24px auto;background:#fff;border-radius:8px;padding:24px}
main.mobile{max-width:none;margin:0;border-radius:0}
h1{font-size:18px;margin:0 0 8px}
.amount{font-size:32px;color:#ff5000;margin:8px 0 16px}
dl{display:grid;grid-template-columns:auto 1fr;gap:6px 12px;font-size:14px}
dt{color:#888}dd{margin:0;word-break:break-all}
button{width:100%;padding:12px;font-size:16px;border:0;border-radius:6px;margin-top:12px;cursor:pointer}
.pay{background:#1677ff;color:#fff}.cancel{background:#eee;color:#333}
.note{color:#888;font-size:12px;margin-top:16px}.err{color:#c00}
table{border-collapse:collapse;width:100%;font-size:13px}
td,th{border-bottom:1px solid #eee;padding:6px;text-align:left}
"""


def _page(title: str, body: str, *, status_code: int = 200, mobile: bool = False) -> HTMLResponse:
    cls = ' class="mobile"' if mobile else ""
    document = (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f'<header>支付宝<span class="tag">沙箱环境</span></header>'
        f"<main{cls}><h1>{html.escape(title)}</h1>{body}"
        '<p class="note">这是离线的支付宝沙箱，不会发生真实扣款。</p></main></body></html>'
    )
    return HTMLResponse(document, status_code=status_code)


def _error_page(error: GatewayError) -> HTMLResponse:
    body = (
        f'<p class="err">{html.escape(error.sub_msg)}</p>'
        f"<dl><dt>错误码</dt><dd>{html.escape(error.code)} {html.escape(error.msg)}</dd>"
        f"<dt>子错误码</dt><dd>{html.escape(error.sub_code)}</dd></dl>"
    )
    return _page("支付请求有误", body, status_code=400)


def _cashier_html(trade: SandboxTrade, base: str) -> str:
    e = html.escape
    kind = "手机网站支付" if _mobile(trade) else "电脑网站支付"
    details = (
        f"<dl><dt>商户订单号</dt><dd>{e(trade.out_trade_no)}</dd>"
        f"<dt>支付宝交易号</dt><dd>{e(trade.trade_no)}</dd>"
        f"<dt>收款应用</dt><dd>{e(trade.app_id)}</dd>"
        f"<dt>产品</dt><dd>{kind}</dd>"
        f"<dt>付款截止</dt><dd>{e(protocol.format_time(trade.time_expire))}（北京时间）</dd>"
        f"<dt>状态</dt><dd>{e(_STATUS_TEXT.get(trade.status, trade.status))}</dd></dl>"
    )
    head = f'<p>{e(trade.subject)}</p><p class="amount">¥ {e(trade.total_amount)}</p>'
    action = f"{e(base)}/cashier/{e(trade.trade_no)}"
    if trade.status == protocol.WAIT_BUYER_PAY:
        forms = (
            f'<form method="post" action="{action}/pay">'
            f"<p>付款账户：{e(testkeys.SANDBOX_BUYER_LOGON_ID)}（沙箱买家）</p>"
            '<button class="pay" type="submit">确认付款</button></form>'
            f'<form method="post" action="{action}/cancel">'
            '<button class="cancel" type="submit">取消，返回商户</button></form>'
        )
    elif trade.status == protocol.TRADE_CLOSED:
        forms = (
            '<p class="err">交易已关闭（已过付款截止时间、被商户关闭或已全额退款），不能付款。</p>'
        )
    else:
        forms = "<p>这笔交易已经付过款了。</p>"
    return head + details + forms


def _trade_row(trade: SandboxTrade, base: str) -> str:
    e = html.escape
    last = trade.notifications[-1] if trade.notifications else None
    if last is None:
        notified = "—"
    else:
        answer = "success" if last.accepted else e(last.body[:40])
        notified = f"{len(trade.notifications)} 次，最后：{answer}"
    return (
        f'<tr><td><a href="{e(base)}/cashier/{e(trade.trade_no)}">{e(trade.out_trade_no)}</a></td>'
        f"<td>{e(trade.trade_no)}</td><td>¥ {e(trade.total_amount)}</td>"
        f"<td>{e(_STATUS_TEXT.get(trade.status, trade.status))}</td><td>{notified}</td></tr>"
    )
