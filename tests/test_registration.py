"""Choosing subjects through GraphQL (S1–S10, S12) on the real database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cetgql import models
from cetgql.services import clock, registration
from tests.registration_setup import (
    WRITTEN_FEE,
    build_world,
    qualified_candidate,
    sign_in_again,
)

AVAILABLE = """
query($s: String!) { availableSubjects(sessionCode: $s) {
  subject { code kind slot } eligible reasons fee { fen yuan } } }
"""
SELECT = """
mutation($input: SelectSubjectsInput!) { selectSubjects(input: $input) {
  order { id number kind status amount { fen yuan } expiresAt
          registrations { id status subject { code } oralCenter { name } } }
  orders { id kind }
  userErrors { field code message } } }
"""
OVERVIEW = """
{ viewer { registrations(sessionCode: "2026H1") { status subject { code } expiresAt
             order { number status } oralCenter { id } }
           orders(first: 10) { edges { node { number status kind } } } } }
"""
CENTERS = """
query($subject: String!) { oralCenters(sessionCode: "2026H1", subjectCode: $subject) {
  id name province remainingSeats } }
"""


def options(data):
    return {o["subject"]["code"]: o for o in data["availableSubjects"]}


async def select(gql, token, *items):
    payload = await gql.data(
        SELECT, {"input": {"sessionCode": "2026H1", "items": list(items)}}, token=token
    )
    return payload["selectSubjects"]


async def pay(order_global_id: str) -> None:
    from strawberry.relay import GlobalID

    await registration.mark_order_paid(int(GlobalID.from_id(order_global_id).node_id), clock.now())


async def test_available_subjects_explain_every_subject(gql):
    world = await build_world()
    me = await qualified_candidate(world, subjects=("CET4", "CJT4", "CET-SET4"))
    listed = options(await gql.data(AVAILABLE, {"s": "2026H1"}, token=me.token))
    assert len(listed) == 11  # every subject of a June session is listed
    assert listed["CET4"]["eligible"] is True
    assert listed["CET4"]["fee"] == {"fen": WRITTEN_FEE, "yuan": "30.00"}
    assert listed["CET6"]["reasons"] == ["CET6_REQUIRES_CET4"]
    assert listed["CGT4"]["reasons"] == ["SUBJECT_NOT_IN_ROSTER"]
    assert listed["CET-SET4"]["reasons"] == ["WRITTEN_NOT_PAID"]
    assert "WRITTEN_NOT_PAID" in listed["CET-SET6"]["reasons"]


async def test_unconfirmed_or_unqualified_candidates_can_choose_nothing(gql):
    world = await build_world()
    unconfirmed = await qualified_candidate(world, confirmed=False)
    listed = options(await gql.data(AVAILABLE, {"s": "2026H1"}, token=unconfirmed.token))
    assert {tuple(o["reasons"]) for o in listed.values()} == {("NOT_CONFIRMED",)}
    result = await select(gql, unconfirmed.token, {"subjectCode": "CET4"})
    assert [e["code"] for e in result["userErrors"]] == ["NOT_CONFIRMED"]
    assert await models.Order.all().count() == 0


async def test_written_choice_makes_an_order_due_in_24_hours(gql):
    world = await build_world()
    me = await qualified_candidate(world)
    before = clock.now()
    result = await select(gql, me.token, {"subjectCode": "CET4"})
    assert result["userErrors"] == []
    order = result["order"]
    assert order["kind"] == "WRITTEN" and order["status"] == "PENDING_PAYMENT"
    assert order["amount"] == {"fen": WRITTEN_FEE, "yuan": "30.00"}
    assert len(order["number"]) == 20
    from datetime import datetime

    deadline = datetime.fromisoformat(order["expiresAt"])
    assert deadline.utcoffset() == timedelta(hours=8)  # shown in Asia/Shanghai
    assert abs((deadline - before) - timedelta(hours=24)) < timedelta(seconds=5)
    assert [r["subject"]["code"] for r in order["registrations"]] == ["CET4"]

    again = await select(gql, me.token, {"subjectCode": "CET4"})
    assert [e["code"] for e in again["userErrors"]] == ["ALREADY_REGISTERED"]
    assert again["userErrors"][0]["field"] == ["items", "0", "subjectCode"]
    listed = options(await gql.data(AVAILABLE, {"s": "2026H1"}, token=me.token))
    assert listed["CET4"]["reasons"] == ["ALREADY_REGISTERED"]


async def test_two_subjects_of_one_slot_cannot_both_be_taken(gql):
    world = await build_world()
    me = await qualified_candidate(world)
    both = await select(gql, me.token, {"subjectCode": "CET4"}, {"subjectCode": "CJT4"})
    assert [(e["code"], e["field"]) for e in both["userErrors"]] == [
        ("SLOT_TAKEN", ["items", "1", "subjectCode"])
    ]
    assert await models.Registration.all().count() == 0  # nothing half-written
    await select(gql, me.token, {"subjectCode": "CET4"})
    listed = options(await gql.data(AVAILABLE, {"s": "2026H1"}, token=me.token))
    assert listed["CJT4"]["reasons"] == ["SLOT_TAKEN"]
    assert listed["CET6"]["eligible"] is True  # the afternoon slot is free
    later = await select(gql, me.token, {"subjectCode": "CJT4"})
    assert [e["code"] for e in later["userErrors"]] == ["SLOT_TAKEN"]


async def test_oral_needs_its_written_subject_paid_first(gql):
    world = await build_world()
    me = await qualified_candidate(world)
    center_id = (await gql.data(CENTERS, {"subject": "CET-SET4"}, token=me.token))["oralCenters"][
        0
    ]["id"]
    written = await select(gql, me.token, {"subjectCode": "CET4"})
    early = await select(gql, me.token, {"subjectCode": "CET-SET4", "oralCenterId": center_id})
    assert [e["code"] for e in early["userErrors"]] == ["WRITTEN_NOT_PAID"]

    await pay(written["order"]["id"])
    oral = await select(gql, me.token, {"subjectCode": "CET-SET4", "oralCenterId": center_id})
    assert oral["userErrors"] == []
    assert oral["order"]["kind"] == "ORAL"
    assert oral["order"]["registrations"][0]["oralCenter"]["name"] == "广州口试考点1"
    assert oral["order"]["id"] != written["order"]["id"]  # written and oral are paid apart


async def test_oral_choice_needs_a_centre_of_the_province(gql):
    world = await build_world()
    me = await qualified_candidate(world)
    await pay((await select(gql, me.token, {"subjectCode": "CET4"}))["order"]["id"])
    missing = await select(gql, me.token, {"subjectCode": "CET-SET4"})
    assert [(e["code"], e["field"]) for e in missing["userErrors"]] == [
        ("ORAL_CENTER_REQUIRED", ["items", "0", "oralCenterId"])
    ]
    elsewhere = await models.OralCenter.create(
        session=world.session,
        province=await models.Province.create(code="11", name="北京市"),
        code="110001",
        name="北京口试考点",
        capacity=5,
    )
    from strawberry.relay import GlobalID

    foreign = await select(
        gql,
        me.token,
        {"subjectCode": "CET-SET4", "oralCenterId": str(GlobalID("OralCenter", str(elsewhere.id)))},
    )
    assert [e["code"] for e in foreign["userErrors"]] == ["ORAL_CENTER_NOT_ALLOWED"]


async def test_a_full_centre_refuses_and_lists_no_seats(gql):
    world = await build_world(center_capacity=1, centers=1)
    first = await qualified_candidate(world)
    second = await qualified_candidate(world)
    centre = (await gql.data(CENTERS, {"subject": "CET-SET4"}, token=first.token))["oralCenters"][0]
    assert centre["remainingSeats"] == 1
    for who in (first, second):
        await pay((await select(gql, who.token, {"subjectCode": "CET4"}))["order"]["id"])
    taken = await select(
        gql, first.token, {"subjectCode": "CET-SET4", "oralCenterId": centre["id"]}
    )
    assert taken["userErrors"] == []
    refused = await select(
        gql, second.token, {"subjectCode": "CET-SET4", "oralCenterId": centre["id"]}
    )
    assert [e["code"] for e in refused["userErrors"]] == ["SEATS_FULL"]
    listed = options(await gql.data(AVAILABLE, {"s": "2026H1"}, token=second.token))
    assert listed["CET-SET4"]["reasons"] == ["SEATS_FULL"]
    seats = (await gql.data(CENTERS, {"subject": "CET-SET4"}, token=second.token))["oralCenters"]
    assert seats[0]["remainingSeats"] == 0


async def test_choice_lapses_exactly_at_24_hours_and_frees_its_seat(gql):
    world = await build_world(center_capacity=1, centers=1)
    me = await qualified_candidate(world)
    other = await qualified_candidate(world)
    for who in (me, other):
        await pay((await select(gql, who.token, {"subjectCode": "CET4"}))["order"]["id"])
    centre = (await gql.data(CENTERS, {"subject": "CET-SET4"}, token=me.token))["oralCenters"][0]
    held = await select(gql, me.token, {"subjectCode": "CET-SET4", "oralCenterId": centre["id"]})
    assert held["userErrors"] == []

    clock.advance(timedelta(hours=24) - timedelta(seconds=2))
    await sign_in_again(me)  # sessions last 12 hours
    await sign_in_again(other)
    view = await gql.data(OVERVIEW, token=me.token)
    oral = [r for r in view["viewer"]["registrations"] if r["subject"]["code"] == "CET-SET4"]
    assert oral[0]["status"] == "PENDING_PAYMENT"
    blocked = await select(
        gql, other.token, {"subjectCode": "CET-SET4", "oralCenterId": centre["id"]}
    )
    assert [e["code"] for e in blocked["userErrors"]] == ["SEATS_FULL"]

    clock.advance(timedelta(seconds=2))  # the deadline itself: lapsed, and no job has run
    assert await models.Order.filter(status="PENDING_PAYMENT").count() == 1
    view = await gql.data(OVERVIEW, token=me.token)
    oral = [r for r in view["viewer"]["registrations"] if r["subject"]["code"] == "CET-SET4"]
    assert oral[0]["status"] == "LAPSED" and oral[0]["order"]["status"] == "LAPSED"
    seats = (await gql.data(CENTERS, {"subject": "CET-SET4"}, token=other.token))["oralCenters"]
    assert seats[0]["remainingSeats"] == 1
    taken = await select(
        gql, other.token, {"subjectCode": "CET-SET4", "oralCenterId": centre["id"]}
    )
    assert taken["userErrors"] == []
    # the lapsed candidate may choose again (S8), but the seat is gone now
    again = await select(gql, me.token, {"subjectCode": "CET-SET4", "oralCenterId": centre["id"]})
    assert [e["code"] for e in again["userErrors"]] == ["SEATS_FULL"]


async def test_lapse_job_marks_overdue_orders(gql):
    world = await build_world()
    me = await qualified_candidate(world)
    await select(gql, me.token, {"subjectCode": "CET4"})
    assert await registration.lapse_overdue_orders() == 0
    clock.advance(timedelta(hours=24, seconds=1))
    await sign_in_again(me)
    assert await registration.lapse_overdue_orders() == 1
    row = await models.Registration.get()
    assert row.status == "LAPSED" and row.active_key is None
    again = await select(gql, me.token, {"subjectCode": "CET4"})
    assert again["userErrors"] == []


async def test_window_closing_between_listing_and_choosing(gql):
    world = await build_world()
    me = await qualified_candidate(world)
    listed = options(await gql.data(AVAILABLE, {"s": "2026H1"}, token=me.token))
    assert listed["CET4"]["eligible"] is True
    clock.advance(timedelta(days=11))
    await sign_in_again(me)
    result = await select(gql, me.token, {"subjectCode": "CET4"})
    assert [e["code"] for e in result["userErrors"]] == ["WINDOW_CLOSED"]
    listed = options(await gql.data(AVAILABLE, {"s": "2026H1"}, token=me.token))
    assert "WINDOW_CLOSED" in listed["CET4"]["reasons"]


async def test_school_window_wins_over_the_province_window(gql):
    world = await build_world()
    me = await qualified_candidate(world)
    now = clock.now()
    await models.RegistrationWindow.create(
        session=world.session,
        province=world.province,
        school=world.school,
        kind="WRITTEN",
        opens_at=now + timedelta(days=2),
        closes_at=now + timedelta(days=5),
    )
    result = await select(gql, me.token, {"subjectCode": "CET4"})
    assert [e["code"] for e in result["userErrors"]] == ["WINDOW_CLOSED"]
    clock.advance(timedelta(days=3))
    await sign_in_again(me)
    assert (await select(gql, me.token, {"subjectCode": "CET4"}))["userErrors"] == []


async def test_unpaid_orders_cancel_paid_ones_do_not(gql):
    world = await build_world()
    me = await qualified_candidate(world)
    cancel = """mutation($id: ID!) { cancelOrder(input: {orderId: $id}) {
        order { status registrations { status } } userErrors { code } } }"""
    first = await select(gql, me.token, {"subjectCode": "CET4"})
    done = (await gql.data(cancel, {"id": first["order"]["id"]}, token=me.token))["cancelOrder"]
    assert done["userErrors"] == []
    assert done["order"]["status"] == "CANCELLED"
    assert done["order"]["registrations"] == [{"status": "CANCELLED"}]
    # cancelled choices give their place back: choose again and pay (S10)
    second = await select(gql, me.token, {"subjectCode": "CET4"})
    assert second["userErrors"] == []
    await pay(second["order"]["id"])
    refused = (await gql.data(cancel, {"id": second["order"]["id"]}, token=me.token))["cancelOrder"]
    assert [e["code"] for e in refused["userErrors"]] == ["ORDER_NOT_PENDING"]
    # further subjects may still be added while the window is open (S10)
    more = await select(gql, me.token, {"subjectCode": "CET6"})
    assert more["userErrors"] == []


async def test_nobody_else_reaches_my_orders(gql):
    world = await build_world()
    me = await qualified_candidate(world)
    other = await qualified_candidate(world)
    order_id = (await select(gql, me.token, {"subjectCode": "CET4"}))["order"]["id"]
    query = "query($id: ID!) { node(id: $id) { ... on Order { number } } }"
    assert (await gql.data(query, {"id": order_id}, token=me.token))["node"]["number"]
    assert (await gql.data(query, {"id": order_id}, token=other.token))["node"] is None
    assert (await gql.data(query, {"id": order_id}))["node"] is None
    cancel = """mutation($id: ID!) { cancelOrder(input: {orderId: $id}) { userErrors { code } } }"""
    refused = (await gql.data(cancel, {"id": order_id}, token=other.token))["cancelOrder"]
    assert [e["code"] for e in refused["userErrors"]] == ["NOT_FOUND"]


@pytest.mark.parametrize(
    ("items", "code"),
    [
        ([], "REQUIRED"),
        ([{"subjectCode": "CET4"}, {"subjectCode": "cet4"}], "DUPLICATE_SUBJECT"),
        ([{"subjectCode": "NOPE"}], "SUBJECT_NOT_OFFERED"),
        ([{"subjectCode": f"S{i}"} for i in range(11)], "TOO_MANY_ITEMS"),
        ([{"subjectCode": "CET4", "oralCenterId": "T3JhbENlbnRlcjox"}], "ORAL_CENTER_NOT_ALLOWED"),
    ],
)
async def test_bad_selections_are_coded(gql, items, code):
    world = await build_world()
    me = await qualified_candidate(world)
    result = await select(gql, me.token, *items)
    assert code in [e["code"] for e in result["userErrors"]]
    assert await models.Order.all().count() == 0


async def test_anonymous_selection_is_refused_at_the_top_level(gql):
    result = await gql.execute(
        SELECT, {"input": {"sessionCode": "2026H1", "items": [{"subjectCode": "CET4"}]}}
    )
    assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_nothing_is_readable_until_an_initial_password_is_changed(gql):
    world = await build_world()
    me = await qualified_candidate(world)
    await select(gql, me.token, {"subjectCode": "CET4"})
    me.account.must_change_password = True
    await me.account.save(update_fields=["must_change_password"])
    view = await gql.data(OVERVIEW, token=me.token)
    assert view["viewer"]["registrations"] == []
    assert view["viewer"]["orders"]["edges"] == []
