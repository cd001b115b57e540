"""The interface a payment provider plugin implements.

pluggy has no async support, so the hook only hands over provider objects (synchronously);
their methods are coroutines awaited by cetgql directly. Nothing ever runs ``firstresult`` over
coroutines.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from starlette.types import ASGIApp

from cetgql.payments.types import (
    ChargeRequest,
    ChargeResult,
    MerchantConfig,
    MerchantLookup,
    Notification,
    NotifyReply,
    NotifyRequest,
    RefundRequest,
    RefundResult,
    SettingField,
    TradeStatus,
)


@runtime_checkable
class PaymentProvider(Protocol):
    name: str  # URL-safe identifier, e.g. "alipay"; also the path in /payments/{name}/notify
    display_name: str  # e.g. "支付宝"
    settings_fields: tuple[SettingField, ...]

    async def charge(self, merchant: MerchantConfig, request: ChargeRequest) -> ChargeResult:
        """Start a payment. Idempotent per ``out_trade_no``: asking twice makes one trade."""
        ...

    async def query(self, merchant: MerchantConfig, out_trade_no: str) -> TradeStatus:
        """Ask the provider where the trade stands. Raise PaymentError when unreachable."""
        ...

    async def callback(self, request: NotifyRequest, lookup: MerchantLookup) -> Notification:
        """Verify and parse a notification. Raise InvalidNotification unless the signature
        checks out with the merchant's keys and the merchant named is that merchant."""
        ...

    def reply(self, accepted: bool) -> NotifyReply:
        """The answer the provider expects: accepted stops its retries, refused keeps them."""
        ...

    async def refund(self, merchant: MerchantConfig, request: RefundRequest) -> RefundResult:
        """Refund (part of) a paid trade. Idempotent per ``refund_no``."""
        ...

    async def close(self, merchant: MerchantConfig, out_trade_no: str) -> bool:
        """Close an unpaid trade so it can no longer be paid; True when it is closed."""
        ...

    def sandbox(self, notify_url: str) -> ASGIApp:
        """An app that plays the provider with test keys (cashier, notification, query, close,
        refund), mounted at /sandbox/{name} in demo mode. ``notify_url`` is cetgql's."""
        ...

    def sandbox_merchant(self, sandbox_url: str) -> dict[str, str]:
        """Merchant settings that work against the sandbox mounted at ``sandbox_url``."""
        ...
