"""Set-up for the score tests: sessions, candidates, admins, score files, and the GraphQL
operations a partner front end (or the national office's console) sends.

Accounts and schools are made straight in the database; what is under test (import, release,
history, reports, checks, certificates, paper reports) goes through GraphQL or the CLI.
Tokens are opened at the current (test) clock, so a test that moves the clock months ahead
asks for a fresh one with :func:`token`.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

from openpyxl import Workbook

from cetgql import models
from cetgql.models import IdType, Role
from cetgql.services import accounts, catalog, clock, identity, sessions
from cetgql.services.clock import SHANGHAI
from tests.factories import upload

USER_ERRORS = "userErrors { field code message }"
HEADER = [
    *("准考证号", "姓名", "证件类型", "证件号码"),
    *("听力", "阅读", "写作和翻译", "总分", "口试成绩", "缺考", "违纪"),
]

IMPORT_SCORES = f"""
mutation($input: ImportScoresInput!) {{
  importScores(input: $input) {{
    rows created updated unchanged reportsIssued reportsReissued reportsWithdrawn problemCount
    problems {{ line column code message value otherLine }}
    {USER_ERRORS}
  }}
}}"""

SET_RELEASE = f"""
mutation($input: SetScoreReleaseInput!) {{
  setScoreRelease(input: $input) {{
    release {{ sessionCode releaseAt released defaultReleaseDate electronicReportsFrom
      verificationUntil paperRequestUntil paperCollectUntil provisional }}
    {USER_ERRORS}
  }}
}}"""

SCORE_FIELDS = """
  id ticketNumber total listening reading writingTranslation oralGrade releasedAt
  reportNumber reportVersion reportVerificationCode electronicReportFrom electronicReportUrl
  paperRequestUntil verificationOpenUntil
  session { code } subject { code name kind }
  paperReport { status requestedAt collectUntil collectedAt centerCode }
  verification { id status outcome note before { total } after { total listening } }
"""

HISTORY = f"""
query {{ viewer {{ scores(first: 100) {{ edges {{ node {{ {SCORE_FIELDS} }} }} }} }} }}"""

NODE = f"""
query($id: ID!) {{ node(id: $id) {{ ... on Score {{ {SCORE_FIELDS} }} }} }}"""

VERIFY = """
query($code: String!) { verifyDocument(code: $code) {
  valid kind title holderName idNumberMasked note facts { key label value } } }"""

_serial = iter(range(1, 10_000_000))


def resident_id(serial: int, born: str = "20030101") -> str:
    first17 = f"110105{born}{serial % 1000:03d}"
    return first17 + identity.resident_id_check_char(first17)


def beijing(text: str) -> datetime:
    """``2024-09-27 10:00`` in Beijing time."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def move_to(moment: datetime) -> None:
    """Set the test clock to ``moment`` (forwards or back)."""
    clock.advance(moment - clock.now())


async def token(account: models.Account) -> str:
    """A bearer token valid at the current test clock."""
    return await sessions.open_session(account, client_address="127.0.0.1", user_agent="tests")


async def person(name: str = "张三", *, serial: int | None = None) -> models.Account:
    number = resident_id(serial if serial is not None else next(_serial))
    return await models.Account.create(
        name=name,
        name_key=identity.name_key(name),
        id_type=IdType.RESIDENT_ID,
        id_number=number,
        password_hash="!unusable",
    )


async def admin(
    role: Role = Role.NATIONAL_ADMIN,
    *,
    email: str = "scores-admin@cet.example.cn",
    school_code: str | None = None,
    province_code: str | None = None,
) -> models.Account:
    return await accounts.create_admin(
        name="管理员",
        email=email,
        password="Admin@2026test",
        role=role,
        school_code=school_code,
        province_code=province_code,
    )


async def school() -> models.School:
    """北京大学 (10001) with campus 1: written centre 100011."""
    province = await models.Province.get_or_none(code="11") or await models.Province.create(
        code="11", name="北京市"
    )
    found = await models.School.get_or_none(code="10001")
    if found is None:
        found = await models.School.create(code="10001", name="北京大学", province=province)
        await models.Campus.create(school=found, code="1", name="本部")
    return found


async def session(code: str) -> models.ExamSession:
    return await catalog.ensure_session(code)


def written_ticket(code: str, level: int = 1, seat: int = 1, centre: str = "100011") -> str:
    """A written ticket number of the session (T4): centre, year, half, level, room, seat."""
    return f"{centre}{code[2:4]}{code[-1]}{level}{1 + seat // 100:03d}{seat % 100:02d}"


def oral_ticket(code: str, level: int = 4, seat: int = 1, centre: str = "110001") -> str:
    """An oral ticket number: oral centre, year, half, 0, level, room, seat."""
    return f"{centre}{code[2:4]}{code[-1]}0{level}{1 + seat // 100:02d}{seat % 100:02d}"


def row(
    ticket: str,
    account: models.Account | None = None,
    *,
    name: str | None = None,
    id_number: str | None = None,
    listening: Any = "",
    reading: Any = "",
    writing: Any = "",
    total: Any = "",
    oral: str = "",
    absent: str = "",
    violation: str = "",
) -> list[Any]:
    return [
        ticket,
        name if name is not None else (account.name if account else ""),
        "居民身份证",
        id_number if id_number is not None else (account.id_number if account else ""),
        listening,
        reading,
        writing,
        total,
        oral,
        absent,
        violation,
    ]


def written(ticket: str, account: models.Account, total: float, **changes: Any) -> list[Any]:
    """A written row whose sections add up to ``total`` (split 35/35/30, in half points)."""
    half_points = round(total * 2)
    listening = half_points * 35 // 100
    reading = half_points * 35 // 100
    writing = half_points - listening - reading
    values = {"listening": listening / 2, "reading": reading / 2, "writing": writing / 2}
    values.update(changes)
    return row(ticket, account, **values)


def csv_file(rows: list[list[Any]], *, header: list[str] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header or HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def xlsx_file(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for values in rows:
        sheet.append([v if v != "" else None for v in values])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def import_scores(
    gql: Any, admin_token: str, content: bytes, session_code: str, filename: str = "scores.csv"
) -> dict[str, Any]:
    result = await upload(
        gql,
        IMPORT_SCORES,
        {"input": {"sessionCode": session_code}},
        {"input.file": (filename, content)},
        token=admin_token,
    )
    assert "errors" not in result, result
    return result["data"]["importScores"]


async def release(gql: Any, admin_token: str, session_code: str, at: datetime | None) -> Any:
    variables: dict[str, Any] = {"sessionCode": session_code}
    if at is not None:
        variables["releaseAt"] = at.isoformat()
    data = await gql.data(SET_RELEASE, {"input": variables}, token=admin_token)
    payload = data["setScoreRelease"]
    assert payload["userErrors"] == [], payload
    return payload["release"]


async def history(gql: Any, account: models.Account) -> list[dict[str, Any]]:
    data = await gql.data(HISTORY, token=await token(account))
    return [edge["node"] for edge in data["viewer"]["scores"]["edges"]]


def by_ticket(scores: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["ticketNumber"]: s for s in scores}


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


async def released_session(
    gql: Any,
    national: models.Account,
    code: str,
    rows: list[list[Any]],
    *,
    at: datetime | None = None,
) -> datetime:
    """Import ``rows`` into session ``code``, release it at ``at`` (default: an hour ago of
    the current clock) and return the release instant."""
    await session(code)
    admin_token = await token(national)
    payload = await import_scores(gql, admin_token, csv_file(rows), code)
    assert payload["userErrors"] == [], payload
    moment = at or (clock.now() - timedelta(hours=1))
    await release(gql, admin_token, code, moment)
    return moment


async def world() -> Any:
    """The 2026H1 registration world of tests/registration_setup.py (中山大学 10558, campus 1:
    written centre 105581)."""
    from tests.registration_setup import build_world

    return await build_world()


async def issued_ticket(
    world: Any,
    *,
    subject_code: str = "CET4",
    paper: bool = False,
    name: str = "李雷",
    seat: int = 1,
) -> tuple[models.Ticket, models.Account, models.Registration]:
    """A paid registration with a published written ticket, made straight in the database as
    seat allocation would make it."""
    from tests.registration_setup import qualified_candidate

    candidate = await qualified_candidate(world, name=name)
    now = clock.now()
    offering = await models.SessionSubject.get(
        session=world.session, subject__code=subject_code
    ).select_related("subject")
    order = await models.Order.create(
        number=f"T{next(_serial):019d}",
        account=candidate.account,
        session=world.session,
        province=world.province,
        kind=offering.subject.kind,
        amount_fen=3000,
        status=models.OrderStatus.PAID,
        created_at=now,
        expires_at=now + timedelta(hours=24),
        paid_at=now,
    )
    registration = await models.Registration.create(
        account=candidate.account,
        session=world.session,
        offering=offering,
        order=order,
        status=models.RegistrationStatus.PAID,
        school=world.school,
        campus=world.campus,
        paper_report=paper,
        created_at=now,
        expires_at=now + timedelta(hours=24),
        paid_at=now,
    )
    centre_key = f"C{world.campus.id}"
    room = await models.ExamRoom.get_or_none(session=world.session, centre_key=centre_key, number=1)
    if room is None:
        room = await models.ExamRoom.create(
            session=world.session,
            kind=offering.subject.kind,
            province=world.province,
            school=world.school,
            campus=world.campus,
            centre_key=centre_key,
            number=1,
            capacity=30,
        )
    run = await models.AllocationRun.create(
        session=world.session,
        kind=offering.subject.kind,
        province=world.province,
        school=world.school,
        unit_key=f"S{world.school.id}",
        seed="tests",
        created_at=now,
        published_at=now,
    )
    ticket = await models.Ticket.create(
        number=f"105581261{offering.subject.ticket_code}001{seat:02d}",
        registration=registration,
        account=candidate.account,
        session=world.session,
        offering=offering,
        kind=offering.subject.kind,
        unit_key=run.unit_key,
        run=run,
        room=room,
        slot=offering.slot,
        seat=seat,
        created_at=now,
        published_at=now,
    )
    return ticket, candidate.account, registration
