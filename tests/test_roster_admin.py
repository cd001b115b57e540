"""School-side roster care (Q2): listing the records in scope and correcting one, audited."""

from __future__ import annotations

from cetgql import models
from cetgql.models import Role
from cetgql.services import roster_import
from tests import factories as f

RECORDS = """
query($school: String, $first: Int, $after: String) {
  rosterRecords(sessionCode: "2026H1", schoolCode: $school, first: $first, after: $after) {
    edges { cursor node { id name idNumber school { code } matched } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""

UPDATE = f"""
mutation($input: UpdateRosterRecordInput!) {{
  updateRosterRecord(input: $input) {{
    record {{ id name idType idNumber department major gender campus {{ code }}
              eligibleSubjects {{ code }} eligibleSubjectCodes photoUrl enrollmentYear }}
    {f.USER_ERRORS}
  }}
}}"""

VERIFY = """
mutation($input: VerifyQualificationInput!) {
  verifyQualification(input: $input) { qualification { id } userErrors { code } }
}"""


async def seeded() -> None:
    await f.geography()
    rows = [f.student(n) for n in range(1, 6)]
    rows += [f.student(n, school_code="10558") for n in range(6, 9)]
    result = await roster_import.import_roster(
        actor=None, session_code=f.SESSION, content=f.csv_bytes(rows)
    )
    assert result.ok, result.problems


async def record_id(gql, token: str, number: str) -> str:
    data = await gql.data(RECORDS, {"first": 100}, token=token)
    return next(
        e["node"]["id"] for e in data["rosterRecords"]["edges"] if e["node"]["idNumber"] == number
    )


async def test_school_admin_lists_only_their_school_page_by_page(gql):
    await seeded()
    pku = await f.admin(gql, "pku@cet.example.cn", Role.SCHOOL_ADMIN, school_code="10001")
    page = await gql.data(RECORDS, {"first": 2}, token=pku)
    connection = page["rosterRecords"]
    assert len(connection["edges"]) == 2
    assert connection["pageInfo"]["hasNextPage"] is True
    seen = [e["node"]["idNumber"] for e in connection["edges"]]
    while connection["pageInfo"]["hasNextPage"]:
        after = connection["pageInfo"]["endCursor"]
        connection = (await gql.data(RECORDS, {"first": 2, "after": after}, token=pku))[
            "rosterRecords"
        ]
        assert connection["pageInfo"]["hasPreviousPage"] is True
        seen += [e["node"]["idNumber"] for e in connection["edges"]]
    assert seen == [f.resident_id(n) for n in range(1, 6)]

    other = await gql.data(RECORDS, {"school": "10558"}, token=pku)
    assert other["rosterRecords"]["edges"] == []

    guangdong = await f.admin(gql, "gd@cet.example.cn", Role.PROVINCE_ADMIN, province_code="44")
    data = await gql.data(RECORDS, {"first": 100}, token=guangdong)
    assert {e["node"]["school"]["code"] for e in data["rosterRecords"]["edges"]} == {"10558"}
    national = await f.national(gql)
    data = await gql.data(RECORDS, {"first": 100}, token=national)
    assert len(data["rosterRecords"]["edges"]) == 8

    too_many = await gql.execute(RECORDS, {"first": 101}, token=national)
    assert too_many["errors"] and too_many["data"] is None


async def test_candidates_cannot_list_or_reach_records(gql):
    await seeded()
    national = await f.national(gql)
    some_record = await record_id(gql, national, f.resident_id(1))
    candidate = await f.candidate(gql, 1, name=f.student(1)["name"])
    listed = await gql.execute(RECORDS, {}, token=candidate)
    assert listed["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    node = await gql.data(
        "query($id: ID!) { node(id: $id) { id } }", {"id": some_record}, token=candidate
    )
    assert node["node"] is None
    sysu = await f.admin(gql, "sysu@cet.example.cn", Role.SCHOOL_ADMIN, school_code="10558")
    node = await gql.data(
        "query($id: ID!) { node(id: $id) { id } }", {"id": some_record}, token=sysu
    )
    assert node["node"] is None
    pku = await f.admin(gql, "pku@cet.example.cn", Role.SCHOOL_ADMIN, school_code="10001")
    node = await gql.data(
        "query($id: ID!) { node(id: $id) { ... on RosterRecord { idNumber } } }",
        {"id": some_record},
        token=pku,
    )
    assert node["node"] == {"idNumber": f.resident_id(1)}


async def test_school_admin_corrects_a_record_and_it_is_audited(gql, client):
    await seeded()
    pku = await f.admin(gql, "pku@cet.example.cn", Role.SCHOOL_ADMIN, school_code="10001")
    target = await record_id(gql, pku, f.resident_id(2))
    data = await gql.data(
        UPDATE,
        {
            "input": {
                "id": target,
                "name": "学生丙子·新",
                "department": "法学院",
                "major": "法学",
                "campusCode": "2",
                "gender": "女",
                "enrollmentYear": 2024,
                "eligibleSubjects": ["CET4", "CJT4"],
            }
        },
        token=pku,
    )
    payload = data["updateRosterRecord"]
    assert payload["userErrors"] == []
    record = payload["record"]
    assert record["name"] == "学生丙子·新"
    assert (record["department"], record["major"], record["campus"]) == (
        "法学院",
        "法学",
        {"code": "2"},
    )
    assert record["gender"] == "FEMALE" and record["enrollmentYear"] == 2024
    assert record["eligibleSubjectCodes"] == ["CET4", "CJT4"]
    assert {s["code"] for s in record["eligibleSubjects"]} == {"CET4", "CJT4"}

    event = await models.AuditEvent.get(action="roster.update")
    assert event.details["changes"]["department"] == {"from": "外国语学院", "to": "法学院"}
    assert event.subject.startswith("RosterRecord:")
    stored = await models.RosterRecord.get(id_number=f.resident_id(2))
    assert stored.name_key == "学生丙子·新"

    # A new photo, uploaded as a multipart file, is served by its signed URL.
    jpeg = f.image_bytes("JPEG")
    result = await f.upload(
        gql,
        UPDATE,
        {"input": {"id": target}},
        {"input.photo": ("new.jpg", jpeg)},
        token=pku,
    )
    url = result["data"]["updateRosterRecord"]["record"]["photoUrl"]
    assert (await client.get(url)).content == jpeg
    bad = await f.upload(
        gql, UPDATE, {"input": {"id": target}}, {"input.photo": ("x.jpg", b"GIF89a")}, token=pku
    )
    assert [e["code"] for e in bad["data"]["updateRosterRecord"]["userErrors"]] == ["PHOTO_INVALID"]


async def test_bad_corrections_are_refused(gql):
    await seeded()
    pku = await f.admin(gql, "pku@cet.example.cn", Role.SCHOOL_ADMIN, school_code="10001")
    target = await record_id(gql, pku, f.resident_id(2))

    async def codes(**changes) -> list[str]:
        data = await gql.data(UPDATE, {"input": {"id": target, **changes}}, token=pku)
        return [e["code"] for e in data["updateRosterRecord"]["userErrors"]]

    assert await codes(eligibleSubjects=["CET9"]) == ["UNKNOWN_SUBJECT"]
    assert await codes(campusCode="5") == ["UNKNOWN_CAMPUS"]
    assert await codes(department="院" * 200) == ["TOO_LONG"]
    assert await codes(name="") == ["REQUIRED"]
    assert await codes(idNumber="110105200403120000") == ["INVALID_ID_NUMBER"]
    assert await codes(idNumber=f.resident_id(3)) == ["ID_NUMBER_IN_ROSTER"]
    assert await codes(id="UXVhbGlmaWNhdGlvbjox") == ["NOT_FOUND"]
    assert await models.RosterRecord.filter(department="外国语学院").count() == 8


async def test_other_schools_cannot_correct(gql):
    await seeded()
    national = await f.national(gql)
    target = await record_id(gql, national, f.resident_id(2))
    sysu = await f.admin(gql, "sysu@cet.example.cn", Role.SCHOOL_ADMIN, school_code="10558")
    data = await gql.data(UPDATE, {"input": {"id": target, "major": "法学"}}, token=sysu)
    assert [e["code"] for e in data["updateRosterRecord"]["userErrors"]] == ["OUT_OF_SCOPE"]
    guangdong = await f.admin(gql, "gd@cet.example.cn", Role.PROVINCE_ADMIN, province_code="44")
    data = await gql.data(UPDATE, {"input": {"id": target, "major": "法学"}}, token=guangdong)
    assert [e["code"] for e in data["updateRosterRecord"]["userErrors"]] == ["OUT_OF_SCOPE"]
    beijing = await f.admin(gql, "bj@cet.example.cn", Role.PROVINCE_ADMIN, province_code="11")
    data = await gql.data(UPDATE, {"input": {"id": target, "major": "法学"}}, token=beijing)
    assert data["updateRosterRecord"]["userErrors"] == []
    candidate = await f.candidate(gql, 9, name="赵六")
    result = await gql.execute(UPDATE, {"input": {"id": target, "major": "x"}}, token=candidate)
    assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await models.RosterRecord.filter(major="法学").count() == 1
    assert not await models.RosterRecord.filter(major="x").exists()


async def test_wrong_id_is_corrected_until_someone_matched_the_record(gql):
    await seeded()
    pku = await f.admin(gql, "pku@cet.example.cn", Role.SCHOOL_ADMIN, school_code="10001")
    target = await record_id(gql, pku, f.resident_id(2))
    # The school typed the ID wrong; the student cannot pass the check until it is fixed.
    right = f.resident_id(200)
    token = await f.candidate(gql, 200, name=f.student(2)["name"], id_number=right)
    check = {
        "input": {
            "sessionCode": "2026H1",
            "name": f.student(2)["name"],
            "idType": "RESIDENT_ID",
            "idNumber": right,
        }
    }
    failed = await gql.data(VERIFY, check, token=token)
    assert failed["verifyQualification"]["userErrors"] == [{"code": "QUALIFICATION_FAILED"}]

    fixed = await gql.data(UPDATE, {"input": {"id": target, "idNumber": right}}, token=pku)
    assert fixed["updateRosterRecord"]["record"]["idNumber"] == right
    matched = await gql.data(VERIFY, check, token=token)
    assert matched["verifyQualification"]["userErrors"] == []

    again = await gql.data(
        UPDATE, {"input": {"id": target, "idNumber": f.resident_id(201)}}, token=pku
    )
    assert [e["code"] for e in again["updateRosterRecord"]["userErrors"]] == [
        "ROSTER_RECORD_IN_USE"
    ]
    listed = await gql.data(RECORDS, {"first": 100}, token=pku)
    flags = {e["node"]["idNumber"]: e["node"]["matched"] for e in listed["rosterRecords"]["edges"]}
    assert flags[right] is True and flags[f.resident_id(1)] is False
