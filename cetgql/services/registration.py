"""Choosing subjects, cancelling unpaid orders and lapsing unpaid ones (S3, S7–S10, S12).

A selection is one transaction. The candidate's account row is locked first so that two
requests of the same candidate cannot both pass the slot check; an oral centre row is locked
before its seats are counted so that concurrent candidates can never oversell it (S3).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from cetgql.models import (
    Account,
    OralCenter,
    Order,
    OrderStatus,
    Registration,
    RegistrationStatus,
    SessionSubject,
    SubjectKind,
)
from cetgql.models.prepared import PreparedQuery
from cetgql.services import clock, eligibility, order_events
from cetgql.services.errors import DomainError, ErrorCode, Problem

PAYMENT_PERIOD = timedelta(hours=24)
MAX_ITEMS = 10


@dataclass(frozen=True)
class Choice:
    subject_code: str
    oral_center_id: int | None = None


@dataclass(frozen=True)
class SubjectOption:
    """One row of ``availableSubjects``: the offering, whether it can be chosen, and why not."""

    offering_id: int
    subject_code: str
    eligible: bool
    reasons: tuple[ErrorCode, ...]
    fee_fen: int | None
    # The offering itself, with its subject, as the rules loaded it (saves the caller a query).
    offering: SessionSubject | None = None


async def available_subjects(account: Account, session_code: str) -> list[SubjectOption]:
    session = await eligibility.session_by_code(session_code)
    situation = await eligibility.load_situation(account, session)
    options = []
    for code, offering in sorted(
        situation.offerings.items(),
        key=lambda item: (item[1].subject.kind, item[1].subject.level, item[0]),
    ):
        why = eligibility.reasons(situation, code)
        options.append(
            SubjectOption(
                offering_id=offering.id,
                subject_code=code,
                eligible=not why,
                reasons=tuple(why),
                fee_fen=situation.fees.get(code),
                offering=offering,
            )
        )
    return options


def _order_number(now: datetime) -> str:
    """Our order number: date and 12 random digits, unguessable and easy to read out."""
    return f"{now:%Y%m%d}{secrets.randbelow(10**12):012d}"


def _validate_choices(choices: Sequence[Choice]) -> list[Choice]:
    if not choices:
        raise DomainError.of(ErrorCode.REQUIRED, "items")
    if len(choices) > MAX_ITEMS:
        raise DomainError.of(ErrorCode.TOO_MANY_ITEMS, "items")
    cleaned = [Choice(c.subject_code.strip().upper()[:16], c.oral_center_id) for c in choices]
    seen: set[str] = set()
    problems = []
    for index, choice in enumerate(cleaned):
        if choice.subject_code in seen:
            problems.append(
                Problem(ErrorCode.DUPLICATE_SUBJECT, ("items", str(index), "subjectCode"))
            )
        seen.add(choice.subject_code)
    if problems:
        raise DomainError(problems)
    return cleaned


# The statements of every selection and payment, prepared (models/prepared.py): their SQL
# is built once, not on each of the thousands of calls a second of a registration rush.
_OVERDUE: PreparedQuery[list[int]] = PreparedQuery(
    lambda account_id, now: Order.filter(
        account_id=account_id, status=OrderStatus.PENDING_PAYMENT, expires_at__lte=now
    ).values_list("id", flat=True)
)
_LOCK_ACCOUNT: PreparedQuery[Account | None] = PreparedQuery(
    lambda account_id: Account.select_for_update().filter(id=account_id).first()
)
_CENTER: PreparedQuery[OralCenter | None] = PreparedQuery(
    lambda center_id: OralCenter.get_or_none(id=center_id)
)
_LOCK_CENTER: PreparedQuery[OralCenter] = PreparedQuery(
    lambda center_id: OralCenter.select_for_update().get(id=center_id)
)
_SEATS_HELD: PreparedQuery[int] = PreparedQuery(
    lambda center_id, now: Registration.filter(
        eligibility.active_seats_filter(now), oral_center_id=center_id
    ).count()
)
_LOCK_ORDER: PreparedQuery[Order] = PreparedQuery(
    lambda order_id: Order.select_for_update().get(id=order_id)
)
_PAY_CHOICES: PreparedQuery[int] = PreparedQuery(
    lambda order_id, paid_at: Registration.filter(order_id=order_id).update(
        status=RegistrationStatus.PAID, paid_at=paid_at
    )
)


async def lapse_account(account_id: int, now: datetime) -> None:
    """Mark this candidate's overdue choices lapsed so their places can be taken again."""
    overdue = await _OVERDUE(account_id, now)
    if overdue:
        await _close_orders(overdue, OrderStatus.LAPSED, now)


async def _close_orders(order_ids: list[int], status: OrderStatus, now: datetime) -> None:
    registration_status = RegistrationStatus(status.value)
    await Order.filter(id__in=order_ids, status=OrderStatus.PENDING_PAYMENT).update(
        status=status, closed_at=now
    )
    await Registration.filter(
        order_id__in=order_ids, status=RegistrationStatus.PENDING_PAYMENT
    ).update(status=registration_status, active_key=None, closed_at=now)


async def select_subjects(
    account: Account, session_code: str, choices: Sequence[Choice]
) -> list[Order]:
    """Create the choices and their orders: written and oral apart, written paid first (S7)."""
    wanted = _validate_choices(choices)
    session = await eligibility.session_by_code(session_code)
    async with in_transaction():
        await _LOCK_ACCOUNT(account.id)
        now = clock.now()
        await lapse_account(account.id, now)
        situation = await eligibility.load_situation(account, session, with_centers=False)
        problems: list[Problem] = []
        chosen_slots: set[str] = set()
        centers: dict[int, OralCenter] = {}
        for index, choice in enumerate(wanted):
            path = ("items", str(index))
            offering = situation.offerings.get(choice.subject_code)
            why = eligibility.reasons(
                situation, choice.subject_code, chosen_slots=chosen_slots, check_seats=False
            )
            problems += [Problem(code, (*path, "subjectCode")) for code in why]
            if offering is None:
                continue
            chosen_slots.add(offering.slot)
            if offering.subject.kind == SubjectKind.ORAL:
                center = await _oral_center_for(situation, choice, path, problems)
                if center is not None:
                    centers[index] = center
            elif choice.oral_center_id is not None:
                problems.append(Problem(ErrorCode.ORAL_CENTER_NOT_ALLOWED, (*path, "oralCenterId")))
        if problems:
            raise DomainError(problems)
        await _claim_seats(centers, now)
        return await _create_orders(account, situation, wanted, centers, now)


async def _oral_center_for(
    situation: eligibility.Situation,
    choice: Choice,
    path: tuple[str, ...],
    problems: list[Problem],
) -> OralCenter | None:
    if choice.oral_center_id is None:
        problems.append(Problem(ErrorCode.ORAL_CENTER_REQUIRED, (*path, "oralCenterId")))
        return None
    center = await _CENTER(choice.oral_center_id)
    if (
        center is None
        or center.session_id != situation.session.id  # type: ignore[attr-defined]
        or center.province_id != situation.province_id  # type: ignore[attr-defined]
        or (center.subject_codes and choice.subject_code not in center.subject_codes)
    ):
        problems.append(Problem(ErrorCode.ORAL_CENTER_NOT_ALLOWED, (*path, "oralCenterId")))
        return None
    return center


async def _claim_seats(centers: dict[int, OralCenter], now: datetime) -> None:
    """Lock each chosen centre, then count its held seats: never oversold (S3)."""
    problems = []
    for index, center in sorted(centers.items(), key=lambda item: item[1].id):
        locked = await _LOCK_CENTER(center.id)
        taken = await _SEATS_HELD(locked.id, now)
        if taken >= locked.capacity:
            problems.append(Problem(ErrorCode.SEATS_FULL, ("items", str(index), "oralCenterId")))
    if problems:
        raise DomainError(problems)


async def _create_orders(
    account: Account,
    situation: eligibility.Situation,
    wanted: list[Choice],
    centers: dict[int, OralCenter],
    now: datetime,
) -> list[Order]:
    qualification = situation.qualification
    assert qualification is not None and situation.province_id is not None
    record = qualification.roster_record
    orders: list[Order] = []
    for kind in (SubjectKind.WRITTEN, SubjectKind.ORAL):
        indexed = [
            (i, c)
            for i, c in enumerate(wanted)
            if situation.offerings[c.subject_code].subject.kind == kind
        ]
        if not indexed:
            continue
        order = await Order.create(
            number=_order_number(now),
            account_id=account.id,
            session_id=situation.session.id,
            province_id=situation.province_id,
            kind=kind,
            amount_fen=sum(situation.fees[c.subject_code] for _, c in indexed),
            created_at=now,
            expires_at=now + PAYMENT_PERIOD,
        )
        for index, choice in indexed:
            offering = situation.offerings[choice.subject_code]
            try:
                await Registration.create(
                    account_id=account.id,
                    session_id=situation.session.id,
                    offering_id=offering.id,
                    order=order,
                    school_id=record.school_id,  # type: ignore[attr-defined]
                    campus_id=record.campus_id,  # type: ignore[attr-defined]
                    oral_center=centers.get(index),
                    active_key=f"{account.id}:{offering.id}",
                    created_at=now,
                    expires_at=order.expires_at,
                )
            except IntegrityError as error:
                raise DomainError.of(
                    ErrorCode.ALREADY_REGISTERED, "items", str(index), "subjectCode"
                ) from error
        orders.append(order)
    return orders


async def mark_order_paid(order_id: int, paid_at: datetime) -> Order:
    """Record that a pending order was paid in time: its choices become registrations that
    cannot be cancelled (S9). Late payments are decided by the payments service (P6)."""
    async with in_transaction():
        order = await _LOCK_ORDER(order_id)
        if order.status == OrderStatus.PAID:
            return order
        if order.status != OrderStatus.PENDING_PAYMENT or order.expires_at <= paid_at:
            raise DomainError.of(ErrorCode.ORDER_NOT_PENDING, "orderId")
        order.status = OrderStatus.PAID
        order.paid_at = paid_at
        await order.save(update_fields=["status", "paid_at"])
        await _PAY_CHOICES(order.id, paid_at)
    await order_events.publish(order.id)
    return order


async def reinstate_paid_order(order_id: int) -> bool:
    """P6: an order paid after it lapsed (or was cancelled) is applied when its places are
    still free and its window still open. False means the caller must refund the payment."""
    async with in_transaction():
        order = await Order.select_for_update().get(id=order_id)
        if order.status == OrderStatus.PAID:
            return True
        account = await Account.select_for_update().get(id=order.account_id)  # type: ignore[attr-defined]
        now = clock.now()
        await lapse_account(account.id, now)
        session = await eligibility.session_by_id(order.session_id)  # type: ignore[attr-defined]
        situation = await eligibility.load_situation(account, session, with_centers=False)
        if order.kind not in situation.open_kinds:
            return False
        choices = await Registration.filter(order_id=order.id).select_related("offering__subject")
        held_codes, held_slots = situation.active_codes(), situation.taken_slots()
        for choice in choices:
            if choice.offering.subject.code in held_codes or choice.offering.slot in held_slots:
                return False
            if choice.oral_center_id is not None:  # type: ignore[attr-defined]
                centre = await OralCenter.select_for_update().get(id=choice.oral_center_id)  # type: ignore[attr-defined]
                taken = await Registration.filter(
                    eligibility.active_seats_filter(now), oral_center_id=centre.id
                ).count()
                if taken >= centre.capacity:
                    return False
        order.status, order.paid_at, order.closed_at = OrderStatus.PAID, now, None
        await order.save(update_fields=["status", "paid_at", "closed_at"])
        for choice in choices:
            choice.status, choice.paid_at, choice.closed_at = RegistrationStatus.PAID, now, None
            choice.active_key = f"{account.id}:{choice.offering.id}"
            await choice.save(update_fields=["status", "paid_at", "closed_at", "active_key"])
        return True


async def cancel_order(account: Account, order_id: int) -> Order:
    """Cancel an unpaid order and free its places; paid ones stay (S9)."""
    async with in_transaction():
        order = await Order.select_for_update().filter(id=order_id, account_id=account.id).first()
        if order is None:
            raise DomainError.of(ErrorCode.NOT_FOUND, "orderId")
        now = clock.now()
        if order.status != OrderStatus.PENDING_PAYMENT or order.expires_at <= now:
            raise DomainError.of(ErrorCode.ORDER_NOT_PENDING, "orderId")
        await _close_orders([order.id], OrderStatus.CANCELLED, now)
        await order.refresh_from_db()
    await order_events.publish(order.id)
    return order


async def lapse_overdue_orders(batch: int = 1000) -> int:
    """Mark every overdue unpaid order lapsed (the periodic job). Reads already treat them as
    lapsed from their deadline, so this is housekeeping, not correctness."""
    now = clock.now()
    total = 0
    while True:
        ids = cast(
            list[int],
            await Order.filter(status=OrderStatus.PENDING_PAYMENT, expires_at__lte=now)
            .limit(batch)
            .values_list("id", flat=True),
        )
        if not ids:
            return total
        async with in_transaction():
            await _close_orders(ids, OrderStatus.LAPSED, now)
        await order_events.publish_many(ids)
        total += len(ids)
