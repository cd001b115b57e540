"""The reporting rules (R2–R4, R9) through the candidate's history: 219.5 and 220, absence and
violations, reports and their numbers, oral scales by session, the failed grade's visibility,
and whose scores anyone sees."""

from __future__ import annotations

import re
from datetime import timedelta

from strawberry.relay import to_base64

from cetgql import models
from cetgql.models import Role
from cetgql.services import clock
from tests.scores_support import (
    NODE,
    VERIFY,
    by_ticket,
    csv_file,
    history,
    import_scores,
    move_to,
    oral_ticket,
    person,
    release,
    released_session,
    row,
    school,
    session,
    token,
    written,
    written_ticket,
)
from tests.scores_support import admin as make_admin

CODE = "2025H1"


async def test_219_5_is_reported_as_0_and_220_as_220(gql) -> None:
    national = await make_admin()
    low, edge, absent, cheat = [await person(n) for n in ("韩愈", "柳宗元", "欧阳修", "王安石")]
    tickets = [written_ticket(CODE, seat=n) for n in range(1, 5)]
    await released_session(
        gql,
        national,
        CODE,
        [
            row(tickets[0], low, listening=80, reading=80, writing="59.5"),  # 219.5
            row(tickets[1], edge, listening=80, reading=80, writing=60, total=220),
            row(tickets[2], absent, absent="是"),
            row(tickets[3], cheat, listening=200, reading=200, writing=150, violation="是"),
        ],
    )
    below = by_ticket(await history(gql, low))[tickets[0]]
    assert (below["total"], below["listening"], below["reportNumber"]) == (0.0, None, None)
    at = by_ticket(await history(gql, edge))[tickets[1]]
    assert (at["total"], at["listening"], at["reading"], at["writingTranslation"]) == (
        220.0,
        80.0,
        80.0,
        60.0,
    )
    assert re.fullmatch(r"2511100011\d{5}", at["reportNumber"])
    for account, ticket in ((absent, tickets[2]), (cheat, tickets[3])):
        score = by_ticket(await history(gql, account))[ticket]
        assert (score["total"], score["reportNumber"]) == (0.0, None)


async def test_report_numbers_are_year_half_level_centre_serial(gql) -> None:
    national = await make_admin()
    a, b, c, d = [await person(n) for n in ("甲一", "乙二", "丙三", "丁四")]
    await released_session(
        gql,
        national,
        CODE,
        [
            written(written_ticket(CODE, seat=1), a, 500),
            written(written_ticket(CODE, seat=2), b, 500),
            written(written_ticket(CODE, level=2, seat=3), c, 500),  # CET6
            written(written_ticket(CODE, seat=4, centre="100012"), d, 500),  # another campus
        ],
    )
    numbers = {
        name: next(iter(by_ticket(await history(gql, who)).values()))["reportNumber"]
        for name, who in (("a", a), ("b", b), ("c", c), ("d", d))
    }
    assert numbers == {
        "a": "251" + "1" + "100011" + "00001",
        "b": "251" + "1" + "100011" + "00002",
        "c": "251" + "2" + "100011" + "00001",
        "d": "251" + "1" + "100012" + "00001",
    }


async def test_one_report_carries_the_written_score_and_the_oral_grade(gql) -> None:
    national = await make_admin()
    both, oral_only, fail_both = await person("岳飞"), await person("文天祥"), await person("秦桧")
    await released_session(
        gql,
        national,
        CODE,
        [
            written(written_ticket(CODE, seat=1), both, 550),
            row(oral_ticket(CODE, seat=1), both, oral="良好"),
            written(written_ticket(CODE, seat=2), oral_only, 200),
            row(oral_ticket(CODE, seat=2, centre="110002"), oral_only, oral="合格"),
            written(written_ticket(CODE, seat=3), fail_both, 200),
            row(oral_ticket(CODE, seat=3), fail_both, oral="不合格"),
        ],
    )
    scores = await history(gql, both)
    assert [s["subject"]["code"] for s in scores] == ["CET4", "CET-SET4"]
    assert scores[0]["reportNumber"] == scores[1]["reportNumber"] is not None
    assert scores[1]["oralGrade"] == "良好" and scores[1]["total"] is None

    # An oral pass alone gives a report: the written total on it is 0; its centre is the
    # written ticket's (the report's level is CET4).
    scores = await history(gql, oral_only)
    assert scores[0]["total"] == 0.0 and scores[0]["reportNumber"] == scores[1]["reportNumber"]
    code = scores[0]["reportVerificationCode"]
    found = (await gql.data(VERIFY, {"code": code}))["verifyDocument"]
    facts = {f["key"]: f["value"] for f in found["facts"]}
    assert facts["total"] == "0.0" and facts["oralGrade"] == "合格" and "listening" not in facts

    scores = await history(gql, fail_both)
    assert all(s["reportNumber"] is None for s in scores)
    assert await models.ScoreReport.all().count() == 2


async def test_oral_grades_follow_the_scale_of_their_session(gql) -> None:
    national = await make_admin()
    old, new = await person("沈括"), await person("徐霞客")
    await released_session(gql, national, "2022H2", [row(oral_ticket("2022H2"), old, oral="b")])
    await released_session(gql, national, "2023H1", [row(oral_ticket("2023H1"), new, oral="优秀")])
    assert (await history(gql, old))[0]["oralGrade"] == "B"
    assert (await history(gql, new))[0]["oralGrade"] == "优秀"

    admin_token = await token(national)
    wrong_old = csv_file([row(oral_ticket("2022H2", seat=5), old, oral="良好")])
    wrong_new = csv_file([row(oral_ticket("2023H1", seat=5), new, oral="A")])
    for code, content, scale in (
        ("2022H2", wrong_old, "A/B/C/D"),
        ("2023H1", wrong_new, "优秀/良好/合格/不合格"),
    ):
        payload = await import_scores(gql, admin_token, content, code)
        (problem,) = payload["problems"]
        assert (problem["line"], problem["code"]) == (2, "INVALID_ORAL_GRADE")
        assert scale in problem["value"] and scale in problem["message"]


async def test_a_failed_oral_grade_shows_only_until_the_next_release_and_never_on_a_report(
    gql,
) -> None:
    national = await make_admin()
    alice = await person("李清照")
    first = clock.now() - timedelta(days=30)
    await released_session(
        gql,
        national,
        "2023H1",
        [
            written(written_ticket("2023H1"), alice, 520),
            row(oral_ticket("2023H1"), alice, oral="不合格"),
        ],
        at=first,
    )
    oral_id = to_base64(
        "Score", (await models.ScoreRecord.get(ticket_number=oral_ticket("2023H1"))).id
    )
    scores = await history(gql, alice)
    assert [s["oralGrade"] for s in scores] == [None, "不合格"]
    report_code = scores[0]["reportVerificationCode"]
    assert scores[1]["reportNumber"] == scores[0]["reportNumber"]  # the written one's
    facts = {
        f["key"] for f in (await gql.data(VERIFY, {"code": report_code}))["verifyDocument"]["facts"]
    }
    assert "oralGrade" not in facts and "total" in facts

    # The next session's release ends it; the old scale's D is treated alike.
    bob = await person("辛弃疾")
    second = clock.now() + timedelta(days=2)
    await released_session(
        gql, national, "2023H2", [written(written_ticket("2023H2"), bob, 500)], at=second
    )
    move_to(second - timedelta(seconds=1))
    assert len(await history(gql, alice)) == 2
    move_to(second)
    scores = await history(gql, alice)
    assert [s["subject"]["code"] for s in scores] == ["CET4"]
    data = await gql.data(NODE, {"id": oral_id}, token=await token(alice))
    assert data["node"] is None


async def test_nobody_else_sees_my_scores(gql) -> None:
    national = await make_admin()
    await school()
    school_admin = await make_admin(
        Role.SCHOOL_ADMIN, email="school@cet.example.cn", school_code="10001"
    )
    alice, mallory = await person("花木兰"), await person("小偷")
    ticket = written_ticket(CODE)
    # An old record under Alice's ID but another name (a typo of 2005) is not hers either.
    namesake = row(written_ticket("2024H2", seat=9), name="花木蘭", id_number=alice.id_number,
                   listening=200, reading=200, writing=100)  # fmt: skip
    await released_session(gql, national, CODE, [written(ticket, alice, 600)])
    await released_session(gql, national, "2024H2", [namesake])

    assert [s["ticketNumber"] for s in await history(gql, alice)] == [ticket]
    assert await history(gql, mallory) == []
    score_id = to_base64("Score", (await models.ScoreRecord.get(ticket_number=ticket)).id)
    for viewer in (mallory, school_admin):
        data = await gql.data(NODE, {"id": score_id}, token=await token(viewer))
        assert data["node"] is None
    alice_id = to_base64("Account", alice.id)
    data = await gql.data(
        "query($id: ID!) { node(id: $id) { ... on Account { scores { edges { node { id } } } } } }",
        {"id": alice_id},
        token=await token(mallory),
    )
    assert data["node"] is None
    # Not signed in: no viewer, no scores.
    data = await gql.data("query { viewer { id } }")
    assert data["viewer"] is None
    # The national office sees a released score (it answers score checks).
    data = await gql.data(NODE, {"id": score_id}, token=await token(national))
    assert data["node"]["total"] == 600.0
    # The report's verification code is for its owner only; verifying it is public.
    data = await gql.data(NODE, {"id": score_id}, token=await token(national))
    assert data["node"]["reportVerificationCode"] is None


async def test_the_history_reaches_back_to_june_2005(gql) -> None:
    national = await make_admin()
    alice = await person("苏小妹")
    await released_session(gql, national, "2005H1", [written(written_ticket("2005H1"), alice, 480)])
    await released_session(gql, national, "2024H2", [written(written_ticket("2024H2"), alice, 600)])
    await session("2026H2")
    scores = await history(gql, alice)
    assert [s["session"]["code"] for s in scores] == ["2024H2", "2005H1"]
    assert scores[1]["electronicReportFrom"] is None  # before 2021: a certificate instead
    await release(gql, await token(national), "2026H2", clock.now() + timedelta(days=1))
    assert len(await history(gql, alice)) == 2
