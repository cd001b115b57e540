"""Paper score reports (R6): opted in when registering or within the period after release,
collected at the test centre, forfeited six months after release, by a job or without one."""

from __future__ import annotations

from strawberry.relay import to_base64

from cetgql import models
from cetgql.models import Role
from cetgql.services import jobs
from tests.scores_support import (
    USER_ERRORS,
    beijing,
    csv_file,
    history,
    import_scores,
    issued_ticket,
    move_to,
    release,
    row,
    token,
    world,
)
from tests.scores_support import admin as make_admin

REQUEST = f"""
mutation($input: RequestPaperReportInput!) {{ requestPaperReport(input: $input) {{
  paperReportRequested score {{ paperReport {{ status centerCode collectUntil }} }}
  {USER_ERRORS} }} }}"""
COLLECT = f"""
mutation($input: RecordPaperReportCollectionInput!) {{ recordPaperReportCollection(input: $input) {{
  reportNumber collectedAt {USER_ERRORS} }} }}"""
LIST = """
query($code: String!, $school: String) { paperReports(sessionCode: $code, schoolCode: $school) {
  reportNumber name idNumberMasked subjectName status } }"""
CODE = "2026H1"
RELEASED = "2026-08-20 10:00"  # a Thursday; the 10th working day after it is 3 September


def _codes(payload: dict) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


async def _setting():
    place = await world()
    national = await make_admin()
    other_province = await models.Province.create(code="12", name="天津市")
    await models.School.create(code="10055", name="南开大学", province=other_province)
    centre = await make_admin(Role.SCHOOL_ADMIN, email="sysu@cet.example.cn", school_code="10558")
    stranger = await make_admin(Role.SCHOOL_ADMIN, email="nk@cet.example.cn", school_code="10055")
    people = []
    for seat, name in enumerate(("韩梅梅", "李雷", "林涛"), start=1):
        ticket, account, registration = await issued_ticket(place, name=name, seat=seat)
        people.append((ticket, account, registration))
    return national, centre, stranger, people


async def _import_and_release(gql, national, people) -> None:
    rows = [
        row(ticket.number, name="", id_number="", listening=200, reading=180, writing=150)
        for ticket, _, _ in people
    ]
    move_to(beijing("2026-08-01 09:00"))
    payload = await import_scores(gql, await token(national), csv_file(rows), CODE)
    assert payload["userErrors"] == [], payload
    await release(gql, await token(national), CODE, beijing(RELEASED))


async def test_opting_in_when_registering_and_after_release(gql) -> None:
    national, centre, _, people = await _setting()
    (_, han, han_reg), (_, li, li_reg), (_, lin, _) = people
    # Before the release: the choice is made on the registration.
    data = await gql.data(
        REQUEST,
        {"input": {"registrationId": to_base64("Registration", han_reg.id)}},
        token=await token(han),
    )
    assert data["requestPaperReport"]["paperReportRequested"] is True
    # Someone else's registration is not found.
    data = await gql.data(
        REQUEST,
        {"input": {"registrationId": to_base64("Registration", han_reg.id)}},
        token=await token(li),
    )
    assert _codes(data["requestPaperReport"]) == ["NOT_FOUND"]
    await _import_and_release(gql, national, people)

    move_to(beijing(RELEASED))
    (han_score,) = await history(gql, han)
    assert han_score["paperReport"]["status"] == "AWAITING_COLLECTION"
    assert han_score["paperReport"]["centerCode"] == "105581"
    assert han_score["paperReport"]["collectUntil"] == "2027-02-20T10:00:00+08:00"
    (li_score,) = await history(gql, li)
    assert li_score["paperReport"] is None
    assert li_score["paperRequestUntil"] == "2026-09-04T00:00:00+08:00"

    data = await gql.data(
        REQUEST,
        {"input": {"registrationId": to_base64("Registration", li_reg.id)}},
        token=await token(li),
    )
    assert _codes(data["requestPaperReport"]) == ["PAPER_CHOICE_CLOSED"]

    move_to(beijing("2026-09-03 23:59:59"))
    data = await gql.data(REQUEST, {"input": {"scoreId": li_score["id"]}}, token=await token(li))
    assert data["requestPaperReport"]["score"]["paperReport"]["status"] == "AWAITING_COLLECTION"

    move_to(beijing("2026-09-04 00:00"))
    (lin_score,) = await history(gql, lin)
    data = await gql.data(REQUEST, {"input": {"scoreId": lin_score["id"]}}, token=await token(lin))
    assert _codes(data["requestPaperReport"]) == ["PAPER_REQUEST_CLOSED"]

    listed = await gql.data(LIST, {"code": CODE, "school": "10558"}, token=await token(centre))
    assert sorted(e["name"] for e in listed["paperReports"]) == ["李雷", "韩梅梅"]


async def test_collection_at_the_centre_and_forfeiture_after_six_months(gql) -> None:
    national, centre, stranger, people = await _setting()
    for _, _, registration in people:
        registration.paper_report = True
        await registration.save()
    await _import_and_release(gql, national, people)
    numbers = []
    for _, account, _ in people:
        move_to(beijing(RELEASED))
        (score,) = await history(gql, account)
        numbers.append(score["reportNumber"])

    def collect(number: str):
        return {"input": {"reportNumber": number}}

    move_to(beijing("2026-10-08 10:00"))
    data = await gql.data(COLLECT, collect(numbers[0]), token=await token(stranger))
    assert _codes(data["recordPaperReportCollection"]) == ["NOT_FOUND"]
    data = await gql.data(COLLECT, collect(numbers[0]), token=await token(centre))
    assert data["recordPaperReportCollection"]["userErrors"] == []
    data = await gql.data(COLLECT, collect(numbers[0]), token=await token(centre))
    assert _codes(data["recordPaperReportCollection"]) == ["PAPER_REPORT_COLLECTED"]

    # Six months after the release instant: one second before, still handed out.
    move_to(beijing("2027-02-20 09:59:59"))
    data = await gql.data(COLLECT, collect(numbers[1]), token=await token(centre))
    assert data["recordPaperReportCollection"]["userErrors"] == []
    move_to(beijing("2027-02-20 10:00"))
    data = await gql.data(COLLECT, collect(numbers[2]), token=await token(centre))
    assert _codes(data["recordPaperReportCollection"]) == ["PAPER_REPORT_FORFEITED"]
    # Forfeited as soon as the deadline passes, before any job ran ...
    (score,) = await history(gql, people[2][1])
    assert score["paperReport"]["status"] == "FORFEITED"
    assert await models.ScoreReport.filter(paper_forfeited_at__isnull=False).count() == 0
    # ... and the job writes it down, leaving the collected ones alone.
    job = next(j for j in jobs.registered() if j.name == "forfeit-paper-reports")
    assert await job.run() == 1
    assert await job.run() == 0
    statuses = [
        (await history(gql, account))[0]["paperReport"]["status"] for _, account, _ in people
    ]
    assert statuses == ["COLLECTED", "COLLECTED", "FORFEITED"]
