"""No N+1: the candidate's overview costs the same number of SQL statements whatever it shows.

The overview (``benchmarks/load.py:OVERVIEW``: registrations with their subject, oral centre
and order; orders with their payments; tickets) resolves every relation through a per-request
DataLoader, so a candidate with ten registrations, ten orders and twenty payments costs as many
statements as one with one of each. The statements are counted in-process
(``tests/sql_counter.py``), on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

from datetime import timedelta

from benchmarks.load import overview_query
from cetgql import models
from cetgql.graphql.schema import schema
from cetgql.models import OrderStatus, PaymentStatus, RegistrationStatus, Role, SubjectKind
from cetgql.services import clock
from tests.registration_setup import Candidate, World, build_world, qualified_candidate
from tests.sql_counter import SqlLog, recording
from tests.tickets_support import (
    ALLOCATE,
    PUBLISH,
    SET_PRINT_WINDOW,
    SET_ROOMS,
    admin_token,
    close_registration,
    oral_center_id,
    paid_candidate,
    rooms_input,
    unit,
)

HAS_TICKETS = "tickets" in schema._schema.type_map["Account"].fields  # type: ignore[attr-defined]
OVERVIEW = overview_query(HAS_TICKETS)


async def _history(world: World, candidate: Candidate, choices: int) -> None:
    """``choices`` orders of one subject each, every one with a closed and a successful
    payment; all but the last cancelled, so each holds a registration of its own."""
    offering = await models.SessionSubject.get(session=world.session, subject__code="CET-SET4")
    record = await models.RosterRecord.get(id_number=candidate.account.id_number)
    now = clock.now()
    for n in range(choices):
        last = n == choices - 1
        status = OrderStatus.PAID if last else OrderStatus.CANCELLED
        order = await models.Order.create(
            number=f"2026{n:016d}{candidate.account.id}",
            account=candidate.account,
            session=world.session,
            province=world.province,
            kind=SubjectKind.ORAL,
            status=status,
            amount_fen=5000,
            created_at=now + timedelta(seconds=n),
            expires_at=now + timedelta(days=1),
            paid_at=now if last else None,
        )
        await models.Registration.create(
            account=candidate.account,
            session=world.session,
            offering=offering,
            order=order,
            status=RegistrationStatus(status.value),
            school_id=record.school_id,
            campus_id=record.campus_id,
            oral_center=world.centers[n % len(world.centers)],
            active_key=f"{candidate.account.id}:{offering.id}" if last else None,
            created_at=now + timedelta(seconds=n),
            expires_at=now + timedelta(days=1),
        )
        for m, payment_status in enumerate((PaymentStatus.CLOSED, PaymentStatus.SUCCEEDED)):
            await models.Payment.create(
                order=order,
                provider="alipay",
                out_trade_no=f"{candidate.account.id:06d}{n:04d}{m}",
                amount_fen=5000,
                status=payment_status,
                created_at=now,
                updated_at=now,
                paid_at=now if payment_status == PaymentStatus.SUCCEEDED else None,
            )


async def _overview(gql, candidate: Candidate) -> tuple[dict, SqlLog]:  # type: ignore[no-untyped-def, type-arg]
    with recording() as log:
        data = await gql.data(OVERVIEW, token=candidate.token)
    return data["viewer"], log


async def test_overview_statements_do_not_grow_with_history(gql):
    world = await build_world(centers=3)
    one = await qualified_candidate(world, name="韩梅梅")
    ten = await qualified_candidate(world, name="李雷")
    await _history(world, one, 1)
    await _history(world, ten, 10)

    small, small_log = await _overview(gql, one)
    large, large_log = await _overview(gql, ten)

    assert len(small["registrations"]) == 1
    assert len(large["registrations"]) == 10
    assert len(large["orders"]["edges"]) == 10
    assert sum(len(e["node"]["payments"]) for e in large["orders"]["edges"]) == 20
    assert {r["oralCenter"]["name"] for r in large["registrations"]} == {
        c.name for c in world.centers
    }
    assert large_log.count == small_log.count, f"one:\n{small_log}\n\nten:\n{large_log}"
    # The session, the registrations, the orders, and one batch each for subjects, oral
    # centres, the registrations' orders and payments; tickets take a few more.
    assert small_log.count <= 7 + (4 if HAS_TICKETS else 0), str(small_log)


async def test_overview_of_nobody_yet_is_cheap(gql):
    world = await build_world()
    candidate = await qualified_candidate(world)
    viewer, log = await _overview(gql, candidate)
    assert viewer["registrations"] == []
    assert viewer["orders"]["edges"] == []
    assert log.count <= 4 + (2 if HAS_TICKETS else 0), str(log)


TICKETS = """{ viewer { tickets { id number subject { code name } examStart examEnd centerName
  room seat printableFrom printableUntil } } }"""


async def test_ticket_list_statements_do_not_grow_with_tickets(gql):
    """The candidate's tickets cost the session lookup, one joined query for the tickets with
    their subject, session, room, centre and account, then the roster records and the print
    windows: the same for one ticket as for a written and an oral one."""
    world = await build_world()
    one = await paid_candidate(gql, world, name="韩梅梅")
    two = await paid_candidate(gql, world, subjects=("CET4", "CET-SET4"), name="李雷")
    school = await admin_token(Role.SCHOOL_ADMIN, school="10558")
    province = await admin_token(Role.PROVINCE_ADMIN, province="44")
    centre = {"oralCenterId": oral_center_id(world.centers[0])}
    for token, kind, rooms in (
        (school, "WRITTEN", rooms_input((1, 30, "第一教学楼 A101"))),
        (province, "ORAL", rooms_input((1, 10, "语音室 1"), **centre)),
    ):
        set_rooms = await gql.data(SET_ROOMS, {"input": rooms}, token=token)
        assert set_rooms["setExamRooms"]["userErrors"] == [], set_rooms
        await close_registration(world, SubjectKind(kind))
        allocated = await gql.data(ALLOCATE, {"input": unit(kind)}, token=token)
        assert allocated["allocateSeats"]["userErrors"] == [], allocated
        published = await gql.data(PUBLISH, {"input": unit(kind)}, token=token)
        assert published["publishTickets"]["userErrors"] == [], published
    now = clock.now()
    window = {"opensAt": now.isoformat(), "closesAt": (now + timedelta(days=2)).isoformat()}
    await gql.data(SET_PRINT_WINDOW, {"input": unit(**window)}, token=school)

    with recording() as small_log:
        small = (await gql.data(TICKETS, token=one.token))["viewer"]["tickets"]
    with recording() as large_log:
        large = (await gql.data(TICKETS, token=two.token))["viewer"]["tickets"]

    assert len(small) == 1
    shown = {t["centerName"]: t["printableFrom"] is not None for t in large}
    assert shown == {"中山大学（南校园）": True, "广州口试考点1": False}  # the school's window
    assert large_log.count == small_log.count, f"one:\n{small_log}\n\ntwo:\n{large_log}"
    assert small_log.count <= 4, str(small_log)


EVERY_RELATION = """{ viewer { registrations {
  id status session { code } subject { code } ticket { number }
  oralCenter { name province remainingSeats }
  order { number registrations { id subject { code } } payments { id status } }
} } }"""


async def test_every_relation_of_a_registration_is_batched(gql):
    """Each relation a registration shows (session, subject, ticket, oral centre with its
    province and free seats, order with its registrations and payments) costs one batch per
    request, not one statement per registration."""
    world = await build_world(centers=3)
    one = await qualified_candidate(world, name="韩梅梅")
    ten = await qualified_candidate(world, name="李雷")
    await _history(world, one, 1)
    await _history(world, ten, 10)

    with recording() as small_log:
        small = (await gql.data(EVERY_RELATION, token=one.token))["viewer"]["registrations"]
    with recording() as large_log:
        large = (await gql.data(EVERY_RELATION, token=ten.token))["viewer"]["registrations"]

    assert len(small) == 1 and len(large) == 10
    assert {r["session"]["code"] for r in large} == {world.session.code}
    assert {r["oralCenter"]["province"] for r in large} == {world.province.name}
    assert all(len(r["order"]["payments"]) == 2 for r in large)
    assert all(r["order"]["registrations"][0]["id"] == r["id"] for r in large)
    assert large_log.count == small_log.count, f"one:\n{small_log}\n\nten:\n{large_log}"
