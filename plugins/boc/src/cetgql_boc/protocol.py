"""BOC B2C wire format shared by the provider (merchant side) and the sandbox (bank side).

Everything both ends must agree on lives here, once: interface paths, field names, the exact
strings ``signData`` covers, amounts, times, status codes and the XML answers. A change to the
protocol is a change to this module, and the tests then exercise both ends against it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from xml.etree import ElementTree as ET

# China has kept UTC+8 without daylight saving since 1991, so a fixed offset is exact for every
# time this system handles and needs no tz database on the host (Windows has none by default).
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

TIME_FORMAT = "%Y%m%d%H%M%S"  # orderTime, orderTimeoutDate, payTime
PAY_TYPE_B2C = "1"
CUR_CODE_CNY = "001"
CHARSET = "utf-8"

# Interface paths below the gateway base URL. The pay and query names are the bank's; refund
# and cancel follow the same B2C style. A province whose BOC branch publishes other names sets
# them in the merchant settings (see provider.SETTINGS_FIELDS).
PAY_PATH = "RecvOrder.do"
QUERY_PATH = "CommonQueryOrder.do"
REFUND_PATH = "B2CRefund.do"
CANCEL_PATH = "B2CCancelOrder.do"

# What cetgql's notify endpoint answers. BOC's gateway looks only for a 200 with this body; any
# other answer (or none) makes it send the notification again.
NOTIFY_SUCCESS = "success"
NOTIFY_FAILURE = "fail"

# An extra, unsigned field of the pay form: where the sandbox sends the browser after the
# cashier. The real gateway ignores fields it does not know and posts the browser to orderUrl.
RETURN_URL_FIELD = "returnUrl"

HDL_OK = "A"  # hdlSts: the request was handled
HDL_FAILED = "B"  # hdlSts: the request was refused (rtnCd and exception say why)

DEAL_ACCEPTED = "0"  # refund dealStatus: the refund is done
DEAL_REFUSED = "1"  # refund dealStatus: the refund is refused (rtnCd says why)

# Return codes (rtnCd) of this implementation; the bank documents its own per branch.
RTN_BAD_SIGNATURE = "E0001"
RTN_UNKNOWN_MERCHANT = "E0002"
RTN_BAD_REQUEST = "E0003"
RTN_NOT_PAID = "E0101"
RTN_AMOUNT_EXCEEDED = "E0102"
RTN_REFUND_SEQ_REUSED = "E0103"
RTN_UNKNOWN_ORDER = "E0104"


class OrderStatus(StrEnum):
    """``orderStatus`` of notifications and queries."""

    UNPROCESSED = "0"
    PAID = "1"
    CANCELLED = "2"
    REFUNDED = "3"
    UNKNOWN = "4"
    FAILED = "5"


# Field order of the pay form (also the order the sandbox's cashier expects to read them).
PAY_FIELDS = (
    "merchantNo",
    "payType",
    "orderNo",
    "curCode",
    "orderAmount",
    "orderTime",
    "orderNote",
    "orderUrl",
    "orderTimeoutDate",
    "signData",
)

# The fields of a notification and of a queried <orderTrans>, in the order signData covers.
NOTIFY_SIGNED_FIELDS = (
    "merchantNo",
    "orderNo",
    "orderSeq",
    "cardTyp",
    "payTime",
    "orderStatus",
    "payAmount",
)


def _joined(values: Iterable[str]) -> bytes:
    return "|".join(values).encode(CHARSET)


def pay_signed(
    order_no: str, order_time: str, cur_code: str, order_amount: str, merchant_no: str
) -> bytes:
    """Pay form: ``orderNo|orderTime|curCode|orderAmount|merchantNo``."""
    return _joined((order_no, order_time, cur_code, order_amount, merchant_no))


def notify_signed(fields: Mapping[str, str]) -> bytes:
    """Notification and queried trade: ``merchantNo|orderNo|orderSeq|cardTyp|payTime|
    orderStatus|payAmount`` (a missing field counts as empty)."""
    return _joined(fields.get(name, "") for name in NOTIFY_SIGNED_FIELDS)


def query_signed(merchant_no: str, order_nos: str) -> bytes:
    """Query request: ``merchantNo:orderNos`` (a colon, as the bank's query interface has it).

    ``orderNos`` is the field's value as sent; cetgql always sends one order number."""
    return f"{merchant_no}:{order_nos}".encode(CHARSET)


def refund_signed(
    merchant_no: str, m_refund_seq: str, cur_code: str, refund_amount: str, order_no: str
) -> bytes:
    """Refund request: ``merchantNo|mRefundSeq|curCode|refundAmount|orderNo``."""
    return _joined((merchant_no, m_refund_seq, cur_code, refund_amount, order_no))


def refund_answer_signed(
    merchant_no: str,
    order_no: str,
    m_refund_seq: str,
    refund_seq: str,
    refund_amount: str,
    deal_status: str,
) -> bytes:
    """Refund answer body: ``merchantNo|orderNo|mRefundSeq|refundSeq|refundAmount|dealStatus``."""
    return _joined((merchant_no, order_no, m_refund_seq, refund_seq, refund_amount, deal_status))


def cancel_signed(merchant_no: str, order_no: str) -> bytes:
    """Cancel request: ``merchantNo|orderNo``."""
    return _joined((merchant_no, order_no))


def cancel_answer_signed(merchant_no: str, order_no: str, order_status: str) -> bytes:
    """Cancel answer body: ``merchantNo|orderNo|orderStatus``."""
    return _joined((merchant_no, order_no, order_status))


# --- amounts -------------------------------------------------------------------------------

_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,12})\.([0-9]{2})")


def yuan(fen: int) -> str:
    """Integer fen to the bank's yuan string with two decimals (3000 → "30.00")."""
    if isinstance(fen, bool) or not isinstance(fen, int) or fen < 0:
        raise ValueError(f"an amount in fen must be a non-negative integer, not {fen!r}")
    return f"{fen // 100}.{fen % 100:02d}"


def fen(amount: str) -> int:
    """The bank's yuan string back to integer fen; anything but ``digits.dd`` is refused, so a
    malformed or padded amount can never be read as a different sum."""
    match = _AMOUNT.fullmatch(amount)
    if match is None:
        raise ValueError(f"not an amount in yuan with two decimals: {amount!r}")
    return int(match.group(1)) * 100 + int(match.group(2))


# --- times ---------------------------------------------------------------------------------


def bank_time(moment: datetime) -> str:
    """An instant as the bank's local ``yyyyMMddHHmmss``; naive datetimes are taken as UTC,
    which is how cetgql stores times."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(SHANGHAI).strftime(TIME_FORMAT)


def parse_bank_time(text: str) -> datetime:
    """The bank's local ``yyyyMMddHHmmss`` as an aware datetime (UTC+8)."""
    if not re.fullmatch(r"[0-9]{14}", text):
        raise ValueError(f"not a yyyyMMddHHmmss time: {text!r}")
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=SHANGHAI)


# --- XML answers ---------------------------------------------------------------------------

MAX_ANSWER_BYTES = 1 << 20


@dataclass(frozen=True)
class Answer:
    """A parsed ``<res>`` answer: the header fields and the body element."""

    header: dict[str, str]
    body: ET.Element | None

    @property
    def ok(self) -> bool:
        return self.header.get("hdlSts") == HDL_OK


def children_text(element: ET.Element | None) -> dict[str, str]:
    """The text of an element's direct children by tag (empty text as "")."""
    if element is None:
        return {}
    return {child.tag: (child.text or "").strip() for child in element}


def parse_answer(raw: bytes) -> Answer:
    """Parse the bank's XML answer; ValueError when it is not one.

    A DOCTYPE is refused outright, so no entity can be declared, expanded or fetched; with that
    the standard library parser is safe for the bank's plain element-and-text answers."""
    if len(raw) > MAX_ANSWER_BYTES:
        raise ValueError("answer too large")
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        raise ValueError("a DOCTYPE in the answer is not allowed")
    try:
        root = ET.fromstring(raw)  # noqa: S314 - no DOCTYPE, so no entities (checked above)
    except ET.ParseError as exc:
        raise ValueError(f"not XML: {exc}") from exc
    if root.tag != "res":
        raise ValueError(f"unexpected root element <{root.tag}>")
    return Answer(header=children_text(root.find("header")), body=root.find("body"))


def build_answer(
    header: Mapping[str, str], body: Iterable[ET.Element] | Mapping[str, str] = ()
) -> bytes:
    """Serialise a ``<res><header/><body/></res>`` answer (UTF-8, with an XML declaration)."""
    root = ET.Element("res")
    head = ET.SubElement(root, "header")
    for tag, value in header.items():
        ET.SubElement(head, tag).text = value
    body_element = ET.SubElement(root, "body")
    if isinstance(body, Mapping):
        for tag, value in body.items():
            ET.SubElement(body_element, tag).text = value
    else:
        body_element.extend(body)
    return ET.tostring(root, encoding=CHARSET, xml_declaration=True)


def element(tag: str, fields: Mapping[str, str]) -> ET.Element:
    """An element with one child per field, e.g. one ``<orderTrans>``."""
    node = ET.Element(tag)
    for name, value in fields.items():
        ET.SubElement(node, name).text = value
    return node
