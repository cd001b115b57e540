"""Group registration (集体报名, S11; FAQ 七) through GraphQL and the command line on the real
database: a school registers and pays written subjects for its students, all or nothing; a
student without an account signs in with their ID number and 123456, must change the password
before anything else, and then adds an oral subject online."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from cetgql import models
from cetgql.models import IdType, Role
from cetgql.services import accounts, clock, identity, sessions
from tests.registration_setup import (
    SESSION,
    WRITTEN_FEE,
    World,
    build_world,
    resident_id,
)

ROOT = Path(__file__).resolve().parent.parent
INITIAL = "123456"
NEW_PASSWORD = "Cet@2026new!"
USER_ERRORS = "userErrors { field code message }"
GROUP = f"""
mutation($input: GroupRegisterInput!) {{ groupRegister(input: $input) {{
  school {{ code }} accountsCreated checked total {{ fen yuan }}
  students {{ name idNumberMasked accountCreated
    order {{ number kind status paidBySchool amount {{ fen }}
            registrations {{ status subject {{ code }} }} }} }}
  {USER_ERRORS} }} }}
"""
SIGN_IN = f"""
mutation($input: SignInInput!) {{ signIn(input: $input) {{
  token account {{ mustChangePassword }} {USER_ERRORS} }} }}
"""
CHANGE_PASSWORD = f"""
mutation($input: ChangePasswordInput!) {{ changePassword(input: $input) {{
  account {{ mustChangePassword }} {USER_ERRORS} }} }}
"""
VERIFY = f"""
mutation($input: VerifyQualificationInput!) {{ verifyQualification(input: $input) {{
  qualification {{ confirmed }} {USER_ERRORS} }} }}
"""
CONFIRM = f"""
mutation {{ confirmQualification(input: {{sessionCode: "{SESSION}"}}) {{
  qualification {{ confirmed }} {USER_ERRORS} }} }}
"""
OVERVIEW = f"""
{{ viewer {{ mustChangePassword
  registrations(sessionCode: "{SESSION}") {{ status subject {{ code }} order {{ paidBySchool }} }}
  orders(first: 10) {{ edges {{ node {{ kind status paidBySchool amount {{ fen }} }} }} }} }} }}
"""
AVAILABLE = f"""
{{ availableSubjects(sessionCode: "{SESSION}") {{ subject {{ code }} eligible reasons }} }}
"""
CENTERS = f"""
{{ oralCenters(sessionCode: "{SESSION}", subjectCode: "CET-SET4") {{ id remainingSeats }} }}
"""
SELECT = f"""
mutation($input: SelectSubjectsInput!) {{ selectSubjects(input: $input) {{
  order {{ kind status amount {{ fen }} }} {USER_ERRORS} }} }}
"""


async def on_roster(
    world: World,
    serial: int,
    name: str,
    subjects: tuple[str, ...] = ("CET4", "CET-SET4"),
    school: models.School | None = None,
) -> str:
    """A student on a school's roster for the session; their ID number."""
    id_number = resident_id(serial, born="20050301")
    school = school or world.school
    campus = world.campus
    if school.id != world.school.id:
        campus = await models.Campus.create(school=school, code="1", name="主校区")
    await models.RosterRecord.create(
        session=world.session,
        school=school,
        campus=campus,
        name=name,
        name_key=identity.name_key(name),
        id_type=IdType.RESIDENT_ID,
        id_number=id_number,
        eligible_subjects=list(subjects),
        updated_at=clock.now(),
    )
    return id_number


async def admin_token(school_code: str, email: str) -> str:
    admin = await accounts.create_admin(
        name="教务处",
        email=email,
        password="Admin@2026x",
        role=Role.SCHOOL_ADMIN,
        school_code=school_code,
    )
    return await sessions.open_session(admin, client_address="127.0.0.1", user_agent="tests")


def entry(id_number: str, *codes: str) -> dict:
    return {"idType": "RESIDENT_ID", "idNumber": id_number, "subjectCodes": list(codes)}


async def group(gql, token: str, *entries: dict, **extra) -> dict:
    payload = await gql.data(
        GROUP, {"input": {"sessionCode": SESSION, "entries": list(entries), **extra}}, token=token
    )
    return payload["groupRegister"]


def errors(payload: dict) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def test_school_registers_and_pays_written_subjects(gql):
    world = await build_world()
    admin = await admin_token("10558", "jwc@sysu.example.cn")
    new_student = await on_roster(world, 1, "王小明")
    returning = await on_roster(world, 2, "阿依古丽·买买提", ("CET4", "CET6"))
    existing = await models.Account.create(
        name="阿依古丽•买买提",  # another middle dot: the same name (A2)
        name_key=identity.name_key("阿依古丽•买买提"),
        id_type=IdType.RESIDENT_ID,
        id_number=returning,
        password_hash="!unusable",
    )

    done = await group(gql, admin, entry(new_student, "cet4"), entry(returning, "CET6"))
    assert done["userErrors"] == []
    assert done["school"] == {"code": "10558"}
    assert done["accountsCreated"] == 1 and done["checked"] == 2
    assert done["total"] == {"fen": 2 * WRITTEN_FEE, "yuan": "60.00"}
    first, second = done["students"]
    assert first["accountCreated"] is True and second["accountCreated"] is False
    assert first["name"] == "王小明" and "*" in first["idNumberMasked"]
    for student, code in ((first, "CET4"), (second, "CET6")):
        order = student["order"]
        assert order["kind"] == "WRITTEN" and order["status"] == "PAID"
        assert order["paidBySchool"] is True and order["amount"] == {"fen": WRITTEN_FEE}
        assert order["registrations"] == [{"status": "PAID", "subject": {"code": code}}]

    made = await models.Account.get(id_number=new_student)
    assert made.must_change_password is True and made.name == "王小明"
    assert made.password_hash.startswith("$argon2id$")
    assert await models.Account.filter(id_number=returning).count() == 1
    attached = await models.Order.get(account_id=existing.id)
    assert attached.group_paid_by_id == world.school.id  # type: ignore[attr-defined]
    assert attached.paid_at is not None
    event = await models.AuditEvent.get(action="group_registration.registered")
    assert event.details["students"] == 2 and event.details["accounts_created"] == 1
    assert event.details["total_fen"] == 2 * WRITTEN_FEE

    # Registered once: a second batch with the same subject is refused.
    again = await group(gql, admin, entry(new_student, "CET4"))
    assert errors(again) == [("ALREADY_REGISTERED", ["entries", "0", "subjectCodes", "0"])]


async def test_a_bad_row_means_nobody_is_registered(gql):
    world = await build_world()
    admin = await admin_token("10558", "jwc@sysu.example.cn")
    good = await on_roster(world, 1, "王小明")
    no_cet6 = await on_roster(world, 2, "李四")
    other_school = await models.School.create(
        code="10561", name="华南理工大学", province=world.province
    )
    elsewhere = await on_roster(world, 3, "赵五", school=other_school)
    nowhere = resident_id(4, born="20050301")
    valid = resident_id(5, born="20050301")
    wrong_check_digit = valid[:-1] + ("1" if valid[-1] == "0" else "0")
    before = await models.Account.all().count()

    result = await group(
        gql,
        admin,
        entry(good, "CET4"),
        entry(no_cet6, "CET6"),
        entry(elsewhere, "CET4"),
        entry(nowhere, "CET4"),
        entry(good, "CET4"),
        entry(wrong_check_digit, "CET4"),
    )
    result_2 = await group(
        gql, admin, entry(no_cet6, "CET4", "CJT4", "CET-SET4", "XYZ"), entry(good, "CET4")
    )
    assert errors(result) == [
        ("CET6_REQUIRES_CET4", ["entries", "1", "subjectCodes", "0"]),
        ("NOT_ON_SCHOOL_ROSTER", ["entries", "2", "idNumber"]),
        ("NOT_ON_SCHOOL_ROSTER", ["entries", "3", "idNumber"]),
        ("DUPLICATE_IN_FILE", ["entries", "4", "idNumber"]),
        ("INVALID_ID_NUMBER", ["entries", "5", "idNumber"]),
    ]
    assert errors(result_2) == [
        ("SUBJECT_NOT_IN_ROSTER", ["entries", "0", "subjectCodes", "1"]),
        ("SLOT_TAKEN", ["entries", "0", "subjectCodes", "1"]),
        ("GROUP_WRITTEN_ONLY", ["entries", "0", "subjectCodes", "2"]),
        ("SUBJECT_NOT_OFFERED", ["entries", "0", "subjectCodes", "3"]),
    ]
    assert result["students"] == [] and result_2["students"] == []
    assert await models.Order.all().count() == 0
    assert await models.Registration.all().count() == 0
    assert await models.Account.all().count() == before

    checked = await group(gql, admin, entry(good, "CET4"), dryRun=True)
    assert checked["userErrors"] == [] and checked["checked"] == 1
    assert await models.Order.all().count() == 0


async def test_student_signs_in_with_id_and_123456_and_must_change_the_password_first(gql):
    world = await build_world()
    admin = await admin_token("10558", "jwc@sysu.example.cn")
    student = await on_roster(world, 1, "王小明")
    assert (await group(gql, admin, entry(student, "CET4")))["userErrors"] == []

    signed = (await gql.data(SIGN_IN, {"input": {"login": student, "password": INITIAL}}))["signIn"]
    assert signed["userErrors"] == [] and signed["account"]["mustChangePassword"] is True
    token = signed["token"]
    # Nothing but the password change is open.
    for blocked in (AVAILABLE, CONFIRM):
        refused = await gql.execute(blocked, token=token)
        assert refused["errors"][0]["extensions"]["code"] == "PASSWORD_CHANGE_REQUIRED"
    weak = (
        await gql.data(
            CHANGE_PASSWORD,
            {"input": {"currentPassword": INITIAL, "newPassword": "654321"}},
            token=token,
        )
    )["changePassword"]
    assert [e["code"] for e in weak["userErrors"]] == ["WEAK_PASSWORD"]

    changed = (
        await gql.data(
            CHANGE_PASSWORD,
            {"input": {"currentPassword": INITIAL, "newPassword": NEW_PASSWORD}},
            token=token,
        )
    )["changePassword"]
    assert changed["userErrors"] == [] and changed["account"]["mustChangePassword"] is False

    view = (await gql.data(OVERVIEW, token=token))["viewer"]
    assert view["mustChangePassword"] is False
    assert view["registrations"] == [
        {"status": "PAID", "subject": {"code": "CET4"}, "order": {"paidBySchool": True}}
    ]
    assert view["orders"]["edges"] == [
        {
            "node": {
                "kind": "WRITTEN",
                "status": "PAID",
                "paidBySchool": True,
                "amount": {"fen": WRITTEN_FEE},
            }
        }
    ]
    old = (await gql.data(SIGN_IN, {"input": {"login": student, "password": INITIAL}}))["signIn"]
    assert [e["code"] for e in old["userErrors"]] == ["INVALID_CREDENTIALS"]


async def test_after_group_registration_the_student_adds_an_oral_subject_online(gql):
    world = await build_world()
    admin = await admin_token("10558", "jwc@sysu.example.cn")
    student = await on_roster(world, 1, "王小明")
    await group(gql, admin, entry(student, "CET4"))
    token = (await gql.data(SIGN_IN, {"input": {"login": student, "password": INITIAL}}))["signIn"][
        "token"
    ]
    await gql.data(
        CHANGE_PASSWORD,
        {"input": {"currentPassword": INITIAL, "newPassword": NEW_PASSWORD}},
        token=token,
    )

    verified = (
        await gql.data(
            VERIFY,
            {
                "input": {
                    "sessionCode": SESSION,
                    "name": "王小明",
                    "idType": "RESIDENT_ID",
                    "idNumber": student,
                }
            },
            token=token,
        )
    )["verifyQualification"]
    assert verified["userErrors"] == []
    assert (await gql.data(CONFIRM, token=token))["confirmQualification"]["userErrors"] == []

    listed = {
        o["subject"]["code"]: o
        for o in (await gql.data(AVAILABLE, token=token))["availableSubjects"]
    }
    assert listed["CET4"]["reasons"] == ["ALREADY_REGISTERED"]
    assert listed["CET-SET4"]["eligible"] is True  # the school paid the written subject (S5)
    centre = (await gql.data(CENTERS, token=token))["oralCenters"][0]["id"]
    oral = (
        await gql.data(
            SELECT,
            {
                "input": {
                    "sessionCode": SESSION,
                    "items": [{"subjectCode": "CET-SET4", "oralCenterId": centre}],
                }
            },
            token=token,
        )
    )["selectSubjects"]
    assert oral["userErrors"] == []
    assert oral["order"]["kind"] == "ORAL" and oral["order"]["status"] == "PENDING_PAYMENT"


async def test_another_schools_admin_and_candidates_are_refused(gql):
    world = await build_world()
    student = await on_roster(world, 1, "王小明")
    other_school = await models.School.create(
        code="10561", name="华南理工大学", province=world.province
    )
    other_admin = await admin_token(other_school.code, "jwc@scut.example.cn")

    own = await group(gql, other_admin, entry(student, "CET4"))
    assert errors(own) == [("NOT_ON_SCHOOL_ROSTER", ["entries", "0", "idNumber"])]
    foreign = await group(gql, other_admin, entry(student, "CET4"), schoolCode="10558")
    assert errors(foreign) == [("OUT_OF_SCOPE", None)]

    candidate = await models.Account.create(
        name="李雷",
        name_key="李雷",
        id_type=IdType.RESIDENT_ID,
        id_number=resident_id(9),
        password_hash="!unusable",
    )
    token = await sessions.open_session(candidate, client_address="127.0.0.1", user_agent="t")
    denied = await gql.execute(
        GROUP, {"input": {"sessionCode": SESSION, "entries": [entry(student, "CET4")]}}, token=token
    )
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await models.Order.all().count() == 0
    assert not await models.Account.filter(id_number=student).exists()


async def test_an_account_under_another_name_is_not_attached(gql):
    world = await build_world()
    admin = await admin_token("10558", "jwc@sysu.example.cn")
    student = await on_roster(world, 1, "王小明")
    await models.Account.create(
        name="王晓明",
        name_key="王晓明",
        id_type=IdType.RESIDENT_ID,
        id_number=student,
        password_hash="!unusable",
    )
    result = await group(gql, admin, entry(student, "CET4"))
    assert errors(result) == [("ACCOUNT_IDENTITY_MISMATCH", ["entries", "0", "idNumber"])]


async def test_the_written_window_and_the_fees_apply_to_schools_too(gql):
    world = await build_world()
    admin = await admin_token("10558", "jwc@sysu.example.cn")
    student = await on_roster(world, 1, "王小明")
    cet4 = await models.Subject.get(code="CET4")
    await models.Fee.filter(subject=cet4).delete()
    unpriced = await group(gql, admin, entry(student, "CET4"))
    assert errors(unpriced) == [("SUBJECT_NOT_OFFERED", ["entries", "0", "subjectCodes", "0"])]

    clock.advance(timedelta(days=11))  # the window of build_world closed after 10 days
    admin = await admin_token("10558", "jwc@sysu.example.cn")
    closed = await group(gql, admin, entry(student, "CET6"))
    assert ("WINDOW_CLOSED", ["entries", "0", "subjectCodes", "0"]) in errors(closed)


# --- command line ---------------------------------------------------------------------------


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CETGQL_")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cetgql.cli",
            "group-register",
            *args,
            "--database-url",
            database_url,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**env, "COLUMNS": "200"},
        timeout=120,
    )


@pytest.fixture
def files(tmp_path: Path) -> Path:
    return tmp_path


async def test_cli_reports_line_numbers_and_registers_all_or_nothing(gql, database_url, files):
    world = await build_world()
    first = await on_roster(world, 1, "王小明")
    second = await on_roster(world, 2, "李四", ("CET4",))
    bad = files / "batch.csv"
    bad.write_text(
        "姓名,证件类型,证件号码,报考科目\n"
        f"王小明,居民身份证,{first},英语四级\n"
        f"李四,居民身份证,{second},CET6\n"
        f"赵五,,{first},CET-SET9\n",
        encoding="utf-8-sig",
    )
    refused = run_cli(database_url, str(bad), "--session", SESSION, "--school", "10558")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "GROUP_REGISTRATION_INVALID" in refused.stdout
    assert re.search(r"line 3\s+报考科目\s+CET6_REQUIRES_CET4", refused.stdout)
    assert re.search(r"line 4\s+报考科目\s+UNKNOWN_SUBJECT", refused.stdout)
    assert await models.Order.all().count() == 0

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["证件号码", "报考科目"])
    sheet.append([first, "CET4"])
    sheet.append([second, "CET4"])
    good = files / "batch.xlsx"
    book.save(good)
    done = run_cli(database_url, str(good), "--session", SESSION, "--school", "10558")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "registered 2 student(s)" in done.stdout and "60.00 CNY" in done.stdout
    orders = await models.Order.filter(group_paid_by_id=world.school.id)
    assert len(orders) == 2 and {o.status for o in orders} == {models.OrderStatus.PAID}
    assert await models.Account.filter(must_change_password=True).count() == 2
    event = await models.AuditEvent.get(action="group_registration.registered")
    assert event.actor_id is None and event.details["source"] == "batch.xlsx"  # type: ignore[attr-defined]
