"""Qualification (Q1) and its confirmation (Q2) through GraphQL: a match against the school's
roster, one answer for every failed match, throttling, and who may see the result."""

from __future__ import annotations

from datetime import timedelta

from cetgql.models import Role
from cetgql.services import clock, rate_limits, roster_import
from tests import factories as f

VERIFY = f"""
mutation($input: VerifyQualificationInput!) {{
  verifyQualification(input: $input) {{
    qualification {{
      id confirmed verifiedAt confirmedAt name idType idNumberMasked gender
      session {{ code }} school {{ code name }} campus {{ code name }}
      department major studentNumber enrollmentYear educationLevel photoUrl restrictions
      eligibleSubjects {{ code name kind slot }} changedSinceConfirmation
    }}
    {f.USER_ERRORS}
  }}
}}"""

CONFIRM = f"""
mutation($code: String!) {{
  confirmQualification(input: {{ sessionCode: $code }}) {{
    qualification {{ id confirmed confirmedAt department changedSinceConfirmation }}
    {f.USER_ERRORS}
  }}
}}"""

VIEWER = """
query($code: String!) {
  viewer { id qualification(sessionCode: $code) { id confirmed name department school { code } } }
}"""

NODE = """
query($id: ID!) { node(id: $id) { id ... on Qualification { name idNumberMasked } } }"""


async def roster(*rows: dict) -> None:
    """Set-up: the school's roster, through the same import the school uses."""
    result = await roster_import.import_roster(
        actor=None, session_code=f.SESSION, content=f.csv_bytes(list(rows))
    )
    assert result.ok, result.problems


def verify_input(name: str, id_number: str, **changes: str) -> dict:
    values = {"sessionCode": "2026H1", "name": name, "idType": "RESIDENT_ID", "idNumber": id_number}
    values.update(changes)
    return {"input": values}


async def test_match_shows_the_roster_data_and_confirm_once(gql, client):
    await f.geography()
    await roster(
        f.student(
            1,
            name="张小明",
            campus_code="2",
            department="基础医学院",
            major="基础医学",
            eligible_subjects="CET-SET4;CET4,CET6",
            restrictions="需先通过学校英语水平测试",
            photo="",
        )
    )
    token = await f.candidate(gql, 1, name="张小明")

    early = await gql.data(CONFIRM, {"code": "2026H1"}, token=token)
    assert [e["code"] for e in early["confirmQualification"]["userErrors"]] == ["NOT_QUALIFIED"]

    # An ID typed with spaces (and a lower-case x) is still the account's own ID.
    spaced = f"{f.resident_id(1)[:6]} {f.resident_id(1)[6:]}".lower()
    data = await gql.data(VERIFY, verify_input(" 张小明 ", spaced), token=token)
    payload = data["verifyQualification"]
    assert payload["userErrors"] == []
    match = payload["qualification"]
    assert match["confirmed"] is False and match["confirmedAt"] is None
    assert match["name"] == "张小明" and match["idType"] == "RESIDENT_ID"
    assert match["idNumberMasked"] == f.resident_id(1)[:4] + "*" * 10 + f.resident_id(1)[-4:]
    assert match["session"] == {"code": "2026H1"}
    assert match["school"] == {"code": "10001", "name": "北京大学"}
    assert match["campus"] == {"code": "2", "name": "医学部"}
    assert (match["department"], match["major"]) == ("基础医学院", "基础医学")
    assert match["studentNumber"] == "2023000001" and match["enrollmentYear"] == 2023
    assert match["educationLevel"] == "本科"
    assert match["restrictions"] == "需先通过学校英语水平测试"
    assert match["photoUrl"] is None
    subjects = {s["code"]: s for s in match["eligibleSubjects"]}
    assert set(subjects) == {"CET4", "CET6", "CET-SET4"}
    assert subjects["CET-SET4"]["kind"] == "ORAL" and subjects["CET4"]["name"] == "英语四级"

    seen = await gql.data(VIEWER, {"code": "2026H1"}, token=token)
    assert seen["viewer"]["qualification"] == {
        "id": match["id"],
        "confirmed": False,
        "name": "张小明",
        "department": "基础医学院",
        "school": {"code": "10001"},
    }
    assert (await gql.data(VIEWER, {"code": "2025H2"}, token=token))["viewer"][
        "qualification"
    ] is None

    confirmed = await gql.data(CONFIRM, {"code": "2026H1"}, token=token)
    assert confirmed["confirmQualification"]["userErrors"] == []
    assert confirmed["confirmQualification"]["qualification"]["confirmed"] is True
    again = await gql.data(CONFIRM, {"code": "2026H1"}, token=token)
    assert [e["code"] for e in again["confirmQualification"]["userErrors"]] == ["ALREADY_CONFIRMED"]

    # Checking again later keeps the confirmation.
    redo = await gql.data(VERIFY, verify_input("张小明", f.resident_id(1).lower()), token=token)
    assert redo["verifyQualification"]["qualification"]["confirmed"] is True


async def test_a_failed_match_never_says_which_field_differed(gql):
    await f.geography()
    await roster(f.student(1, name="李四"), f.student(2, name="王五"))
    # 李思 is on the roster as 李四 (same ID, other name); 赵六 is on no roster at all.
    wrong_name = await f.candidate(gql, 1, name="李思")
    unknown_id = await f.candidate(gql, 3, name="赵六")

    by_name = await gql.data(VERIFY, verify_input("李思", f.resident_id(1)), token=wrong_name)
    by_id = await gql.data(VERIFY, verify_input("赵六", f.resident_id(3)), token=unknown_id)
    first = by_name["verifyQualification"]
    second = by_id["verifyQualification"]
    assert first["qualification"] is None and second["qualification"] is None
    assert first["userErrors"] == second["userErrors"]
    assert first["userErrors"][0]["code"] == "QUALIFICATION_FAILED"
    assert first["userErrors"][0]["field"] is None
    assert "联系您所在学校" in first["userErrors"][0]["message"]

    english = await gql.data(
        VERIFY,
        verify_input("赵六", f.resident_id(3)),
        token=unknown_id,
        headers={"Accept-Language": "en"},
    )
    assert "contact your school" in english["verifyQualification"]["userErrors"][0]["message"]


async def test_only_your_own_identity_can_be_checked(gql):
    await f.geography()
    await roster(f.student(1, name="李四"), f.student(2, name="王五"))
    token = await f.candidate(gql, 1, name="李四")
    # Someone else's roster entry, typed in correctly, is refused before any roster lookup.
    data = await gql.data(VERIFY, verify_input("王五", f.resident_id(2)), token=token)
    errors = data["verifyQualification"]["userErrors"]
    assert [e["code"] for e in errors] == ["IDENTITY_NOT_ACCOUNT_HOLDER"]
    wrong_type = await gql.data(
        VERIFY, verify_input("李四", f.resident_id(1), idType="PASSPORT"), token=token
    )
    assert [e["code"] for e in wrong_type["verifyQualification"]["userErrors"]] == [
        "IDENTITY_NOT_ACCOUNT_HOLDER"
    ]
    unknown_session = await gql.data(
        VERIFY, verify_input("李四", f.resident_id(1), sessionCode="2019H1"), token=token
    )
    assert [e["code"] for e in unknown_session["verifyQualification"]["userErrors"]] == [
        "SESSION_NOT_FOUND"
    ]
    anonymous = await gql.execute(VERIFY, verify_input("李四", f.resident_id(1)))
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_failures_are_rate_limited_per_account(gql):
    await f.geography()
    await roster(f.student(1, name="李四"))
    token = await f.candidate(gql, 1, name="李四")
    wrong = verify_input("李思", f.resident_id(1))
    for _ in range(rate_limits.QUALIFICATION_PER_ACCOUNT.hits):
        data = await gql.data(VERIFY, wrong, token=token)
        assert data["verifyQualification"]["userErrors"][0]["code"] == "IDENTITY_NOT_ACCOUNT_HOLDER"
    # Now even the right answer waits: the check cannot be used to try IDs quickly.
    limited = await gql.data(VERIFY, verify_input("李四", f.resident_id(1)), token=token)
    error = limited["verifyQualification"]["userErrors"][0]
    assert error["code"] == "RATE_LIMITED"
    assert 0 < error["retryAfter"] <= 3600

    clock.advance(timedelta(seconds=error["retryAfter"] + 1))
    token = await f.sign_in(gql, "student1@example.cn", f.PASSWORD)
    later = await gql.data(VERIFY, verify_input("李四", f.resident_id(1)), token=token)
    assert later["verifyQualification"]["userErrors"] == []


async def test_failures_are_rate_limited_per_client_address(gql, monkeypatch):
    monkeypatch.setattr(
        rate_limits,
        "QUALIFICATION_PER_ADDRESS",
        rate_limits.Limit("qualification:address", 3, timedelta(hours=1)),
    )
    await f.geography()
    await roster(f.student(1, name="李四"))
    tokens = [await f.candidate(gql, n, name=name) for n, name in ((2, "甲一"), (3, "乙二"))]
    outcomes = []
    for token, name, serial in ((tokens[0], "甲一", 2), (tokens[1], "乙二", 3)) * 2:
        data = await gql.data(VERIFY, verify_input(name, f.resident_id(serial)), token=token)
        outcomes.append(data["verifyQualification"]["userErrors"][0]["code"])
    assert outcomes == ["QUALIFICATION_FAILED"] * 3 + ["RATE_LIMITED"]


async def test_rare_characters_and_any_middle_dot_match(gql):
    await f.geography()
    await roster(
        f.student(1, name="阿依古丽\u00b7买买提"),
        f.student(2, name="王𪚥"),
        f.student(3, name="李𠀀"),
    )
    # The candidate's phone keyboard produced U+2022 at sign-up and U+30FB at the check.
    uyghur = await f.candidate(gql, 1, name="阿依古丽\u2022买买提")
    data = await gql.data(
        VERIFY, verify_input("阿依古丽\u30fb买买提", f.resident_id(1)), token=uyghur
    )
    assert data["verifyQualification"]["userErrors"] == []
    assert data["verifyQualification"]["qualification"]["name"] == "阿依古丽\u00b7买买提"

    for serial, name in ((2, "王𪚥"), (3, "李𠀀")):
        token = await f.candidate(gql, serial, name=name)
        # stray spaces around the name are trimmed before comparing
        data = await gql.data(
            VERIFY, verify_input(f"  {name} ", f.resident_id(serial)), token=token
        )
        assert data["verifyQualification"]["userErrors"] == [], data
        assert data["verifyQualification"]["qualification"]["name"] == name


async def test_nobody_else_sees_a_qualification(gql):
    await f.geography()
    await roster(f.student(1, name="李四"), f.student(2, name="王五"))
    owner = await f.candidate(gql, 1, name="李四")
    other = await f.candidate(gql, 2, name="王五")
    data = await gql.data(VERIFY, verify_input("李四", f.resident_id(1)), token=owner)
    match_id = data["verifyQualification"]["qualification"]["id"]

    assert (await gql.data(NODE, {"id": match_id}, token=owner))["node"]["name"] == "李四"
    assert (await gql.data(NODE, {"id": match_id}, token=other))["node"] is None
    assert (await gql.data(NODE, {"id": match_id}))["node"] is None
    assert (await gql.data(VIEWER, {"code": "2026H1"}, token=other))["viewer"][
        "qualification"
    ] is None
    school = await f.admin(gql, "pku@cet.example.cn", Role.SCHOOL_ADMIN, school_code="10001")
    assert (await gql.data(NODE, {"id": match_id}, token=school))["node"] is None
    national = await f.national(gql)
    assert (await gql.data(NODE, {"id": match_id}, token=national))["node"]["name"] == "李四"

    # Through the owner's Account node, a national admin sees it too; the other candidate not.
    owner_id = (await gql.data("{ viewer { id } }", token=owner))["viewer"]["id"]
    query = (
        'query($id: ID!) { node(id: $id) { ... on Account { qualification(sessionCode: "2026H1")'
        " { name } } } }"
    )
    assert (await gql.data(query, {"id": owner_id}, token=national))["node"] == {
        "qualification": {"name": "李四"}
    }
    assert (await gql.data(query, {"id": owner_id}, token=other))["node"] is None


async def test_school_correction_after_confirmation_keeps_it_and_shows_new_data(gql):
    await f.geography()
    await roster(f.student(1, name="李四", photo=""))
    token = await f.candidate(gql, 1, name="李四")
    await gql.data(VERIFY, verify_input("李四", f.resident_id(1)), token=token)
    await gql.data(CONFIRM, {"code": "2026H1"}, token=token)

    clock.advance(timedelta(minutes=5))
    # The school re-imports with the corrected department.
    await roster(f.student(1, name="李四", department="法学院"))
    seen = await gql.data(
        VIEWER.replace("school { code }", "school { code } changedSinceConfirmation"),
        {"code": "2026H1"},
        token=token,
    )
    match = seen["viewer"]["qualification"]
    assert match["confirmed"] is True
    assert match["department"] == "法学院"
    assert match["changedSinceConfirmation"] is True
