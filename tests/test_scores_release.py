"""Release (R1) and the working-day calendar: nothing before the release instant, the default
60 working days after the exam, the electronic report on the 10th working day after release
across a holiday with its make-up days, and a calendar admins extend."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import httpx
from strawberry.relay import to_base64

from cetgql import models
from cetgql.services import clock, work_calendar
from tests.scores_support import (
    NODE,
    USER_ERRORS,
    beijing,
    by_ticket,
    history,
    move_to,
    person,
    release,
    released_session,
    session,
    token,
    written,
    written_ticket,
)
from tests.scores_support import admin as make_admin

CALENDAR = """
query($year: Int!) { workingCalendar(year: $year) { year known source days { date workday name } } }
"""
SET_CALENDAR = f"""
mutation($input: SetWorkingCalendarInput!) {{ setWorkingCalendar(input: $input) {{
  calendar {{ year known source days {{ date workday name }} }} {USER_ERRORS} }} }}"""
RELEASE = """
query($code: String!) { scoreRelease(sessionCode: $code) {
  releaseAt released defaultReleaseDate electronicReportsFrom verificationUntil
  paperRequestUntil paperCollectUntil provisional } }"""


async def test_nothing_shows_one_second_before_the_release_instant_and_all_at_it(gql) -> None:
    national = await make_admin()
    alice = await person("白居易")
    ticket = written_ticket("2025H2", seat=1)
    at = clock.now() + timedelta(days=3)
    await released_session(gql, national, "2025H2", [written(ticket, alice, 480)], at=at)
    score_id = to_base64("Score", (await models.ScoreRecord.get(ticket_number=ticket)).id)

    move_to(at - timedelta(seconds=1))
    assert await history(gql, alice) == []
    data = await gql.data(NODE, {"id": score_id}, token=await token(alice))
    assert data["node"] is None
    public = await gql.data(RELEASE, {"code": "2025H2"})
    assert public["scoreRelease"]["released"] is False
    # Not even the national office sees a score before its release.
    data = await gql.data(NODE, {"id": score_id}, token=await token(national))
    assert data["node"] is None

    move_to(at)
    scores = by_ticket(await history(gql, alice))
    assert scores[ticket]["total"] == 480.0
    data = await gql.data(NODE, {"id": score_id}, token=await token(alice))
    assert data["node"]["ticketNumber"] == ticket
    assert (await gql.data(RELEASE, {"code": "2025H2"}))["scoreRelease"]["released"] is True


def _working_day_after(start: date, count: int) -> date:
    """The same count, straight from the package, as an independent oracle."""
    day = start
    while count:
        day += timedelta(days=1)
        if chinese_calendar.is_workday(day):
            count -= 1
    return day


async def test_the_default_release_is_10_00_on_the_60th_working_day_after_the_exam(gql) -> None:
    """2024H2: the written exam on Saturday 14 December 2024; the 60 working days run through
    the Spring Festival of 2025 with its two make-up working days (26 Jan, 8 Feb)."""
    national = await make_admin()
    await session("2024H2")
    move_to(beijing("2024-12-20 09:00"))
    released = await release(gql, await token(national), "2024H2", None)
    expected = _working_day_after(date(2024, 12, 14), 60)
    naive = date(2024, 12, 14) + timedelta(weeks=12)  # 60 Mondays-to-Fridays
    assert expected != naive  # the holiday moves it
    assert released["defaultReleaseDate"] == expected.isoformat()
    assert released["releaseAt"] == f"{expected.isoformat()}T10:00:00+08:00"
    assert released["provisional"] is False


async def test_the_electronic_report_comes_on_the_10th_working_day_across_national_day(
    gql, client: httpx.AsyncClient
) -> None:
    """Released Friday 27 September 2024: 29 September (a Sunday) and 12 October (a Saturday)
    are worked, 1–7 October are off. Counting: 29 Sep, 30 Sep, 8, 9, 10, 11, 12, 14, 15, 16
    October. A Monday-to-Friday count would say 11 October."""
    national = await make_admin()
    alice = await person("陆游")
    ticket = written_ticket("2024H1", seat=1)
    move_to(beijing("2024-09-01 09:00"))
    await released_session(
        gql, national, "2024H1", [written(ticket, alice, 600)], at=beijing("2024-09-27 10:00")
    )
    move_to(beijing("2024-10-11 12:00"))
    score = by_ticket(await history(gql, alice))[ticket]
    assert score["electronicReportFrom"] == "2024-10-16T00:00:00+08:00"
    assert score["electronicReportUrl"] is None

    move_to(beijing("2024-10-15 23:59:59"))
    assert by_ticket(await history(gql, alice))[ticket]["electronicReportUrl"] is None

    move_to(beijing("2024-10-16 00:00"))
    url = by_ticket(await history(gql, alice))[ticket]["electronicReportUrl"]
    assert url is not None
    response = await client.get(url.removeprefix("http://testserver"))
    assert response.status_code == 200 and response.content.startswith(b"%PDF")


async def test_a_release_time_moves_until_it_has_passed(gql) -> None:
    national = await make_admin()
    await session("2025H2")
    first = clock.now() + timedelta(days=2)
    await release(gql, await token(national), "2025H2", first)
    later = first + timedelta(days=1)
    moved = await release(gql, await token(national), "2025H2", later)
    assert moved["releaseAt"] == later.astimezone(clock.SHANGHAI).isoformat()

    move_to(later + timedelta(seconds=1))
    data = await gql.data(
        "mutation($input: SetScoreReleaseInput!) { setScoreRelease(input: $input) { "
        f"release {{ releaseAt }} {USER_ERRORS} }} }}",
        {"input": {"sessionCode": "2025H2", "releaseAt": (later + timedelta(days=5)).isoformat()}},
        token=await token(national),
    )
    assert [e["code"] for e in data["setScoreRelease"]["userErrors"]] == ["SCORES_ALREADY_RELEASED"]
    # The periods after it may still be changed.
    data = await gql.data(
        "mutation($input: SetScoreReleaseInput!) { setScoreRelease(input: $input) { "
        f"release {{ verificationUntil }} {USER_ERRORS} }} }}",
        {"input": {"sessionCode": "2025H2", "verificationWorkingDays": 61}},
        token=await token(national),
    )
    assert data["setScoreRelease"]["userErrors"][0]["code"] == "INVALID_FORMAT"


async def test_the_calendar_is_seeded_from_the_package_and_extended_by_admins(gql) -> None:
    national = await make_admin()
    data = await gql.data(CALENDAR, {"year": 2024})
    year = data["workingCalendar"]
    assert (year["known"], year["source"]) == (True, "chinesecalendar")
    days = {d["date"]: d for d in year["days"]}
    assert days["2024-10-01"] == {"date": "2024-10-01", "workday": False, "name": "国庆节"}
    assert days["2024-09-29"]["workday"] is True and days["2024-09-29"]["name"] == "国庆节调休"

    data = await gql.data(CALENDAR, {"year": 2027})
    assert data["workingCalendar"]["known"] is False

    # 2026H2: the written exam in December 2026, the release 60 working days on, in 2027,
    # which nobody has entered yet: the date is provisional.
    await session("2026H2")
    released = await release(gql, await token(national), "2026H2", None)
    assert released["provisional"] is True
    before = released["releaseAt"]

    spring = [{"date": f"2027-02-{d:02d}", "workday": False, "name": "春节"} for d in range(6, 14)]
    spring += [
        {"date": "2027-02-14", "workday": True, "name": "春节调休"},
        {"date": "2027-02-20", "workday": True, "name": "春节调休"},
    ]
    data = await gql.data(
        SET_CALENDAR, {"input": {"year": 2027, "days": spring}}, token=await token(national)
    )
    assert data["setWorkingCalendar"]["userErrors"] == []
    assert data["setWorkingCalendar"]["calendar"]["source"] == "admin"
    found = (await gql.data(RELEASE, {"code": "2026H2"}))["scoreRelease"]
    assert found["provisional"] is False
    assert found["releaseAt"] == before  # the time set stays; the default would move
    assert await work_calendar.working_day_after(date(2027, 2, 5), 1) == (
        work_calendar.CountedDay(date(2027, 2, 14), False)
    )

    bad = await gql.data(
        SET_CALENDAR,
        {"input": {"year": 2027, "days": [{"date": "2028-01-01", "workday": False}]}},
        token=await token(national),
    )
    assert bad["setWorkingCalendar"]["userErrors"] == [
        {
            "field": ["days", "0", "date"],
            "code": "DAY_OUTSIDE_YEAR",
            "message": "日期不在所设置的年份内。",
        }
    ]
    candidate = await person("游客")
    denied = await gql.execute(
        SET_CALENDAR, {"input": {"year": 2027, "days": []}}, token=await token(candidate)
    )
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_calendar_command_line(tmp_path: Path, database: str, settings) -> None:
    from tests.test_scores_import import _cli

    env = {"CETGQL_DATABASE_URL": database, "CETGQL_SECRET_KEY": settings.secret_key}
    done = await _cli(["calendar", "show", "2024"], env)
    assert done.returncode == 0, done.stderr
    assert "2024-10-01\t休\t国庆节" in done.stdout
    file = tmp_path / "2028.csv"
    file.write_text(
        "日期,类型,名称\n2028-01-01,休,元旦\n2028-01-02,班,元旦调休\n", encoding="utf-8"
    )
    done = await _cli(["calendar", "set-year", "2028", str(file)], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert await work_calendar.working_day_after(date(2027, 12, 31), 1) == (
        work_calendar.CountedDay(date(2028, 1, 2), False)
    )
