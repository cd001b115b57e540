"""The Alipay (支付宝) payment provider: OpenAPI gateway, RSA2 signatures, JSON answers.

Merchant side of the protocol. ``charge`` builds the signed ``alipay.trade.page.pay`` (or
``wap.pay``) form the browser posts to the gateway; ``query``, ``close`` and ``refund`` are
signed server-to-server calls whose answers are verified against the exact text Alipay signed;
``callback`` verifies the asynchronous notification Alipay posts to cetgql.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.types import ASGIApp

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
from cetgql_alipay import protocol, testkeys
from cetgql_alipay.protocol import ProtocolError

logger = logging.getLogger("cetgql_alipay")

# Business failures that say nothing final about the trade: Alipay asks callers to retry
# them (with the same out_request_no for refunds), so they leave the state unknown.
_RETRYABLE_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "AQC.SYSTEM_ERROR"})


@dataclass(frozen=True)
class AlipaySettings:
    """One province's Alipay merchant settings, checked once per use."""

    app_id: str
    app_private_key: str
    alipay_public_key: str
    gateway_url: str
    seller_id: str

    @classmethod
    def from_config(cls, merchant: MerchantConfig) -> AlipaySettings:
        """Raise ``ValueError`` naming the first missing setting."""
        values = {
            name: merchant.get(name).strip()
            for name in (
                "app_id",
                "app_private_key",
                "alipay_public_key",
                "gateway_url",
                "seller_id",
            )
        }
        for name in ("app_id", "app_private_key", "alipay_public_key"):
            if not values[name]:
                raise ValueError(f"Alipay setting {name!r} is empty")
        return cls(
            app_id=values["app_id"],
            app_private_key=values["app_private_key"],
            alipay_public_key=values["alipay_public_key"],
            gateway_url=values["gateway_url"] or protocol.PRODUCTION_GATEWAY,
            seller_id=values["seller_id"],
        )


def _utcnow() -> datetime:
    return datetime.now(UTC)


def trade_state(fields: Mapping[str, object]) -> TradeState | None:
    """Normalise Alipay's ``trade_status`` (from a query answer or a notification).

    Alipay has no "refunded" status: a paid trade refunded in full becomes TRADE_CLOSED, the
    same status as a trade closed unpaid (timeout or trade.close); a partial refund leaves it
    TRADE_SUCCESS. A paid trade cannot be closed any other way, so TRADE_CLOSED is REFUNDED
    when the same fields show the trade was paid (a refund total, a payment time, or the time
    funds reached the seller), and CLOSED otherwise. None for a status we do not know.
    """
    status = fields.get("trade_status")
    if status == protocol.WAIT_BUYER_PAY:
        return TradeState.PENDING
    if status in (protocol.TRADE_SUCCESS, protocol.TRADE_FINISHED):
        return TradeState.SUCCEEDED
    if status == protocol.TRADE_CLOSED:
        return TradeState.REFUNDED if _was_paid(fields) else TradeState.CLOSED
    return None


def _was_paid(fields: Mapping[str, object]) -> bool:
    refund_fee = fields.get("refund_fee")
    if isinstance(refund_fee, str) and refund_fee:
        try:
            if protocol.yuan_to_fen(refund_fee) > 0:
                return True
        except ProtocolError:
            pass
    return any(fields.get(name) for name in ("gmt_payment", "send_pay_date", "gmt_refund"))


class AlipayProvider:
    """cetgql's ``PaymentProvider`` for Alipay.

    ``transport`` and ``clock`` exist for tests (an in-process gateway, a fixed time); the
    defaults talk to the configured gateway over the network with the real time.
    """

    name = "alipay"
    display_name = "支付宝"
    settings_fields: tuple[SettingField, ...] = (
        SettingField("app_id", "应用 APPID (app_id)"),
        SettingField("app_private_key", "应用私钥 (RSA2, PEM)", secret=True, multiline=True),
        SettingField("alipay_public_key", "支付宝公钥 (PEM)", multiline=True),
        SettingField(
            "gateway_url",
            f"支付宝网关地址 (默认 {protocol.PRODUCTION_GATEWAY})",
            required=False,
        ),
        SettingField("seller_id", "卖家支付宝用户号 seller_id (2088 开头, 可选)", required=False),
    )

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._timeout = httpx.Timeout(timeout)
        self._transport = transport
        self._clock = clock

    # --- charge ----------------------------------------------------------------------------

    async def charge(self, merchant: MerchantConfig, request: ChargeRequest) -> ChargeResult:
        """The signed page.pay / wap.pay form for the browser to post to the gateway.

        No network call: Alipay creates the trade when the form arrives, and a form posted
        twice for one out_trade_no and amount reaches the same trade, so charging again is
        harmless. ``time_expire`` carries the order deadline, after which Alipay refuses to
        take the payment. Raises ``PaymentError`` when the merchant settings are unusable and
        ``ValueError`` for a request Alipay could never accept (amount, trade number).
        """
        settings = self._settings(merchant)
        if not protocol.OUT_TRADE_NO_RE.fullmatch(request.out_trade_no):
            raise ValueError(f"out_trade_no {request.out_trade_no!r} is not valid for Alipay")
        method = protocol.WAP_PAY if request.mobile else protocol.PAGE_PAY
        biz: dict[str, str] = {
            "out_trade_no": request.out_trade_no,
            "total_amount": protocol.fen_to_yuan(request.amount_fen),
            "subject": protocol.clean_subject(request.subject),
            "product_code": protocol.PRODUCT_CODES[method],
            "time_expire": protocol.format_time(request.expires_at),
        }
        if request.mobile and request.return_url:
            biz["quit_url"] = request.return_url  # where wap's "back" leaves the cashier
        params = self._signed(
            settings,
            method,
            biz,
            notify_url=request.notify_url,
            return_url=request.return_url,
        )
        return ChargeResult(
            redirect=Redirect(method="POST", url=settings.gateway_url, fields=tuple(params.items()))
        )

    # --- server-to-server calls ------------------------------------------------------------

    async def query(self, merchant: MerchantConfig, out_trade_no: str) -> TradeStatus:
        """``alipay.trade.query``. NOT_FOUND means Alipay has no trade under that number yet:
        the buyer never reached the cashier (a page.pay trade exists only from then on)."""
        settings = self._settings(merchant)
        answer = await self._call(settings, protocol.TRADE_QUERY, {"out_trade_no": out_trade_no})
        code, sub_code = answer.get("code"), answer.get("sub_code")
        if code == protocol.BUSINESS_FAILED and sub_code == protocol.TRADE_NOT_EXIST:
            return TradeStatus(out_trade_no=out_trade_no, state=TradeState.NOT_FOUND, raw=answer)
        if code != protocol.SUCCESS_CODE:
            raise PaymentError(_describe("alipay.trade.query", answer))
        if answer.get("out_trade_no") not in (None, out_trade_no):
            raise PaymentError("Alipay answered the query about another trade")
        state = trade_state(answer)
        if state is None:
            raise PaymentError(f"unknown Alipay trade_status {answer.get('trade_status')!r}")
        try:
            amount = _optional_fen(answer.get("total_amount"))
            paid_at = _optional_time(answer.get("send_pay_date"))
        except ProtocolError as exc:
            raise PaymentError(f"malformed Alipay query answer: {exc}") from exc
        return TradeStatus(
            out_trade_no=out_trade_no,
            state=state,
            amount_fen=amount,
            provider_trade_no=_optional_str(answer.get("trade_no")),
            paid_at=paid_at,
            raw=answer,
        )

    async def close(self, merchant: MerchantConfig, out_trade_no: str) -> bool:
        """``alipay.trade.close``: True when the trade is closed (now or already).

        False when Alipay has no such trade yet (the buyer never opened the cashier; the
        signed form stays payable until its time_expire) or the trade was paid."""
        settings = self._settings(merchant)
        answer = await self._call(settings, protocol.TRADE_CLOSE, {"out_trade_no": out_trade_no})
        code, sub_code = answer.get("code"), answer.get("sub_code")
        if code == protocol.SUCCESS_CODE:
            return True
        if code == protocol.BUSINESS_FAILED and sub_code == protocol.TRADE_NOT_EXIST:
            return False
        if code == protocol.BUSINESS_FAILED and sub_code == protocol.TRADE_STATUS_ERROR:
            # Already closed, or paid: only a query tells which.
            status = await self.query(merchant, out_trade_no)
            return status.state == TradeState.CLOSED
        if code == protocol.BUSINESS_FAILED and sub_code not in _RETRYABLE_SUB_CODES:
            logger.warning("Alipay refused to close %s: %s", out_trade_no, _describe("", answer))
            return False
        raise PaymentError(_describe("alipay.trade.close", answer))

    async def refund(self, merchant: MerchantConfig, request: RefundRequest) -> RefundResult:
        """``alipay.trade.refund`` with ``out_request_no`` = our refund number, which makes a
        repeated request the same refund (Alipay answers it again with fund_change "N").

        Alipay issues no refund number of its own (a refund is named by the trade and our
        out_request_no), so ``provider_refund_no`` stays None; the answer is in ``raw``."""
        settings = self._settings(merchant)
        if request.amount_fen > request.total_fen:
            raise ValueError("refund larger than the trade")
        biz = {
            "out_trade_no": request.out_trade_no,
            "refund_amount": protocol.fen_to_yuan(request.amount_fen),
            "out_request_no": request.refund_no,
            "refund_reason": protocol.clean_subject(request.reason),
        }
        answer = await self._call(settings, protocol.TRADE_REFUND, biz)
        code, sub_code = answer.get("code"), answer.get("sub_code")
        if code == protocol.SUCCESS_CODE:
            return RefundResult(accepted=True, raw=answer)
        if code == protocol.BUSINESS_FAILED and sub_code not in _RETRYABLE_SUB_CODES:
            logger.warning("Alipay refused refund %s: %s", request.refund_no, _describe("", answer))
            return RefundResult(accepted=False, raw=answer)
        raise PaymentError(_describe("alipay.trade.refund", answer))

    # --- notifications ---------------------------------------------------------------------

    async def callback(self, request: NotifyRequest, lookup: MerchantLookup) -> Notification:
        """Verify Alipay's ``trade_status_sync`` notification (a form POST).

        Order matters: the trade number is read from the unverified form only to find whose
        keys to verify with; nothing else is believed until the RSA2 signature (over every
        field but ``sign`` and ``sign_type``) checks out with that merchant's Alipay public
        key and the notification names that merchant's app_id (and seller_id when set)."""
        fields = _form_fields(request)
        out_trade_no = fields.get("out_trade_no", "")
        if not out_trade_no:
            raise InvalidNotification("no out_trade_no in the notification")
        merchant = await lookup(out_trade_no)
        if merchant is None:
            raise InvalidNotification(f"trade {out_trade_no!r} is not ours")
        try:
            settings = AlipaySettings.from_config(merchant)
        except ValueError as exc:
            raise InvalidNotification(f"merchant settings unusable: {exc}") from exc

        sign = fields.get("sign", "")
        if not sign:
            raise InvalidNotification("unsigned notification")
        if fields.get("sign_type", "RSA2") != "RSA2":
            # Never let the sender pick a weaker algorithm (RSA/SHA-1) than the one configured.
            raise InvalidNotification(f"sign_type {fields.get('sign_type')!r} is not RSA2")
        content = protocol.signing_string(fields, exclude=("sign", "sign_type"))
        try:
            valid = protocol.rsa2_verify(content, sign, settings.alipay_public_key)
        except ProtocolError as exc:
            raise InvalidNotification(f"Alipay public key unusable: {exc}") from exc
        if not valid:
            logger.warning("Alipay notification for %s: bad signature", out_trade_no)
            raise InvalidNotification("signature does not verify with the Alipay public key")

        if fields.get("app_id") != settings.app_id:
            raise InvalidNotification(f"notification names app_id {fields.get('app_id')!r}")
        if settings.seller_id and fields.get("seller_id") != settings.seller_id:
            raise InvalidNotification(f"notification names seller_id {fields.get('seller_id')!r}")
        if fields.get("notify_type", protocol.NOTIFY_TYPE) != protocol.NOTIFY_TYPE:
            raise InvalidNotification(f"unexpected notify_type {fields.get('notify_type')!r}")
        state = trade_state(fields)
        if state is None:
            raise InvalidNotification(f"unknown trade_status {fields.get('trade_status')!r}")
        try:
            amount = protocol.yuan_to_fen(fields.get("total_amount", ""))
            paid_at = _optional_time(fields.get("gmt_payment"))
        except ProtocolError as exc:
            raise InvalidNotification(str(exc)) from exc
        return Notification(
            out_trade_no=out_trade_no,
            state=state,
            amount_fen=amount,
            merchant_id=settings.app_id,
            provider_trade_no=fields.get("trade_no") or None,
            paid_at=paid_at,
            raw=dict(fields),
        )

    def reply(self, accepted: bool) -> NotifyReply:
        """The bare text ``success`` stops Alipay's retries (about 25 hours of them); anything
        else, here ``failure``, makes it try again later."""
        text = protocol.NOTIFY_ACCEPTED if accepted else protocol.NOTIFY_REFUSED
        return NotifyReply(status_code=200, body=text.encode("ascii"))

    # --- sandbox ---------------------------------------------------------------------------

    def sandbox(self, notify_url: str) -> ASGIApp:
        """The offline Alipay: gateway, cashier, notifications, query/close/refund."""
        from cetgql_alipay.sandbox import AlipaySandbox

        return AlipaySandbox(notify_url)

    def sandbox_merchant(self, sandbox_url: str) -> dict[str, str]:
        """Settings for the sandbox's test app, with its gateway at ``sandbox_url``."""
        return {
            "app_id": testkeys.SANDBOX_APP_ID,
            "app_private_key": testkeys.app_private_key(),
            "alipay_public_key": testkeys.alipay_public_key(),
            "gateway_url": sandbox_url.rstrip("/") + "/gateway.do",
            "seller_id": testkeys.SANDBOX_SELLER_ID,
        }

    # --- internals -------------------------------------------------------------------------

    def _settings(self, merchant: MerchantConfig) -> AlipaySettings:
        try:
            return AlipaySettings.from_config(merchant)
        except ValueError as exc:
            raise PaymentError(str(exc)) from exc

    def _signed(
        self,
        settings: AlipaySettings,
        method: str,
        biz: Mapping[str, str],
        *,
        notify_url: str = "",
        return_url: str = "",
    ) -> dict[str, str]:
        """The common parameters around ``biz_content``, signed with the app private key."""
        params = {
            "app_id": settings.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": protocol.format_time(self._clock()),
            "version": "1.0",
            "notify_url": notify_url,
            "return_url": return_url,
            "biz_content": protocol.compact_json(dict(biz)),
        }
        try:
            return protocol.sign_params(params, settings.app_private_key)
        except ProtocolError as exc:
            raise PaymentError(f"Alipay app private key unusable: {exc}") from exc

    async def _call(
        self, settings: AlipaySettings, method: str, biz: Mapping[str, str]
    ) -> dict[str, object]:
        """POST one signed request to the gateway and return its verified ``*_response``.

        Like Alipay's own SDKs, the common parameters travel in the query string and
        ``biz_content`` in the form body. Anything short of a well-formed answer whose
        signature verifies (transport errors, timeouts, HTTP errors, unsigned or badly
        signed answers) raises ``PaymentError``: the outcome is unknown, not failed."""
        params = self._signed(settings, method, biz)
        body = urlencode({"biz_content": params.pop("biz_content")}).encode("utf-8")
        try:
            async with httpx.AsyncClient(
                timeout=self._timeout, transport=self._transport
            ) as client:
                response = await client.post(
                    settings.gateway_url,
                    params=params,
                    content=body,
                    headers={
                        "Content-Type": "application/x-www-form-urlencoded;charset=utf-8",
                        "Accept": "application/json",
                    },
                )
        except httpx.HTTPError as exc:
            raise PaymentError(f"{method}: Alipay gateway unreachable ({exc!r})") from exc
        if response.status_code != 200:
            raise PaymentError(f"{method}: Alipay gateway answered HTTP {response.status_code}")
        try:
            text = response.content.decode("utf-8")
            members = protocol.top_level_members(text)
        except (UnicodeDecodeError, ProtocolError) as exc:
            raise PaymentError(f"{method}: unreadable Alipay answer ({exc})") from exc
        key = protocol.response_key(method)
        if key not in members:
            _, error = members.get("error_response", ("", {}))
            detail = _describe(method, error) if isinstance(error, dict) else method
            raise PaymentError(f"{detail}: no {key} in the answer")
        inner_text, answer = members[key]
        if not isinstance(answer, dict):
            raise PaymentError(f"{method}: {key} is not an object")
        sign = members.get("sign", ("", None))[1]
        if not isinstance(sign, str) or not sign:
            # Alipay leaves an answer unsigned only when it could not tell which app asked.
            raise PaymentError(f"{_describe(method, answer)} (unsigned answer)")
        try:
            valid = protocol.rsa2_verify(inner_text, sign, settings.alipay_public_key)
        except ProtocolError as exc:
            raise PaymentError(f"Alipay public key unusable: {exc}") from exc
        if not valid:
            raise PaymentError(f"{method}: the answer's signature does not verify")
        return answer


def _form_fields(request: NotifyRequest) -> dict[str, str]:
    """The notification's form fields: the host's parse when it made one, else the raw body
    (Alipay posts application/x-www-form-urlencoded in UTF-8, as charset=utf-8 asked)."""
    if request.form:
        return {str(k): str(v) for k, v in request.form.items()}
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidNotification("notification body is not UTF-8") from exc
    return dict(parse_qsl(text, keep_blank_values=True))


def _describe(method: str, answer: Mapping[str, object]) -> str:
    parts = [
        str(answer.get(name)) for name in ("code", "msg", "sub_code", "sub_msg") if answer.get(name)
    ]
    prefix = f"{method}: " if method else ""
    return prefix + (" ".join(parts) or "no code in the answer")


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _optional_fen(value: object) -> int | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"amount {value!r} is not a string")
    return protocol.yuan_to_fen(value)


def _optional_time(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"time {value!r} is not a string")
    return protocol.parse_time(value)
