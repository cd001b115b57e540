"""Where tickets are arranged: allocation units, test centres and their rooms (T4).

- A **unit** is what is allocated, published and given a print window as one, by the level of
  administration that owns it: a school's written tickets (every campus of the school, T3) or
  a province's oral tickets (every oral centre of the province, T2). School admins act on their
  school's unit, province admins on their province's units and its schools' units, the
  national office on any; ``actor=None`` is the national command line.
- A **centre** is where candidates sit: a campus of a school (written, S2) or an oral centre
  (S3). Its rooms are set up by the unit's admins as one list, replaced as a whole: a room's
  number (1–999 written, 1–99 oral: the digits of the ticket number) is its identity, its
  capacity (1–99, the two seat digits) the seats it offers in each time slot.

Once a unit's tickets are published, a room holding tickets can be renamed or grown, but not
removed nor shrunk below the highest seat in use. Before publication a change that strands an
allocated seat discards the unit's allocation instead: the admin allocates again.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tortoise.functions import Max
from tortoise.transactions import in_transaction

from cetgql.models import (
    Account,
    AllocationRun,
    Campus,
    ExamRoom,
    ExamSession,
    OralCenter,
    Province,
    School,
    SubjectKind,
    Ticket,
)
from cetgql.services import access, audit, eligibility, pdf, registration_setup
from cetgql.services.errors import DomainError, ErrorCode, Problem

MAX_WRITTEN_ROOM = 999
MAX_ORAL_ROOM = 99
MAX_SEATS = 99
MAX_ROOMS_PER_CENTRE = 999
MAX_ROOM_NAME = 64


# --- units ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """A school's written tickets or a province's oral tickets in one session."""

    session: ExamSession
    kind: SubjectKind
    province: Province
    school: School | None  # set for written units

    @property
    def key(self) -> str:
        return unit_key(self.kind, self.school.id if self.school else None, self.province.id)

    @property
    def label(self) -> str:
        where = f"{self.school.code} {self.school.name}" if self.school else self.province.name
        return f"{self.session.code} {self.kind.value} {where}"


def unit_key(kind: SubjectKind, school_id: int | None, province_id: int) -> str:
    if kind == SubjectKind.WRITTEN:
        assert school_id is not None
        return f"S{school_id}"
    return f"P{province_id}"


def _code(value: str | None) -> str:
    return unicodedata.normalize("NFKC", value or "").strip().upper()[:32]


async def _scope(actor: Account | None) -> access.Scope | None:
    return None if actor is None else await access.scope_of(actor)


async def resolve_unit(
    actor: Account | None,
    *,
    session_code: str,
    kind: SubjectKind,
    school_code: str | None = None,
    province_code: str | None = None,
) -> Unit:
    """The unit named by the input, within the actor's scope: a school code for written
    tickets, a province code for oral ones (a school never arranges oral tickets)."""
    session = await eligibility.session_by_code(session_code)
    scope = await _scope(actor)
    kind = SubjectKind(kind)
    if kind == SubjectKind.ORAL:
        if _code(school_code):
            raise DomainError.of(ErrorCode.SCHOOL_TICKETS_WRITTEN_ONLY, "schoolCode")
        if not _code(province_code):
            raise DomainError.of(ErrorCode.REQUIRED, "provinceCode")
        province = await registration_setup.province_by_code(province_code or "", "provinceCode")
        registration_setup.require_province(scope, province.id, "provinceCode")
        return Unit(session, kind, province, None)
    if not _code(school_code):
        raise DomainError.of(ErrorCode.REQUIRED, "schoolCode")
    school = await School.get_or_none(code=_code(school_code)).select_related("province")
    if school is None:
        raise DomainError.of(ErrorCode.UNKNOWN_SCHOOL, "schoolCode")
    if _code(province_code) and _code(province_code) != school.province.code:
        raise DomainError.of(ErrorCode.SCHOOL_NOT_IN_PROVINCE, "schoolCode")
    registration_setup.require_school(scope, school, "schoolCode")
    return Unit(session, kind, school.province, school)


# --- centres -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Centre:
    """A campus (written) or an oral centre, with the unit it belongs to."""

    unit: Unit
    campus: Campus | None
    oral_center: OralCenter | None

    @property
    def key(self) -> str:
        return centre_key(
            self.campus.id if self.campus else None,
            self.oral_center.id if self.oral_center else None,
        )

    @property
    def max_room(self) -> int:
        return MAX_ORAL_ROOM if self.oral_center else MAX_WRITTEN_ROOM


def centre_key(campus_id: int | None, oral_center_id: int | None) -> str:
    return f"C{campus_id}" if campus_id is not None else f"O{oral_center_id}"


async def resolve_centre(
    actor: Account | None,
    *,
    session_code: str,
    school_code: str | None = None,
    campus_code: str | None = None,
    oral_center_id: int | None = None,
    oral_center_code: str | None = None,
) -> Centre:
    """A campus by school and campus code, or an oral centre by id or code; in scope."""
    if oral_center_id is not None or _code(oral_center_code):
        session = await eligibility.session_by_code(session_code)
        query = OralCenter.filter(session_id=session.id).select_related("province")
        query = (
            query.filter(id=oral_center_id)
            if oral_center_id is not None
            else query.filter(code=_code(oral_center_code))
        )
        center = await query.first()
        field = "oralCenterId" if oral_center_id is not None else "oralCenterCode"
        if center is None:
            raise DomainError.of(ErrorCode.NOT_FOUND, field)
        unit = await resolve_unit(
            actor,
            session_code=session_code,
            kind=SubjectKind.ORAL,
            province_code=center.province.code,
        )
        return Centre(unit, None, center)
    unit = await resolve_unit(
        actor, session_code=session_code, kind=SubjectKind.WRITTEN, school_code=school_code
    )
    assert unit.school is not None
    campus = await Campus.get_or_none(school_id=unit.school.id, code=_code(campus_code))
    if campus is None:
        raise DomainError.of(ErrorCode.UNKNOWN_CAMPUS, "campusCode")
    return Centre(unit, campus, None)


def centre_name(school: School | None, campus: Campus | None, center: OralCenter | None) -> str:
    """What a ticket calls the centre: 中山大学（南校园）, or the oral centre's name."""
    if center is not None:
        return center.name
    assert school is not None
    return f"{school.name}（{campus.name}）" if campus is not None else school.name


# --- rooms ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoomInput:
    number: int
    capacity: int
    name: str = ""


def _check_rooms(centre: Centre, rooms: Sequence[RoomInput]) -> list[RoomInput]:
    problems: list[Problem] = []
    clean: list[RoomInput] = []
    seen: set[int] = set()
    if len(rooms) > MAX_ROOMS_PER_CENTRE:
        raise DomainError.of(ErrorCode.TOO_MANY_ITEMS, "rooms")
    for index, room in enumerate(rooms):
        path = ("rooms", str(index))
        if isinstance(room.number, bool) or not 1 <= room.number <= centre.max_room:
            problems.append(Problem(ErrorCode.ROOM_NUMBER_INVALID, (*path, "number")))
        elif room.number in seen:
            problems.append(Problem(ErrorCode.DUPLICATE_ROOM, (*path, "number")))
        seen.add(room.number)
        if isinstance(room.capacity, bool) or not 1 <= room.capacity <= MAX_SEATS:
            problems.append(Problem(ErrorCode.ROOM_CAPACITY_INVALID, (*path, "capacity")))
        name = unicodedata.normalize("NFC", room.name).strip()
        if len(name) > MAX_ROOM_NAME:
            problems.append(Problem(ErrorCode.TOO_LONG, (*path, "name")))
        missing = pdf.missing_glyphs(name)
        if missing:
            problems.append(
                Problem(ErrorCode.MISSING_GLYPH, (*path, "name"), pdf.describe(missing))
            )
        clean.append(RoomInput(room.number, room.capacity, name))
    if problems:
        raise DomainError(problems)
    return clean


def _room_details(room: ExamRoom | RoomInput) -> dict[str, Any]:
    return {"number": room.number, "name": room.name, "capacity": room.capacity}


async def set_rooms(
    actor: Account | None,
    centre: Centre,
    rooms: Sequence[RoomInput],
    *,
    client_address: str | None = None,
) -> list[ExamRoom]:
    """Replace the rooms of a centre with ``rooms``; the centre's rooms afterwards."""
    await pdf.load_fonts()
    wanted = _check_rooms(centre, rooms)
    unit = centre.unit
    async with in_transaction():
        await lock_unit(unit)
        existing = {
            r.number: r
            for r in await ExamRoom.filter(session_id=unit.session.id, centre_key=centre.key)
        }
        used = await seats_in_use([r.id for r in existing.values()])
        problems: list[Problem] = []
        wanted_numbers = {r.number for r in wanted}
        for number, held in existing.items():
            if number not in wanted_numbers and held.id in used:
                problems.append(Problem(ErrorCode.ROOM_IN_USE, ("rooms",), f"{number:03d}"))
        for index, item in enumerate(wanted):
            old = existing.get(item.number)
            if old is not None and used.get(old.id, 0) > item.capacity:
                problems.append(
                    Problem(
                        ErrorCode.ROOM_IN_USE,
                        ("rooms", str(index), "capacity"),
                        f"{item.number:03d} ({used[old.id]})",
                    )
                )
        discarded = bool(problems)
        if problems:
            if await unit_published(unit):
                raise DomainError(problems)
            await Ticket.filter(session_id=unit.session.id, unit_key=unit.key).delete()
        before = [_room_details(r) for r in sorted(existing.values(), key=lambda r: r.number)]
        stale = [r.id for n, r in existing.items() if n not in wanted_numbers]
        if stale:
            await ExamRoom.filter(id__in=stale).delete()
        for room in wanted:
            old = existing.get(room.number)
            if old is None:
                await ExamRoom.create(
                    session_id=unit.session.id,
                    kind=unit.kind,
                    province_id=unit.province.id,
                    school_id=unit.school.id if unit.school else None,
                    campus_id=centre.campus.id if centre.campus else None,
                    oral_center_id=centre.oral_center.id if centre.oral_center else None,
                    centre_key=centre.key,
                    number=room.number,
                    name=room.name,
                    capacity=room.capacity,
                )
            elif (old.name, old.capacity) != (room.name, room.capacity):
                old.name, old.capacity = room.name, room.capacity
                await old.save(update_fields=["name", "capacity"])
        await audit.record(
            "tickets.rooms_set",
            actor=actor,
            subject=f"ExamSession:{unit.session.id}",
            client_address=client_address,
            unit=unit.label,
            centre=centre.key,
            before=before,
            after=[_room_details(r) for r in sorted(wanted, key=lambda r: r.number)],
            allocation_discarded=discarded,
        )
    return await rooms_of_centre(centre)


async def rooms_of_centre(centre: Centre) -> list[ExamRoom]:
    return await ExamRoom.filter(session_id=centre.unit.session.id, centre_key=centre.key).order_by(
        "number"
    )


async def rooms_of_unit(unit: Unit) -> list[ExamRoom]:
    query = ExamRoom.filter(session_id=unit.session.id, kind=unit.kind)
    query = (
        query.filter(school_id=unit.school.id)
        if unit.school is not None
        else query.filter(province_id=unit.province.id)
    )
    return await query.order_by("centre_key", "number")


async def seats_in_use(room_ids: list[int]) -> dict[int, int]:
    """The highest seat number held in each room that holds tickets."""
    if not room_ids:
        return {}
    rows = (
        await Ticket.filter(room_id__in=room_ids)
        .annotate(top=Max("seat"))
        .group_by("room_id")
        .values("room_id", "top")
    )
    return {row["room_id"]: int(row["top"]) for row in rows}


async def unit_published(unit: Unit) -> bool:
    """Whether the unit's tickets are out: candidates see them, numbers are final."""
    return await AllocationRun.exists(
        session_id=unit.session.id, unit_key=unit.key, published_at__isnull=False
    )


async def lock_unit(unit: Unit) -> None:
    """Serialise the changes of one unit (rooms, allocation, publication): the school's row
    for written tickets, the province's for oral ones."""
    if unit.school is not None:
        await School.select_for_update().filter(id=unit.school.id).first()
    else:
        await Province.select_for_update().filter(id=unit.province.id).first()


async def administers(
    actor: Account, kind: SubjectKind, province_id: int, school_id: int | None
) -> bool:
    """Whether ``actor`` administers the unit of this kind, province and school: what an admin
    may see of rooms, runs and windows (the same scope :func:`resolve_unit` demands)."""
    scope = await access.scope_of(actor)
    if scope.covers_province(province_id):
        return True
    return kind == SubjectKind.WRITTEN and school_id is not None and school_id in scope.school_ids
