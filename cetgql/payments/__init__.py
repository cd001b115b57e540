"""The payment plugin contract: hookspecs, value types and the plugin manager.

Provider plugins (``plugins/<name>/``) import this package and nothing else of cetgql.
"""

from cetgql.payments.hookspecs import hookimpl
from cetgql.payments.provider import PaymentProvider
from cetgql.payments.types import (
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

__all__ = [
    "ChargeRequest",
    "ChargeResult",
    "InvalidNotification",
    "MerchantConfig",
    "MerchantLookup",
    "Notification",
    "NotifyReply",
    "NotifyRequest",
    "PaymentError",
    "PaymentProvider",
    "Redirect",
    "RefundRequest",
    "RefundResult",
    "SettingField",
    "TradeState",
    "TradeStatus",
    "hookimpl",
]
