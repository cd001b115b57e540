"""A sandbox Bank of China B2C gateway: the bank's side of the protocol, with TEST-ONLY keys.

It is what demo mode mounts at ``/sandbox/boc``, and what the plugin's tests pay against:

- ``POST RecvOrder.do`` receives the order form the browser posts (checks the merchant's
  signature and the deadline) and shows a cashier page in Chinese where a person pays or
  cancels;
- paying (or cancelling) records the trade, posts the bank-signed notification to cetgql,
  retrying quickly until it answers ``success``, then sends the browser back;
- ``CommonQueryOrder.do``, ``B2CRefund.do`` and ``B2CCancelOrder.do`` answer in signed XML;
- ``GET /`` lists the trades, with a button that sends a notification again.

State is kept in memory per instance: a restart forgets every trade, as a sandbox should.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from urllib.parse import parse_qsl
from xml.etree import ElementTree as ET

import httpx
from cryptography import x509
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from cetgql_boc import cms, protocol, sandbox_keys
from cetgql_boc.protocol import OrderStatus

_XML = "text/xml; charset=utf-8"

CARD_TYPES = {"01": "借记卡", "04": "信用卡"}  # the sandbox's cardTyp values

STATUS_LABELS = {
    OrderStatus.UNPROCESSED: "待支付",
    OrderStatus.PAID: "已支付",
    OrderStatus.CANCELLED: "已撤销",
    OrderStatus.REFUNDED: "已退款",
    OrderStatus.UNKNOWN: "状态未知",
    OrderStatus.FAILED: "支付失败",
}


@dataclass
class NotifyAttempt:
    """One post of a notification to the merchant and what came back."""

    at: datetime
    status_code: int | None
    body: str
    accepted: bool


@dataclass
class RefundRecord:
    merchant_no: str
    order_no: str
    m_refund_seq: str
    amount_fen: int
    refund_seq: str
    deal_status: str
    rtn_cd: str = ""


@dataclass
class Trade:
    """An order the sandbox bank knows, keyed by (merchantNo, orderNo)."""

    merchant_no: str
    order_no: str
    amount_fen: int | None  # None for an order cancelled before the bank ever saw it
    order_time: str = ""
    order_note: str = ""
    order_url: str = ""
    return_url: str = ""
    timeout_at: datetime | None = None
    order_seq: str = ""
    status: OrderStatus = OrderStatus.UNPROCESSED
    card_typ: str = ""
    pay_time: str = ""
    refunded_fen: int = 0
    notifications: list[NotifyAttempt] = field(default_factory=list)

    def pay_amount(self) -> str:
        return "" if self.amount_fen is None else protocol.yuan(self.amount_fen)

    def signed_fields(self) -> dict[str, str]:
        """The fields a notification and a queried <orderTrans> carry and sign."""
        return {
            "merchantNo": self.merchant_no,
            "orderNo": self.order_no,
            "orderSeq": self.order_seq,
            "cardTyp": self.card_typ,
            "payTime": self.pay_time,
            "orderStatus": str(self.status),
            "payAmount": self.pay_amount(),
        }


class SandboxError(Exception):
    """A request the sandbox bank refuses; shown on a page or answered with hdlSts B."""

    def __init__(self, rtn_cd: str, message: str) -> None:
        super().__init__(message)
        self.rtn_cd = rtn_cd
        self.message = message


class BocSandbox:
    """The sandbox bank as an ASGI app; its ``trades`` are there to be looked at in tests."""

    def __init__(
        self,
        notify_url: str = "",
        *,
        merchants: Mapping[str, x509.Certificate] | None = None,
        bank_certificate: x509.Certificate | None = None,
        bank_key: cms.SigningKey | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        retry_delays: Sequence[float] = (0.2, 0.5),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``notify_url`` is cetgql's notify endpoint as the host can reach it; when empty the
        notification goes to the order's ``orderUrl``, as the real bank does. ``merchants``
        maps merchantNo to the certificate that verifies its requests (default: the test
        merchant). ``now`` and ``retry_delays`` exist so tests need not wait."""
        self.notify_url = notify_url
        self.merchants = dict(
            merchants
            if merchants is not None
            else {
                sandbox_keys.SANDBOX_MERCHANT_NO: cms.load_certificate(
                    sandbox_keys.pem(sandbox_keys.MERCHANT_CERT)
                )
            }
        )
        self.bank_certificate = bank_certificate or cms.load_certificate(
            sandbox_keys.pem(sandbox_keys.BANK_CERT)
        )
        self.bank_key = bank_key or cms.load_private_key(sandbox_keys.pem(sandbox_keys.BANK_KEY))
        self.now = now
        self.retry_delays = tuple(retry_delays)
        self.transport = transport
        self.trades: dict[tuple[str, str], Trade] = {}
        self.refunds: dict[tuple[str, str], RefundRecord] = {}
        self._serial = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/", self.index, methods=["GET"]),
                Route(f"/{protocol.PAY_PATH}", self.receive_order, methods=["POST"]),
                Route("/cashier", self.cashier, methods=["POST"]),
                Route("/renotify", self.renotify, methods=["POST"]),
                Route(f"/{protocol.QUERY_PATH}", self.query, methods=["POST"]),
                Route(f"/{protocol.REFUND_PATH}", self.refund, methods=["POST"]),
                Route(f"/{protocol.CANCEL_PATH}", self.cancel, methods=["POST"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    # --- helpers ---------------------------------------------------------------------------

    def _sign(self, data: bytes) -> str:
        return cms.sign(data, self.bank_certificate, self.bank_key)

    def _next_serial(self, prefix: str) -> str:
        """A bank serial number, unique per sandbox instance."""
        return f"{prefix}{self.now().astimezone(protocol.SHANGHAI):%Y%m%d}{next(self._serial):08d}"

    def _verify(self, merchant_no: str, sign_data: str, data: bytes) -> None:
        certificate = self.merchants.get(merchant_no)
        if certificate is None:
            raise SandboxError(protocol.RTN_UNKNOWN_MERCHANT, "商户不存在")
        try:
            cms.verify(sign_data, data, certificate)
        except cms.SignatureError as exc:
            raise SandboxError(protocol.RTN_BAD_SIGNATURE, f"签名验证失败：{exc}") from exc

    def _expired(self, trade: Trade) -> bool:
        return trade.timeout_at is not None and self.now() > trade.timeout_at

    def _settle_expired(self, trade: Trade) -> None:
        """The bank cancels an unpaid order at its orderTimeoutDate."""
        if trade.status is OrderStatus.UNPROCESSED and self._expired(trade):
            trade.status = OrderStatus.CANCELLED

    @staticmethod
    async def _form(request: Request) -> dict[str, str]:
        """URL-encoded fields in UTF-8; a field sent twice is refused, never guessed at."""
        body = await request.body()
        try:
            pairs = parse_qsl(
                body.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="strict"
            )
        except ValueError as exc:
            raise SandboxError(protocol.RTN_BAD_REQUEST, f"表单无法解析：{exc}") from exc
        form: dict[str, str] = {}
        for name, value in pairs:
            if name in form:
                raise SandboxError(protocol.RTN_BAD_REQUEST, f"字段 {name} 重复")
            form[name] = value
        return form

    @staticmethod
    def _require(form: Mapping[str, str], *names: str) -> None:
        missing = [name for name in names if not form.get(name)]
        if missing:
            raise SandboxError(protocol.RTN_BAD_REQUEST, f"缺少字段：{', '.join(missing)}")

    # --- cashier ---------------------------------------------------------------------------

    async def receive_order(self, request: Request) -> Response:
        """The order form from the merchant's page, posted by the browser."""
        try:
            form = await self._form(request)
            trade = self._accept_order(form)
        except SandboxError as exc:
            return _page("无法受理订单", f"<p class=err>{_e(exc.message)}</p>", status=400)
        if trade.status is OrderStatus.PAID:
            return _page("订单已支付", _trade_table(trade) + _back(trade, self))
        if trade.status is not OrderStatus.UNPROCESSED:
            return self._not_payable(trade)
        return _page("中国银行 网上支付（沙箱）", self._cashier_html(request, trade))

    def _accept_order(self, form: Mapping[str, str]) -> Trade:
        self._require(
            form,
            "merchantNo",
            "payType",
            "orderNo",
            "curCode",
            "orderAmount",
            "orderTime",
            "orderUrl",
            "signData",
        )
        merchant_no, order_no = form["merchantNo"], form["orderNo"]
        signed = protocol.pay_signed(
            order_no, form["orderTime"], form["curCode"], form["orderAmount"], merchant_no
        )
        self._verify(merchant_no, form["signData"], signed)
        if form["payType"] != protocol.PAY_TYPE_B2C or form["curCode"] != protocol.CUR_CODE_CNY:
            raise SandboxError(protocol.RTN_BAD_REQUEST, "仅支持 payType=1、curCode=001")
        try:
            amount = protocol.fen(form["orderAmount"])
            protocol.parse_bank_time(form["orderTime"])
            timeout_at = (
                protocol.parse_bank_time(form["orderTimeoutDate"])
                if form.get("orderTimeoutDate")
                else None
            )
        except ValueError as exc:
            raise SandboxError(protocol.RTN_BAD_REQUEST, f"字段格式错误：{exc}") from exc
        if amount <= 0:
            raise SandboxError(protocol.RTN_BAD_REQUEST, "订单金额必须大于零")
        return_url = form.get(protocol.RETURN_URL_FIELD, "")
        if return_url and not return_url.startswith(("http://", "https://")):
            raise SandboxError(protocol.RTN_BAD_REQUEST, "returnUrl 必须是 http(s) 地址")

        key = (merchant_no, order_no)
        trade = self.trades.get(key)
        if trade is not None:
            # The same order posted again is the same trade; another amount or time is a clash.
            if trade.amount_fen is not None and (
                trade.amount_fen != amount or trade.order_time != form["orderTime"]
            ):
                raise SandboxError(protocol.RTN_BAD_REQUEST, "订单号重复，且金额或时间不一致")
            self._settle_expired(trade)
            return trade
        trade = Trade(
            merchant_no=merchant_no,
            order_no=order_no,
            amount_fen=amount,
            order_time=form["orderTime"],
            order_note=form.get("orderNote", ""),
            order_url=form["orderUrl"],
            return_url=return_url,
            timeout_at=timeout_at,
            order_seq=self._next_serial("S"),
        )
        if self._expired(trade):
            raise SandboxError(protocol.RTN_BAD_REQUEST, "订单已超过支付截止时间")
        self.trades[key] = trade
        return trade

    def _not_payable(self, trade: Trade) -> Response:
        """The page for an order that can no longer be paid, and why."""
        label = STATUS_LABELS[trade.status]
        if self._expired(trade) and trade.status is OrderStatus.CANCELLED:
            note = "订单已超过支付截止时间。"
        else:
            note = f"订单{label}，不能再支付。"
        return _page(
            f"订单{label}",
            f"<p class=err>{note}</p>" + _trade_table(trade) + _back(trade, self),
            status=409,
        )

    def _cashier_html(self, request: Request, trade: Trade) -> str:
        root = request.scope.get("root_path", "")
        options = "".join(
            f'<option value="{code}">{label}（测试卡）</option>'
            for code, label in CARD_TYPES.items()
        )
        return (
            _trade_table(trade)
            + f"""
<form method="post" action="{_e(root)}/cashier">
  <input type="hidden" name="merchantNo" value="{_e(trade.merchant_no)}">
  <input type="hidden" name="orderNo" value="{_e(trade.order_no)}">
  <p><label>支付卡种 <select name="cardTyp">{options}</select></label></p>
  <p>这是测试环境：不会扣划任何真实资金。</p>
  <p><button type="submit" name="action" value="pay">确认支付 ¥{_e(trade.pay_amount())}</button>
     <button type="submit" name="action" value="cancel" class=secondary>取消支付</button></p>
</form>"""
        )

    async def cashier(self, request: Request) -> Response:
        """The person's choice on the cashier page: pay or cancel."""
        try:
            form = await self._form(request)
            self._require(form, "merchantNo", "orderNo", "action")
        except SandboxError as exc:
            return _page("请求有误", f"<p class=err>{_e(exc.message)}</p>", status=400)
        trade = self.trades.get((form["merchantNo"], form["orderNo"]))
        if trade is None:
            return _page("订单不存在", "<p class=err>银行没有这笔订单。</p>", status=404)
        self._settle_expired(trade)
        if trade.status is not OrderStatus.UNPROCESSED:
            return self._not_payable(trade)
        if form["action"] == "pay":
            trade.status = OrderStatus.PAID
            card_typ = form.get("cardTyp", "")
            trade.card_typ = card_typ if card_typ in CARD_TYPES else "01"
            trade.pay_time = protocol.bank_time(self.now())
        elif form["action"] == "cancel":
            trade.status = OrderStatus.CANCELLED
        else:
            return _page("请求有误", "<p class=err>未知操作。</p>", status=400)
        await self.notify(trade)
        return self._return_browser(trade)

    def _return_browser(self, trade: Trade) -> Response:
        """Back to the merchant: to the return URL cetgql passed, else (as the real bank
        does) a form the person posts to orderUrl carrying the signed result."""
        if trade.return_url:
            return RedirectResponse(trade.return_url, status_code=303)
        label = STATUS_LABELS[trade.status]
        return _page(f"订单{label}", _trade_table(trade) + _back(trade, self))

    # --- notification ----------------------------------------------------------------------

    def notification(self, trade: Trade) -> dict[str, str]:
        """The signed notification of a trade's current state."""
        fields = trade.signed_fields()
        signature = self._sign(protocol.notify_signed(fields))
        return {
            **fields,
            "acctNo": "6216********0001" if trade.status is OrderStatus.PAID else "",
            "holderName": "测试用户" if trade.status is OrderStatus.PAID else "",
            "signData": signature,
        }

    async def notify(self, trade: Trade) -> bool:
        """Post the notification, retrying quickly until the merchant answers ``success``."""
        target = self.notify_url or trade.order_url
        fields = self.notification(trade)
        for delay in (0.0, *self.retry_delays):
            if delay:
                await asyncio.sleep(delay)
            try:
                async with httpx.AsyncClient(
                    timeout=5.0, transport=self.transport, verify=_tls_context()
                ) as client:
                    response = await client.post(target, data=fields)
                body = response.text[:200]
                accepted = response.status_code == 200 and body.strip() == protocol.NOTIFY_SUCCESS
                attempt = NotifyAttempt(self.now(), response.status_code, body, accepted)
            except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
                attempt = NotifyAttempt(self.now(), None, f"{type(exc).__name__}: {exc}", False)
            trade.notifications.append(attempt)
            if attempt.accepted:
                return True
        return False

    async def renotify(self, request: Request) -> Response:
        """Send a trade's notification again (a button of the index page)."""
        try:
            form = await self._form(request)
            self._require(form, "merchantNo", "orderNo")
        except SandboxError as exc:
            return _page("请求有误", f"<p class=err>{_e(exc.message)}</p>", status=400)
        trade = self.trades.get((form["merchantNo"], form["orderNo"]))
        if trade is None or trade.amount_fen is None:
            return _page("订单不存在", "<p class=err>银行没有这笔订单。</p>", status=404)
        await self.notify(trade)
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}/", status_code=303)

    async def index(self, request: Request) -> Response:
        """Every trade of this sandbox, newest first."""
        root = _e(request.scope.get("root_path", ""))
        rows = []
        for trade in reversed(list(self.trades.values())):
            self._settle_expired(trade)
            last = trade.notifications[-1] if trade.notifications else None
            notified = "—" if last is None else ("已确认" if last.accepted else "未确认")
            button = (
                f'<form method="post" action="{root}/renotify">'
                f'<input type="hidden" name="merchantNo" value="{_e(trade.merchant_no)}">'
                f'<input type="hidden" name="orderNo" value="{_e(trade.order_no)}">'
                f"<button>重发通知</button></form>"
                if trade.amount_fen is not None
                else ""
            )
            rows.append(
                f"<tr><td>{_e(trade.order_no)}</td><td>{_e(trade.pay_amount())}</td>"
                f"<td>{STATUS_LABELS[trade.status]}</td><td>{notified}</td><td>{button}</td></tr>"
            )
        table = (
            "<table><tr><th>订单号</th><th>金额</th><th>状态</th><th>通知</th><th></th></tr>"
            + "".join(rows)
            + "</table>"
            if rows
            else "<p>还没有订单。</p>"
        )
        return _page("中国银行 B2C 沙箱：订单", table)

    # --- server-to-server interfaces -------------------------------------------------------

    @staticmethod
    def _answer(
        merchant_no: str,
        body: Mapping[str, str] | list[ET.Element],
        rtn_cd: str = "",
        exception: str = "",
    ) -> Response:
        header = {
            "merchantNo": merchant_no,
            "hdlSts": protocol.HDL_OK,
            "rtnCd": rtn_cd,
            "exception": exception,
        }
        return Response(protocol.build_answer(header, body), media_type=_XML)

    @staticmethod
    def _refusal(merchant_no: str, error: SandboxError) -> Response:
        header = {
            "merchantNo": merchant_no,
            "hdlSts": protocol.HDL_FAILED,
            "rtnCd": error.rtn_cd,
            "exception": error.message,
        }
        return Response(protocol.build_answer(header), media_type=_XML)

    async def query(self, request: Request) -> Response:
        """``CommonQueryOrder.do``: one ``<orderTrans>`` per known order, each signed."""
        merchant_no = ""
        try:
            form = await self._form(request)
            merchant_no = form.get("merchantNo", "")
            self._require(form, "merchantNo", "orderNos", "signData")
            self._verify(
                merchant_no,
                form["signData"],
                protocol.query_signed(merchant_no, form["orderNos"]),
            )
        except SandboxError as exc:
            return self._refusal(merchant_no, exc)
        records = []
        for order_no in form["orderNos"].split():
            trade = self.trades.get((merchant_no, order_no))
            if trade is None:
                continue
            self._settle_expired(trade)
            fields = trade.signed_fields()
            del fields["merchantNo"]  # it is the header's; the signature still covers it
            signature = self._sign(protocol.notify_signed(trade.signed_fields()))
            records.append(protocol.element("orderTrans", {**fields, "signData": signature}))
        return self._answer(merchant_no, records)

    async def refund(self, request: Request) -> Response:
        """``B2CRefund.do``: refund a paid order, idempotent per mRefundSeq."""
        merchant_no = ""
        try:
            form = await self._form(request)
            merchant_no = form.get("merchantNo", "")
            self._require(
                form, "merchantNo", "mRefundSeq", "curCode", "refundAmount", "orderNo", "signData"
            )
            signed = protocol.refund_signed(
                merchant_no,
                form["mRefundSeq"],
                form["curCode"],
                form["refundAmount"],
                form["orderNo"],
            )
            self._verify(merchant_no, form["signData"], signed)
            try:
                amount = protocol.fen(form["refundAmount"])
            except ValueError as exc:
                raise SandboxError(protocol.RTN_BAD_REQUEST, str(exc)) from exc
            if form["curCode"] != protocol.CUR_CODE_CNY or amount <= 0:
                raise SandboxError(protocol.RTN_BAD_REQUEST, "币种或金额不正确")
        except SandboxError as exc:
            return self._refusal(merchant_no, exc)

        record = self._refund(merchant_no, form["orderNo"], form["mRefundSeq"], amount)
        answer_signed = protocol.refund_answer_signed(
            merchant_no,
            record.order_no,
            record.m_refund_seq,
            record.refund_seq,
            protocol.yuan(record.amount_fen),
            record.deal_status,
        )
        body = {
            "merchantNo": merchant_no,
            "orderNo": record.order_no,
            "mRefundSeq": record.m_refund_seq,
            "refundSeq": record.refund_seq,
            "refundAmount": protocol.yuan(record.amount_fen),
            "dealStatus": record.deal_status,
            "signData": self._sign(answer_signed),
        }
        # A refused refund is still a handled request (hdlSts A); the header says why.
        return self._answer(
            merchant_no, body, record.rtn_cd, _REFUND_REASONS.get(record.rtn_cd, "")
        )

    def _refund(
        self, merchant_no: str, order_no: str, m_refund_seq: str, amount: int
    ) -> RefundRecord:
        key = (merchant_no, m_refund_seq)
        earlier = self.refunds.get(key)
        if earlier is not None:
            if (earlier.order_no, earlier.amount_fen) == (order_no, amount):
                return earlier  # the same refund asked again: the same answer, no second refund
            return RefundRecord(
                merchant_no,
                order_no,
                m_refund_seq,
                amount,
                "",
                protocol.DEAL_REFUSED,
                protocol.RTN_REFUND_SEQ_REUSED,
            )

        def refused(code: str) -> RefundRecord:
            # A definite refusal is kept too, so asking again gets the same answer.
            record = RefundRecord(
                merchant_no, order_no, m_refund_seq, amount, "", protocol.DEAL_REFUSED, code
            )
            self.refunds[key] = record
            return record

        trade = self.trades.get((merchant_no, order_no))
        if trade is None or trade.amount_fen is None:
            return refused(protocol.RTN_UNKNOWN_ORDER)
        if trade.status is not OrderStatus.PAID:
            return refused(protocol.RTN_NOT_PAID)
        if amount > trade.amount_fen - trade.refunded_fen:
            return refused(protocol.RTN_AMOUNT_EXCEEDED)
        trade.refunded_fen += amount
        if trade.refunded_fen == trade.amount_fen:
            trade.status = OrderStatus.REFUNDED
        record = RefundRecord(
            merchant_no,
            order_no,
            m_refund_seq,
            amount,
            self._next_serial("R"),
            protocol.DEAL_ACCEPTED,
        )
        self.refunds[key] = record
        return record

    async def cancel(self, request: Request) -> Response:
        """``B2CCancelOrder.do``: cancel an unpaid order, even one not yet received, so a form
        still in a browser can no longer be paid. Answers the order's resulting status."""
        merchant_no = ""
        try:
            form = await self._form(request)
            merchant_no = form.get("merchantNo", "")
            self._require(form, "merchantNo", "orderNo", "signData")
            self._verify(
                merchant_no,
                form["signData"],
                protocol.cancel_signed(merchant_no, form["orderNo"]),
            )
        except SandboxError as exc:
            return self._refusal(merchant_no, exc)
        order_no = form["orderNo"]
        trade = self.trades.get((merchant_no, order_no))
        if trade is None:
            trade = Trade(merchant_no, order_no, amount_fen=None, status=OrderStatus.CANCELLED)
            self.trades[(merchant_no, order_no)] = trade
        elif trade.status is OrderStatus.UNPROCESSED:
            trade.status = OrderStatus.CANCELLED
        status = str(trade.status)
        body = {
            "merchantNo": merchant_no,
            "orderNo": order_no,
            "orderStatus": status,
            "signData": self._sign(protocol.cancel_answer_signed(merchant_no, order_no, status)),
        }
        return self._answer(merchant_no, body)


@cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default TLS settings, built once per process (they take tens of ms to build)."""
    return httpx.create_ssl_context()


_REFUND_REASONS = {
    protocol.RTN_NOT_PAID: "订单未支付或已退款",
    protocol.RTN_AMOUNT_EXCEEDED: "退款金额超过可退金额",
    protocol.RTN_REFUND_SEQ_REUSED: "退款流水号已用于另一笔退款",
    protocol.RTN_UNKNOWN_ORDER: "订单不存在",
}


# --- HTML ------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;max-width:40rem;
margin:2rem auto;padding:0 1rem;color:#222}
h1{color:#a4161a;font-size:1.4rem;border-bottom:2px solid #a4161a;padding-bottom:.4rem}
table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{text-align:left;padding:.4rem;border-bottom:1px solid #ddd}
button{background:#a4161a;color:#fff;border:0;padding:.6rem 1.2rem;font-size:1rem;
border-radius:4px;cursor:pointer}
button.secondary{background:#777}
.err{color:#a4161a;font-weight:bold}
.note{color:#777;font-size:.85rem}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _page(title: str, content: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{_STYLE}</style></head>
<body><h1>{_e(title)}</h1>{content}
<p class=note>中国银行 B2C 网上支付 · 沙箱（测试环境，测试密钥）</p></body></html>""",
        status_code=status,
    )


def _trade_table(trade: Trade) -> str:
    rows = [
        ("商户号", trade.merchant_no),
        ("订单号", trade.order_no),
        ("订单金额", f"¥{trade.pay_amount()}"),
        ("订单说明", trade.order_note),
        ("下单时间", _show_time(trade.order_time)),
        (
            "支付截止",
            "—"
            if trade.timeout_at is None
            else trade.timeout_at.astimezone(protocol.SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"),
        ),
        ("状态", STATUS_LABELS[trade.status]),
    ]
    return (
        "<table>"
        + "".join(f"<tr><th>{_e(name)}</th><td>{_e(value)}</td></tr>" for name, value in rows)
        + "</table>"
    )


def _show_time(text: str) -> str:
    try:
        return protocol.parse_bank_time(text).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return text or "—"


def _back(trade: Trade, sandbox: BocSandbox) -> str:
    """The way back to the merchant from a result page."""
    if trade.return_url:
        return f'<p><a href="{_e(trade.return_url)}">返回商户</a></p>'
    if not trade.order_url or trade.amount_fen is None:
        return ""
    hidden = "".join(
        f'<input type="hidden" name="{_e(name)}" value="{_e(value)}">'
        for name, value in sandbox.notification(trade).items()
    )
    return (
        f'<form method="post" action="{_e(trade.order_url)}">{hidden}'
        "<button>返回商户</button></form>"
    )
