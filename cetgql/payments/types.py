"""Value types exchanged between cetgql and payment provider plugins.

Plugins see only these types: no models, no GraphQL, no HTTP framework. Money is integer fen
here; a plugin converts to its provider's decimal strings at the wire.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class TradeState(StrEnum):
    """A provider's view of one trade, normalised."""

    PENDING = "PENDING"  # created or waiting for the buyer
    SUCCEEDED = "SUCCEEDED"  # paid
    CLOSED = "CLOSED"  # closed or cancelled without payment
    REFUNDED = "REFUNDED"  # paid, then refunded in full
    FAILED = "FAILED"  # the provider reports a failed payment
    NOT_FOUND = "NOT_FOUND"  # the provider does not know the trade (yet)


class PaymentError(Exception):
    """The provider could not be reached or answered with an error: the state is unknown.

    Callers must treat the payment as still pending, never as failed."""


class InvalidNotification(Exception):
    """A notification that must not be trusted: bad signature, unknown merchant, malformed."""


@dataclass(frozen=True)
class SettingField:
    """One merchant setting a province admin fills in; secrets are write-only in the API."""

    name: str
    label: str
    secret: bool = False
    required: bool = True
    multiline: bool = False  # PEM keys and certificates


@dataclass(frozen=True)
class MerchantConfig:
    """A province's settings for one provider, as the admin entered them."""

    provider: str
    values: Mapping[str, str]

    def __getitem__(self, name: str) -> str:
        return self.values[name]

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default) or default


@dataclass(frozen=True)
class ChargeRequest:
    out_trade_no: str  # our trade number (交易订单号), unique per payment attempt
    amount_fen: int
    subject: str  # what is paid for, shown by the cashier
    created_at: datetime
    expires_at: datetime  # the provider must not accept payment after this (the order deadline)
    notify_url: str  # where the provider posts its notification
    return_url: str  # where the candidate's browser goes back to
    mobile: bool = False  # phone-sized cashier (e.g. Alipay wap.pay)


@dataclass(frozen=True)
class Redirect:
    """How the browser is handed to the provider: a GET link, or a form to post."""

    method: str  # "GET" | "POST"
    url: str
    fields: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ChargeResult:
    redirect: Redirect | None = None
    qr_code: str | None = None  # text to render as a QR code, when the provider offers one
    provider_trade_no: str | None = None


@dataclass(frozen=True)
class TradeStatus:
    out_trade_no: str
    state: TradeState
    amount_fen: int | None = None
    provider_trade_no: str | None = None
    paid_at: datetime | None = None
    raw: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class NotifyRequest:
    """The provider's HTTP request to our notify endpoint, untouched."""

    method: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    form: Mapping[str, str]


@dataclass(frozen=True)
class Notification:
    """A verified notification: the signature checked out and the merchant is ours."""

    out_trade_no: str
    state: TradeState
    amount_fen: int
    merchant_id: str
    provider_trade_no: str | None = None
    paid_at: datetime | None = None
    raw: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class NotifyReply:
    """What our notify endpoint answers, in the provider's own format."""

    status_code: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class RefundRequest:
    out_trade_no: str
    refund_no: str  # our refund number, idempotent per refund
    amount_fen: int
    total_fen: int  # the trade's full amount (some providers want both)
    reason: str


@dataclass(frozen=True)
class RefundResult:
    accepted: bool
    provider_refund_no: str | None = None
    raw: Mapping[str, object] = field(default_factory=dict)


# Finds the merchant settings a notification must be verified with, from the trade number the
# (not yet verified) notification names; None when the trade is not ours.
MerchantLookup = Callable[[str], Awaitable[MerchantConfig | None]]
