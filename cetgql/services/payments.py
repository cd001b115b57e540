"""Money moves exactly once (P1–P6).

- A payment is an attempt to pay one order with one provider under our trade number. Our
  record is written before the provider is asked, so a crash between the two leaves a record
  that reconciliation resolves; nothing the provider knows is ever unknown to us.
- At most one attempt per order is open at a time: starting again with the same provider
  returns the open attempt, switching provider closes it first (P4: never charge twice).
- Every provider report (notification, query) goes through :func:`apply_report`, under a row
  lock on the payment, so duplicates and retries change nothing the second time.
- A success the order no longer needs is refunded automatically: a second success for a paid
  order (P4), or a late one whose places are gone (P6). Refunds are retried by reconciliation
  until the provider accepts them.
- A provider that cannot be reached leaves the payment pending, never failed.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from tortoise.transactions import in_transaction

from cetgql.models import (
    Account,
    Order,
    OrderStatus,
    Payment,
    PaymentEvent,
    PaymentStatus,
    Registration,
    RegistrationStatus,
    SubjectKind,
)
from cetgql.models.prepared import PreparedQuery
from cetgql.payments import (
    ChargeRequest,
    InvalidNotification,
    MerchantConfig,
    NotifyReply,
    NotifyRequest,
    PaymentError,
    PaymentProvider,
    RefundRequest,
    TradeState,
)
from cetgql.payments.manager import registry
from cetgql.services import clock, order_events, provider_settings, rate_limits, registration
from cetgql.services.errors import DomainError, ErrorCode
from cetgql.settings import get_settings

logger = logging.getLogger("cetgql.payments")

OPEN = (PaymentStatus.CREATED, PaymentStatus.PENDING)
DOUBLE_PAYMENT = "DOUBLE_PAYMENT"
LATE_PAYMENT = "LATE_PAYMENT"


@dataclass(frozen=True)
class Report:
    """What a provider said about a trade, from a verified notification or a query."""

    state: TradeState
    amount_fen: int | None
    provider_trade_no: str | None
    source: str  # "NOTIFY" | "QUERY"
    raw: Mapping[str, object]


def _trade_number(now: datetime) -> str:
    """Our trade number (交易订单号): 20 digits, time first so it sorts, then random."""
    return f"{now:%y%m%d%H%M%S}{secrets.randbelow(10**8):08d}"


def _provider(name: str) -> PaymentProvider:
    provider = registry().get(name)
    if provider is None:
        raise DomainError.of(ErrorCode.PROVIDER_NOT_AVAILABLE, "provider")
    return provider


# The statements of every payment and notification, prepared (models/prepared.py): their SQL
# is built once, not on each of the thousands of calls a second of a registration rush.
_ORDER: PreparedQuery[Order] = PreparedQuery(lambda order_id: Order.get(id=order_id))
_LOCK_ORDER: PreparedQuery[Order] = PreparedQuery(
    lambda order_id: Order.select_for_update().get(id=order_id)
)
_LOCK_OWN_ORDER: PreparedQuery[Order | None] = PreparedQuery(
    lambda order_id, account_id: (
        Order.select_for_update().filter(id=order_id, account_id=account_id).first()
    )
)
_OPEN_PAYMENTS: PreparedQuery[list[Payment]] = PreparedQuery(
    lambda order_id: Payment.filter(order_id=order_id, status__in=OPEN)
)
_BY_TRADE: PreparedQuery[Payment | None] = PreparedQuery(
    lambda out_trade_no, provider: Payment.get_or_none(out_trade_no=out_trade_no, provider=provider)
)
_TRADE: PreparedQuery[Payment] = PreparedQuery(
    lambda out_trade_no, provider: Payment.get(out_trade_no=out_trade_no, provider=provider)
)
_LOCK_PAYMENT: PreparedQuery[Payment] = PreparedQuery(
    lambda payment_id: Payment.select_for_update().get(id=payment_id)
)
_CHOICES_OF_ORDER: PreparedQuery[list[Registration]] = PreparedQuery(
    lambda order_id: Registration.filter(order_id=order_id).select_related("offering__subject")
)
_PAID_CHOICES: PreparedQuery[list[Registration]] = PreparedQuery(
    lambda account_id, session_id: Registration.filter(
        account_id=account_id, session_id=session_id, status=RegistrationStatus.PAID
    ).select_related("offering__subject")
)


async def _merchant_of_payment(payment: Payment) -> MerchantConfig:
    order = await _ORDER(payment.order_id)  # type: ignore[attr-defined]
    merchant = await provider_settings.merchant_config(
        order.province_id,  # type: ignore[attr-defined]
        payment.provider,
        include_disabled=True,
    )
    if merchant is None:
        raise PaymentError(f"no settings for {payment.provider} in the order's province")
    return merchant


async def _record(
    payment: Payment | None,
    provider: str,
    kind: str,
    outcome: str,
    out_trade_no: str = "",
    **detail: Any,
) -> None:
    await PaymentEvent.create(
        payment=payment,
        provider=provider,
        kind=kind,
        out_trade_no=out_trade_no or (payment.out_trade_no if payment else ""),
        outcome=outcome,
        detail=_jsonable(detail),
        at=clock.now(),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _check_return_url(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 512:
        raise DomainError.of(ErrorCode.INVALID_RETURN_URL, "returnUrl")
    return url.strip()


def return_url_for(provider: str, out_trade_no: str) -> str:
    return f"{get_settings().public_url}/payments/{provider}/return?trade={out_trade_no}"


def notify_url_for(provider: str) -> str:
    return f"{get_settings().public_url}/payments/{provider}/notify"


async def _written_paid(order: Order) -> bool:
    """S7: an oral order is paid only after the written subject it depends on is paid."""
    if order.kind != SubjectKind.ORAL:
        return True
    needed = {r.offering.subject.written_prerequisite for r in await _CHOICES_OF_ORDER(order.id)}
    paid = {
        r.offering.subject.code
        for r in await _PAID_CHOICES(order.account_id, order.session_id)  # type: ignore[attr-defined]
    }
    return needed <= paid


async def start_payment(
    account: Account,
    order_id: int,
    provider_name: str,
    *,
    return_url: str | None = None,
    mobile: bool = False,
) -> Payment:
    """Hand the candidate to a provider for an order (P2), idempotently. Rate limited per
    account (``RATE_LIMITED`` with the seconds to wait)."""
    await rate_limits.hit(rate_limits.START_PAYMENT_PER_ACCOUNT, str(account.id))
    provider = _provider(provider_name)
    partner_return = _check_return_url(return_url)
    async with in_transaction():
        order = await _LOCK_OWN_ORDER(order_id, account.id)
        if order is None:
            raise DomainError.of(ErrorCode.NOT_FOUND, "orderId")
        now = clock.now()
        if order.status == OrderStatus.PAID:
            raise DomainError.of(ErrorCode.ORDER_ALREADY_PAID, "orderId")
        if order.status == OrderStatus.LAPSED or (
            order.status == OrderStatus.PENDING_PAYMENT and order.expires_at <= now
        ):
            raise DomainError.of(ErrorCode.ORDER_LAPSED, "orderId")
        if order.status != OrderStatus.PENDING_PAYMENT:
            raise DomainError.of(ErrorCode.ORDER_NOT_PENDING, "orderId")
        if not await _written_paid(order):
            raise DomainError.of(ErrorCode.WRITTEN_NOT_PAID, "orderId")
        merchant = await provider_settings.merchant_config(order.province_id, provider.name)  # type: ignore[attr-defined]
        if merchant is None:
            raise DomainError.of(ErrorCode.PROVIDER_NOT_AVAILABLE, "provider")

        for previous in await _OPEN_PAYMENTS(order.id):
            if previous.provider == provider.name and previous.amount_fen == order.amount_fen:
                return previous
            await _close_before_switch(previous)

        payment = await Payment.create(
            order=order,
            provider=provider.name,
            out_trade_no=_trade_number(now),
            amount_fen=order.amount_fen,
            status=PaymentStatus.CREATED,
            created_at=now,
            updated_at=now,
            redirect={"partnerReturnUrl": partner_return} if partner_return else None,
        )
        try:
            result = await provider.charge(
                merchant,
                ChargeRequest(
                    out_trade_no=payment.out_trade_no,
                    amount_fen=payment.amount_fen,
                    subject=f"CET 报名费 {order.number}",
                    created_at=now,
                    expires_at=order.expires_at,
                    notify_url=notify_url_for(provider.name),
                    return_url=return_url_for(provider.name, payment.out_trade_no),
                    mobile=mobile,
                ),
            )
        except PaymentError as error:
            raise DomainError.of(ErrorCode.PROVIDER_UNREACHABLE, "provider") from error
        payment.status = PaymentStatus.PENDING
        payment.provider_trade_no = result.provider_trade_no
        payment.qr_code = result.qr_code  # type: ignore[assignment]
        payment.redirect = {
            **(payment.redirect or {}),
            **(
                {
                    "method": result.redirect.method,
                    "url": result.redirect.url,
                    "fields": [list(pair) for pair in result.redirect.fields],
                }
                if result.redirect
                else {}
            ),
        }
        payment.updated_at = clock.now()
        await payment.save()
        await _record(payment, provider.name, "CHARGE", "STARTED", amount_fen=payment.amount_fen)
    await order_events.publish(order.id)
    return payment


async def _close_before_switch(previous: Payment) -> None:
    """Close the open trade of another provider before a new one starts (P4). If it turns out
    to be paid already, refuse the switch. A trade the provider does not know yet (the
    browser never reached its cashier) is closed where the provider allows it; should its
    signed form still be paid later, that second payment is refunded automatically."""
    provider = registry().get(previous.provider)
    if provider is None:
        raise DomainError.of(ErrorCode.PROVIDER_UNREACHABLE, "provider")
    merchant = await _merchant_of_payment(previous)
    try:
        status = await provider.query(merchant, previous.out_trade_no)
        if status.state == TradeState.SUCCEEDED:
            raise DomainError.of(ErrorCode.ORDER_ALREADY_PAID, "orderId")
        if status.state == TradeState.PENDING and not await provider.close(
            merchant, previous.out_trade_no
        ):
            raise DomainError.of(ErrorCode.PROVIDER_UNREACHABLE, "provider")
        if status.state == TradeState.NOT_FOUND:
            await provider.close(merchant, previous.out_trade_no)
    except PaymentError as error:
        raise DomainError.of(ErrorCode.PROVIDER_UNREACHABLE, "provider") from error
    previous.status = PaymentStatus.CLOSED
    previous.closed_at = previous.updated_at = clock.now()
    await previous.save(update_fields=["status", "closed_at", "updated_at"])
    await _record(previous, previous.provider, "CLOSE", "CLOSED_FOR_SWITCH")


async def handle_notification(provider_name: str, request: NotifyRequest) -> NotifyReply | None:
    """Verify and apply a provider's notification; the reply tells it to stop or retry."""
    provider = registry().get(provider_name)
    if provider is None:
        return None

    async def lookup(out_trade_no: str) -> MerchantConfig | None:
        payment = await _BY_TRADE(out_trade_no[:32], provider_name)
        return await _merchant_of_payment(payment) if payment else None

    try:
        note = await provider.callback(request, lookup)
    except InvalidNotification as error:
        logger.warning("refused %s notification: %s", provider_name, error)
        await _record(None, provider_name, "NOTIFY", "REJECTED", reason=str(error)[:200])
        return provider.reply(False)
    payment = await _TRADE(note.out_trade_no, provider_name)
    outcome = await apply_report(
        payment.id,
        Report(note.state, note.amount_fen, note.provider_trade_no, "NOTIFY", note.raw),
    )
    return provider.reply(outcome != "REJECTED_AMOUNT")


async def refresh(account: Account, payment_id: int) -> Payment:
    """The candidate's "update" button (P3): ask the provider now (rate limited per account)."""
    await rate_limits.hit(rate_limits.REFRESH_PAYMENT_PER_ACCOUNT, str(account.id))
    payment = await Payment.filter(id=payment_id, order__account_id=account.id).first()
    if payment is None:
        raise DomainError.of(ErrorCode.NOT_FOUND, "paymentId")
    if payment.status in OPEN:
        try:
            await query_and_apply(payment)
        except PaymentError as error:
            raise DomainError.of(ErrorCode.PROVIDER_UNREACHABLE, "paymentId") from error
    return await Payment.get(id=payment.id)


async def query_and_apply(payment: Payment) -> str:
    provider = registry().get(payment.provider)
    if provider is None:
        raise PaymentError(f"provider {payment.provider} is not installed")
    status = await provider.query(await _merchant_of_payment(payment), payment.out_trade_no)
    return await apply_report(
        payment.id,
        Report(status.state, status.amount_fen, status.provider_trade_no, "QUERY", status.raw),
    )


async def apply_report(payment_id: int, report: Report) -> str:
    """Apply what the provider said, exactly once. Returns the outcome that was recorded."""
    refund_needed: str | None = None
    async with in_transaction():
        payment = await _LOCK_PAYMENT(payment_id)
        outcome, refund_needed = await _apply_locked(payment, report)
        await _record(
            payment,
            payment.provider,
            report.source,
            outcome,
            state=report.state.value,
            amount_fen=report.amount_fen,
            provider_trade_no=report.provider_trade_no,
        )
    if refund_needed:
        await _refund(payment_id, refund_needed)
    await order_events.publish(payment.order_id)  # type: ignore[attr-defined]
    return outcome


async def _apply_locked(payment: Payment, report: Report) -> tuple[str, str | None]:
    now = clock.now()
    if report.state != TradeState.SUCCEEDED:
        if payment.status in OPEN and report.state in (TradeState.CLOSED, TradeState.FAILED):
            payment.status = (
                PaymentStatus.CLOSED if report.state == TradeState.CLOSED else PaymentStatus.FAILED
            )
            payment.closed_at = payment.updated_at = now
            await payment.save(update_fields=["status", "closed_at", "updated_at"])
            return payment.status.value, None
        if report.state == TradeState.REFUNDED and payment.refund_no and not payment.refunded_at:
            payment.status, payment.refunded_at, payment.updated_at = (
                PaymentStatus.REFUNDED,
                now,
                now,
            )
            await payment.save(update_fields=["status", "refunded_at", "updated_at"])
            return "REFUNDED", None
        return "NO_CHANGE", None
    if report.amount_fen != payment.amount_fen:
        logger.error(
            "amount mismatch on %s: provider says %s fen, we expect %s",
            payment.out_trade_no,
            report.amount_fen,
            payment.amount_fen,
        )
        return "REJECTED_AMOUNT", None
    if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED):
        return "DUPLICATE", None
    payment.status = PaymentStatus.SUCCEEDED
    payment.paid_at = payment.updated_at = now
    payment.provider_trade_no = report.provider_trade_no or payment.provider_trade_no
    payment.closed_at = None
    await payment.save(
        update_fields=["status", "paid_at", "updated_at", "provider_trade_no", "closed_at"]
    )

    order = await _LOCK_ORDER(payment.order_id)  # type: ignore[attr-defined]
    if order.status == OrderStatus.PAID:
        return "PAID_TWICE", DOUBLE_PAYMENT
    if order.status == OrderStatus.PENDING_PAYMENT and order.expires_at > now:
        await registration.mark_order_paid(order.id, now)
        return "APPLIED", None
    if await registration.reinstate_paid_order(order.id):
        return "APPLIED_LATE", None
    return "LATE_REFUND", LATE_PAYMENT


async def _refund(payment_id: int, reason: str) -> None:
    """Refund a success the order does not need; retried by reconciliation until accepted."""
    async with in_transaction():
        payment = await Payment.select_for_update().get(id=payment_id)
        if payment.refunded_at is not None:
            return
        if payment.refund_no is None:
            payment.refund_no = _trade_number(clock.now())
            payment.refund_reason = reason
            await payment.save(update_fields=["refund_no", "refund_reason"])
    provider = registry().get(payment.provider)
    if provider is None:
        return
    try:
        result = await provider.refund(
            await _merchant_of_payment(payment),
            RefundRequest(
                out_trade_no=payment.out_trade_no,
                refund_no=payment.refund_no or "",
                amount_fen=payment.amount_fen,
                total_fen=payment.amount_fen,
                reason="重复缴费退款" if reason == DOUBLE_PAYMENT else "逾期缴费退款",
            ),
        )
    except PaymentError as error:
        logger.warning("refund of %s not confirmed yet: %s", payment.out_trade_no, error)
        await _record(payment, payment.provider, "REFUND", "REFUND_PENDING", reason=reason)
        return
    if result.accepted:
        now = clock.now()
        await Payment.filter(id=payment.id, refunded_at__isnull=True).update(
            status=PaymentStatus.REFUNDED, refunded_at=now, updated_at=now
        )
    await _record(
        payment,
        payment.provider,
        "REFUND",
        "REFUNDED" if result.accepted else "REFUND_REFUSED",
        reason=reason,
        provider_refund_no=result.provider_refund_no,
    )


async def reconcile(min_age: timedelta = timedelta(minutes=1)) -> int:
    """Ask the provider about every open payment, and retry unconfirmed refunds (P3, P4).
    A provider that does not answer leaves its payments as they are."""
    cutoff = clock.now() - min_age
    checked = 0
    for payment in await Payment.filter(status__in=OPEN, updated_at__lte=cutoff).order_by("id"):
        try:
            await query_and_apply(payment)
            checked += 1
        except PaymentError as error:
            logger.warning("reconcile %s: provider unreachable: %s", payment.out_trade_no, error)
    for payment in await Payment.filter(
        status=PaymentStatus.SUCCEEDED, refund_no__isnull=False, refunded_at__isnull=True
    ):
        await _refund(payment.id, payment.refund_reason or DOUBLE_PAYMENT)
        checked += 1
    return checked


async def payment_by_trade(out_trade_no: str) -> Payment | None:
    return await Payment.get_or_none(out_trade_no=out_trade_no[:32]).select_related("order")


async def cancel_open_trades(order_id: int) -> None:
    """Best effort: close the open trades of an order that was cancelled, so it cannot be paid
    any more. A payment that still arrives is refunded or applied by the P6 rule."""
    for payment in await Payment.filter(order_id=order_id, status__in=OPEN):
        provider = registry().get(payment.provider)
        if provider is None:
            continue
        try:
            if await provider.close(await _merchant_of_payment(payment), payment.out_trade_no):
                await apply_report(
                    payment.id,
                    Report(TradeState.CLOSED, None, None, "QUERY", {"closedBy": "cancel"}),
                )
        except PaymentError as error:
            logger.warning("could not close %s: %s", payment.out_trade_no, error)
