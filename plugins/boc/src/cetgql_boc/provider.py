"""The Bank of China B2C (中银智慧付) payment provider: cetgql's side of the wire protocol.

The candidate's browser posts a signed order form to the bank's cashier; the bank posts a
signed notification to ``orderUrl`` (cetgql's notify endpoint); query, refund and cancel are
server-to-server form posts answered in XML. Every ``signData`` is a detached PKCS#7 (CMS)
signature: ours made with the merchant's certificate and key, the bank's checked against the
bank certificate configured for the province (see :mod:`cetgql_boc.cms`). The exact signed
strings are in :mod:`cetgql_boc.protocol`.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import httpx
from cryptography import x509

from cetgql.payments import (
    ChargeRequest,
    ChargeResult,
    InvalidNotification,
    MerchantConfig,
    MerchantLookup,
    Notification,
    NotifyReply,
    NotifyRequest,
    PaymentError,
    Redirect,
    RefundRequest,
    RefundResult,
    SettingField,
    TradeState,
    TradeStatus,
)
from cetgql_boc import cms, protocol, sandbox_keys
from cetgql_boc.protocol import OrderStatus

if TYPE_CHECKING:
    from starlette.types import ASGIApp

SETTINGS_FIELDS: tuple[SettingField, ...] = (
    SettingField("merchantNo", "商户号 (merchantNo)"),
    SettingField("merchantCert", "商户证书 (PEM)", multiline=True),
    SettingField("merchantKey", "商户私钥 (PEM，未加密)", secret=True, multiline=True),
    SettingField("bankCert", "中国银行验签证书 (PEM)", multiline=True),
    SettingField("gatewayUrl", "网关地址 (例如 https://ebspay.boc.cn/PGWPortal)"),
    # The interface names below the gateway; blank means the default of protocol.py. A full
    # http(s) URL replaces the gateway address for that interface.
    SettingField("payPath", f"支付接口路径 (默认 {protocol.PAY_PATH})", required=False),
    SettingField("queryPath", f"查询接口路径 (默认 {protocol.QUERY_PATH})", required=False),
    SettingField("refundPath", f"退款接口路径 (默认 {protocol.REFUND_PATH})", required=False),
    SettingField("cancelPath", f"撤单接口路径 (默认 {protocol.CANCEL_PATH})", required=False),
)

# What orderStatus means for cetgql. "Unknown" (4) is the bank's own doubt: keep waiting.
STATES: Mapping[str, TradeState] = {
    OrderStatus.UNPROCESSED: TradeState.PENDING,
    OrderStatus.PAID: TradeState.SUCCEEDED,
    OrderStatus.CANCELLED: TradeState.CLOSED,
    OrderStatus.REFUNDED: TradeState.REFUNDED,
    OrderStatus.UNKNOWN: TradeState.PENDING,
    OrderStatus.FAILED: TradeState.FAILED,
}

# Order numbers travel inside "|"-joined signed strings: a "|" (or whitespace, which the query
# interface uses between several numbers) would make the signed text ambiguous.
_ORDER_NO = re.compile(r"[!-{}~]{1,64}")  # printable ASCII without "|" and space


class BocProvider:
    """``PaymentProvider`` for BOC B2C. Stateless: every call takes the merchant settings."""

    name = "boc"
    display_name = "中国银行"
    settings_fields = SETTINGS_FIELDS

    def __init__(
        self, *, timeout: float = 10.0, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        """``timeout`` bounds each call to the bank as a whole (connect, send, read), so a
        stalled gateway turns into PaymentError instead of a hung request. ``transport`` lets a
        host or a test route the bank calls (e.g. ``httpx.ASGITransport``)."""
        self._timeout = timeout
        self._transport = transport
        self._ssl_context: ssl.SSLContext | None = None

    def _tls(self) -> ssl.SSLContext:
        """httpx's default TLS settings, built once: building them costs tens of milliseconds,
        which every bank call would otherwise pay again."""
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

    # --- charge ----------------------------------------------------------------------------

    async def charge(self, merchant: MerchantConfig, request: ChargeRequest) -> ChargeResult:
        """Build the signed order form the browser posts to the bank's cashier.

        Nothing is sent from here: the bank creates the trade when the form arrives, and treats
        the same orderNo with the same amount as the same trade, so charging twice for one
        ``out_trade_no`` hands the candidate the same order again."""
        order_no = _order_no(request.out_trade_no)
        if request.amount_fen <= 0:
            raise ValueError("a BOC order needs a positive amount")
        merchant_no = _setting(merchant, "merchantNo")
        order_amount = protocol.yuan(request.amount_fen)
        order_time = protocol.bank_time(request.created_at)
        signed = protocol.pay_signed(
            order_no, order_time, protocol.CUR_CODE_CNY, order_amount, merchant_no
        )
        fields = (
            ("merchantNo", merchant_no),
            ("payType", protocol.PAY_TYPE_B2C),
            ("orderNo", order_no),
            ("curCode", protocol.CUR_CODE_CNY),
            ("orderAmount", order_amount),
            ("orderTime", order_time),
            ("orderNote", request.subject),
            ("orderUrl", request.notify_url),
            ("orderTimeoutDate", protocol.bank_time(request.expires_at)),
            ("signData", _sign(merchant, signed)),
            (protocol.RETURN_URL_FIELD, request.return_url),
        )
        url = _url(merchant, "payPath", protocol.PAY_PATH)
        return ChargeResult(redirect=Redirect(method="POST", url=url, fields=fields))

    # --- query -----------------------------------------------------------------------------

    async def query(self, merchant: MerchantConfig, out_trade_no: str) -> TradeStatus:
        """Ask ``CommonQueryOrder.do`` for one order; each ``<orderTrans>`` is signed by the bank
        like a notification, and an unsigned or badly signed one is an unknown state."""
        order_no = _order_no(out_trade_no)
        merchant_no = _setting(merchant, "merchantNo")
        fields = {
            "merchantNo": merchant_no,
            "orderNos": order_no,
            "signData": _sign(merchant, protocol.query_signed(merchant_no, order_no)),
        }
        answer = await self._call(merchant, "queryPath", protocol.QUERY_PATH, fields)
        records = [
            protocol.children_text(node)
            for node in (answer.body.findall("orderTrans") if answer.body is not None else [])
        ]
        records = [record for record in records if record.get("orderNo") == order_no]
        if not records:
            return TradeStatus(out_trade_no, TradeState.NOT_FOUND, raw=dict(answer.header))
        bank_cert = _bank_certificate(merchant, PaymentError)
        for record in records:
            signed = protocol.notify_signed({**record, "merchantNo": merchant_no})
            try:
                cms.verify(record.get("signData", ""), signed, bank_cert)
            except cms.SignatureError as exc:
                raise PaymentError(f"BOC query answer signature: {exc}") from exc
        # Several attempts may be listed for one order; a paid (or refunded) one decides.
        settled = (OrderStatus.PAID, OrderStatus.REFUNDED)
        record = next((r for r in records if r.get("orderStatus") in settled), records[-1])
        state = STATES.get(record.get("orderStatus", ""))
        if state is None:
            raise PaymentError(f"BOC query: unknown orderStatus {record.get('orderStatus')!r}")
        try:
            amount = protocol.fen(record["payAmount"]) if record.get("payAmount") else None
            paid_at = protocol.parse_bank_time(record["payTime"]) if record.get("payTime") else None
        except ValueError as exc:
            raise PaymentError(f"BOC query answer: {exc}") from exc
        return TradeStatus(
            out_trade_no=out_trade_no,
            state=state,
            amount_fen=amount,
            provider_trade_no=record.get("orderSeq") or None,
            paid_at=paid_at,
            raw={**answer.header, **record},
        )

    # --- notification ----------------------------------------------------------------------

    async def callback(self, request: NotifyRequest, lookup: MerchantLookup) -> Notification:
        """Verify the bank's form-posted notification and normalise it.

        The order number is read from the unverified form only to find whose settings verify
        it; nothing else is believed until the signature checks out with that province's bank
        certificate and the merchantNo is that province's."""
        if request.method.upper() != "POST":
            raise InvalidNotification("BOC notifies with a form POST")
        form = _notification_form(request)
        order_no = form.get("orderNo", "")
        if not order_no:
            raise InvalidNotification("no orderNo")
        merchant = await lookup(order_no)
        if merchant is None:
            raise InvalidNotification(f"unknown trade {order_no!r}")
        missing = [
            name for name in (*protocol.NOTIFY_SIGNED_FIELDS, "signData") if name not in form
        ]
        if missing:
            raise InvalidNotification(f"missing fields: {', '.join(missing)}")
        bank_cert = _bank_certificate(merchant, InvalidNotification)
        try:
            cms.verify(form["signData"], protocol.notify_signed(form), bank_cert)
        except cms.SignatureError as exc:
            raise InvalidNotification(f"signature: {exc}") from exc
        if form["merchantNo"] != merchant.get("merchantNo"):
            raise InvalidNotification("the notification names another merchant")
        state = STATES.get(form["orderStatus"])
        if state is None:
            raise InvalidNotification(f"unknown orderStatus {form['orderStatus']!r}")
        try:
            amount = protocol.fen(form["payAmount"])
            paid_at = protocol.parse_bank_time(form["payTime"]) if form["payTime"] else None
        except ValueError as exc:
            raise InvalidNotification(str(exc)) from exc
        if state is TradeState.SUCCEEDED and paid_at is None:
            raise InvalidNotification("a paid notification without payTime")
        return Notification(
            out_trade_no=order_no,
            state=state,
            amount_fen=amount,
            merchant_id=form["merchantNo"],
            provider_trade_no=form["orderSeq"] or None,
            paid_at=paid_at,
            raw=dict(form),
        )

    def reply(self, accepted: bool) -> NotifyReply:
        """HTTP 200 with ``success`` stops the bank's resending; ``fail`` (or anything else)
        makes it send the notification again."""
        body = protocol.NOTIFY_SUCCESS if accepted else protocol.NOTIFY_FAILURE
        return NotifyReply(status_code=200, body=body.encode("ascii"))

    # --- refund and close ------------------------------------------------------------------

    async def refund(self, merchant: MerchantConfig, request: RefundRequest) -> RefundResult:
        """Refund through the refund interface; ``mRefundSeq`` is our refund number, so the
        bank answers a repeated request with the first result instead of refunding twice."""
        order_no = _order_no(request.out_trade_no)
        refund_seq = _order_no(request.refund_no)
        if request.amount_fen <= 0:
            raise ValueError("a refund needs a positive amount")
        merchant_no = _setting(merchant, "merchantNo")
        refund_amount = protocol.yuan(request.amount_fen)
        signed = protocol.refund_signed(
            merchant_no, refund_seq, protocol.CUR_CODE_CNY, refund_amount, order_no
        )
        fields = {
            "merchantNo": merchant_no,
            "mRefundSeq": refund_seq,
            "curCode": protocol.CUR_CODE_CNY,
            "refundAmount": refund_amount,
            "orderNo": order_no,
            "signData": _sign(merchant, signed),
        }
        answer = await self._call(merchant, "refundPath", protocol.REFUND_PATH, fields)
        body = protocol.children_text(answer.body)
        if (body.get("orderNo"), body.get("mRefundSeq"), body.get("refundAmount")) != (
            order_no,
            refund_seq,
            refund_amount,
        ):
            raise PaymentError("BOC refund answer is about another refund")
        answer_signed = protocol.refund_answer_signed(
            merchant_no,
            order_no,
            refund_seq,
            body.get("refundSeq", ""),
            refund_amount,
            body.get("dealStatus", ""),
        )
        try:
            cms.verify(
                body.get("signData", ""), answer_signed, _bank_certificate(merchant, PaymentError)
            )
        except cms.SignatureError as exc:
            raise PaymentError(f"BOC refund answer signature: {exc}") from exc
        if body.get("dealStatus") not in (protocol.DEAL_ACCEPTED, protocol.DEAL_REFUSED):
            raise PaymentError(f"BOC refund: unknown dealStatus {body.get('dealStatus')!r}")
        return RefundResult(
            accepted=body["dealStatus"] == protocol.DEAL_ACCEPTED,
            provider_refund_no=body.get("refundSeq") or None,
            raw={**answer.header, **body},
        )

    async def close(self, merchant: MerchantConfig, out_trade_no: str) -> bool:
        """Cancel an unpaid order. The bank also cancels an order it has not seen yet, so a
        form the candidate still holds can no longer be paid; a paid order stays paid (False)."""
        order_no = _order_no(out_trade_no)
        merchant_no = _setting(merchant, "merchantNo")
        fields = {
            "merchantNo": merchant_no,
            "orderNo": order_no,
            "signData": _sign(merchant, protocol.cancel_signed(merchant_no, order_no)),
        }
        answer = await self._call(merchant, "cancelPath", protocol.CANCEL_PATH, fields)
        body = protocol.children_text(answer.body)
        if body.get("orderNo") != order_no:
            raise PaymentError("BOC cancel answer is about another order")
        status = body.get("orderStatus", "")
        try:
            cms.verify(
                body.get("signData", ""),
                protocol.cancel_answer_signed(merchant_no, order_no, status),
                _bank_certificate(merchant, PaymentError),
            )
        except cms.SignatureError as exc:
            raise PaymentError(f"BOC cancel answer signature: {exc}") from exc
        return status == OrderStatus.CANCELLED

    # --- sandbox ---------------------------------------------------------------------------

    def sandbox(self, notify_url: str) -> ASGIApp:
        """The sandbox bank (cashier, notification, query, refund, cancel) with test keys."""
        from cetgql_boc.sandbox import BocSandbox

        return BocSandbox(notify_url)

    def sandbox_merchant(self, sandbox_url: str) -> dict[str, str]:
        """The TEST-ONLY merchant the sandbox knows, pointed at the sandbox's address."""
        return {
            "merchantNo": sandbox_keys.SANDBOX_MERCHANT_NO,
            "merchantCert": sandbox_keys.pem(sandbox_keys.MERCHANT_CERT),
            "merchantKey": sandbox_keys.pem(sandbox_keys.MERCHANT_KEY),
            "bankCert": sandbox_keys.pem(sandbox_keys.BANK_CERT),
            "gatewayUrl": sandbox_url.rstrip("/"),
            "payPath": protocol.PAY_PATH,
            "queryPath": protocol.QUERY_PATH,
            "refundPath": protocol.REFUND_PATH,
            "cancelPath": protocol.CANCEL_PATH,
        }

    # --- transport -------------------------------------------------------------------------

    async def _call(
        self, merchant: MerchantConfig, path_setting: str, default_path: str, fields: dict[str, str]
    ) -> protocol.Answer:
        """POST a form to one bank interface and parse its XML answer.

        Whatever goes wrong on the way (refused connection, timeout, an HTTP error, an answer
        that is not the bank's XML, ``hdlSts`` other than A) is a PaymentError: the caller
        cannot know whether the bank acted, so the state stays unknown, never failed."""
        url = _url(merchant, path_setting, default_path)
        try:
            async with asyncio.timeout(self._timeout):
                async with httpx.AsyncClient(
                    timeout=self._timeout, transport=self._transport, verify=self._tls()
                ) as client:
                    response = await client.post(url, data=fields)
        except (httpx.HTTPError, httpx.InvalidURL, TimeoutError, OSError) as exc:
            raise PaymentError(f"BOC {default_path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise PaymentError(f"BOC {default_path}: HTTP {response.status_code}")
        try:
            answer = protocol.parse_answer(response.content)
        except ValueError as exc:
            raise PaymentError(f"BOC {default_path}: {exc}") from exc
        if not answer.ok:
            raise PaymentError(
                f"BOC {default_path} refused: hdlSts={answer.header.get('hdlSts')!r} "
                f"rtnCd={answer.header.get('rtnCd')!r} {answer.header.get('exception', '')}"
            )
        return answer


# --- helpers -------------------------------------------------------------------------------


def _setting(merchant: MerchantConfig, name: str) -> str:
    value = merchant.get(name).strip()
    if not value:
        raise PaymentError(f"BOC merchant setting {name} is empty")
    return value


def _url(merchant: MerchantConfig, path_setting: str, default_path: str) -> str:
    path = merchant.get(path_setting).strip() or default_path
    if path.startswith(("http://", "https://")):
        return path
    return f"{_setting(merchant, 'gatewayUrl').rstrip('/')}/{path.lstrip('/')}"


def _order_no(value: str) -> str:
    if not _ORDER_NO.fullmatch(value):
        raise ValueError(f"not usable as a BOC order or refund number: {value!r}")
    return value


def _sign(merchant: MerchantConfig, data: bytes) -> str:
    try:
        certificate = cms.load_certificate(_setting(merchant, "merchantCert"))
        key = cms.load_private_key(_setting(merchant, "merchantKey"))
        return cms.sign(data, certificate, key)
    except cms.CertificateError as exc:
        raise PaymentError(f"BOC merchant certificate or key: {exc}") from exc


def _bank_certificate(merchant: MerchantConfig, error: type[Exception]) -> x509.Certificate:
    """The configured bank certificate; a settings problem surfaces as ``error`` (the caller's
    contract: InvalidNotification for notifications, PaymentError for API calls)."""
    try:
        return cms.load_certificate(merchant.get("bankCert"))
    except cms.CertificateError as exc:
        raise error(f"BOC bank certificate setting: {exc}") from exc


def _notification_form(request: NotifyRequest) -> dict[str, str]:
    """The notification's fields. A URL-encoded body is parsed here, in the charset it declares
    (UTF-8 by default), and a field sent twice is refused rather than guessed at."""
    content_type = request.headers.get("content-type", request.headers.get("Content-Type", ""))
    if request.body and "multipart/" not in content_type.lower():
        charset = "utf-8"
        match = re.search(r"charset=\"?([A-Za-z0-9_\-]+)", content_type, re.IGNORECASE)
        if match:
            charset = match.group(1)
        try:
            pairs = parse_qsl(
                request.body.decode("latin-1"),
                keep_blank_values=True,
                encoding=charset,
                errors="strict",
            )
        except (ValueError, LookupError) as exc:
            raise InvalidNotification(f"malformed form body: {exc}") from exc
        form: dict[str, str] = {}
        for name, value in pairs:
            if name in form:
                raise InvalidNotification(f"field {name} sent twice")
            form[name] = value
        return form
    return dict(request.form)
