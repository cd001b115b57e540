"""China Merchants Bank 一网通支付 (招商银行一网通) as a cetgql payment provider.

The wire protocol, as CMB publishes it for 一网通 (H5 and PC cashier):

* Every merchant request is one form field, ``jsonRequestData``, holding the JSON envelope
  ``{version: "1.0", charset: "UTF-8", signType: "SHA-256", sign, reqData}``; ``sign`` is the
  SHA-256 of ``reqData`` and the merchant key (see :mod:`cetgql_cmb.signing`).
* Pay: the browser posts that form to the cashier, ``{netpay}/netpayment/BaseHttp.dll?PC_EUserPay``
  (``MB_EUserPay`` for phones). Nothing is created at the bank before the cardholder pays.
* The payment notice (``noticeType: "BKPAYRTN"``) is posted by the bank to ``payNoticeUrl``,
  signed with the bank's RSA key; CMB counts any HTTP 200 as delivered and retries otherwise.
* Server-to-server calls go to ``{merchserv}/merchserv/BaseHttp.dll?<command>`` and answer
  ``{version, charset, signType, sign, rspData}`` with ``rspData.rspCode == "SUC0000"`` on
  success: ``QuerySingleOrder``, ``DoRefundV2``, ``QuerySettledRefundV2`` and ``CloseOrder``.

Orders at CMB are keyed by merchant, order *date* and order number, and the bank needs the
date for every query and refund. cetgql only hands the trade number to ``query``/``refund``/
``close``, so the order date is the Beijing date of ``ChargeRequest.created_at`` and later
calls look it up by asking for today and the previous ``query_lookback_days`` days.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from types import MappingProxyType
from urllib.parse import parse_qs

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
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
from cetgql_cmb.signing import (
    RsaAlgorithm,
    load_public_key,
    rsa_verify,
    sandbox_bank_public_key_pem,
    sha256_sign,
    sha256_verify,
    string_fields,
)

# China has kept UTC+8 without daylight saving since 1991; a fixed offset needs no tz database.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

PRODUCTION_NETPAY_URL = "https://netpay.cmbchina.com"
PRODUCTION_MERCHSERV_URL = "https://merchserv.netpay.cmbchina.com"

PAY_PC = "netpayment/BaseHttp.dll?PC_EUserPay"
PAY_MOBILE = "netpayment/BaseHttp.dll?MB_EUserPay"
QUERY_ORDER = "merchserv/BaseHttp.dll?QuerySingleOrder"
REFUND = "merchserv/BaseHttp.dll?DoRefundV2"
QUERY_REFUNDS = "merchserv/BaseHttp.dll?QuerySettledRefundV2"
# Not in CMB's published 一网通 list (an order only exists at the bank once it is paid); the
# sandbox implements it, see the README.
CLOSE_ORDER = "merchserv/BaseHttp.dll?CloseOrder"

VERSION = "1.0"
CHARSET = "UTF-8"
REQUEST_SIGN_TYPE = "SHA-256"
NOTICE_SIGN_TYPE = "RSA"
NOTICE_TYPE_PAID = "BKPAYRTN"

RSP_OK = "SUC0000"
RSP_BAD_SIGNATURE = "MSS3411"  # 签名错误
RSP_DUPLICATE_REFUND = "MSS3202"  # 重复的退款请求
RSP_REFUND_FAILED = "MSS3804"  # 退款失败
# "No such order": CMB's code is not in the public documentation we had; the sandbox answers
# MSS3101. Any other error code leaves the state unknown (PaymentError), which is the safe side.
ORDER_NOT_FOUND_CODES = frozenset({"MSS3101"})

# QuerySingleOrder ``orderStatus`` -> our state. 2 (部分结帐) and 8 (冻结交易部分结帐) belong to
# pre-authorisation, which this integration never starts: they raise PaymentError.
ORDER_STATUS: Mapping[str, TradeState] = MappingProxyType(
    {
        "0": TradeState.SUCCEEDED,  # 已结帐: paid
        "7": TradeState.SUCCEEDED,  # 冻结交易，冻结金额已全部结帐: paid in full
        "4": TradeState.PENDING,  # 未结帐: accepted, not settled yet
        "6": TradeState.PENDING,  # 未知状态/订单失败: unknown is never "failed"
        "1": TradeState.CLOSED,  # 已撤销: cancelled (also a closed order in the sandbox)
    }
)

# The statuses under which the answer's settle time is when the candidate paid.
PAID_STATUSES = frozenset(
    code for code, state in ORDER_STATUS.items() if state is TradeState.SUCCEEDED
)

# QuerySettledRefundV2 row status: done, or accepted and being processed.
REFUND_DONE = frozenset({"210", "240"})  # 已直接退款, 已授权退款
REFUND_ACCEPTED = frozenset({"219", "249"})  # 直接退款已受理, 授权退款已受理

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
QUERY_LOOKBACK_DAYS = 3
_ORDER_NO = re.compile(r"[0-9A-Za-z]{1,32}")
_YUAN = re.compile(r"(0|[1-9][0-9]{0,11})(?:\.([0-9]{1,2}))?")
_REFUND_SERIAL_MAX = 20
_DESC_MAX_BYTES = 100

SETTINGS_FIELDS: tuple[SettingField, ...] = (
    SettingField("branchNo", "分行号（4 位数字）"),
    SettingField("merchantNo", "商户号（6 位数字）"),
    SettingField("merchantKey", "商户支付密钥（SHA-256 签名用）", secret=True),
    SettingField(
        "bankPublicKey", "招行公钥（PEM，或“查询招行公钥”接口返回的 Base64）", multiline=True
    ),
    SettingField(
        "bankSignAlgorithm",
        "招行 RSA 签名算法：SHA1withRSA 或 SHA256withRSA（留空为 SHA1withRSA）",
        required=False,
    ),
    SettingField("netpayUrl", f"支付网关地址（留空为 {PRODUCTION_NETPAY_URL}）", required=False),
    SettingField(
        "merchservUrl", f"商户服务地址（留空为 {PRODUCTION_MERCHSERV_URL}）", required=False
    ),
)


# --- values at the wire -------------------------------------------------------------------


def beijing(moment: datetime) -> datetime:
    """``moment`` in Beijing time; a naive datetime is taken as UTC (cetgql stores UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BEIJING)


def format_datetime(moment: datetime) -> str:
    return beijing(moment).strftime("%Y%m%d%H%M%S")


def format_date(day: date) -> str:
    return day.strftime("%Y%m%d")


def parse_datetime(text: str) -> datetime | None:
    """``yyyyMMddHHmmss`` in Beijing time, or None."""
    if len(text) != 14 or not text.isdigit():
        return None
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None


def parse_date(text: str) -> date | None:
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


def fen_to_yuan(fen: int) -> str:
    """Integer fen to CMB's ``"xxxx.xx"`` yuan string, without floating point."""
    if fen < 0:
        raise ValueError("a negative amount")
    return f"{fen // 100}.{fen % 100:02d}"


def yuan_to_fen(text: str) -> int | None:
    """CMB's yuan string to integer fen; None unless it is a plain decimal with at most two
    decimals (no sign, exponent, spaces or thousands separators)."""
    match = _YUAN.fullmatch(text)
    if match is None:
        return None
    whole, decimals = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(decimals)


def expire_minutes(now: datetime, expires_at: datetime) -> int:
    """``expireTimeSpan``: whole minutes from now until the order deadline, rounded down so
    the bank never accepts payment later than we do, and at least 1 (CMB's minimum)."""
    remaining = beijing(expires_at) - beijing(now)
    if remaining <= timedelta(0):
        raise PaymentError("the order deadline has passed; it can no longer be paid")
    return max(1, int(remaining.total_seconds()) // 60)


def refund_serial(refund_no: str) -> str:
    """CMB's ``refundSerialNo`` allows 20 characters. cetgql's refund numbers fit as they are;
    a longer one becomes a stable 20-character digest, so a retry reuses the same serial."""
    if len(refund_no) <= _REFUND_SERIAL_MAX and _ORDER_NO.fullmatch(refund_no):
        return refund_no
    return hashlib.sha256(refund_no.encode()).hexdigest()[:_REFUND_SERIAL_MAX]


def _clip_utf8(text: str, limit: int) -> str:
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode(errors="ignore")


def request_envelope(req_data: Mapping[str, str], merchant_key: str) -> dict[str, object]:
    """The signed envelope of every merchant request."""
    return {
        "version": VERSION,
        "charset": CHARSET,
        "signType": REQUEST_SIGN_TYPE,
        "sign": sha256_sign(req_data, merchant_key),
        "reqData": dict(req_data),
    }


def dump_json(document: Mapping[str, object]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class RefundRecord:
    """One row of ``QuerySettledRefundV2``'s ``dataList``."""

    merchant_serial_no: str
    bank_serial_no: str
    status: str
    amount_fen: int


_REFUND_COLUMNS = {
    "merchant_serial_no": ("merchantSerialNo", "refundSerialNo"),
    "bank_serial_no": ("bankSerialNo", "refundBankSerialNo"),
    "status": ("orderStatus", "refundStatus", "status"),
    "amount": ("amount", "refundAmount"),
}


def _split_row(line: str) -> list[str]:
    # Fields are separated by a comma and a backquote (",`"); a leading backquote may remain.
    return [cell.strip().lstrip("`").strip() for cell in line.split(",`")]


def parse_refund_list(data_list: str) -> list[RefundRecord]:
    """Parse ``dataList``: one record per ``\\r\\n``-terminated line, the first line a header
    of field names. Columns are found by name, not position; ValueError if one is missing."""
    lines = [line for line in re.split(r"\r?\n", data_list) if line.strip()]
    if not lines:
        return []
    header = _split_row(lines[0])
    index: dict[str, int] = {}
    for name, spellings in _REFUND_COLUMNS.items():
        found = next((header.index(s) for s in spellings if s in header), None)
        if found is None and name != "bank_serial_no":
            raise ValueError(f"refund list without a {spellings[0]} column: {lines[0]!r}")
        if found is not None:
            index[name] = found
    records: list[RefundRecord] = []
    for line in lines[1:]:
        cells = _split_row(line)
        if len(cells) < len(header):
            raise ValueError(f"short refund record: {line!r}")
        amount = yuan_to_fen(cells[index["amount"]])
        if amount is None:
            raise ValueError(f"bad refund amount in {line!r}")
        records.append(
            RefundRecord(
                merchant_serial_no=cells[index["merchant_serial_no"]],
                bank_serial_no=cells[index["bank_serial_no"]] if "bank_serial_no" in index else "",
                status=cells[index["status"]],
                amount_fen=amount,
            )
        )
    return records


# --- merchant settings ----------------------------------------------------------------------


@dataclass(frozen=True)
class Merchant:
    """A province's CMB settings, checked and parsed."""

    branch_no: str
    merchant_no: str
    key: str
    bank_key: rsa.RSAPublicKey
    algorithm: RsaAlgorithm
    netpay_url: str
    merchserv_url: str

    @property
    def merchant_id(self) -> str:
        """How CMB itself names a merchant (e.g. in ``noticeSerialNo``): branch + merchant."""
        return f"{self.branch_no}{self.merchant_no}"

    @classmethod
    def from_config(cls, config: MerchantConfig) -> Merchant:
        """ValueError naming the setting that is wrong."""
        branch_no = config.get("branchNo").strip()
        merchant_no = config.get("merchantNo").strip()
        key = config.get("merchantKey")
        if not (len(branch_no) == 4 and branch_no.isdigit()):
            raise ValueError("branchNo must be 4 digits")
        if not (len(merchant_no) == 6 and merchant_no.isdigit()):
            raise ValueError("merchantNo must be 6 digits")
        if not key:
            raise ValueError("merchantKey is missing")
        try:
            bank_key = load_public_key(config.get("bankPublicKey"))
        except ValueError as exc:
            raise ValueError(f"bankPublicKey: {exc}") from exc
        algorithm_name = config.get("bankSignAlgorithm").strip() or RsaAlgorithm.SHA1.value
        try:
            algorithm = RsaAlgorithm(algorithm_name)
        except ValueError as exc:
            raise ValueError("bankSignAlgorithm must be SHA1withRSA or SHA256withRSA") from exc
        return cls(
            branch_no=branch_no,
            merchant_no=merchant_no,
            key=key,
            bank_key=bank_key,
            algorithm=algorithm,
            netpay_url=_base_url(config, "netpayUrl", PRODUCTION_NETPAY_URL),
            merchserv_url=_base_url(config, "merchservUrl", PRODUCTION_MERCHSERV_URL),
        )


def _base_url(config: MerchantConfig, name: str, default: str) -> str:
    url = (config.get(name).strip() or default).rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"{name} is not an http(s) URL: {url!r}")
    return url


def _merchant(config: MerchantConfig) -> Merchant:
    try:
        return Merchant.from_config(config)
    except ValueError as exc:
        raise PaymentError(f"CMB merchant settings: {exc}") from exc


def _order_no(out_trade_no: str) -> str:
    if not _ORDER_NO.fullmatch(out_trade_no):
        raise PaymentError(f"CMB order numbers are 1-32 letters or digits: {out_trade_no!r}")
    return out_trade_no


# --- the provider ---------------------------------------------------------------------------


class CmbProvider:
    """招商银行一网通. Stateless: everything it knows comes from the merchant settings, the
    bank's answers and the clock, so any number of cetgql processes can share it."""

    name = "cmb"
    display_name = "招商银行"
    settings_fields = SETTINGS_FIELDS

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        clock: Callable[[], datetime] | None = None,
        query_lookback_days: int = QUERY_LOOKBACK_DAYS,
    ) -> None:
        self._transport = transport
        self._timeout = timeout
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lookback = query_lookback_days

    # charge -----------------------------------------------------------------------------

    async def charge(self, merchant: MerchantConfig, request: ChargeRequest) -> ChargeResult:
        """The cashier form. Nothing is sent to the bank here: the bank creates the order when
        the browser posts the form, keyed by (date, orderNo), so posting it again (or building
        it again for the same trade) is the same order."""
        m = _merchant(merchant)
        if request.amount_fen <= 0:
            raise PaymentError("CMB cannot charge a zero or negative amount")
        now = self._clock()
        req_data = {
            "dateTime": format_datetime(now),
            "branchNo": m.branch_no,
            "merchantNo": m.merchant_no,
            "date": format_date(beijing(request.created_at).date()),
            "orderNo": _order_no(request.out_trade_no),
            "amount": fen_to_yuan(request.amount_fen),
            "expireTimeSpan": str(expire_minutes(now, request.expires_at)),
            "payNoticeUrl": request.notify_url,
            "returnUrl": request.return_url,
        }
        envelope = request_envelope(req_data, m.key)
        url = f"{m.netpay_url}/{PAY_MOBILE if request.mobile else PAY_PC}"
        return ChargeResult(
            redirect=Redirect(
                method="POST", url=url, fields=(("jsonRequestData", dump_json(envelope)),)
            )
        )

    # query ------------------------------------------------------------------------------

    async def query(self, merchant: MerchantConfig, out_trade_no: str) -> TradeStatus:
        m = _merchant(merchant)
        order_no = _order_no(out_trade_no)
        found = await self._find_order(m, order_no)
        if found is None:
            return TradeStatus(out_trade_no=out_trade_no, state=TradeState.NOT_FOUND)
        order_date, rsp = found
        code = rsp.get("orderStatus", "")
        state = ORDER_STATUS.get(code)
        if state is None:
            raise PaymentError(f"CMB orderStatus {code!r} is not one this integration expects")
        amount = yuan_to_fen(rsp.get("orderAmount") or rsp.get("amount", ""))
        raw: dict[str, object] = dict(rsp)
        if state is TradeState.SUCCEEDED:
            refunds = await self._refunds(m, order_no, order_date)
            refunded = sum(r.amount_fen for r in refunds if r.status in REFUND_DONE)
            raw["refundedFen"] = refunded
            if amount is not None and refunded >= amount > 0:
                state = TradeState.REFUNDED
        paid_at = parse_datetime(rsp.get("settleDate", "") + rsp.get("settleTime", ""))
        if paid_at is None:
            paid_at = parse_datetime(rsp.get("bankDate", "") + rsp.get("bankTime", ""))
        return TradeStatus(
            out_trade_no=out_trade_no,
            state=state,
            amount_fen=amount,
            provider_trade_no=rsp.get("bankSerialNo") or None,
            paid_at=paid_at.astimezone(UTC) if paid_at and code in PAID_STATUSES else None,
            raw=raw,
        )

    async def _find_order(self, m: Merchant, order_no: str) -> tuple[str, dict[str, str]] | None:
        """Ask for the order on each candidate date, newest first; (date, rspData) or None."""
        today = beijing(self._clock()).date()
        for days_back in range(self._lookback + 1):
            order_date = format_date(today - timedelta(days=days_back))
            rsp = await self._call(
                m,
                QUERY_ORDER,
                {
                    "dateTime": format_datetime(self._clock()),
                    "branchNo": m.branch_no,
                    "merchantNo": m.merchant_no,
                    "type": "B",  # by merchant order date and number
                    "bankSerialNo": "",  # only for type A; sent empty, and signed empty
                    "date": order_date,
                    "orderNo": order_no,
                },
            )
            code = rsp.get("rspCode", "")
            if code == RSP_OK:
                if rsp.get("orderNo", order_no) != order_no:
                    raise PaymentError("CMB answered about another order")
                return order_date, rsp
            if code not in ORDER_NOT_FOUND_CODES:
                raise PaymentError(f"CMB QuerySingleOrder: {code} {rsp.get('rspMsg', '')}")
        return None

    async def _refunds(self, m: Merchant, order_no: str, order_date: str) -> list[RefundRecord]:
        rsp = await self._call(
            m,
            QUERY_REFUNDS,
            {
                "dateTime": format_datetime(self._clock()),
                "branchNo": m.branch_no,
                "merchantNo": m.merchant_no,
                "type": "C",  # every refund of the order
                "orderNo": order_no,
                "date": order_date,
                "merchantSerialNo": "",
                "bankSerialNo": "",
            },
        )
        code = rsp.get("rspCode", "")
        if code in ORDER_NOT_FOUND_CODES:
            return []
        if code != RSP_OK:
            raise PaymentError(f"CMB QuerySettledRefundV2: {code} {rsp.get('rspMsg', '')}")
        try:
            return parse_refund_list(rsp.get("dataList", ""))
        except ValueError as exc:
            raise PaymentError(f"CMB QuerySettledRefundV2: {exc}") from exc

    # notification -----------------------------------------------------------------------

    async def callback(self, request: NotifyRequest, lookup: MerchantLookup) -> Notification:
        document = _notice_document(request)
        try:
            notice = string_fields(document.get("noticeData"))
        except ValueError as exc:
            raise InvalidNotification(f"malformed noticeData: {exc}") from exc
        order_no = notice.get("orderNo", "")
        if not _ORDER_NO.fullmatch(order_no):
            raise InvalidNotification(f"the notice names no valid orderNo: {order_no[:40]!r}")
        config = await lookup(order_no)
        if config is None:
            raise InvalidNotification(f"unknown trade {order_no!r}")
        try:
            m = Merchant.from_config(config)
        except ValueError as exc:
            raise InvalidNotification(f"cannot verify, merchant settings: {exc}") from exc
        sign = document.get("sign")
        if document.get("signType") != NOTICE_SIGN_TYPE or not isinstance(sign, str):
            raise InvalidNotification("the notice is not RSA-signed")
        if not rsa_verify(notice, m.bank_key, m.algorithm, sign):
            raise InvalidNotification("bad signature")
        if notice.get("branchNo") != m.branch_no or notice.get("merchantNo") != m.merchant_no:
            raise InvalidNotification("the notice is for another merchant")
        if notice.get("noticeType") != NOTICE_TYPE_PAID:
            raise InvalidNotification(f"unexpected noticeType {notice.get('noticeType')!r}")
        amount = yuan_to_fen(notice.get("amount", ""))
        if amount is None or amount <= 0:
            raise InvalidNotification(f"malformed amount {notice.get('amount')!r}")
        paid_at = parse_datetime(notice.get("dateTime", ""))
        return Notification(
            out_trade_no=order_no,
            state=TradeState.SUCCEEDED,
            amount_fen=amount,
            merchant_id=m.merchant_id,
            provider_trade_no=notice.get("bankSerialNo") or None,
            paid_at=paid_at.astimezone(UTC) if paid_at else None,
            raw=document,
        )

    def reply(self, accepted: bool) -> NotifyReply:
        """CMB treats HTTP 200 as delivered and anything else as a failure to retry; the JSON
        body, in CMB's own rspCode style, is for people reading logs."""
        if accepted:
            return NotifyReply(200, b'{"rspCode":"SUC0000","rspMsg":"OK"}', "application/json")
        return NotifyReply(400, b'{"rspCode":"FAIL","rspMsg":"rejected"}', "application/json")

    # refund and close -------------------------------------------------------------------

    async def refund(self, merchant: MerchantConfig, request: RefundRequest) -> RefundResult:
        """``DoRefundV2`` under ``refundSerialNo`` = our refund number: the bank refuses a
        second refund with the same serial (MSS3202), and the refund list then confirms the
        first one, which makes retries idempotent."""
        m = _merchant(merchant)
        order_no = _order_no(request.out_trade_no)
        if request.amount_fen <= 0:
            raise PaymentError("CMB cannot refund a zero or negative amount")
        found = await self._find_order(m, order_no)
        if found is None:
            return RefundResult(accepted=False, raw={"reason": "the bank has no such paid order"})
        order_date, _order = found
        serial = refund_serial(request.refund_no)
        rsp = await self._call(
            m,
            REFUND,
            {
                "dateTime": format_datetime(self._clock()),
                "branchNo": m.branch_no,
                "merchantNo": m.merchant_no,
                "date": order_date,
                "orderNo": order_no,
                "refundSerialNo": serial,
                "amount": fen_to_yuan(request.amount_fen),
                "desc": _clip_utf8(request.reason, _DESC_MAX_BYTES),
            },
        )
        code = rsp.get("rspCode", "")
        if code == RSP_OK:
            return RefundResult(
                accepted=True, provider_refund_no=rsp.get("bankSerialNo") or None, raw=rsp
            )
        if code == RSP_DUPLICATE_REFUND:
            for record in await self._refunds(m, order_no, order_date):
                if record.merchant_serial_no == serial and (
                    record.status in REFUND_DONE or record.status in REFUND_ACCEPTED
                ):
                    return RefundResult(
                        accepted=True,
                        provider_refund_no=record.bank_serial_no or None,
                        raw={**rsp, "confirmedBy": "QuerySettledRefundV2"},
                    )
            raise PaymentError(f"CMB says refund {serial} exists but does not list it as done")
        return RefundResult(accepted=False, raw=rsp)

    async def close(self, merchant: MerchantConfig, out_trade_no: str) -> bool:
        """``CloseOrder``: True when the bank will refuse to take payment for the order from
        now on; False when it cannot be closed (e.g. it is paid)."""
        m = _merchant(merchant)
        order_no = _order_no(out_trade_no)
        rsp = await self._call(
            m,
            CLOSE_ORDER,
            {
                "dateTime": format_datetime(self._clock()),
                "branchNo": m.branch_no,
                "merchantNo": m.merchant_no,
                "date": format_date(beijing(self._clock()).date()),
                "orderNo": order_no,
            },
        )
        return rsp.get("rspCode") == RSP_OK

    # transport --------------------------------------------------------------------------

    async def _call(self, m: Merchant, command: str, req_data: Mapping[str, str]) -> dict[str, str]:
        """POST a signed request and return the verified ``rspData``. Anything short of a
        well-formed, correctly signed answer is a PaymentError: the state stays unknown."""
        url = f"{m.merchserv_url}/{command}"
        name = command.rpartition("?")[2]
        form = {"jsonRequestData": dump_json(request_envelope(req_data, m.key))}
        try:
            async with httpx.AsyncClient(
                transport=self._transport, timeout=self._timeout
            ) as client:
                response = await client.post(url, data=form)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise PaymentError(f"CMB {name}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise PaymentError(f"CMB {name}: HTTP {response.status_code}")
        try:
            document = json.loads(response.content)
        except ValueError as exc:
            raise PaymentError(f"CMB {name}: the answer is not JSON") from exc
        return verify_answer(document, m, name)

    # demo mode --------------------------------------------------------------------------

    def sandbox(self, notify_url: str) -> ASGIApp:
        from cetgql_cmb.sandbox import CmbSandbox  # the sandbox imports this module

        return CmbSandbox(notify_url)

    def sandbox_merchant(self, sandbox_url: str) -> dict[str, str]:
        from cetgql_cmb.sandbox import (
            SANDBOX_BRANCH_NO,
            SANDBOX_MERCHANT_KEY,
            SANDBOX_MERCHANT_NO,
        )

        base = sandbox_url.rstrip("/")
        return {
            "branchNo": SANDBOX_BRANCH_NO,
            "merchantNo": SANDBOX_MERCHANT_NO,
            "merchantKey": SANDBOX_MERCHANT_KEY,
            "bankPublicKey": sandbox_bank_public_key_pem(),
            "bankSignAlgorithm": RsaAlgorithm.SHA256.value,
            "netpayUrl": base,
            "merchservUrl": base,
        }


def verify_answer(document: object, m: Merchant, name: str = "answer") -> dict[str, str]:
    """The ``rspData`` of a bank answer once its signature checks out. CMB documents answers
    signed like requests (``SHA-256`` with the merchant key); the sandbox signs them with the
    bank's RSA key. Both prove the bank wrote them; the declared type picks the check, and an
    unsigned or unknown type is refused."""
    if not isinstance(document, dict):
        raise PaymentError(f"CMB {name}: the answer is not a JSON object")
    try:
        rsp = string_fields(document.get("rspData"))
    except ValueError as exc:
        raise PaymentError(f"CMB {name}: malformed rspData: {exc}") from exc
    sign, sign_type = document.get("sign"), document.get("signType")
    if not isinstance(sign, str) or not sign:
        raise PaymentError(
            f"CMB {name}: unsigned answer ({rsp.get('rspCode', '')} {rsp.get('rspMsg', '')})"
        )
    if sign_type == NOTICE_SIGN_TYPE:
        valid = rsa_verify(rsp, m.bank_key, m.algorithm, sign)
    elif sign_type == REQUEST_SIGN_TYPE:
        valid = sha256_verify(rsp, m.key, sign)
    else:
        raise PaymentError(f"CMB {name}: unknown signType {sign_type!r}")
    if not valid:
        raise PaymentError(f"CMB {name}: the answer's signature does not check out")
    return rsp


def _notice_document(request: NotifyRequest) -> dict[str, object]:
    """The notice envelope from the form field ``jsonRequestData`` or from a JSON body."""
    text = request.form.get("jsonRequestData")
    if text is None:
        body = request.body.lstrip()
        if body.startswith(b"{"):
            raw: bytes | str = body
        else:
            try:
                values = parse_qs(body.decode(), strict_parsing=False).get("jsonRequestData")
            except UnicodeDecodeError as exc:
                raise InvalidNotification("the notice is not UTF-8") from exc
            if not values:
                raise InvalidNotification("no jsonRequestData in the notice")
            raw = values[0]
    else:
        raw = text
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise InvalidNotification("the notice is not JSON") from exc
    if not isinstance(document, dict):
        raise InvalidNotification("the notice is not a JSON object")
    return document
