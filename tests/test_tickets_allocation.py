"""Seat allocation at scale (T4): thousands of paid registrations created in bulk, allocated
through GraphQL, then checked in the database: one candidate per seat at a time, no room over
capacity, every paid registration seated once, and the recorded seed reproducing the run.
Meant for PostgreSQL (``CETGQL_TEST_DATABASE_URL``); it runs on SQLite too."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from cetgql import models
from cetgql.models import IdType, RegistrationStatus, Role, SubjectKind
from cetgql.services import allocation, clock
from tests.registration_setup import build_world
from tests.tickets_support import ALLOCATE, SET_ROOMS, admin_token, codes, rooms_input, unit

CANDIDATES = 3000


async def _bulk_paid(world, count: int) -> None:
    """``count`` candidates of two campuses with paid written registrations: CET4 for most,
    CET6 for every fifth and CJT4 (CET4's time slot) for every seventh."""
    campus2 = await models.Campus.create(school=world.school, code="2", name="北校园")
    offerings = {
        o.subject.code: o
        for o in await models.SessionSubject.filter(session=world.session).select_related("subject")
    }
    now = clock.now()
    accounts = [
        models.Account(
            name=f"考生{i}",
            name_key=f"考生{i}",
            id_type=IdType.RESIDENT_ID,
            id_number=f"BULK{i:08d}",
            password_hash="!unusable",
        )
        for i in range(count)
    ]
    await models.Account.bulk_create(accounts, batch_size=1000)
    accounts = await models.Account.filter(id_number__startswith="BULK").order_by("id")
    orders = [
        models.Order(
            number=f"BULK{i:016d}",
            account_id=a.id,
            session_id=world.session.id,
            province_id=world.province.id,
            kind=SubjectKind.WRITTEN,
            status="PAID",
            amount_fen=3000,
            created_at=now,
            expires_at=now + timedelta(hours=24),
            paid_at=now,
        )
        for i, a in enumerate(accounts)
    ]
    await models.Order.bulk_create(orders, batch_size=1000)
    order_ids = dict(
        await models.Order.filter(number__startswith="BULK").values_list("account_id", "id")
    )
    registrations = []
    for i, account in enumerate(accounts):
        subject = "CJT4" if i % 7 == 0 else "CET6" if i % 5 == 0 else "CET4"
        offering = offerings[subject]
        registrations.append(
            models.Registration(
                account_id=account.id,
                session_id=world.session.id,
                offering_id=offering.id,
                order_id=order_ids[account.id],
                status=RegistrationStatus.PAID,
                school_id=world.school.id,
                campus_id=world.campus.id if i % 3 else campus2.id,
                active_key=f"{account.id}:{offering.id}",
                created_at=now,
                expires_at=now + timedelta(hours=24),
                paid_at=now,
            )
        )
    await models.Registration.bulk_create(registrations, batch_size=1000)
    await models.RegistrationWindow.filter(session_id=world.session.id).update(
        closes_at=now - timedelta(minutes=1)
    )


async def _seating() -> dict[int, tuple[str, int, int]]:
    rows = await models.Ticket.all().values_list("registration_id", "number", "room_id", "seat")
    return {r: (n, room, seat) for r, n, room, seat in rows}


async def test_thousands_allocated_without_double_seats_or_full_rooms(gql):
    world = await build_world()
    await _bulk_paid(world, CANDIDATES)
    school = await admin_token(Role.SCHOOL_ADMIN, school="10558")
    for campus in ("1", "2"):
        rooms = [(n, 30 if n % 4 else 25, f"教学楼 {n:03d}") for n in range(1, 91)]
        result = await gql.data(
            SET_ROOMS,
            {"input": rooms_input(*rooms, schoolCode="10558", campusCode=campus)},
            token=school,
        )
        assert result["setExamRooms"]["userErrors"] == []

    first = await gql.data(ALLOCATE, {"input": unit(seed="bulk-seed")}, token=school)
    payload = first["allocateSeats"]
    assert payload["userErrors"] == [] and payload["created"] == CANDIDATES

    tickets = await models.Ticket.all().values(
        "registration_id", "number", "room_id", "slot", "seat", "offering_id"
    )
    rooms = {r.id: r for r in await models.ExamRoom.all()}
    assert len(tickets) == CANDIDATES
    assert len({t["registration_id"] for t in tickets}) == CANDIDATES  # one ticket each
    assert len({t["number"] for t in tickets}) == CANDIDATES
    assert all(len(t["number"]) == 15 and t["number"].isdigit() for t in tickets)
    seats = Counter((t["room_id"], t["slot"], t["seat"]) for t in tickets)
    assert max(seats.values()) == 1  # never two candidates in one seat at one time
    assert all(1 <= t["seat"] <= rooms[t["room_id"]].capacity for t in tickets)
    per_room = Counter((t["room_id"], t["slot"]) for t in tickets)
    assert all(n <= rooms[room].capacity for (room, _), n in per_room.items())
    subjects: dict[tuple[int, str], set[int]] = defaultdict(set)
    for t in tickets:
        subjects[(t["room_id"], t["slot"])].add(t["offering_id"])
    assert all(len(s) == 1 for s in subjects.values())  # CET4 and CJT4 never share a room
    paid = set(
        await models.Registration.filter(status=RegistrationStatus.PAID).values_list(
            "id", flat=True
        )
    )
    assert {t["registration_id"] for t in tickets} == paid

    before = await _seating()
    again = await gql.data(ALLOCATE, {"input": unit(seed="bulk-seed")}, token=school)
    assert again["allocateSeats"]["created"] == CANDIDATES
    assert await _seating() == before  # same seed, same seats
    other = await gql.data(ALLOCATE, {"input": unit(seed="another")}, token=school)
    assert other["allocateSeats"]["created"] == CANDIDATES
    moved = await _seating()
    assert moved != before and set(moved) == set(before)
    runs = await models.AllocationRun.all().order_by("id").values_list("seed", flat=True)
    assert runs == ["bulk-seed", "bulk-seed", "another"]


async def test_the_database_refuses_a_second_candidate_in_a_seat(gql):
    world = await build_world()
    await _bulk_paid(world, 4)
    school = await admin_token(Role.SCHOOL_ADMIN, school="10558")
    for campus in ("1", "2"):
        await gql.data(
            SET_ROOMS,
            {"input": rooms_input((1, 30, ""), (2, 30, ""), schoolCode="10558", campusCode=campus)},
            token=school,
        )
    allocated = await gql.data(ALLOCATE, {"input": unit()}, token=school)
    assert allocated["allocateSeats"]["created"] == 4, allocated["allocateSeats"]["userErrors"]
    taken = await models.Ticket.filter(slot__endswith="-AM").first()
    assert taken is not None
    other = await models.Registration.exclude(id=taken.registration_id).first()
    assert other is not None
    try:
        async with in_transaction():
            await models.Ticket.create(
                number="999999999999999",
                registration_id=other.id,
                account_id=other.account_id,
                session_id=taken.session_id,
                offering_id=taken.offering_id,
                kind=taken.kind,
                unit_key=taken.unit_key,
                run_id=taken.run_id,
                room_id=taken.room_id,
                slot=taken.slot,
                seat=taken.seat,
                created_at=clock.now(),
            )
    except IntegrityError:
        pass
    else:
        raise AssertionError("the unique key over room, slot and seat did not hold")


async def test_a_room_too_small_for_the_unit_refuses_with_the_counts(gql):
    world = await build_world()
    await _bulk_paid(world, 100)
    school = await admin_token(Role.SCHOOL_ADMIN, school="10558")
    await gql.data(SET_ROOMS, {"input": rooms_input((1, 99, ""))}, token=school)
    result = await gql.data(ALLOCATE, {"input": unit()}, token=school)
    assert codes(result["allocateSeats"]) == ["NOT_ENOUGH_SEATS"]
    assert "105582 北校园" in result["allocateSeats"]["userErrors"][0]["message"]
    assert await models.Ticket.all().count() == 0


def test_the_plan_keeps_subjects_of_a_slot_apart_and_tops_up_around_held_seats():
    rooms = [
        allocation.PlanRoom(1, 1, 3),
        allocation.PlanRoom(2, 2, 3),
        allocation.PlanRoom(3, 3, 3),
    ]
    people = [allocation.PlanCandidate(i, "CET4", 1, "AM") for i in range(4)] + [
        allocation.PlanCandidate(10 + i, "CJT4", 3, "AM") for i in range(2)
    ]
    plan = allocation.plan_centre("s", "105581", rooms, people)
    assert not plan.shortages
    by_subject: dict[str, set[int]] = defaultdict(set)
    for registration, (room, _) in plan.seats.items():
        by_subject["CET4" if registration < 10 else "CJT4"].add(room)
    assert by_subject == {"CET4": {1, 2}, "CJT4": {3}}
    assert plan == allocation.plan_centre("s", "105581", rooms, people)

    held = {(1, "AM"): {1: "CET4", 2: "CET4", 3: "CET4"}, (2, "AM"): {1: "CET4"}}
    late = [
        allocation.PlanCandidate(99, "CET4", 1, "AM"),
        allocation.PlanCandidate(98, "CJT4", 3, "AM"),
    ]
    top_up = allocation.plan_centre("s", "105581", rooms, late, held)
    assert top_up.seats == {99: (2, 2), 98: (3, 1)}
    full = allocation.plan_centre("s", "105581", rooms[:1], late, held)
    assert [(s.subject_code, s.seated) for s in full.shortages] == [("CET4", 0), ("CJT4", 0)]


def test_ticket_numbers_follow_t4_and_the_oral_scheme():
    # school 10558, campus 1, 2026, first half, CET6 (2), room 12, seat 7
    assert allocation.written_number("10558", "1", 2026, 1, 2, 12, 7) == "105581261201207"
    # oral centre 440001, 2026, second half, oral marker 0, CET-SET6 (6), room 3, seat 15
    assert allocation.oral_number("440001", 2026, 2, 6, 3, 15) == "440001262060315"
