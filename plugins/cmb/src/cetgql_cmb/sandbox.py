"""A sandbox that plays China Merchants Bank 一网通 for demos and tests.

It speaks the same wire format as the bank, with real signatures: it checks the merchant's
SHA-256 signature on every request (``MSS3411`` when it is wrong), signs its answers and its
payment notices with the sandbox bank's RSA key (test material shipped in ``keys/``), and keeps
its state in memory, per app instance.

* ``POST /netpayment/BaseHttp.dll?PC_EUserPay`` (or ``MB_EUserPay``): the cashier. A person can
  pay or cancel on a plain HTML page. Paying records the trade as paid, posts the signed
  ``BKPAYRTN`` notice to ``payNoticeUrl`` (a few quick retries unless the answer is HTTP 200),
  then sends the browser to ``returnUrl``. The same (date, orderNo, amount) is the same trade;
  a request past ``dateTime + expireTimeSpan`` or for a closed order is refused.
* ``POST /merchserv/BaseHttp.dll?QuerySingleOrder|DoRefundV2|QuerySettledRefundV2|CloseOrder``.
* ``GET /``: the trades it knows, with their notice deliveries and a resend button.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from cetgql_cmb.provider import (
    CHARSET,
    NOTICE_SIGN_TYPE,
    NOTICE_TYPE_PAID,
    REQUEST_SIGN_TYPE,
    RSP_BAD_SIGNATURE,
    RSP_DUPLICATE_REFUND,
    RSP_OK,
    RSP_REFUND_FAILED,
    VERSION,
    beijing,
    dump_json,
    fen_to_yuan,
    format_date,
    format_datetime,
    parse_date,
    parse_datetime,
    yuan_to_fen,
)
from cetgql_cmb.signing import (
    RsaAlgorithm,
    rsa_sign,
    sandbox_bank_private_key,
    sha256_verify,
    string_fields,
)

SANDBOX_BRANCH_NO = "0755"
SANDBOX_MERCHANT_NO = "000054"
# TEST ONLY: the sandbox merchant's payment key. It is public; never use it with the bank.
SANDBOX_MERCHANT_KEY = "CetgqlSandboxKey"

# Error codes the sandbox answers besides CMB's documented MSS3411/MSS3202/MSS3804.
RSP_ORDER_NOT_FOUND = "MSS3101"  # 订单不存在
RSP_ORDER_PAID = "MSS3102"  # 订单已支付，不能关闭
RSP_BAD_REQUEST = "MSS1000"  # 请求报文格式错误
RSP_UNKNOWN_MERCHANT = "MSS1001"  # 商户不存在

REFUND_LIST_COLUMNS = (
    "branchNo",
    "merchantNo",
    "date",
    "orderNo",
    "bankSerialNo",
    "merchantSerialNo",
    "orderStatus",
    "currency",
    "amount",
    "refundRefNo",
    "settleAmount",
    "discountAmount",
    "bankDate",
    "bankTime",
    "desc",
)

_ORDER_NO = re.compile(r"[0-9A-Za-z]{1,32}")
_SPAN = re.compile(r"[1-9][0-9]{0,5}")
_CLOCK_SKEW = timedelta(minutes=10)

UNPAID, PAID, CLOSED = "UNPAID", "PAID", "CLOSED"
_STATUS_TEXT = {UNPAID: "待支付", PAID: "已支付", CLOSED: "已关闭"}


@dataclass
class SandboxRefund:
    bank_serial_no: str
    merchant_serial_no: str
    amount_fen: int
    at: datetime
    desc: str
    status: str = "210"  # 已直接退款


@dataclass
class SandboxTrade:
    """One order as the sandbox bank sees it."""

    token: str
    branch_no: str
    merchant_no: str
    order_no: str
    date: str
    amount_fen: int
    deadline: datetime
    notice_url: str = ""
    return_url: str = ""
    merchant_para: str = ""
    status: str = UNPAID
    bank_serial_no: str = ""
    paid_at: datetime | None = None
    refunds: list[SandboxRefund] = field(default_factory=list)
    deliveries: list[str] = field(default_factory=list)  # one line per notice attempt

    @property
    def refunded_fen(self) -> int:
        return sum(r.amount_fen for r in self.refunds)


class RequestError(Exception):
    """A request the sandbox bank refuses, with its code and a message for people."""

    def __init__(self, code: str, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status_code = status_code


class CmbSandbox:
    """The sandbox bank: an ASGI app with its state in memory.

    ``notify_url`` is where notices go when a pay request names no ``payNoticeUrl``.
    ``transport`` routes the sandbox's own outgoing HTTP (the notices); ``clock`` replaces the
    system clock; ``sign_algorithm`` is the hash under its RSA signatures (CMB's production
    gateway has historically used SHA1withRSA); ``notice_format`` is ``"form"`` (the field
    ``jsonRequestData``) or ``"json"`` (the envelope as the body).
    """

    def __init__(
        self,
        notify_url: str = "",
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] | None = None,
        sign_algorithm: RsaAlgorithm = RsaAlgorithm.SHA256,
        notice_format: str = "form",
        notice_attempts: int = 3,
        retry_delay: float = 0.2,
        private_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        if notice_format not in ("form", "json"):
            raise ValueError("notice_format is 'form' or 'json'")
        self.notify_url = notify_url
        self.merchants: dict[tuple[str, str], str] = {
            (SANDBOX_BRANCH_NO, SANDBOX_MERCHANT_NO): SANDBOX_MERCHANT_KEY
        }
        self.trades: dict[tuple[str, str, str], SandboxTrade] = {}
        self._by_token: dict[str, SandboxTrade] = {}
        self._transport = transport
        self._clock = clock or (lambda: datetime.now(UTC))
        self._algorithm = sign_algorithm
        self._notice_format = notice_format
        self._attempts = max(1, notice_attempts)
        self._retry_delay = retry_delay
        self._private_key = private_key or sandbox_bank_private_key()
        self._serials = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/", self._index, methods=["GET"]),
                Route("/netpayment/BaseHttp.dll", self._cashier_entry, methods=["POST"]),
                Route("/cashier/{token}", self._cashier_page, methods=["GET"]),
                Route("/cashier/{token}/pay", self._pay, methods=["POST"]),
                Route("/cashier/{token}/cancel", self._cancel, methods=["POST"]),
                Route("/trades/{token}/notify", self._resend, methods=["POST"]),
                Route("/merchserv/BaseHttp.dll", self._merchserv, methods=["POST"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def trade(self, order_no: str) -> SandboxTrade | None:
        """The trade of the sandbox merchant with this order number (for tests and demos)."""
        return self.trades.get((SANDBOX_BRANCH_NO, SANDBOX_MERCHANT_NO, order_no))

    # --- requests -----------------------------------------------------------------------

    async def _read_request(self, request: Request) -> dict[str, str]:
        """The verified ``reqData`` of a merchant request, or RequestError."""
        body = await request.body()
        text = body.decode("utf-8", errors="replace").strip()
        if not text.startswith("{"):
            values = parse_qs(text).get("jsonRequestData")
            if not values:
                raise RequestError(RSP_BAD_REQUEST, "缺少 jsonRequestData")
            text = values[0]
        try:
            envelope = json.loads(text)
        except ValueError as exc:
            raise RequestError(RSP_BAD_REQUEST, "jsonRequestData 不是 JSON") from exc
        if not isinstance(envelope, dict):
            raise RequestError(RSP_BAD_REQUEST, "jsonRequestData 不是 JSON 对象")
        if (
            envelope.get("version") != VERSION
            or str(envelope.get("charset", "")).upper() != CHARSET
        ):
            raise RequestError(RSP_BAD_REQUEST, "version 须为 1.0，charset 须为 UTF-8")
        if envelope.get("signType") != REQUEST_SIGN_TYPE:
            raise RequestError(RSP_BAD_REQUEST, "signType 须为 SHA-256")
        try:
            req = string_fields(envelope.get("reqData"))
        except ValueError as exc:
            raise RequestError(RSP_BAD_REQUEST, f"reqData 格式错误：{exc}") from exc
        key = self.merchants.get((req.get("branchNo", ""), req.get("merchantNo", "")))
        if key is None:
            raise RequestError(RSP_UNKNOWN_MERCHANT, "商户不存在")
        sign = envelope.get("sign")
        if not isinstance(sign, str) or not sha256_verify(req, key, sign):
            raise RequestError(RSP_BAD_SIGNATURE, "签名错误")
        return req

    def _now(self) -> datetime:
        return self._clock()

    def _serial(self) -> str:
        """A 20-digit bank serial number: the Beijing date and a counter."""
        return f"{format_date(beijing(self._now()).date())}{next(self._serials):012d}"

    def _key(self, req: Mapping[str, str]) -> tuple[str, str, str]:
        return (req["branchNo"], req["merchantNo"], req.get("orderNo", ""))

    # --- the cashier ----------------------------------------------------------------------

    async def _cashier_entry(self, request: Request) -> Response:
        if request.url.query not in ("PC_EUserPay", "MB_EUserPay"):
            return PlainTextResponse("unknown command", status_code=404)
        try:
            req = await self._read_request(request)
            trade = self._accept_pay_request(req)
        except RequestError as exc:
            return self._error_page(exc.message, code=exc.code, status_code=exc.status_code)
        if trade.status == PAID:
            return self._error_page(
                "该订单已支付，无需重复支付。", status_code=200, back=trade.return_url
            )
        return RedirectResponse(self._url(request, f"/cashier/{trade.token}"), status_code=303)

    def _accept_pay_request(self, req: dict[str, str]) -> SandboxTrade:
        now = self._now()
        sent_at = parse_datetime(req.get("dateTime", ""))
        if sent_at is None:
            raise RequestError(RSP_BAD_REQUEST, "dateTime 格式错误（yyyyMMddHHmmss）")
        if parse_date(req.get("date", "")) is None:
            raise RequestError(RSP_BAD_REQUEST, "date 格式错误（yyyyMMdd）")
        if not _ORDER_NO.fullmatch(req.get("orderNo", "")):
            raise RequestError(RSP_BAD_REQUEST, "orderNo 须为 1-32 位字母或数字")
        amount = yuan_to_fen(req.get("amount", ""))
        if amount is None or amount <= 0:
            raise RequestError(RSP_BAD_REQUEST, "amount 格式错误（xxxx.xx）")
        span = req.get("expireTimeSpan", "")
        if not _SPAN.fullmatch(span):
            raise RequestError(RSP_BAD_REQUEST, "expireTimeSpan 须为正整数（分钟）")
        notice_url = req.get("payNoticeUrl", "") or self.notify_url
        if not notice_url.startswith(("http://", "https://")):
            raise RequestError(RSP_BAD_REQUEST, "payNoticeUrl 须为 http(s) 地址")
        if sent_at - now > _CLOCK_SKEW:
            raise RequestError(RSP_BAD_REQUEST, "dateTime 晚于银行当前时间")
        deadline = sent_at + timedelta(minutes=int(span))
        if now > deadline:
            raise RequestError(RSP_BAD_REQUEST, "支付请求已超过支付时限，订单不能再支付。", 403)

        key = self._key(req)
        trade = self.trades.get(key)
        if trade is not None:
            if trade.status == CLOSED:
                raise RequestError(RSP_BAD_REQUEST, "订单已关闭，不能支付。", 409)
            if trade.date != req["date"] or trade.amount_fen != amount:
                raise RequestError(
                    RSP_BAD_REQUEST, "订单号重复：与已有订单的日期或金额不一致。", 409
                )
            if trade.status == UNPAID:
                # The latest signed request is the merchant's current word on the order.
                trade.deadline = deadline
                trade.notice_url = notice_url
                trade.return_url = req.get("returnUrl", "")
                trade.merchant_para = req.get("payNoticePara", "")
            return trade
        trade = SandboxTrade(
            token=self._serial(),
            branch_no=key[0],
            merchant_no=key[1],
            order_no=key[2],
            date=req["date"],
            amount_fen=amount,
            deadline=deadline,
            notice_url=notice_url,
            return_url=req.get("returnUrl", ""),
            merchant_para=req.get("payNoticePara", ""),
        )
        self.trades[key] = trade
        self._by_token[trade.token] = trade
        return trade

    async def _cashier_page(self, request: Request) -> Response:
        trade = self._by_token.get(request.path_params["token"])
        if trade is None:
            return self._error_page("没有这笔订单。", status_code=404)
        if trade.status != UNPAID:
            return self._error_page(
                f"订单{_STATUS_TEXT[trade.status]}。", status_code=200, back=trade.return_url
            )
        amount = fen_to_yuan(trade.amount_fen)
        deadline = beijing(trade.deadline).strftime("%Y-%m-%d %H:%M:%S")
        pay = self._url(request, f"/cashier/{trade.token}/pay")
        cancel = self._url(request, f"/cashier/{trade.token}/cancel")
        body = (
            "<dl>"
            f"<dt>商户</dt><dd>{_e(trade.branch_no)} / {_e(trade.merchant_no)}</dd>"
            f"<dt>订单号</dt><dd id='order-no'>{_e(trade.order_no)}</dd>"
            f"<dt>订单日期</dt><dd>{_e(trade.date)}</dd>"
            f"<dt>金额</dt><dd class='amount' id='amount'>¥{amount}</dd>"
            f"<dt>支付时限</dt><dd>{deadline}（北京时间）</dd>"
            "</dl>"
            f"<form method='post' action='{_e(pay)}'>"
            f"<button type='submit' id='pay' class='pay'>确认支付 ¥{amount}</button></form>"
            f"<form method='post' action='{_e(cancel)}'>"
            "<button type='submit' id='cancel' class='cancel'>取消支付，返回商户</button></form>"
        )
        return HTMLResponse(_page("一网通支付", body))

    async def _pay(self, request: Request) -> Response:
        trade = self._by_token.get(request.path_params["token"])
        if trade is None:
            return self._error_page("没有这笔订单。", status_code=404)
        if trade.status == CLOSED:
            return self._error_page("订单已关闭，不能支付。", status_code=409)
        if trade.status == UNPAID:
            if self._now() > trade.deadline:
                return self._error_page(
                    "已超过支付时限，订单不能再支付。", status_code=403, back=trade.return_url
                )
            trade.status = PAID
            trade.paid_at = self._now()
            trade.bank_serial_no = self._serial()
            await self.deliver_notice(trade)
        return self._back(trade, "支付成功。")

    async def _cancel(self, request: Request) -> Response:
        trade = self._by_token.get(request.path_params["token"])
        if trade is None:
            return self._error_page("没有这笔订单。", status_code=404)
        return self._back(trade, "已取消支付。")

    def _back(self, trade: SandboxTrade, message: str) -> Response:
        if trade.return_url:
            return RedirectResponse(trade.return_url, status_code=303)
        return HTMLResponse(_page("一网通支付", f"<p id='result'>{_e(message)}</p>"))

    # --- the payment notice ---------------------------------------------------------------

    def notice_for(self, trade: SandboxTrade) -> dict[str, object]:
        """The signed ``BKPAYRTN`` notice of a paid trade, as the bank posts it."""
        paid_at = beijing(trade.paid_at or self._now())
        notice = {
            "dateTime": format_datetime(paid_at),
            "date": trade.date,
            "amount": fen_to_yuan(trade.amount_fen),
            "bankDate": format_date(paid_at.date()),
            "orderNo": trade.order_no,
            "bankSerialNo": trade.bank_serial_no,
            "noticeSerialNo": f"{trade.date}{trade.order_no}",
            "noticeType": NOTICE_TYPE_PAID,
            "httpMethod": "POST",
            "noticeUrl": trade.notice_url,
            "branchNo": trade.branch_no,
            "merchantNo": trade.merchant_no,
            "cardType": "02",  # 本行借记卡
            "discountFlag": "N",
            "discountAmount": "0.00",
            "merchantPara": trade.merchant_para,
        }
        return {
            "version": VERSION,
            "charset": CHARSET,
            "signType": NOTICE_SIGN_TYPE,
            "sign": rsa_sign(notice, self._private_key, self._algorithm),
            "noticeData": notice,
        }

    async def deliver_notice(self, trade: SandboxTrade) -> bool:
        """Post the notice, retrying quickly unless the merchant answers HTTP 200."""
        text = dump_json(self.notice_for(trade))
        for attempt in range(1, self._attempts + 1):
            try:
                async with httpx.AsyncClient(transport=self._transport, timeout=10.0) as client:
                    if self._notice_format == "json":
                        response = await client.post(
                            trade.notice_url,
                            content=text.encode(),
                            headers={"content-type": "application/json; charset=utf-8"},
                        )
                    else:
                        response = await client.post(
                            trade.notice_url, data={"jsonRequestData": text}
                        )
                outcome = f"HTTP {response.status_code}"
                delivered = response.status_code == 200
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                outcome, delivered = f"{type(exc).__name__}: {exc}", False
            stamp = beijing(self._now()).strftime("%H:%M:%S")
            trade.deliveries.append(f"{stamp} 第 {attempt} 次：{outcome}")
            if delivered:
                return True
            if attempt < self._attempts:
                await asyncio.sleep(self._retry_delay)
        return False

    async def _resend(self, request: Request) -> Response:
        trade = self._by_token.get(request.path_params["token"])
        if trade is None or trade.status != PAID:
            return self._error_page("只有已支付的订单才有支付通知。", status_code=404)
        await self.deliver_notice(trade)
        return RedirectResponse(self._url(request, "/"), status_code=303)

    # --- the merchant API -----------------------------------------------------------------

    async def _merchserv(self, request: Request) -> Response:
        handlers = {
            "QuerySingleOrder": self._query_order,
            "DoRefundV2": self._refund,
            "QuerySettledRefundV2": self._query_refunds,
            "CloseOrder": self._close,
        }
        handler = handlers.get(request.url.query)
        if handler is None:
            return PlainTextResponse("unknown command", status_code=404)
        try:
            rsp = handler(await self._read_request(request))
        except RequestError as exc:
            rsp = {"rspCode": exc.code, "rspMsg": exc.message}
        return self._answer(rsp)

    def _answer(self, rsp: dict[str, str]) -> JSONResponse:
        data = {"dateTime": format_datetime(self._now()), **rsp}
        return JSONResponse(
            {
                "version": VERSION,
                "charset": CHARSET,
                "signType": NOTICE_SIGN_TYPE,
                "sign": rsa_sign(data, self._private_key, self._algorithm),
                "rspData": data,
            }
        )

    def _find(self, req: Mapping[str, str]) -> SandboxTrade:
        """The order named by (date, orderNo) or, for type A, by bankSerialNo."""
        if req.get("type") == "A":
            serial = req.get("bankSerialNo", "")
            for trade in self.trades.values():
                if trade.bank_serial_no and trade.bank_serial_no == serial:
                    return trade
            raise RequestError(RSP_ORDER_NOT_FOUND, "订单不存在")
        found = self.trades.get(self._key(req))
        if found is None or found.date != req.get("date"):
            raise RequestError(RSP_ORDER_NOT_FOUND, "订单不存在")
        return found

    def _query_order(self, req: dict[str, str]) -> dict[str, str]:
        trade = self._find(req)
        if trade.status == UNPAID:
            # The bank has an order only once the cardholder has paid it.
            raise RequestError(RSP_ORDER_NOT_FOUND, "订单不存在")
        paid = beijing(trade.paid_at) if trade.paid_at else None
        return {
            "rspCode": RSP_OK,
            "rspMsg": "",
            "branchNo": trade.branch_no,
            "merchantNo": trade.merchant_no,
            "date": trade.date,
            "orderNo": trade.order_no,
            "bankSerialNo": trade.bank_serial_no,
            "currency": "10",
            "orderAmount": fen_to_yuan(trade.amount_fen),
            "fee": "0.00",
            "orderStatus": "0" if trade.status == PAID else "1",
            "bankDate": paid.strftime("%Y%m%d") if paid else "",
            "bankTime": paid.strftime("%H%M%S") if paid else "",
            "settleAmount": fen_to_yuan(trade.amount_fen) if paid else "0.00",
            "discountAmount": "0.00",
            "cardType": "02" if paid else "",
            "merchantPara": trade.merchant_para,
            "settleDate": paid.strftime("%Y%m%d") if paid else "",
            "settleTime": paid.strftime("%H%M%S") if paid else "",
        }

    def _refund(self, req: dict[str, str]) -> dict[str, str]:
        trade = self._find(req)
        if trade.status != PAID:
            raise RequestError(RSP_REFUND_FAILED, "订单未支付，不能退款")
        serial = req.get("refundSerialNo", "")
        if not 1 <= len(serial) <= 20:
            raise RequestError(RSP_BAD_REQUEST, "refundSerialNo 须为 1-20 位")
        amount = yuan_to_fen(req.get("amount", ""))
        if amount is None or amount <= 0:
            raise RequestError(RSP_BAD_REQUEST, "amount 格式错误（xxxx.xx）")
        if any(r.merchant_serial_no == serial for r in trade.refunds):
            raise RequestError(RSP_DUPLICATE_REFUND, "重复的退款请求，拒绝处理")
        if trade.refunded_fen + amount > trade.amount_fen:
            raise RequestError(RSP_REFUND_FAILED, "退款金额超过可退金额")
        refund = SandboxRefund(
            bank_serial_no=self._serial(),
            merchant_serial_no=serial,
            amount_fen=amount,
            at=self._now(),
            desc=req.get("desc", ""),
        )
        trade.refunds.append(refund)
        at = beijing(refund.at)
        return {
            "rspCode": RSP_OK,
            "rspMsg": "",
            "bankSerialNo": refund.bank_serial_no,
            "currency": "10",
            "amount": fen_to_yuan(amount),
            "refundRefNo": refund.bank_serial_no[-12:],
            "bankDate": at.strftime("%Y%m%d"),
            "bankTime": at.strftime("%H%M%S"),
            "refundSerialNo": serial,
            "settleAmount": fen_to_yuan(amount),
            "discountAmount": "0.00",
        }

    def _query_refunds(self, req: dict[str, str]) -> dict[str, str]:
        kind = req.get("type", "")
        if kind == "A":
            serial = req.get("bankSerialNo", "")
            found = [
                (trade, r)
                for trade in self.trades.values()
                for r in trade.refunds
                if r.bank_serial_no == serial
            ]
        elif kind in ("B", "C"):
            trade = self._find(req)
            wanted = req.get("merchantSerialNo", "") if kind == "B" else ""
            found = [
                (trade, r) for r in trade.refunds if not wanted or r.merchant_serial_no == wanted
            ]
        else:
            raise RequestError(RSP_BAD_REQUEST, "type 须为 A、B 或 C")
        lines = []
        if found:
            lines.append(",`".join(REFUND_LIST_COLUMNS))
            for trade, refund in found:
                at = beijing(refund.at)
                row = {
                    "branchNo": trade.branch_no,
                    "merchantNo": trade.merchant_no,
                    "date": trade.date,
                    "orderNo": trade.order_no,
                    "bankSerialNo": refund.bank_serial_no,
                    "merchantSerialNo": refund.merchant_serial_no,
                    "orderStatus": refund.status,
                    "currency": "10",
                    "amount": fen_to_yuan(refund.amount_fen),
                    "refundRefNo": refund.bank_serial_no[-12:],
                    "settleAmount": fen_to_yuan(refund.amount_fen),
                    "discountAmount": "0.00",
                    "bankDate": at.strftime("%Y%m%d"),
                    "bankTime": at.strftime("%H%M%S"),
                    "desc": re.sub(r"[`\r\n]", " ", refund.desc),
                }
                lines.append(",`".join(row[column] for column in REFUND_LIST_COLUMNS))
        return {
            "rspCode": RSP_OK,
            "rspMsg": "",
            "dataCount": str(len(found)),
            "dataList": "".join(f"{line}\r\n" for line in lines),
        }

    def _close(self, req: dict[str, str]) -> dict[str, str]:
        if parse_date(req.get("date", "")) is None or not _ORDER_NO.fullmatch(
            req.get("orderNo", "")
        ):
            raise RequestError(RSP_BAD_REQUEST, "date 或 orderNo 格式错误")
        key = self._key(req)
        trade = self.trades.get(key)
        if trade is None:
            # Closed before the browser ever reached the cashier: refuse it when it does.
            trade = SandboxTrade(
                token=self._serial(),
                branch_no=key[0],
                merchant_no=key[1],
                order_no=key[2],
                date=req["date"],
                amount_fen=0,
                deadline=self._now(),
                status=CLOSED,
            )
            self.trades[key] = trade
            self._by_token[trade.token] = trade
        elif trade.status == PAID:
            raise RequestError(RSP_ORDER_PAID, "订单已支付，不能关闭")
        trade.status = CLOSED
        return {"rspCode": RSP_OK, "rspMsg": "", "orderNo": trade.order_no}

    # --- pages ----------------------------------------------------------------------------

    async def _index(self, request: Request) -> Response:
        rows = []
        for trade in self.trades.values():
            resend = ""
            if trade.status == PAID:
                action = self._url(request, f"/trades/{trade.token}/notify")
                resend = (
                    f"<form method='post' action='{_e(action)}'>"
                    "<button type='submit'>重发通知</button></form>"
                )
            refunded = f"（已退 ¥{fen_to_yuan(trade.refunded_fen)}）" if trade.refunds else ""
            rows.append(
                f"<tr><td>{_e(trade.date)}</td><td>{_e(trade.order_no)}</td>"
                f"<td>¥{fen_to_yuan(trade.amount_fen)}</td>"
                f"<td>{_STATUS_TEXT[trade.status]}{refunded}</td>"
                f"<td>{'<br>'.join(_e(d) for d in trade.deliveries)}</td><td>{resend}</td></tr>"
            )
        table = (
            "<table><tr><th>订单日期</th><th>订单号</th><th>金额</th><th>状态</th>"
            "<th>支付通知</th><th></th></tr>" + "".join(rows) + "</table>"
            if rows
            else "<p>还没有订单。</p>"
        )
        return HTMLResponse(_page("沙箱订单", table))

    def _error_page(
        self, message: str, *, code: str = "", status_code: int = 400, back: str = ""
    ) -> HTMLResponse:
        detail = f"<p class='code'>{_e(code)}</p>" if code else ""
        link = f"<p><a href='{_e(back)}'>返回商户</a></p>" if back else ""
        body = f"<p id='error'>{_e(message)}</p>{detail}{link}"
        return HTMLResponse(_page("一网通支付", body), status_code=status_code)

    @staticmethod
    def _url(request: Request, path: str) -> str:
        """A path inside the sandbox, wherever it is mounted (``/sandbox/cmb`` in cetgql)."""
        return f"{request.scope.get('root_path', '')}{path}"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


_STYLE = (
    "body{font-family:'PingFang SC','Microsoft YaHei',sans-serif;background:#f4f4f4;margin:0}"
    "header{background:#c8102e;color:#fff;padding:.8em 1.2em}"
    "header h1{font-size:1.2em;margin:0}header p{margin:.2em 0 0;font-size:.85em}"
    "main{max-width:32em;margin:1.5em auto;background:#fff;padding:1.2em 1.5em;"
    "border-radius:6px;box-shadow:0 1px 3px rgba(0,0,0,.15)}"
    "dl{display:grid;grid-template-columns:6em 1fr;gap:.4em}dt{color:#666}dd{margin:0}"
    ".amount{font-size:1.4em;color:#c8102e}"
    "button{width:100%;padding:.7em;margin-top:.8em;font-size:1em;border-radius:4px;cursor:pointer}"
    ".pay{background:#c8102e;color:#fff;border:0}.cancel{background:#fff;border:1px solid #999}"
    "table{border-collapse:collapse;width:100%;font-size:.9em}"
    "td,th{border-bottom:1px solid #ddd;padding:.3em;text-align:left}"
    "#error{color:#c8102e}"
)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{_e(title)} · 招商银行（沙箱）</title><style>{_STYLE}</style></head><body>"
        "<header><h1>招商银行 一网通支付</h1><p>沙箱环境 · 测试密钥 · 不会产生真实扣款</p></header>"
        f"<main><h2>{_e(title)}</h2>{body}</main></body></html>"
    )
