"""Admission tickets through GraphQL and the download route (T1–T5): rooms, allocation,
publication, print windows, the PDF a candidate prints, and who may fetch it."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

from cetgql import models
from cetgql.models import Role
from cetgql.services import clock
from tests.registration_setup import build_world, sign_in_again
from tests.tickets_support import (
    ALLOCATE,
    MY_REGISTRATIONS,
    MY_TICKETS,
    PUBLISH,
    SET_PRINT_WINDOW,
    SET_ROOMS,
    admin_token,
    close_registration,
    codes,
    paid_candidate,
    pdf_fonts,
    pdf_images,
    pdf_text,
    photo_bytes,
    rooms_input,
    unit,
)


async def _published_world(gql, *, names=("李雷", "韩梅梅"), rooms=((1, 30, "第一教学楼 A101"),)):
    """Paid CET4 candidates of 中山大学 南校园, allocated and published by the school."""
    world = await build_world()
    people = [await paid_candidate(gql, world, name=n, photo=photo_bytes()) for n in names]
    school = await admin_token(Role.SCHOOL_ADMIN, school="10558")
    rooms_result = await gql.data(SET_ROOMS, {"input": rooms_input(*rooms)}, token=school)
    assert rooms_result["setExamRooms"]["userErrors"] == []
    await close_registration(world)
    allocated = await gql.data(ALLOCATE, {"input": unit(seed="seed-1")}, token=school)
    assert allocated["allocateSeats"]["userErrors"] == []
    published = await gql.data(PUBLISH, {"input": unit()}, token=school)
    assert published["publishTickets"] == {
        "published": len(names),
        "total": len(names),
        "userErrors": [],
    }
    return world, people, school


async def _window(gql, token, opens, closes, **extra):
    result = await gql.data(
        SET_PRINT_WINDOW,
        {"input": unit(opensAt=opens.isoformat(), closesAt=closes.isoformat(), **extra)},
        token=token,
    )
    return result["setTicketPrintWindow"]


async def _my_tickets(gql, candidate):
    return (await gql.data(MY_TICKETS, {"s": "2026H1"}, token=candidate.token))["viewer"]["tickets"]


async def test_candidate_prints_the_ticket_in_the_window_and_gets_null_outside(gql):
    _, (lilei, _), school = await _published_world(gql)
    now = clock.now()
    (ticket,) = await _my_tickets(gql, lilei)
    assert re.fullmatch(r"105581" r"26" r"1" r"1" r"001" r"\d\d", ticket["number"])  # T4
    assert ticket["subject"]["code"] == "CET4" and ticket["kind"] == "WRITTEN"
    assert ticket["centerName"] == "中山大学（南校园）"
    assert ticket["room"] == "001" and ticket["roomName"] == "第一教学楼 A101"
    assert ticket["seat"] == ticket["number"][-2:]
    assert ticket["examStart"].endswith("+08:00")
    assert ticket["pdfUrl"] is None and ticket["printableFrom"] is None  # no window yet
    assert ticket["printError"] is None

    window = await _window(gql, school, now + timedelta(hours=1), now + timedelta(days=3))
    assert window["userErrors"] == [] and window["printWindow"]["handedOutBySchool"] is False
    (ticket,) = await _my_tickets(gql, lilei)
    assert ticket["printableFrom"] is not None and ticket["pdfUrl"] is None  # not open yet

    clock.advance(timedelta(hours=2))
    await sign_in_again(lilei)
    (ticket,) = await _my_tickets(gql, lilei)
    assert ticket["pdfUrl"].startswith("http://testserver/files/tickets/")
    response = await gql.http.get(ticket["pdfUrl"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    text = pdf_text(response.content)
    for expected in ("李雷", ticket["number"], "中山大学（南校园）", "英语四级", "考生须知"):
        assert expected in text, expected
    assert "1101" not in text and "4401**********" in text  # the ID number is masked
    assert pdf_images(response.content) == [(90, 120)]  # the roster photo
    fonts = pdf_fonts(response.content)
    cjk = [f for f in fonts if "CET-Sans" in f["name"]]
    assert cjk and all(f["emb"] == "yes" and f["sub"] == "yes" for f in cjk), fonts

    registrations = (await gql.data(MY_REGISTRATIONS, token=lilei.token))["viewer"]
    assert registrations["registrations"][0]["ticket"]["number"] == ticket["number"]

    clock.advance(timedelta(days=3))  # the window has closed
    await sign_in_again(lilei)
    (ticket_after,) = await _my_tickets(gql, lilei)
    assert ticket_after["pdfUrl"] is None
    assert (await gql.http.get(ticket["pdfUrl"])).status_code == 403


async def test_nobody_else_can_fetch_a_ticket(gql):
    _, (lilei, meimei), school = await _published_world(gql)
    now = clock.now()
    await _window(gql, school, now - timedelta(hours=1), now + timedelta(days=3))
    (mine,) = await _my_tickets(gql, lilei)
    (hers,) = await _my_tickets(gql, meimei)
    assert mine["number"] != hers["number"]

    # Her ticket through node(id:) is null for me; so is everything that would lead to it.
    node = await gql.data(
        "query($id: ID!) { node(id: $id) { ... on Ticket { number pdfUrl } } }",
        {"id": hers["id"]},
        token=lilei.token,
    )
    assert node["node"] is None
    own = await gql.data(
        "query($id: ID!) { node(id: $id) { ... on Ticket { number } } }",
        {"id": mine["id"]},
        token=lilei.token,
    )
    assert own["node"]["number"] == mine["number"]

    # My link with her ticket's id, a tampered signature, no signature: all 403.
    url = urlsplit(mine["pdfUrl"])
    her_id = urlsplit(hers["pdfUrl"]).path.rsplit("/", 1)[1]
    swapped = f"{url.path.rsplit('/', 1)[0]}/{her_id}?{url.query}"
    assert (await gql.http.get(swapped)).status_code == 403
    query = parse_qs(url.query)
    signature = query["signature"][0]
    tampered = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    forged = urlencode({"expires": query["expires"][0], "signature": tampered})
    assert (await gql.http.get(f"{url.path}?{forged}")).status_code == 403
    later = urlencode({"expires": int(query["expires"][0]) + 3600, "signature": signature})
    assert (await gql.http.get(f"{url.path}?{later}")).status_code == 403
    assert (await gql.http.get(url.path)).status_code == 403
    assert (await gql.http.get(mine["pdfUrl"])).status_code == 200

    # A link expires within 15 minutes even while the window stays open.
    clock.advance(timedelta(minutes=16))
    assert (await gql.http.get(mine["pdfUrl"])).status_code == 403


async def test_a_school_that_hands_tickets_out_gives_no_link(gql):
    _, (lilei, _), school = await _published_world(gql)
    handed = await gql.data(SET_PRINT_WINDOW, {"input": unit(handedOutBySchool=True)}, token=school)
    assert handed["setTicketPrintWindow"]["printWindow"] == {
        "kind": "WRITTEN",
        "opensAt": None,
        "closesAt": None,
        "handedOutBySchool": True,
    }
    (ticket,) = await _my_tickets(gql, lilei)
    assert ticket["handedOutBySchool"] is True
    assert ticket["pdfUrl"] is None and ticket["printableFrom"] is None


async def test_only_paid_registrations_get_tickets_once_published(gql):
    world = await build_world()
    paid = await paid_candidate(gql, world, name="王芳")
    from tests.tickets_support import SELECT

    unpaid = await paid_candidate(gql, world, subjects=(), name="赵强")
    chosen = await gql.data(
        SELECT,
        {"input": {"sessionCode": "2026H1", "items": [{"subjectCode": "CET4"}]}},
        token=unpaid.token,
    )
    assert chosen["selectSubjects"]["userErrors"] == []
    school = await admin_token(Role.SCHOOL_ADMIN, school="10558")
    await gql.data(SET_ROOMS, {"input": rooms_input((1, 30, ""))}, token=school)
    await close_registration(world)

    # The unpaid choice may still be paid within its 24 hours: allocation waits for it.
    early = await gql.data(ALLOCATE, {"input": unit()}, token=school)
    assert codes(early["allocateSeats"]) == ["PAYMENTS_PENDING"]
    assert "(1)" in early["allocateSeats"]["userErrors"][0]["message"]

    clock.advance(timedelta(hours=25))  # it lapsed
    await sign_in_again(paid)
    school = await admin_token(Role.SCHOOL_ADMIN, school="10558", tag="2")
    before = await _my_tickets(gql, paid)
    assert before == []
    allocated = await gql.data(ALLOCATE, {"input": unit()}, token=school)
    assert allocated["allocateSeats"]["created"] == 1
    assert await _my_tickets(gql, paid) == []  # not before publication
    await gql.data(PUBLISH, {"input": unit()}, token=school)
    assert len(await _my_tickets(gql, paid)) == 1
    assert await models.Ticket.filter(account_id=unpaid.account.id).count() == 0


async def test_allocation_waits_for_registration_to_close(gql):
    world = await build_world()
    await paid_candidate(gql, world)
    school = await admin_token(Role.SCHOOL_ADMIN, school="10558")
    await gql.data(SET_ROOMS, {"input": rooms_input((1, 30, ""))}, token=school)
    result = await gql.data(ALLOCATE, {"input": unit()}, token=school)
    assert codes(result["allocateSeats"]) == ["REGISTRATION_STILL_OPEN"]
    assert await models.Ticket.all().count() == 0
    unpublished = await gql.data(PUBLISH, {"input": unit()}, token=school)
    assert codes(unpublished["publishTickets"]) == ["NOT_ALLOCATED"]


async def test_too_few_seats_refuses_the_whole_run_and_says_where(gql):
    world = await build_world()
    for n in range(3):
        await paid_candidate(gql, world, name=f"考生{'甲乙丙'[n]}")
    school = await admin_token(Role.SCHOOL_ADMIN, school="10558")
    await gql.data(SET_ROOMS, {"input": rooms_input((1, 2, ""))}, token=school)
    await close_registration(world)
    result = await gql.data(ALLOCATE, {"input": unit()}, token=school)
    (error,) = result["allocateSeats"]["userErrors"]
    assert error["code"] == "NOT_ENOUGH_SEATS"
    assert "105581 南校园 CET4 2/3" in error["message"]
    assert await models.Ticket.all().count() == 0
    assert await models.AllocationRun.all().count() == 0


async def test_reruns_replace_until_publication_then_only_top_up(gql):
    world = await build_world()
    people = [await paid_candidate(gql, world, name=f"学生{i}") for i in range(6)]
    school = await admin_token(Role.SCHOOL_ADMIN, school="10558")
    await gql.data(SET_ROOMS, {"input": rooms_input((1, 4, ""), (2, 4, ""))}, token=school)
    await close_registration(world)

    async def seating():
        return dict(await models.Ticket.all().values_list("registration_id", "number"))

    first = await gql.data(ALLOCATE, {"input": unit(seed="alpha")}, token=school)
    assert first["allocateSeats"]["allocationRun"]["seed"] == "alpha"
    alpha = await seating()
    again = await gql.data(ALLOCATE, {"input": unit(seed="alpha")}, token=school)
    assert again["allocateSeats"]["total"] == 6
    assert await seating() == alpha  # the recorded seed reproduces the run
    await gql.data(ALLOCATE, {"input": unit(seed="beta")}, token=school)
    assert await seating() != alpha and set((await seating()).keys()) == set(alpha)
    fresh = await gql.data(ALLOCATE, {"input": unit()}, token=school)
    assert re.fullmatch(r"[0-9a-f]{16}", fresh["allocateSeats"]["allocationRun"]["seed"])
    bad = await gql.data(ALLOCATE, {"input": unit(seed="no spaces!")}, token=school)
    assert codes(bad["allocateSeats"]) == ["SEED_INVALID"]

    await gql.data(PUBLISH, {"input": unit()}, token=school)
    published = await seating()
    # The province reopens registration for a while: a newly paid candidate gets a seat in a
    # top-up after publication, and no published ticket moves.
    await models.RegistrationWindow.filter(session_id=world.session.id).update(
        closes_at=clock.now() + timedelta(days=1)
    )
    late = await paid_candidate(gql, world, name="迟到")
    await close_registration(world)
    top_up = await gql.data(ALLOCATE, {"input": unit(seed="gamma")}, token=school)
    payload = top_up["allocateSeats"]
    assert payload["topUp"] is True and payload["created"] == 1 and payload["total"] == 7
    assert payload["allocationRun"]["publishedAt"] is not None
    after = await seating()
    assert {k: after[k] for k in published} == published
    assert len(await _my_tickets(gql, late)) == 1
    nothing = await gql.data(ALLOCATE, {"input": unit()}, token=school)
    assert nothing["allocateSeats"]["created"] == 0
    assert len(people) == 6


async def test_rooms_in_use_cannot_shrink_after_publication(gql):
    world = await build_world()
    for i in range(3):
        await paid_candidate(gql, world, name=f"学生{i}")
    school = await admin_token(Role.SCHOOL_ADMIN, school="10558")
    await gql.data(SET_ROOMS, {"input": rooms_input((1, 2, ""), (2, 2, ""))}, token=school)
    await close_registration(world)
    await gql.data(ALLOCATE, {"input": unit()}, token=school)

    # Before publication a change that strands a seat discards the allocation.
    changed = await gql.data(SET_ROOMS, {"input": rooms_input((1, 3, ""))}, token=school)
    assert changed["setExamRooms"]["userErrors"] == []
    assert await models.Ticket.all().count() == 0
    await gql.data(ALLOCATE, {"input": unit()}, token=school)
    await gql.data(PUBLISH, {"input": unit()}, token=school)

    shrink = await gql.data(SET_ROOMS, {"input": rooms_input((1, 1, ""))}, token=school)
    assert codes(shrink["setExamRooms"]) == ["ROOM_IN_USE"]
    drop = await gql.data(SET_ROOMS, {"input": rooms_input((2, 30, ""))}, token=school)
    assert codes(drop["setExamRooms"]) == ["ROOM_IN_USE"]
    grow = await gql.data(
        SET_ROOMS, {"input": rooms_input((1, 40, "图书馆报告厅"), (2, 5, ""))}, token=school
    )
    assert grow["setExamRooms"]["userErrors"] == []
    assert await models.Ticket.all().count() == 3


async def test_room_input_is_checked(gql):
    await build_world()
    school = await admin_token(Role.SCHOOL_ADMIN, school="10558")
    bad = await gql.data(
        SET_ROOMS,
        {"input": rooms_input((0, 30, ""), (5, 100, ""), (5, 10, ""), (6, 10, "\ue000楼"))},
        token=school,
    )
    assert [(e["code"], e["field"]) for e in bad["setExamRooms"]["userErrors"]] == [
        ("ROOM_NUMBER_INVALID", ["rooms", "0", "number"]),
        ("ROOM_CAPACITY_INVALID", ["rooms", "1", "capacity"]),
        ("DUPLICATE_ROOM", ["rooms", "2", "number"]),
        ("MISSING_GLYPH", ["rooms", "3", "name"]),
    ]
    assert "U+E000" in bad["setExamRooms"]["userErrors"][3]["message"]
    campus = await gql.data(
        SET_ROOMS,
        {"input": rooms_input((1, 30, ""), schoolCode="10558", campusCode="9")},
        token=school,
    )
    assert codes(campus["setExamRooms"]) == ["UNKNOWN_CAMPUS"]
    assert await models.ExamRoom.all().count() == 0


async def test_admins_act_only_in_their_scope(gql):
    world = await build_world()
    other = await models.School.create(code="10561", name="华南理工大学", province=world.province)
    await models.Campus.create(school=other, code="1", name="五山校区")
    await paid_candidate(gql, world)
    outsider = await admin_token(Role.SCHOOL_ADMIN, school="10561")
    for mutation, name, variables in (
        (SET_ROOMS, "setExamRooms", rooms_input((1, 30, ""))),
        (ALLOCATE, "allocateSeats", unit()),
        (PUBLISH, "publishTickets", unit()),
    ):
        result = await gql.data(mutation, {"input": variables}, token=outsider)
        assert codes(result[name]) == ["OUT_OF_SCOPE"], name
    # A school never arranges oral tickets: those are the province's (T2).
    oral = await gql.data(
        SET_PRINT_WINDOW,
        {"input": {**unit("ORAL"), "schoolCode": "10561", "handedOutBySchool": True}},
        token=outsider,
    )
    assert codes(oral["setTicketPrintWindow"]) == ["SCHOOL_TICKETS_WRITTEN_ONLY"]
    oral = await gql.data(
        SET_PRINT_WINDOW,
        {
            "input": unit(
                "ORAL", opensAt="2026-05-01T09:00:00+08:00", closesAt="2026-05-20T09:00:00+08:00"
            )
        },
        token=outsider,
    )
    assert codes(oral["setTicketPrintWindow"]) == ["FORBIDDEN"]
    # Candidates are turned away at the top level.
    candidate = await paid_candidate(gql, world, name="韩梅梅")
    refused = await gql.execute(ALLOCATE, {"input": unit()}, token=candidate.token)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_admins_read_their_rooms_runs_and_windows(gql):
    world = await build_world()
    await paid_candidate(gql, world)
    school = await admin_token(Role.SCHOOL_ADMIN, school="10558")
    await gql.data(SET_ROOMS, {"input": rooms_input((2, 20, "B"), (1, 30, "A"))}, token=school)
    await close_registration(world)
    await gql.data(ALLOCATE, {"input": unit(seed="one")}, token=school)
    await gql.data(ALLOCATE, {"input": unit(seed="two")}, token=school)
    now = clock.now()
    await _window(gql, school, now, now + timedelta(days=1))
    query = """
    query($unit: TicketUnitInput!) {
      examRooms(unit: $unit) { id number name capacity }
      allocationRuns(unit: $unit) { id seed topUp tickets publishedAt }
      ticketPrintWindow(unit: $unit) { kind handedOutBySchool opensAt closesAt } }"""
    seen = await gql.data(query, {"unit": unit()}, token=school)
    assert [(r["number"], r["name"], r["capacity"]) for r in seen["examRooms"]] == [
        (1, "A", 30),
        (2, "B", 20),
    ]
    assert [r["seed"] for r in seen["allocationRuns"]] == ["two", "one"]
    assert seen["ticketPrintWindow"]["kind"] == "WRITTEN"

    other = await models.School.create(code="10561", name="华南理工大学", province=world.province)
    outsider = await admin_token(Role.SCHOOL_ADMIN, school=other.code)
    hidden = await gql.data(query, {"unit": unit()}, token=outsider)
    assert hidden == {"examRooms": [], "allocationRuns": [], "ticketPrintWindow": None}
    room_id = seen["examRooms"][0]["id"]
    node = "query($id: ID!) { node(id: $id) { ... on ExamRoom { number } } }"
    assert (await gql.data(node, {"id": room_id}, token=outsider))["node"] is None
    assert (await gql.data(node, {"id": room_id}, token=school))["node"] == {"number": 1}
    province = await admin_token(Role.PROVINCE_ADMIN, province="44")
    assert (await gql.data(node, {"id": room_id}, token=province))["node"] == {"number": 1}
