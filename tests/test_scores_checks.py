"""Score checks (分数核查, R7): asked for within the set working days after release, answered by
the national office; a correction re-issues the report and the old version's code answers
"superseded"."""

from __future__ import annotations

from strawberry.relay import to_base64

from cetgql import models
from tests.scores_support import (
    USER_ERRORS,
    VERIFY,
    beijing,
    by_ticket,
    history,
    move_to,
    oral_ticket,
    person,
    released_session,
    row,
    token,
    written,
    written_ticket,
)
from tests.scores_support import admin as make_admin

REQUEST = f"""
mutation($input: RequestScoreVerificationInput!) {{ requestScoreVerification(input: $input) {{
  verification {{ id status reason }} {USER_ERRORS} }} }}"""
RESOLVE = f"""
mutation($input: ResolveScoreVerificationInput!) {{ resolveScoreVerification(input: $input) {{
  verification {{ id status outcome note after {{ total listening }} }} {USER_ERRORS} }} }}"""
QUEUE = """
query($code: String!) { scoreVerifications(sessionCode: $code, status: PENDING) {
  edges { node { id reason score { ticketNumber total } } } } }"""
CODE = "2024H1"
RELEASE = "2024-09-27 10:00"  # Friday before National Day


def _codes(payload: dict) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


async def _world(gql):
    national = await make_admin()
    alice, bob = await person("孟浩然"), await person("王之涣")
    move_to(beijing("2024-09-01 09:00"))
    await released_session(
        gql,
        national,
        CODE,
        [
            written(written_ticket(CODE, seat=1), alice, 430),
            row(oral_ticket(CODE, seat=1), alice, oral="合格"),
            written(written_ticket(CODE, seat=2), bob, 230),
        ],
        at=beijing(RELEASE),
    )
    return national, alice, bob


async def _request(gql, account, score_id: str, reason: str = "作文分数偏低") -> dict:
    data = await gql.data(
        REQUEST, {"input": {"scoreId": score_id, "reason": reason}}, token=await token(account)
    )
    return data["requestScoreVerification"]


async def test_checks_are_taken_through_the_10th_working_day_after_release(gql) -> None:
    _, alice, bob = await _world(gql)
    move_to(beijing("2024-10-16 23:59:59"))  # the 10th working day (see the release tests)
    scores = by_ticket(await history(gql, alice))
    written_score = scores[written_ticket(CODE, seat=1)]
    assert written_score["verificationOpenUntil"] == "2024-10-17T00:00:00+08:00"
    oral_score = scores[oral_ticket(CODE, seat=1)]
    assert _codes(await _request(gql, alice, oral_score["id"])) == ["VERIFICATION_WRITTEN_ONLY"]
    assert _codes(await _request(gql, bob, written_score["id"])) == ["NOT_FOUND"]
    assert _codes(await _request(gql, alice, written_score["id"], " ")) == ["REQUIRED"]
    payload = await _request(gql, alice, written_score["id"])
    assert payload["userErrors"] == [] and payload["verification"]["status"] == "PENDING"
    assert _codes(await _request(gql, alice, written_score["id"])) == ["VERIFICATION_EXISTS"]

    move_to(beijing("2024-10-17 00:00"))
    bob_score = by_ticket(await history(gql, bob))[written_ticket(CODE, seat=2)]
    assert _codes(await _request(gql, bob, bob_score["id"])) == ["VERIFICATION_CLOSED"]


async def test_a_correction_reissues_the_report_and_supersedes_the_old_code(gql) -> None:
    national, alice, _ = await _world(gql)
    move_to(beijing("2024-10-08 09:00"))
    ticket = written_ticket(CODE, seat=1)
    before = by_ticket(await history(gql, alice))[ticket]
    old_code = before["reportVerificationCode"]
    request = await _request(gql, alice, before["id"])
    verification_id = request["verification"]["id"]

    queue = await gql.data(QUEUE, {"code": CODE}, token=await token(national))
    (entry,) = [e["node"] for e in queue["scoreVerifications"]["edges"]]
    assert entry["score"]["total"] == 430.0 and entry["reason"] == "作文分数偏低"
    denied = await gql.execute(QUEUE, {"code": CODE}, token=await token(alice))
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    bad = await gql.data(
        RESOLVE,
        {"input": {"verificationId": verification_id, "outcome": "CORRECTED", "listening": "300"}},
        token=await token(national),
    )
    assert {e["code"] for e in bad["resolveScoreVerification"]["userErrors"]} == {
        "SCORE_OUT_OF_RANGE",
        "INVALID_FORMAT",
    }
    data = await gql.data(
        RESOLVE,
        {
            "input": {
                "verificationId": verification_id,
                "outcome": "CORRECTED",
                "listening": "150.5",
                "reading": "150.5",
                "writingTranslation": "135",
                "note": "经核查，阅读部分漏计一题。",
            }
        },
        token=await token(national),
    )
    resolved = data["resolveScoreVerification"]
    assert resolved["userErrors"] == []
    assert resolved["verification"]["after"] == {"total": 436.0, "listening": 150.5}

    after = by_ticket(await history(gql, alice))[ticket]
    assert (after["total"], after["reportNumber"], after["reportVersion"]) == (
        436.0,
        before["reportNumber"],
        2,
    )
    assert after["verification"]["outcome"] == "CORRECTED"
    assert after["verification"]["note"] == "经核查，阅读部分漏计一题。"
    assert after["verification"]["before"]["total"] == 430.0
    # The oral score shares the report: it shows the new version too.
    oral = by_ticket(await history(gql, alice))[oral_ticket(CODE, seat=1)]
    assert oral["reportVersion"] == 2

    old = (await gql.data(VERIFY, {"code": old_code}))["verifyDocument"]
    assert old["valid"] is False and "version 2" in old["note"]
    new = (await gql.data(VERIFY, {"code": after["reportVerificationCode"]}))["verifyDocument"]
    assert new["valid"] is True
    assert {f["key"]: f["value"] for f in new["facts"]}["total"] == "436.0"

    again = await gql.data(
        RESOLVE,
        {"input": {"verificationId": verification_id, "outcome": "UNCHANGED"}},
        token=await token(national),
    )
    assert _codes(again["resolveScoreVerification"]) == ["VERIFICATION_ALREADY_RESOLVED"]


async def test_an_unchanged_outcome_and_a_correction_below_220(gql) -> None:
    national, alice, bob = await _world(gql)
    move_to(beijing("2024-10-08 09:00"))
    bob_score = by_ticket(await history(gql, bob))[written_ticket(CODE, seat=2)]
    bob_code = bob_score["reportVerificationCode"]
    request = await _request(gql, bob, bob_score["id"])
    data = await gql.data(
        RESOLVE,
        {
            "input": {
                "verificationId": request["verification"]["id"],
                "outcome": "CORRECTED",
                "listening": "80",
                "reading": "80",
                "writingTranslation": "59.5",
            }
        },
        token=await token(national),
    )
    assert data["resolveScoreVerification"]["userErrors"] == []
    bob_score = by_ticket(await history(gql, bob))[written_ticket(CODE, seat=2)]
    assert (bob_score["total"], bob_score["reportNumber"]) == (0.0, None)
    withdrawn = (await gql.data(VERIFY, {"code": bob_code}))["verifyDocument"]
    assert withdrawn["valid"] is False and "withdrawn" in withdrawn["note"]

    alice_score = by_ticket(await history(gql, alice))[written_ticket(CODE, seat=1)]
    request = await _request(gql, alice, alice_score["id"])
    candidate = await gql.execute(
        RESOLVE,
        {"input": {"verificationId": request["verification"]["id"], "outcome": "UNCHANGED"}},
        token=await token(alice),
    )
    assert candidate["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    data = await gql.data(
        RESOLVE,
        {
            "input": {
                "verificationId": request["verification"]["id"],
                "outcome": "UNCHANGED",
                "note": "经核查，成绩无误。",
            }
        },
        token=await token(national),
    )
    assert data["resolveScoreVerification"]["verification"]["outcome"] == "UNCHANGED"
    alice_score = by_ticket(await history(gql, alice))[written_ticket(CODE, seat=1)]
    assert (alice_score["reportVersion"], alice_score["verification"]["status"]) == (1, "RESOLVED")
    # Bob cannot read Alice's check through node either.
    node = await gql.data(
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": alice_score["verification"]["id"]},
        token=await token(bob),
    )
    assert node["node"] is None
    assert await models.ScoreVerification.all().count() == 2
    assert to_base64("ScoreVerification", 1)
