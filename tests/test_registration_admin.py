"""Setting registration up through GraphQL (S1, S3, S6, P5): sessions and sittings, windows,
fees and oral centres, each by the admins whose scope it is, with the effect a candidate sees."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from cetgql import models
from cetgql.models import Role
from cetgql.services import accounts, clock, registration, sessions
from tests.registration_setup import SESSION, build_world, qualified_candidate, sign_in_again

ERRORS = "userErrors { field code message }"

CREATE_SESSION = f"""
mutation($input: CreateExamSessionInput!) {{ createExamSession(input: $input) {{
  examSession {{ code name subjects {{ code slot }} }} {ERRORS} }} }}"""
UPDATE_SUBJECT = f"""
mutation($input: UpdateSessionSubjectInput!) {{ updateSessionSubject(input: $input) {{
  sessionSubject {{ subject {{ code slot }} startsAt endsAt slot }} {ERRORS} }} }}"""
SET_WINDOW = f"""
mutation($input: SetRegistrationWindowInput!) {{ setRegistrationWindow(input: $input) {{
  registrationWindow {{ id kind opensAt closesAt isOpen sessionCode provinceCode
                        school {{ code }} }} {ERRORS} }} }}"""
CLEAR_WINDOW = f"""
mutation($input: ClearRegistrationWindowInput!) {{ clearRegistrationWindow(input: $input) {{
  cleared {ERRORS} }} }}"""
WINDOWS = """
query($p: String!) { registrationWindows(sessionCode: "2026H1", provinceCode: $p) {
  kind school { code } opensAt closesAt } }"""
SET_FEES = f"""
mutation($input: SetFeesInput!) {{ setFees(input: $input) {{
  fees {{ subject {{ code }} fee {{ fen yuan }} }} {ERRORS} }} }}"""
CREATE_CENTER = f"""
mutation($input: CreateOralCenterInput!) {{ createOralCenter(input: $input) {{
  oralCenter {{ id code name address capacity subjectCodes province remainingSeats }}
  {ERRORS} }} }}"""
UPDATE_CENTER = f"""
mutation($input: UpdateOralCenterInput!) {{ updateOralCenter(input: $input) {{
  oralCenter {{ id name capacity subjectCodes remainingSeats }} {ERRORS} }} }}"""
AVAILABLE = """
query($s: String!) { availableSubjects(sessionCode: $s) {
  subject { code } eligible reasons fee { fen yuan } } }"""
SELECT = """
mutation($input: SelectSubjectsInput!) { selectSubjects(input: $input) {
  order { id amount { fen yuan } } userErrors { field code } } }"""
CENTERS = """
query($subject: String!) { oralCenters(sessionCode: "2026H1", subjectCode: $subject) {
  id code name remainingSeats } }"""
MY_WINDOW = """
{ examSession(code: "2026H1") { registrationWindow(kind: WRITTEN) {
  opensAt closesAt isOpen school { code } } } }"""


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


def iso(value: datetime) -> str:
    return value.isoformat()


async def admin_token(
    role: Role, *, province: str | None = None, school: str | None = None, tag: str = ""
) -> str:
    """A signed-in admin of the role and scope (set-up, not under test)."""
    account = await accounts.create_admin(
        name="管理员",
        email=f"{role.value.lower()}{province or ''}{school or ''}{tag}@example.cn",
        password="Admin@2026x",
        role=role,
        province_code=province,
        school_code=school,
    )
    return await sessions.open_session(account, client_address="127.0.0.1", user_agent="tests")


async def options(gql: Any, token: str) -> dict[str, dict[str, Any]]:
    data = await gql.data(AVAILABLE, {"s": SESSION}, token=token)
    return {o["subject"]["code"]: o for o in data["availableSubjects"]}


async def select(gql: Any, token: str, *items: dict[str, Any]) -> dict[str, Any]:
    data = await gql.data(
        SELECT, {"input": {"sessionCode": SESSION, "items": list(items)}}, token=token
    )
    return data["selectSubjects"]


async def pay(order_global_id: str) -> None:
    from strawberry.relay import GlobalID

    await registration.mark_order_paid(int(GlobalID.from_id(order_global_id).node_id), clock.now())


async def audit_count(action: str) -> int:
    return await models.AuditEvent.filter(action=action).count()


# --- sessions and sittings (S1) ------------------------------------------------------------


async def test_national_admin_creates_a_session_with_its_timetable(gql):
    token = await admin_token(Role.NATIONAL_ADMIN)
    created = (await gql.data(CREATE_SESSION, {"input": {"code": "2027h2"}}, token=token))[
        "createExamSession"
    ]
    assert created["userErrors"] == []
    assert created["examSession"]["code"] == "2027H2"
    assert {s["code"] for s in created["examSession"]["subjects"]} == {
        "CET4", "CET6", "CET-SET4", "CET-SET6",
    }  # fmt: skip
    event = await models.AuditEvent.get(action="session.create")
    assert event.details == {"code": "2027H2"} and event.client_address == "203.0.113.7"

    again = (await gql.data(CREATE_SESSION, {"input": {"code": "2027H2"}}, token=token))[
        "createExamSession"
    ]
    assert again["examSession"] is None
    assert [(e["code"], e["field"]) for e in again["userErrors"]] == [("SESSION_EXISTS", ["code"])]
    bad = (await gql.data(CREATE_SESSION, {"input": {"code": "27H3"}}, token=token))[
        "createExamSession"
    ]
    assert [(e["code"], e["field"]) for e in bad["userErrors"]] == [("INVALID_FORMAT", ["code"])]
    assert await models.ExamSession.all().count() == 1


async def test_national_admin_moves_a_sitting_but_never_into_a_clash(gql):
    world = await build_world()
    token = await admin_token(Role.NATIONAL_ADMIN)
    starts = datetime.fromisoformat("2026-06-13T09:30:00+08:00")
    moved = (
        await gql.data(
            UPDATE_SUBJECT,
            {
                "input": {
                    "sessionCode": SESSION,
                    "subjectCode": "cjt6",
                    "startsAt": iso(starts),
                    "endsAt": iso(starts + timedelta(hours=2)),
                    "slot": "2026-06-13-AM2",
                }
            },
            token=token,
        )
    )["updateSessionSubject"]
    assert moved["userErrors"] == []
    assert moved["sessionSubject"]["startsAt"] == "2026-06-13T09:30:00+08:00"
    assert moved["sessionSubject"]["slot"] == moved["sessionSubject"]["subject"]["slot"]
    offering = await models.SessionSubject.get(session=world.session, subject__code="CJT6")
    assert offering.slot == "2026-06-13-AM2"
    assert await audit_count("session.offering_update") == 1

    backwards = (
        await gql.data(
            UPDATE_SUBJECT,
            {"input": {"sessionCode": SESSION, "subjectCode": "CJT6", "endsAt": iso(starts)}},
            token=token,
        )
    )["updateSessionSubject"]
    assert [(e["code"], e["field"]) for e in backwards["userErrors"]] == [
        ("INVALID_TIME_RANGE", ["endsAt"])
    ]
    unknown = (
        await gql.data(
            UPDATE_SUBJECT,
            {"input": {"sessionCode": SESSION, "subjectCode": "NOPE", "slot": ""}},
            token=token,
        )
    )["updateSessionSubject"]
    assert codes(unknown) == ["UNKNOWN_SUBJECT", "REQUIRED"]

    # A candidate holds CET4 (morning) and CET6 (afternoon): CET6 cannot join CET4's slot.
    me = await qualified_candidate(world)
    assert (await select(gql, me.token, {"subjectCode": "CET4"}, {"subjectCode": "CET6"}))[
        "userErrors"
    ] == []
    cet4 = await models.SessionSubject.get(session=world.session, subject__code="CET4")
    clash = (
        await gql.data(
            UPDATE_SUBJECT,
            {"input": {"sessionCode": SESSION, "subjectCode": "CET6", "slot": cet4.slot}},
            token=token,
        )
    )["updateSessionSubject"]
    assert [(e["code"], e["field"]) for e in clash["userErrors"]] == [
        ("SLOT_CHANGE_CONFLICT", ["slot"])
    ]
    cet6 = await models.SessionSubject.get(session=world.session, subject__code="CET6")
    assert cet6.slot != cet4.slot
    assert await audit_count("session.offering_update") == 1


# --- registration windows (S6) -------------------------------------------------------------


async def test_window_set_by_the_province_opens_and_closes_registration(gql):
    world = await build_world()
    await models.RegistrationWindow.all().delete()
    me = await qualified_candidate(world)
    token = await admin_token(Role.PROVINCE_ADMIN, province="44")
    assert "WINDOW_CLOSED" in (await options(gql, me.token))["CET4"]["reasons"]
    assert codes(await select(gql, me.token, {"subjectCode": "CET4"})) == ["WINDOW_CLOSED"]
    assert (await gql.data(MY_WINDOW, token=me.token))["examSession"]["registrationWindow"] is None

    now = clock.now()
    window = {
        "sessionCode": SESSION,
        "provinceCode": "44",
        "kind": "WRITTEN",
        "opensAt": iso(now - timedelta(hours=1)),
        "closesAt": iso(now + timedelta(days=7)),
    }
    done = (await gql.data(SET_WINDOW, {"input": window}, token=token))["setRegistrationWindow"]
    assert done["userErrors"] == []
    assert done["registrationWindow"]["isOpen"] is True
    assert done["registrationWindow"]["school"] is None
    assert done["registrationWindow"]["opensAt"].endswith("+08:00")
    assert (await options(gql, me.token))["CET4"]["eligible"] is True
    mine = (await gql.data(MY_WINDOW, token=me.token))["examSession"]["registrationWindow"]
    assert mine["isOpen"] is True and mine["school"] is None

    # Closing early is an update of the same window, not a second one.
    closed = {**window, "closesAt": iso(now - timedelta(minutes=1))}
    done = (await gql.data(SET_WINDOW, {"input": closed}, token=token))["setRegistrationWindow"]
    assert done["userErrors"] == [] and done["registrationWindow"]["isOpen"] is False
    assert await models.RegistrationWindow.all().count() == 1
    assert codes(await select(gql, me.token, {"subjectCode": "CET4"})) == ["WINDOW_CLOSED"]
    events = await models.AuditEvent.filter(action="registration.window_set").order_by("id")
    assert [e.details["before"] is None for e in events] == [True, False]

    # Reopened later; the oral window is still closed, so oral subjects stay closed.
    reopened = {**window, "opensAt": iso(now + timedelta(days=1))}
    await gql.data(SET_WINDOW, {"input": reopened}, token=token)
    clock.advance(timedelta(days=1, minutes=1))
    await sign_in_again(me)
    result = await select(gql, me.token, {"subjectCode": "CET4"})
    assert result["userErrors"] == []
    await pay(result["order"]["id"])
    assert "WINDOW_CLOSED" in (await options(gql, me.token))["CET-SET4"]["reasons"]


async def test_a_school_sets_its_own_written_window_which_wins(gql):
    world = await build_world()
    other_school = await models.School.create(
        code="10561", name="华南理工大学", province=world.province
    )
    me = await qualified_candidate(world)
    school_admin = await admin_token(Role.SCHOOL_ADMIN, school="10558")
    now = clock.now()
    own = {
        "sessionCode": SESSION,
        "provinceCode": "44",
        "schoolCode": "10558",
        "kind": "WRITTEN",
        "opensAt": iso(now + timedelta(days=2)),
        "closesAt": iso(now + timedelta(days=4)),
    }
    done = (await gql.data(SET_WINDOW, {"input": own}, token=school_admin))["setRegistrationWindow"]
    assert done["userErrors"] == []
    assert done["registrationWindow"]["school"] == {"code": "10558"}
    # The province's window is open, but the school's own governs its students.
    assert codes(await select(gql, me.token, {"subjectCode": "CET4"})) == ["WINDOW_CLOSED"]
    mine = (await gql.data(MY_WINDOW, token=me.token))["examSession"]["registrationWindow"]
    assert mine["school"] == {"code": "10558"} and mine["isOpen"] is False

    refused = {
        "oral": {**own, "kind": "ORAL"},
        "province": {**own, "schoolCode": None},
        "other school": {**own, "schoolCode": other_school.code},
    }
    results = {
        name: (await gql.data(SET_WINDOW, {"input": value}, token=school_admin))[
            "setRegistrationWindow"
        ]
        for name, value in refused.items()
    }
    assert {name: codes(r) for name, r in results.items()} == {
        "oral": ["SCHOOL_WINDOW_WRITTEN_ONLY"],
        "province": ["FORBIDDEN"],
        "other school": ["OUT_OF_SCOPE"],
    }
    assert await models.RegistrationWindow.filter(school_id__not_isnull=True).count() == 1

    seen = (await gql.data(WINDOWS, {"p": "44"}, token=school_admin))["registrationWindows"]
    assert sorted((w["kind"], (w["school"] or {}).get("code", "")) for w in seen) == [
        ("ORAL", ""), ("WRITTEN", ""), ("WRITTEN", "10558"),
    ]  # fmt: skip
    window_id = done["registrationWindow"]["id"]
    node = "query($id: ID!) { node(id: $id) { ... on RegistrationWindow { kind } } }"
    assert (await gql.data(node, {"id": window_id}, token=school_admin))["node"] == {
        "kind": "WRITTEN"
    }
    assert (await gql.data(node, {"id": window_id}, token=me.token))["node"] is None
    other_admin = await admin_token(Role.SCHOOL_ADMIN, school=other_school.code)
    assert (await gql.data(node, {"id": window_id}, token=other_admin))["node"] is None
    assert (await gql.data(WINDOWS, {"p": "11"}, token=school_admin))["registrationWindows"] == []

    # Removing the school's window hands its students back to the province's.
    key = {k: own[k] for k in ("sessionCode", "provinceCode", "schoolCode", "kind")}
    cleared = (await gql.data(CLEAR_WINDOW, {"input": key}, token=school_admin))[
        "clearRegistrationWindow"
    ]
    assert cleared == {"cleared": True, "userErrors": []}
    assert (await select(gql, me.token, {"subjectCode": "CET4"}))["userErrors"] == []
    assert await audit_count("registration.window_clear") == 1


async def test_bad_windows_are_coded_and_nothing_is_written(gql):
    world = await build_world()
    token = await admin_token(Role.PROVINCE_ADMIN, province="44")
    await models.Province.create(code="11", name="北京市")
    await models.School.create(
        code="10001", name="北京大学", province_id=(await models.Province.get(code="11")).id
    )
    before = [(w.id, w.opens_at, w.closes_at) for w in await models.RegistrationWindow.all()]
    now = clock.now()
    base = {
        "sessionCode": SESSION,
        "provinceCode": "44",
        "kind": "WRITTEN",
        "opensAt": iso(now),
        "closesAt": iso(now + timedelta(days=1)),
    }
    cases = {
        "reversed": ({**base, "closesAt": iso(now)}, [("INVALID_TIME_RANGE", ["closesAt"])]),
        "unknown province": (
            {**base, "provinceCode": "99"},
            [("UNKNOWN_PROVINCE", ["provinceCode"])],
        ),
        "foreign school": (
            {**base, "schoolCode": "10001"},
            [("SCHOOL_NOT_IN_PROVINCE", ["schoolCode"])],
        ),
        "other province": ({**base, "provinceCode": "11"}, [("OUT_OF_SCOPE", ["provinceCode"])]),
        "unknown session": (
            {**base, "sessionCode": "2030H1"},
            [("SESSION_NOT_FOUND", ["sessionCode"])],
        ),
    }
    for name, (value, expected) in cases.items():
        result = (await gql.data(SET_WINDOW, {"input": value}, token=token))[
            "setRegistrationWindow"
        ]
        assert [(e["code"], e["field"]) for e in result["userErrors"]] == expected, name
        assert result["registrationWindow"] is None
    after = [(w.id, w.opens_at, w.closes_at) for w in await models.RegistrationWindow.all()]
    assert after == before and world.session
    assert await audit_count("registration.window_set") == 0
    messages = await gql.execute(
        SET_WINDOW, {"input": cases["reversed"][0]}, token=token, headers={"Accept-Language": "en"}
    )
    assert messages["data"]["setRegistrationWindow"]["userErrors"][0]["message"] == (
        "The start must be before the end."
    )


# --- fees (P5) -----------------------------------------------------------------------------


async def test_fees_set_by_the_province_are_what_candidates_pay(gql):
    world = await build_world()
    token = await admin_token(Role.PROVINCE_ADMIN, province="44")
    me = await qualified_candidate(world)
    fees = [{"subjectCode": "CET4", "fen": 3700}, {"subjectCode": "cet-set4", "fen": 5000}]
    done = (
        await gql.data(
            SET_FEES,
            {"input": {"sessionCode": SESSION, "provinceCode": "44", "fees": fees}},
            token=token,
        )
    )["setFees"]
    assert done["userErrors"] == []
    listed = {f["subject"]["code"]: f["fee"] for f in done["fees"]}
    assert listed["CET4"] == {"fen": 3700, "yuan": "37.00"}
    assert len(listed) == 11  # the province's whole list
    assert (await options(gql, me.token))["CET4"]["fee"] == {"fen": 3700, "yuan": "37.00"}
    order = (await select(gql, me.token, {"subjectCode": "CET4"}))["order"]
    assert order["amount"] == {"fen": 3700, "yuan": "37.00"}
    public = await gql.data(
        '{ provinceFees(sessionCode: "2026H1", provinceCode: "44") {'
        " subject { code } fee { fen } } }"
    )
    assert {"subject": {"code": "CET4"}, "fee": {"fen": 3700}} in public["provinceFees"]
    event = await models.AuditEvent.get(action="registration.fees_set")
    assert event.details["fees"] == {"CET4": 3700, "CET-SET4": 5000}

    # A later change applies to new choices; the order already made keeps its amount.
    await gql.data(
        SET_FEES,
        {
            "input": {
                "sessionCode": SESSION,
                "provinceCode": "44",
                "fees": [{"subjectCode": "CET6", "fen": 3300}],
            }
        },
        token=token,
    )
    assert (await models.Order.get()).amount_fen == 3700
    assert (await options(gql, me.token))["CET6"]["fee"]["fen"] == 3300


@pytest.mark.parametrize(
    ("fees", "expected"),
    [
        ([], [("REQUIRED", ["fees"])]),
        ([{"subjectCode": "CET4", "fen": 0}], [("FEE_OUT_OF_RANGE", ["fees", "0", "fen"])]),
        ([{"subjectCode": "CET4", "fen": 100001}], [("FEE_OUT_OF_RANGE", ["fees", "0", "fen"])]),
        (
            [{"subjectCode": "CET6", "fen": 3200}, {"subjectCode": "NOPE", "fen": 3200}],
            [("UNKNOWN_SUBJECT", ["fees", "1", "subjectCode"])],
        ),
        (
            [{"subjectCode": "CET6", "fen": 3200}, {"subjectCode": "cet6", "fen": 3300}],
            [("DUPLICATE_SUBJECT", ["fees", "1", "subjectCode"])],
        ),
    ],
)
async def test_bad_fees_are_coded_and_nothing_changes(gql, fees, expected):
    await build_world()
    token = await admin_token(Role.PROVINCE_ADMIN, province="44")
    before = sorted((f.subject_id, f.amount_fen) for f in await models.Fee.all())
    result = (
        await gql.data(
            SET_FEES,
            {"input": {"sessionCode": SESSION, "provinceCode": "44", "fees": fees}},
            token=token,
        )
    )["setFees"]
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == expected
    assert result["fees"] == []
    assert sorted((f.subject_id, f.amount_fen) for f in await models.Fee.all()) == before
    assert await audit_count("registration.fees_set") == 0


# --- oral centres (S3) ---------------------------------------------------------------------


async def test_a_centre_opened_by_the_province_takes_choices_and_keeps_its_seats(gql):
    world = await build_world(centers=0)
    token = await admin_token(Role.PROVINCE_ADMIN, province="44")
    created = (
        await gql.data(
            CREATE_CENTER,
            {
                "input": {
                    "sessionCode": SESSION,
                    "provinceCode": "44",
                    "code": "440101",
                    "name": " 广州大学城口试考点 ",
                    "address": "番禺区大学城外环西路",
                    "capacity": 2,
                    "subjectCodes": ["CET-SET4", "英语四级口语"],
                }
            },
            token=token,
        )
    )["createOralCenter"]
    assert created["userErrors"] == []
    center = created["oralCenter"]
    assert center["name"] == "广州大学城口试考点" and center["province"] == "广东省"
    assert center["subjectCodes"] == ["CET-SET4"] and center["remainingSeats"] == 2
    assert await audit_count("oral_center.create") == 1

    me = await qualified_candidate(world)
    listed = (await gql.data(CENTERS, {"subject": "CET-SET4"}, token=me.token))["oralCenters"]
    assert [(c["code"], c["remainingSeats"]) for c in listed] == [("440101", 2)]
    assert (await gql.data(CENTERS, {"subject": "CET-SET6"}, token=me.token))["oralCenters"] == []
    await pay((await select(gql, me.token, {"subjectCode": "CET4"}))["order"]["id"])
    oral = await select(gql, me.token, {"subjectCode": "CET-SET4", "oralCenterId": center["id"]})
    assert oral["userErrors"] == []

    def update(**changes: Any) -> dict[str, Any]:
        return {"input": {"oralCenterId": center["id"], **changes}}

    shrink = (await gql.data(UPDATE_CENTER, update(capacity=0), token=token))["updateOralCenter"]
    assert [(e["code"], e["field"]) for e in shrink["userErrors"]] == [
        ("CAPACITY_BELOW_HELD", ["capacity"])
    ]
    assert shrink["userErrors"][0]["message"].endswith("(1)")
    dropped = (await gql.data(UPDATE_CENTER, update(subjectCodes=["CET-SET6"]), token=token))[
        "updateOralCenter"
    ]
    assert codes(dropped) == ["CENTER_SUBJECT_IN_USE"]
    stored = await models.OralCenter.get(code="440101")
    assert stored.capacity == 2 and stored.subject_codes == ["CET-SET4"]

    done = (
        await gql.data(
            UPDATE_CENTER, update(capacity=1, subjectCodes=[], name="大学城考点"), token=token
        )
    )["updateOralCenter"]
    assert done["userErrors"] == []
    assert done["oralCenter"] == {
        "id": center["id"],
        "name": "大学城考点",
        "capacity": 1,
        "subjectCodes": [],
        "remainingSeats": 0,
    }
    listed = (await gql.data(CENTERS, {"subject": "CET-SET6"}, token=me.token))["oralCenters"]
    assert [(c["code"], c["remainingSeats"]) for c in listed] == [("440101", 0)]
    event = await models.AuditEvent.get(action="oral_center.update")
    assert event.details["before"]["capacity"] == 2 and event.details["after"]["capacity"] == 1


async def test_bad_centres_are_coded_and_nothing_is_written(gql):
    await build_world(centers=1)  # holds code 440001
    token = await admin_token(Role.PROVINCE_ADMIN, province="44")
    base = {
        "sessionCode": SESSION,
        "provinceCode": "44",
        "code": "440002",
        "name": "口试考点",
        "capacity": 10,
    }
    cases = [
        ({"code": "4400"}, [("CENTER_CODE_INVALID", ["code"])]),
        ({"code": "110001"}, [("CENTER_CODE_INVALID", ["code"])]),
        ({"code": "440001"}, [("CENTER_CODE_TAKEN", ["code"])]),
        ({"name": "  "}, [("REQUIRED", ["name"])]),
        ({"capacity": -1}, [("INVALID_CAPACITY", ["capacity"])]),
        (
            {"subjectCodes": ["CET4", "XYZ"]},
            [
                ("SUBJECT_NOT_ORAL", ["subjectCodes", "0"]),
                ("UNKNOWN_SUBJECT", ["subjectCodes", "1"]),
            ],
        ),
        (
            {"name": "", "capacity": 100001},
            [("REQUIRED", ["name"]), ("INVALID_CAPACITY", ["capacity"])],
        ),
    ]
    for changes, expected in cases:
        result = (await gql.data(CREATE_CENTER, {"input": {**base, **changes}}, token=token))[
            "createOralCenter"
        ]
        assert [(e["code"], e["field"]) for e in result["userErrors"]] == expected, changes
        assert result["oralCenter"] is None
    assert await models.OralCenter.all().count() == 1
    assert await audit_count("oral_center.create") == 0


# --- scope ---------------------------------------------------------------------------------


async def test_admins_of_another_province_are_refused_and_nothing_is_written(gql):
    world = await build_world()
    await models.Province.create(code="11", name="北京市")
    beijing = await admin_token(Role.PROVINCE_ADMIN, province="11")
    from strawberry.relay import GlobalID

    center_id = str(GlobalID("OralCenter", str(world.centers[0].id)))
    now = clock.now()
    attempts = [
        (
            SET_FEES,
            {
                "sessionCode": SESSION,
                "provinceCode": "44",
                "fees": [{"subjectCode": "CET4", "fen": 1}],
            },
            "setFees",
        ),
        (
            CREATE_CENTER,
            {
                "sessionCode": SESSION,
                "provinceCode": "44",
                "code": "440009",
                "name": "考点",
                "capacity": 5,
            },
            "createOralCenter",
        ),
        (UPDATE_CENTER, {"oralCenterId": center_id, "capacity": 0}, "updateOralCenter"),
        (
            SET_WINDOW,
            {
                "sessionCode": SESSION,
                "provinceCode": "44",
                "kind": "ORAL",
                "opensAt": iso(now),
                "closesAt": iso(now + timedelta(hours=1)),
            },
            "setRegistrationWindow",
        ),
        (
            SET_WINDOW,
            {
                "sessionCode": SESSION,
                "provinceCode": "44",
                "schoolCode": "10558",
                "kind": "WRITTEN",
                "opensAt": iso(now),
                "closesAt": iso(now + timedelta(hours=1)),
            },
            "setRegistrationWindow",
        ),
    ]

    async def snapshot() -> tuple[Any, ...]:
        return (
            sorted(await models.Fee.all().values_list("id", "amount_fen")),
            sorted(await models.OralCenter.all().values_list("id", "code", "capacity")),
            sorted(
                await models.RegistrationWindow.all().values_list("id", "opens_at", "closes_at")
            ),
            await models.AuditEvent.all().count(),
        )

    before = await snapshot()
    for query, value, name in attempts:
        result = (await gql.data(query, {"input": value}, token=beijing))[name]
        assert codes(result) == ["OUT_OF_SCOPE"], name
    assert await snapshot() == before
    assert (await gql.data(WINDOWS, {"p": "44"}, token=beijing))["registrationWindows"] == []


@pytest.mark.parametrize("who", ["anonymous", "candidate", "school admin"])
async def test_people_without_the_role_are_refused_at_the_top_level(gql, who):
    world = await build_world()
    token = None
    if who == "candidate":
        token = (await qualified_candidate(world)).token
    elif who == "school admin":
        token = await admin_token(Role.SCHOOL_ADMIN, school="10558")
    now = clock.now()
    window = {
        "sessionCode": SESSION,
        "provinceCode": "44",
        "kind": "WRITTEN",
        "opensAt": iso(now),
        "closesAt": iso(now + timedelta(hours=1)),
    }
    attempts = [
        (CREATE_SESSION, {"code": "2027H1"}),
        (UPDATE_SUBJECT, {"sessionCode": SESSION, "subjectCode": "CET4", "slot": "X"}),
        (SET_FEES, {"sessionCode": SESSION, "provinceCode": "44", "fees": []}),
        (
            CREATE_CENTER,
            {
                "sessionCode": SESSION,
                "provinceCode": "44",
                "code": "440009",
                "name": "考点",
                "capacity": 5,
            },
        ),
    ]
    if who != "school admin":  # a school admin may reach this one, for their own school
        attempts.append((SET_WINDOW, window))
    for query, value in attempts:
        result = await gql.execute(query, {"input": value}, token=token)
        assert result["data"] is None, query
        assert result["errors"][0]["extensions"]["code"] in ("FORBIDDEN", "UNAUTHENTICATED")
    if who != "school admin":
        refused = await gql.execute(WINDOWS, {"p": "44"}, token=token)
        assert refused["errors"][0]["extensions"]["code"] in ("FORBIDDEN", "UNAUTHENTICATED")
    assert await models.ExamSession.all().count() == 1
    assert await models.AuditEvent.filter(action__startswith="registration.").count() == 0
