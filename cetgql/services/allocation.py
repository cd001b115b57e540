"""Seat allocation and ticket numbers (T1, T4): who sits in which room and seat, and the
number printed on each ticket.

Rules, in one place for GraphQL and the command line:

- Only PAID registrations get a ticket, one each (T1); allocation waits until the unit's
  registration window has closed and no choice is still within its payment period, so no
  candidate is left without a seat by a payment that lands afterwards.
- The shuffle is fair and reproducible: candidates of one subject at one centre are put in
  registration order, then shuffled with a random generator seeded by the run's recorded seed,
  the centre and the subject. The same seed on the same data gives the same seats; a new seed
  gives a new arrangement. Seats are then filled room by room in room-number order, seat 1
  upwards, so as few rooms (and invigilators) as possible are used.
- Subjects sitting at the same time never share a room; subjects at different times reuse
  the rooms. The database's unique key over (room, slot, seat) backs this: two candidates can
  never hold one seat at one time, and seats run from 1 to the room's capacity.
- Until a unit's tickets are published, allocation may be run again and replaces every
  ticket of the unit. After publication the numbers are final: a further run only seats the
  candidates paid since (a late payment applied under P6, say) in the seats left free.
- Not enough seats anywhere in the unit refuses the whole run and says where.

Ticket numbers (15 digits, unique, documented in docs/tickets.md):

- written (T4): school code (5) + campus code (1) + year (2) + half (1) + the subject's level
  digit (1, ``Subject.ticket_code``: 1 CET4 ... 9 CFT4) + room (3) + seat (2);
- oral: oral centre code (6) + year (2) + half (1) + ``0`` + level (1: 4 or 6) + room (2) +
  seat (2). The ``0`` where a written ticket has its level digit (1–9) keeps the two kinds
  apart even where a centre code of one equals a centre code of the other.
"""

from __future__ import annotations

import random
import re
import secrets
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from cetgql.models import (
    Account,
    AllocationRun,
    Campus,
    ExamRoom,
    OralCenter,
    Registration,
    RegistrationStatus,
    SessionSubject,
    SubjectKind,
    Ticket,
)
from cetgql.services import audit, clock, eligibility, exam_rooms, tickets
from cetgql.services.errors import DomainError, ErrorCode, Problem
from cetgql.services.exam_rooms import Unit

SEED = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
WRITE_BATCH = 500  # tickets per INSERT

Progress = Callable[[str, int, int], None]


def _report(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


# --- the plan (pure: no database) -----------------------------------------------------------


@dataclass(frozen=True)
class PlanRoom:
    id: int
    number: int
    capacity: int


@dataclass(frozen=True)
class PlanCandidate:
    registration_id: int
    subject_code: str
    subject_order: int  # subjects of one slot take rooms in this order
    slot: str


@dataclass(frozen=True)
class Shortage:
    centre: str
    subject_code: str
    candidates: int
    seated: int

    def describe(self) -> str:
        return f"{self.centre} {self.subject_code} {self.seated}/{self.candidates}"


@dataclass
class Plan:
    seats: dict[int, tuple[int, int]] = field(default_factory=dict)  # registration → room, seat
    shortages: list[Shortage] = field(default_factory=list)


def plan_centre(
    seed: str,
    centre: str,
    rooms: Sequence[PlanRoom],
    candidates: Sequence[PlanCandidate],
    occupied: dict[tuple[int, str], dict[int, str]] | None = None,
) -> Plan:
    """Seat ``candidates`` of one centre in its ``rooms``.

    ``occupied`` maps (room id, slot) to the seats already held there and their subject
    (published tickets, when topping up); those seats stay as they are, and a room keeps
    serving the subject it already serves in that slot.
    """
    occupied = occupied or {}
    ordered_rooms = sorted(rooms, key=lambda r: r.number)
    plan = Plan()
    by_slot: dict[str, list[PlanCandidate]] = defaultdict(list)
    for candidate in candidates:
        by_slot[candidate.slot].append(candidate)
    for slot in sorted(by_slot):
        owner: dict[int, str] = {}
        taken: dict[int, set[int]] = defaultdict(set)
        for (room_id, held_slot), seats in occupied.items():
            if held_slot == slot and seats:
                owner[room_id] = next(iter(seats.values()))
                taken[room_id] |= set(seats)
        by_subject: dict[str, list[PlanCandidate]] = defaultdict(list)
        for candidate in by_slot[slot]:
            by_subject[candidate.subject_code].append(candidate)
        for subject in sorted(by_subject, key=lambda s: (by_subject[s][0].subject_order, s)):
            members = sorted(by_subject[subject], key=lambda c: c.registration_id)
            random.Random(f"{seed}|{centre}|{slot}|{subject}").shuffle(members)
            own = [r for r in ordered_rooms if owner.get(r.id) == subject]
            free = [r for r in ordered_rooms if r.id not in owner]
            queue = iter(members)
            placed = 0
            pending = next(queue, None)
            for room in own + free:
                if pending is None:
                    break
                for seat in range(1, room.capacity + 1):
                    if pending is None:
                        break
                    if seat in taken[room.id]:
                        continue
                    plan.seats[pending.registration_id] = (room.id, seat)
                    taken[room.id].add(seat)
                    owner[room.id] = subject
                    placed += 1
                    pending = next(queue, None)
            if pending is not None:
                plan.shortages.append(Shortage(centre, subject, len(members), placed))
    return plan


# --- ticket numbers -------------------------------------------------------------------------


def written_number(
    school_code: str, campus_code: str, year: int, half: int, level: int, room: int, seat: int
) -> str:
    return f"{school_code}{campus_code}{year % 100:02d}{half}{level}{room:03d}{seat:02d}"


def oral_number(center_code: str, year: int, half: int, level: int, room: int, seat: int) -> str:
    return f"{center_code}{year % 100:02d}{half}0{level % 10}{room:02d}{seat:02d}"


def _digits(value: str, length: int) -> bool:
    return len(value) == length and value.isascii() and value.isdigit()


# --- allocation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AllocationResult:
    unit: Unit
    run: AllocationRun | None  # None when a top-up found nobody new
    created: int
    total: int  # the unit's tickets afterwards
    top_up: bool


def check_seed(seed: str | None) -> str:
    """The given seed, or a fresh random one, recorded with the run to reproduce it."""
    if seed is None or not seed.strip():
        return secrets.token_hex(8)
    clean = seed.strip()
    if not SEED.match(clean):
        raise DomainError.of(ErrorCode.SEED_INVALID, "seed")
    return clean


def _paid_in_unit(unit: Unit) -> Any:
    query = Registration.filter(
        session_id=unit.session.id,
        status=RegistrationStatus.PAID,
        offering__subject__kind=unit.kind,
    )
    if unit.school is not None:
        return query.filter(school_id=unit.school.id)
    return query.filter(oral_center__province_id=unit.province.id)


async def _check_closed(unit: Unit, now: datetime) -> None:
    """Registration is over (T4: seats are allocated when registration closes) and nobody
    holds a choice that may still be paid."""
    school_id = unit.school.id if unit.school is not None else 0
    windows = await eligibility.applicable_windows(unit.session.id, unit.province.id, school_id)
    window = windows.get(unit.kind)
    if window is not None and now < window.closes_at:
        closes = window.closes_at.astimezone(clock.SHANGHAI).strftime("%Y-%m-%d %H:%M")
        raise DomainError.of(ErrorCode.REGISTRATION_STILL_OPEN, detail=f"({closes})")
    query = Registration.filter(
        session_id=unit.session.id,
        status=RegistrationStatus.PENDING_PAYMENT,
        expires_at__gt=now,
        offering__subject__kind=unit.kind,
    )
    query = (
        query.filter(school_id=unit.school.id)
        if unit.school is not None
        else query.filter(oral_center__province_id=unit.province.id)
    )
    pending = await query.count()
    if pending:
        raise DomainError.of(ErrorCode.PAYMENTS_PENDING, detail=f"({pending})")


@dataclass
class _Offering:
    id: int
    code: str
    slot: str
    digit: int  # the level digit of the number: ticket_code (written) or 4/6 (oral)


async def _offerings(unit: Unit) -> dict[int, _Offering]:
    rows = await SessionSubject.filter(
        session_id=unit.session.id, subject__kind=unit.kind
    ).select_related("subject")
    found = {}
    for o in rows:
        digit = o.subject.ticket_code if unit.kind == SubjectKind.WRITTEN else o.subject.level
        if digit is None:  # a written subject the catalogue gives no level digit (T4)
            raise DomainError.of(ErrorCode.UNKNOWN_SUBJECT, detail=o.subject.code)
        found[o.id] = _Offering(o.id, o.subject.code, o.slot, digit)
    return found


@dataclass
class _Centres:
    """The centres of a unit: their codes (for numbers) and labels (for seeds, messages)."""

    codes: dict[str, str]  # centre key → 6-digit centre code
    labels: dict[str, str]

    @classmethod
    async def load(cls, unit: Unit) -> _Centres:
        codes: dict[str, str] = {}
        labels: dict[str, str] = {}
        if unit.school is not None:
            for campus in await Campus.filter(school_id=unit.school.id):
                key = exam_rooms.centre_key(campus.id, None)
                codes[key] = f"{unit.school.code}{campus.code}"
                labels[key] = f"{codes[key]} {campus.name}"
        else:
            for center in await OralCenter.filter(
                session_id=unit.session.id, province_id=unit.province.id
            ):
                key = exam_rooms.centre_key(None, center.id)
                codes[key] = center.code
                labels[key] = f"{center.code} {center.name}"
        return cls(codes, labels)


def _check_codes(unit: Unit, centres: _Centres, used: set[str]) -> None:
    """Ticket numbers are digits: refuse a centre whose codes would not make 15 of them."""
    bad = sorted(
        centres.labels[key]
        for key in used
        if not (
            _digits(centres.codes[key], 6) and (unit.school is None or _digits(unit.school.code, 5))
        )
    )
    if bad:
        raise DomainError.of(ErrorCode.CENTER_CODE_INVALID, detail="; ".join(bad))


async def allocate(
    actor: Account | None,
    unit: Unit,
    *,
    seed: str | None = None,
    client_address: str | None = None,
    progress: Progress | None = None,
) -> AllocationResult:
    """Allocate rooms and seats to the unit's paid registrations (see the module notes)."""
    clean_seed = check_seed(seed)
    now = clock.now()
    await _check_closed(unit, now)
    _report(progress, "load", 0, 1)
    async with in_transaction():
        await exam_rooms.lock_unit(unit)
        published = await exam_rooms.unit_published(unit)
        offerings = await _offerings(unit)
        registrations = await _paid_in_unit(unit).values(
            "id", "account_id", "offering_id", "campus_id", "oral_center_id"
        )
        existing = (
            await Ticket.filter(session_id=unit.session.id, unit_key=unit.key).values(
                "registration_id", "room_id", "slot", "seat", "offering_id"
            )
            if published
            else []
        )
        if not published:
            await Ticket.filter(session_id=unit.session.id, unit_key=unit.key).delete()
        seated = {t["registration_id"] for t in existing}
        newcomers = [r for r in registrations if r["id"] not in seated]
        _report(progress, "load", 1, 1)
        if published and not newcomers:
            latest = await _latest_run(unit)
            return AllocationResult(unit, latest, 0, len(existing), True)
        centres = await _Centres.load(unit)
        rooms = await exam_rooms.rooms_of_unit(unit)
        plan = _plan(clean_seed, unit, centres, rooms, offerings, newcomers, existing, progress)
        if plan.shortages:
            raise DomainError.of(
                ErrorCode.NOT_ENOUGH_SEATS,
                detail="; ".join(s.describe() for s in plan.shortages),
            )
        by_id = {r.id: r for r in rooms}
        _check_codes(
            unit, centres, {by_id[room_id].centre_key for room_id, _ in plan.seats.values()}
        )
        run = await AllocationRun.create(
            session_id=unit.session.id,
            kind=unit.kind,
            province_id=unit.province.id,
            school_id=unit.school.id if unit.school else None,
            unit_key=unit.key,
            seed=clean_seed,
            top_up=published,
            tickets=len(newcomers),
            rooms_used=len({room_id for room_id, _ in plan.seats.values()}),
            actor=actor,
            created_at=now,
            published_at=now if published else None,
        )
        rows = [
            _ticket(unit, run, registration, offerings, by_id, centres, plan, now, published)
            for registration in newcomers
        ]
        for start in range(0, len(rows), WRITE_BATCH):
            await Ticket.bulk_create(rows[start : start + WRITE_BATCH])
            _report(progress, "write", min(start + WRITE_BATCH, len(rows)), len(rows))
        if published:  # published at once: they must print, as publish() demands
            await _refuse_unprintable(await Ticket.filter(run_id=run.id).order_by("number"))
        await audit.record(
            "tickets.allocate",
            actor=actor,
            subject=f"AllocationRun:{run.id}",
            client_address=client_address,
            unit=unit.label,
            seed=clean_seed,
            top_up=published,
            tickets=len(rows),
            rooms_used=run.rooms_used,
        )
    return AllocationResult(unit, run, len(rows), len(existing) + len(rows), published)


def _plan(
    seed: str,
    unit: Unit,
    centres: _Centres,
    rooms: list[ExamRoom],
    offerings: dict[int, _Offering],
    newcomers: list[dict[str, Any]],
    existing: list[dict[str, Any]],
    progress: Progress | None,
) -> Plan:
    rooms_by_centre: dict[str, list[PlanRoom]] = defaultdict(list)
    centre_of_room: dict[int, str] = {}
    for room in rooms:
        rooms_by_centre[room.centre_key].append(PlanRoom(room.id, room.number, room.capacity))
        centre_of_room[room.id] = room.centre_key
    occupied: dict[str, dict[tuple[int, str], dict[int, str]]] = defaultdict(dict)
    for held in existing:
        centre = centre_of_room[held["room_id"]]
        seats = occupied[centre].setdefault((held["room_id"], held["slot"]), {})
        seats[held["seat"]] = offerings[held["offering_id"]].code
    candidates: dict[str, list[PlanCandidate]] = defaultdict(list)
    for registration in newcomers:
        offering = offerings[registration["offering_id"]]
        key = (  # every registration has a campus, an oral one also its oral centre
            exam_rooms.centre_key(registration["campus_id"], None)
            if unit.kind == SubjectKind.WRITTEN
            else exam_rooms.centre_key(None, registration["oral_center_id"])
        )
        candidates[key].append(
            PlanCandidate(registration["id"], offering.code, offering.digit, offering.slot)
        )
    plan = Plan()
    for done, key in enumerate(sorted(candidates), start=1):
        label = centres.labels.get(key, key)
        part = plan_centre(
            seed,
            centres.codes.get(key, key),
            rooms_by_centre.get(key, []),
            candidates[key],
            occupied.get(key),
        )
        plan.seats.update(part.seats)
        plan.shortages += [
            Shortage(label, s.subject_code, s.candidates, s.seated) for s in part.shortages
        ]
        _report(progress, "shuffle", done, len(candidates))
    return plan


def _ticket(
    unit: Unit,
    run: AllocationRun,
    registration: dict[str, Any],
    offerings: dict[int, _Offering],
    rooms: dict[int, ExamRoom],
    centres: _Centres,
    plan: Plan,
    now: datetime,
    published: bool,
) -> Ticket:
    room_id, seat = plan.seats[registration["id"]]
    room = rooms[room_id]
    offering = offerings[registration["offering_id"]]
    code = centres.codes[room.centre_key]
    session = unit.session
    number = (
        written_number(
            code[:5], code[5:], session.year, session.half, offering.digit, room.number, seat
        )
        if unit.kind == SubjectKind.WRITTEN
        else oral_number(code, session.year, session.half, offering.digit, room.number, seat)
    )
    return Ticket(
        number=number,
        registration_id=registration["id"],
        account_id=registration["account_id"],
        session_id=session.id,
        offering_id=offering.id,
        kind=unit.kind,
        unit_key=unit.key,
        run_id=run.id,
        room_id=room_id,
        slot=offering.slot,
        seat=seat,
        created_at=now,
        published_at=now if published else None,
    )


async def _latest_run(unit: Unit) -> AllocationRun | None:
    return (
        await AllocationRun.filter(session_id=unit.session.id, unit_key=unit.key)
        .order_by("-id")
        .first()
    )


async def runs_of_unit(unit: Unit) -> list[AllocationRun]:
    """The unit's allocation runs, newest first: the seeds that reproduce each of them."""
    return await AllocationRun.filter(session_id=unit.session.id, unit_key=unit.key).order_by("-id")


# --- publication ----------------------------------------------------------------------------


async def _refuse_unprintable(issued: Sequence[Ticket]) -> None:
    """``MISSING_GLYPH`` per ticket with a character no font can draw, at ``tickets.<number>``."""
    problems = [
        Problem(ErrorCode.MISSING_GLYPH, ("tickets", view.ticket.number), detail)
        for view in await tickets.load_views(issued)
        if (detail := view.unprintable()) is not None
    ]
    if problems:
        raise DomainError(problems)


@dataclass(frozen=True)
class PublishResult:
    unit: Unit
    published: int  # tickets published now
    total: int  # the unit's published tickets afterwards


async def publish(
    actor: Account | None, unit: Unit, *, client_address: str | None = None
) -> PublishResult:
    """Make the unit's tickets visible to their candidates and their numbers final.

    Every ticket must be printable: a character no font can draw (on a name, a centre or a
    room) refuses the publication, naming the tickets and characters, so the school corrects
    the data before a candidate ever sees a ticket with an empty box on it."""
    async with in_transaction():
        await exam_rooms.lock_unit(unit)
        latest = await _latest_run(unit)
        if latest is None:
            raise DomainError.of(ErrorCode.NOT_ALLOCATED)
        pending = await Ticket.filter(
            session_id=unit.session.id, unit_key=unit.key, published_at__isnull=True
        ).order_by("number")
        await _refuse_unprintable(pending)
        now = clock.now()
        if pending:
            await Ticket.filter(id__in=[t.id for t in pending]).update(published_at=now)
        await AllocationRun.filter(
            session_id=unit.session.id, unit_key=unit.key, published_at__isnull=True
        ).update(published_at=now)
        total = await Ticket.filter(
            session_id=unit.session.id, unit_key=unit.key, published_at__isnull=False
        ).count()
        await audit.record(
            "tickets.publish",
            actor=actor,
            subject=f"ExamSession:{unit.session.id}",
            client_address=client_address,
            unit=unit.label,
            published=len(pending),
            total=total,
        )
    return PublishResult(unit, len(pending), total)
