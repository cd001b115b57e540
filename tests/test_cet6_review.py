"""CET6 qualification review (S4) through GraphQL on the real database: approval at once by
ticket and ID, the school's queue and decision, the 425 boundary, tickets before 2005, tickets
that are unknown or somebody else's, and the rate limit that stops ticket enumeration."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from strawberry.relay import GlobalID

from cetgql import models
from cetgql.models import IdType, Role
from cetgql.services import accounts, catalog, clock, identity, sessions
from tests.registration_setup import build_world, qualified_candidate, resident_id, sign_in_again

SESSION = "2026H1"
REQUEST = """
mutation($input: RequestCet6ReviewInput!) { requestCet6Review(input: $input) {
  review { id status reason cet4TicketNumber note decidedAt
           rosterRecord { id } scoreRecord { total } }
  userErrors { field code message retryAfter } } }
"""
DECIDE = """
mutation($input: ReviewCet6RequestInput!) { reviewCet6Request(input: $input) {
  review { id status note decidedAt }
  userErrors { field code message } } }
"""
QUEUE = """
query($status: Cet6ReviewStatus) { cet6Reviews(sessionCode: "2026H1", status: $status) {
  edges { node { id status reason cet4TicketNumber school { code }
    rosterRecord { name idNumber eligibleSubjectCodes }
    scoreRecord { ticketNumber sessionCode name idNumber total reportedTotal } } } } }
"""
MINE = """
{ viewer { cet6Review(sessionCode: "2026H1") { id status reason note cet4TicketNumber
  rosterRecord { id } scoreRecord { total } } } }
"""
AVAILABLE = """
query { availableSubjects(sessionCode: "2026H1") { subject { code } eligible reasons } }
"""
SELECT = """
mutation($input: SelectSubjectsInput!) { selectSubjects(input: $input) {
  order { kind status } userErrors { code } } }
"""


def ticket(year: int, half: int, *, level: int = 1, room: int = 1, seat: int = 1) -> str:
    """A written ticket number in the T4 layout."""
    return f"440010{year % 100:02d}{half}{level}{room:03d}{seat:02d}"


def _released_long_ago() -> dict:
    return {"release_at": clock.now() - timedelta(days=30), "updated_at": clock.now()}


def _not_yet_released() -> dict:
    return {"release_at": clock.now() + timedelta(days=30), "updated_at": clock.now()}


async def score(
    number: str,
    *,
    name: str,
    id_number: str,
    total: str | None,
    absent: bool = False,
    released: bool = True,
) -> models.ScoreRecord:
    session = await catalog.ensure_session(f"20{number[6:8]}H{number[8]}")
    if not released:
        await models.ScoreRelease.get_or_create(session=session, defaults=_not_yet_released())
    else:
        await models.ScoreRelease.get_or_create(session=session, defaults=_released_long_ago())
    return await models.ScoreRecord.create(
        ticket_number=number,
        session=session,
        subject=await models.Subject.get(code="CET4"),
        name=name,
        name_key=identity.name_key(name),
        id_type=IdType.RESIDENT_ID,
        id_number=id_number,
        total=Decimal(total) if total is not None else None,
        absent=absent,
    )


async def request(gql, token: str, number: str) -> dict:
    payload = await gql.data(
        REQUEST, {"input": {"sessionCode": SESSION, "cet4TicketNumber": number}}, token=token
    )
    return payload["requestCet6Review"]


def codes(payload: dict) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


async def cet6_option(gql, token: str) -> dict:
    listed = (await gql.data(AVAILABLE, token=token))["availableSubjects"]
    return next(o for o in listed if o["subject"]["code"] == "CET6")


async def school_admin(school_code: str, email: str) -> str:
    admin = await accounts.create_admin(
        name="教务处",
        email=email,
        password="Admin@2026x",
        role=Role.SCHOOL_ADMIN,
        school_code=school_code,
    )
    return await sessions.open_session(admin, client_address="127.0.0.1", user_agent="tests")


async def test_ticket_and_id_match_approves_at_once_and_cet6_becomes_selectable(gql):
    world = await build_world()
    me = await qualified_candidate(world, subjects=("CET4", "CET-SET4"))
    assert (await cet6_option(gql, me.token))["reasons"] == ["CET6_REQUIRES_CET4"]
    number = ticket(2024, 2)
    await score(number, name="李雷", id_number=me.account.id_number, total="512.0")

    result = await request(gql, me.token, f" {number} ")
    assert result["userErrors"] == []
    review = result["review"]
    assert review["status"] == "APPROVED" and review["reason"] == "TICKET_AND_ID_MATCH"
    assert review["cet4TicketNumber"] == number and review["decidedAt"]
    # The candidate never sees the school's view of the request.
    assert review["rosterRecord"] is None and review["scoreRecord"] is None

    mine = (await gql.data(MINE, token=me.token))["viewer"]["cet6Review"]
    assert mine["status"] == "APPROVED"
    assert (await cet6_option(gql, me.token))["eligible"] is True
    chosen = await gql.data(
        SELECT,
        {"input": {"sessionCode": SESSION, "items": [{"subjectCode": "CET6"}]}},
        token=me.token,
    )
    assert chosen["selectSubjects"]["userErrors"] == []
    assert chosen["selectSubjects"]["order"]["kind"] == "WRITTEN"

    again = await request(gql, me.token, number)
    assert codes(again) == ["CET6_ALREADY_ALLOWED"]
    assert await models.Cet6Review.all().count() == 1


async def test_425_qualifies_and_424_5_does_not(gql):
    world = await build_world()
    me = await qualified_candidate(world, subjects=("CET4",))
    low, enough = ticket(2023, 1, seat=1), ticket(2023, 2, seat=2)
    await score(low, name="李雷", id_number=me.account.id_number, total="424.5")
    await score(enough, name="李雷", id_number=me.account.id_number, total="425.0")

    refused = await request(gql, me.token, low)
    assert codes(refused) == ["CET4_SCORE_TOO_LOW"]
    assert refused["userErrors"][0]["field"] == ["cet4TicketNumber"]
    assert refused["review"] is None
    assert await models.Cet6Review.all().count() == 0

    approved = await request(gql, me.token, enough)
    assert approved["review"]["status"] == "APPROVED"


async def test_absent_sitting_counts_as_zero(gql):
    world = await build_world()
    me = await qualified_candidate(world, subjects=("CET4",))
    number = ticket(2022, 2)
    await score(number, name="李雷", id_number=me.account.id_number, total="600", absent=True)
    assert codes(await request(gql, me.token, number)) == ["CET4_SCORE_TOO_LOW"]


async def test_name_match_waits_for_the_school_which_approves(gql):
    world = await build_world()
    me = await qualified_candidate(world, subjects=("CET4",))
    old_id = resident_id(901, born="19990101")  # e.g. the ID the candidate had then
    number = ticket(2021, 2)
    await score(number, name="李雷", id_number=old_id, total="480.5")
    admin = await school_admin("10558", "jwc@sysu.example.cn")
    other_school = await models.School.create(
        code="10561", name="华南理工大学", province=world.province
    )
    other_admin = await school_admin(other_school.code, "jwc@scut.example.cn")

    pending = await request(gql, me.token, number)
    assert pending["userErrors"] == []
    assert pending["review"]["status"] == "PENDING"
    assert pending["review"]["reason"] == "NAME_MATCH_ONLY"
    assert (await cet6_option(gql, me.token))["reasons"] == ["CET6_REQUIRES_CET4"]
    assert codes(await request(gql, me.token, number)) == ["CET6_REVIEW_PENDING"]

    queue = (await gql.data(QUEUE, {"status": "PENDING"}, token=admin))["cet6Reviews"]["edges"]
    assert len(queue) == 1
    seen = queue[0]["node"]
    assert seen["school"]["code"] == "10558"
    assert seen["rosterRecord"]["idNumber"] == me.account.id_number
    assert seen["scoreRecord"] == {
        "ticketNumber": number,
        "sessionCode": "2021H2",
        "name": "李雷",
        "idNumber": old_id,
        "total": 480.5,
        "reportedTotal": 480.5,
    }
    # Another school neither sees nor decides it.
    assert (await gql.data(QUEUE, {"status": None}, token=other_admin))["cet6Reviews"][
        "edges"
    ] == []
    decide = {"input": {"reviewId": seen["id"], "approve": True, "note": "已核对纸质成绩报告单"}}
    foreign = (await gql.data(DECIDE, decide, token=other_admin))["reviewCet6Request"]
    assert [e["code"] for e in foreign["userErrors"]] == ["NOT_FOUND"]
    # A candidate cannot reach the school's operations at all.
    denied = await gql.execute(DECIDE, decide, token=me.token)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    decided = (await gql.data(DECIDE, decide, token=admin))["reviewCet6Request"]
    assert decided["userErrors"] == []
    assert decided["review"]["status"] == "APPROVED" and decided["review"]["decidedAt"]
    again = (await gql.data(DECIDE, decide, token=admin))["reviewCet6Request"]
    assert [e["code"] for e in again["userErrors"]] == ["REVIEW_ALREADY_DECIDED"]

    mine = (await gql.data(MINE, token=me.token))["viewer"]["cet6Review"]
    assert mine["status"] == "APPROVED" and mine["note"] == "已核对纸质成绩报告单"
    assert (await cet6_option(gql, me.token))["eligible"] is True
    event = await models.AuditEvent.get(action="cet6_review.approved")
    assert event.subject == f"Cet6Review:{GlobalID.from_id(seen['id']).node_id}"
    assert event.actor_id is not None  # type: ignore[attr-defined]


async def test_school_rejects_and_the_candidate_may_try_another_ticket(gql):
    world = await build_world()
    me = await qualified_candidate(world, subjects=("CET4",))
    first, second = ticket(2020, 2, seat=1), ticket(2019, 1, seat=2)
    await score(first, name="李雷", id_number=resident_id(902), total="430")
    await score(second, name="李雷", id_number=me.account.id_number, total="445")
    admin = await school_admin("10558", "jwc@sysu.example.cn")

    review_id = (await request(gql, me.token, first))["review"]["id"]
    rejected = (
        await gql.data(
            DECIDE,
            {"input": {"reviewId": review_id, "approve": False, "note": "非本人成绩"}},
            token=admin,
        )
    )["reviewCet6Request"]
    assert rejected["review"]["status"] == "REJECTED"
    assert await models.AuditEvent.exists(action="cet6_review.rejected")
    mine = (await gql.data(MINE, token=me.token))["viewer"]["cet6Review"]
    assert mine["status"] == "REJECTED" and mine["note"] == "非本人成绩"
    assert (await cet6_option(gql, me.token))["eligible"] is False

    retry = await request(gql, me.token, second)
    assert retry["review"]["status"] == "APPROVED"


async def test_a_ticket_before_june_2005_is_for_the_school_to_decide(gql):
    world = await build_world()
    me = await qualified_candidate(world, subjects=("CET4",))
    admin = await school_admin("10558", "jwc@sysu.example.cn")
    number = ticket(2004, 2)  # December 2004: no score records exist before June 2005

    result = await request(gql, me.token, number)
    assert result["userErrors"] == []
    assert result["review"]["status"] == "PENDING"
    assert result["review"]["reason"] == "EARLIER_THAN_2005"
    queued = (await gql.data(QUEUE, {"status": "PENDING"}, token=admin))["cet6Reviews"]["edges"]
    assert queued[0]["node"]["reason"] == "EARLIER_THAN_2005"
    assert queued[0]["node"]["scoreRecord"] is None  # the school checks the paper report


async def test_unknown_or_somebody_elses_ticket_gives_one_answer(gql):
    world = await build_world()
    me = await qualified_candidate(world, subjects=("CET4",))
    someone = ticket(2024, 1, seat=7)
    await score(someone, name="韩梅梅", id_number=resident_id(903), total="600")
    low_someone = ticket(2024, 1, seat=8)
    await score(low_someone, name="韩梅梅", id_number=resident_id(904), total="300")

    unknown = await request(gql, me.token, ticket(2024, 1, seat=9))
    foreign = await request(gql, me.token, someone)
    foreign_low = await request(gql, me.token, low_someone)
    assert codes(unknown) == codes(foreign) == codes(foreign_low) == ["CET4_SCORE_NOT_FOUND"]
    assert unknown["userErrors"] == foreign["userErrors"] == foreign_low["userErrors"]

    assert codes(await request(gql, me.token, "44001024110")) == ["CET4_TICKET_INVALID"]
    cet6_ticket = ticket(2024, 1, level=2)
    assert codes(await request(gql, me.token, cet6_ticket)) == ["CET4_TICKET_INVALID"]
    assert codes(await request(gql, me.token, "")) == ["REQUIRED"]
    assert await models.Cet6Review.all().count() == 0


async def test_lookups_are_rate_limited_so_tickets_cannot_be_enumerated(gql):
    world = await build_world()
    me = await qualified_candidate(world, subjects=("CET4",))
    mine = ticket(2024, 2, seat=99)
    await score(mine, name="李雷", id_number=me.account.id_number, total="500")
    for seat in range(1, 11):
        tried = await request(gql, me.token, ticket(2024, 2, seat=seat))
        assert codes(tried) == ["CET4_SCORE_NOT_FOUND"]
    blocked = await request(gql, me.token, mine)
    assert codes(blocked) == ["RATE_LIMITED"]
    assert 0 < blocked["userErrors"][0]["retryAfter"] <= 3600

    clock.advance(timedelta(hours=1, seconds=1))
    await sign_in_again(me)
    assert (await request(gql, me.token, mine))["review"]["status"] == "APPROVED"


async def test_only_a_confirmed_candidate_without_cet6_on_the_roster_may_ask(gql):
    world = await build_world()
    has_cet6 = await qualified_candidate(world, subjects=("CET4", "CET6"))
    unconfirmed = await qualified_candidate(world, subjects=("CET4",), confirmed=False)
    number = ticket(2024, 2)
    assert codes(await request(gql, has_cet6.token, number)) == ["CET6_ALREADY_ALLOWED"]
    assert codes(await request(gql, unconfirmed.token, number)) == ["NOT_CONFIRMED"]
    anonymous = await gql.execute(
        REQUEST, {"input": {"sessionCode": SESSION, "cet4TicketNumber": number}}
    )
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # None of these reached the ticket lookup, so none counted against the limit.
    assert await models.RateLimitHit.all().count() == 0


async def test_a_score_not_yet_released_approves_nothing_and_reveals_nothing(gql):
    world = await build_world()
    me = await qualified_candidate(world, subjects=("CET4", "CET-SET4"))
    number = ticket(2025, 2)
    await score(number, name="李雷", id_number=me.account.id_number, total="500", released=False)
    assert codes(await request(gql, me.token, number)) == ["CET4_SCORE_NOT_FOUND"]
    assert (await cet6_option(gql, me.token))["reasons"] == ["CET6_REQUIRES_CET4"]
