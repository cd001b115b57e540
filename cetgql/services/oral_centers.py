"""Oral test centres of a province and their seats (S3): finding them, and their
administration by the province (one by one in GraphQL, by file on the command line).

A centre's capacity is a promise to the candidates holding its seats, so it may never drop
below the seats held, nor stop examining a subject someone holds a seat for; the check runs
under the centre's row lock, the same lock a selection takes before counting seats.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from cetgql.models import (
    Account,
    ExamSession,
    OralCenter,
    Province,
    Registration,
    SessionSubject,
    Subject,
    SubjectKind,
)
from cetgql.models.prepared import PreparedQuery
from cetgql.services import access, audit, clock, eligibility, registration_setup
from cetgql.services.errors import DomainError, ErrorCode, Problem
from cetgql.services.roster_import import ImportResult, ProgressCallback, RowProblem

T = TypeVar("T")


# Asked by every oralCenters of a signed-in candidate: prepared (models/prepared.py). The
# school alone is enough to know the province; the roster record (with its photo) is skipped.
_PROVINCE_OF: PreparedQuery[Province | None] = PreparedQuery(
    lambda account_id, session_id: Province.filter(
        schools__roster__qualifications__account_id=account_id,
        schools__roster__qualifications__session_id=session_id,
    ).first()
)
_CENTERS_OF_SESSION: PreparedQuery[list[OralCenter]] = PreparedQuery(
    lambda session_id: (
        OralCenter.filter(session_id=session_id).select_related("province").order_by("code")
    )
)
_CENTERS_OF_PROVINCE: PreparedQuery[list[OralCenter]] = PreparedQuery(
    lambda session_id, province_id: (
        OralCenter.filter(session_id=session_id, province_id=province_id)
        .select_related("province")
        .order_by("code")
    )
)


async def province_of_candidate(account: Account, session_id: int) -> Province | None:
    return await _PROVINCE_OF(account.id, session_id)


async def list_for_subject(
    session_code: str,
    subject_code: str,
    *,
    province: str | None = None,
    viewer: Account | None = None,
) -> list[OralCenter]:
    """Centres examining the subject, in the given province (code or name), else in the
    viewer's own province when known, else everywhere."""
    session = await eligibility.session_by_code(session_code)
    own = None
    if province:
        wanted = province.strip()[:32]
        centers = (
            await OralCenter.filter(session_id=session.id)
            .filter(Q(province__code=wanted) | Q(province__name=wanted))
            .select_related("province")
            .order_by("code")
        )
    else:
        if viewer is not None:
            own = await province_of_candidate(viewer, session.id)
        centers = await (
            _CENTERS_OF_PROVINCE(session.id, own.id) if own else _CENTERS_OF_SESSION(session.id)
        )
    code = subject_code.strip().upper()
    return [c for c in centers if not c.subject_codes or code in c.subject_codes]


# --- administration by the province (S3) ---------------------------------------------------

CENTER_CODE = re.compile(r"^\d{6}$")
MAX_CAPACITY = 100_000
MAX_NAME = 128
MAX_ADDRESS = 255


def check_code(code: str, province_code: str) -> str:
    """Six digits beginning with the province code: the code goes into oral ticket numbers, and
    the prefix keeps provinces from ever competing for a code."""
    clean = unicodedata.normalize("NFKC", code).strip()
    if not CENTER_CODE.match(clean) or not clean.startswith(province_code):
        raise DomainError.of(ErrorCode.CENTER_CODE_INVALID, "code")
    return clean


def check_name(name: str) -> str:
    clean = unicodedata.normalize("NFC", name).strip()
    if not clean:
        raise DomainError.of(ErrorCode.REQUIRED, "name")
    if len(clean) > MAX_NAME:
        raise DomainError.of(ErrorCode.TOO_LONG, "name")
    return clean


def check_address(address: str) -> str:
    clean = unicodedata.normalize("NFC", address).strip()
    if len(clean) > MAX_ADDRESS:
        raise DomainError.of(ErrorCode.TOO_LONG, "address")
    return clean


def check_capacity(capacity: int) -> int:
    """Zero is allowed: it closes a centre to new choices without losing the seats held."""
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise DomainError.of(ErrorCode.INVALID_CAPACITY, "capacity")
    if not 0 <= capacity <= MAX_CAPACITY:
        raise DomainError.of(ErrorCode.INVALID_CAPACITY, "capacity")
    return capacity


@dataclass(frozen=True)
class _Catalogue:
    """The subjects a centre's list is checked against, loaded once."""

    offered: dict[str, SubjectKind]  # subject code → kind, for the session's offerings
    names: dict[str, str]  # "英语四级口语" → "CET-SET4"

    @classmethod
    async def load(cls, session: ExamSession) -> _Catalogue:
        offered = {
            code: SubjectKind(kind)
            for code, kind in await SessionSubject.filter(session_id=session.id).values_list(
                "subject__code", "subject__kind"
            )
        }
        names = {name: code for code, name in await Subject.all().values_list("code", "name")}
        return cls(offered, names)

    def check(self, codes: Sequence[str]) -> list[str]:
        """Oral subjects of the session, de-duplicated in the order given; empty means every
        oral subject. All problems at once, each at its place in the list."""
        clean: list[str] = []
        problems = []
        for index, given in enumerate(codes):
            text = unicodedata.normalize("NFKC", given).strip()
            code = self.names.get(text, text.upper())
            kind = self.offered.get(code)
            if kind is None:
                problems.append(
                    Problem(ErrorCode.UNKNOWN_SUBJECT, ("subjectCodes", str(index)), text[:40])
                )
            elif kind != SubjectKind.ORAL:
                problems.append(
                    Problem(ErrorCode.SUBJECT_NOT_ORAL, ("subjectCodes", str(index)), text)
                )
            elif code not in clean:
                clean.append(code)
        if problems:
            raise DomainError(problems)
        return clean


def _collect(problems: list[Problem], check: Callable[..., T], *args: Any) -> T | None:
    try:
        return check(*args)
    except DomainError as error:
        problems.extend(error.problems)
        return None


async def _held(center_ids: list[int], now: datetime) -> dict[int, dict[str, int]]:
    """Seats held per centre and subject, by choices that still hold their place."""
    if not center_ids:
        return {}
    rows = (
        await Registration.filter(
            eligibility.active_seats_filter(now), oral_center_id__in=center_ids
        )
        .annotate(held=Count("id"))
        .group_by("oral_center_id", "offering__subject__code")
        .values("oral_center_id", "offering__subject__code", "held")
    )
    held: dict[int, dict[str, int]] = {}
    for row in rows:
        held.setdefault(row["oral_center_id"], {})[row["offering__subject__code"]] = row["held"]
    return held


def _seat_problems(capacity: int, subject_codes: list[str], held: dict[str, int]) -> list[Problem]:
    """A centre may not shrink below its held seats, nor drop a subject someone holds a seat
    for: either would strand candidates who have chosen, and perhaps paid."""
    problems = []
    total = sum(held.values())
    if capacity < total:
        problems.append(Problem(ErrorCode.CAPACITY_BELOW_HELD, ("capacity",), f"({total})"))
    if subject_codes:
        stranded = sorted(code for code in held if code not in subject_codes)
        if stranded:
            problems.append(
                Problem(ErrorCode.CENTER_SUBJECT_IN_USE, ("subjectCodes",), ",".join(stranded))
            )
    return problems


def _details(center: OralCenter) -> dict[str, Any]:
    return {
        "code": center.code,
        "name": center.name,
        "address": center.address,
        "capacity": center.capacity,
        "subject_codes": list(center.subject_codes or []),
    }


async def create_center(
    actor: Account | None,
    *,
    session_code: str,
    province_code: str,
    code: str,
    name: str,
    address: str = "",
    capacity: int,
    subject_codes: Sequence[str] = (),
    client_address: str | None = None,
) -> OralCenter:
    """A new oral centre of the province; its code is unique in the session."""
    session = await eligibility.session_by_code(session_code)
    province = await registration_setup.province_by_code(province_code, "provinceCode")
    registration_setup.require_province(
        await access.scope_of(actor) if actor else None, province.id, "provinceCode"
    )
    catalogue = await _Catalogue.load(session)
    problems: list[Problem] = []
    clean_code = _collect(problems, check_code, code, province.code)
    clean_name = _collect(problems, check_name, name)
    clean_address = _collect(problems, check_address, address)
    clean_capacity = _collect(problems, check_capacity, capacity)
    subjects = _collect(problems, catalogue.check, subject_codes)
    if clean_code and await OralCenter.exists(session_id=session.id, code=clean_code):
        problems.append(Problem(ErrorCode.CENTER_CODE_TAKEN, ("code",)))
    if problems:
        raise DomainError(problems)
    assert clean_code and clean_name and clean_address is not None
    assert clean_capacity is not None and subjects is not None
    try:
        async with in_transaction():
            center = await OralCenter.create(
                session=session,
                province=province,
                code=clean_code,
                name=clean_name,
                address=clean_address,
                capacity=clean_capacity,
                subject_codes=subjects,
            )
            await audit.record(
                "oral_center.create",
                actor=actor,
                subject=f"OralCenter:{center.id}",
                client_address=client_address,
                session=session.code,
                province=province.code,
                after=_details(center),
            )
    except IntegrityError as error:  # the same code created a moment ago
        raise DomainError.of(ErrorCode.CENTER_CODE_TAKEN, "code") from error
    return center


@dataclass(frozen=True)
class CenterChanges:
    """Fields to change; ``None`` keeps a field. An empty subject list means every oral subject."""

    name: str | None = None
    address: str | None = None
    capacity: int | None = None
    subject_codes: Sequence[str] | None = None


async def update_center(
    actor: Account | None,
    center_id: int,
    changes: CenterChanges,
    *,
    client_address: str | None = None,
) -> OralCenter:
    """Change a centre's name, address, seats or subjects. The centre row is locked while its
    held seats are counted, as a selection does, so no choice can slip in between (S3)."""
    center = await OralCenter.get_or_none(id=center_id).select_related("session", "province")
    if center is None:
        raise DomainError.of(ErrorCode.NOT_FOUND, "oralCenterId")
    registration_setup.require_province(
        await access.scope_of(actor) if actor else None, center.province.id, "oralCenterId"
    )
    problems: list[Problem] = []
    name = _collect(problems, check_name, changes.name) if changes.name is not None else None
    address = (
        _collect(problems, check_address, changes.address) if changes.address is not None else None
    )
    capacity = (
        _collect(problems, check_capacity, changes.capacity)
        if changes.capacity is not None
        else None
    )
    subjects = None
    if changes.subject_codes is not None:
        catalogue = await _Catalogue.load(center.session)
        subjects = _collect(problems, catalogue.check, changes.subject_codes)
    if problems:
        raise DomainError(problems)
    async with in_transaction():
        locked = await OralCenter.select_for_update().get(id=center.id)
        before = _details(locked)
        locked.name = name if name is not None else locked.name
        locked.address = address if address is not None else locked.address
        locked.capacity = capacity if capacity is not None else locked.capacity
        locked.subject_codes = subjects if subjects is not None else locked.subject_codes
        held = (await _held([locked.id], clock.now())).get(locked.id, {})
        seat_problems = _seat_problems(locked.capacity, list(locked.subject_codes or []), held)
        if seat_problems:
            raise DomainError(seat_problems)
        await locked.save(update_fields=["name", "address", "capacity", "subject_codes"])
        await audit.record(
            "oral_center.update",
            actor=actor,
            subject=f"OralCenter:{locked.id}",
            client_address=client_address,
            session=center.session.code,
            province=center.province.code,
            before=before,
            after=_details(locked),
        )
    locked.session, locked.province = center.session, center.province
    return locked


# --- centre files (cetgql import-oral-centers) ---------------------------------------------

CENTER_COLUMNS: dict[str, tuple[str, ...]] = {
    "province_code": ("省份代码", "省代码", "省份编码", "省份", "provincecode", "province"),
    "code": (
        "考点代码",
        "考点编号",
        "口试考点代码",
        "考点编码",
        "centercode",
        "centrecode",
        "code",
    ),
    "name": ("考点名称", "口试考点名称", "考点", "名称", "centername", "centrename", "name"),
    "address": ("考点地址", "地址", "address"),
    "capacity": ("考位数", "考位", "容量", "座位数", "capacity", "seats"),
    "subjects": ("开考科目", "考试科目", "科目", "subjectcodes", "subjects"),
}
CENTER_REQUIRED = ("province_code", "code", "name", "capacity")
_SEPARATORS = re.compile(r"[;,；，、\s]+")


@dataclass
class _CenterRow:
    line: int
    province_id: int
    code: str
    name: str
    address: str
    capacity: int
    subject_codes: list[str]
    has_address: bool  # an empty address cell keeps the one on file

    def problem_line(self, problem: Problem, row_header: Callable[[str], str]) -> RowProblem:
        column = {"capacity": "capacity", "subjectCodes": "subjects"}[(problem.field or ("",))[0]]
        return RowProblem(self.line, row_header(column), problem.code, problem.detail)


def _parse_capacity(text: str) -> int:
    clean = unicodedata.normalize("NFKC", text).strip()
    if not clean:
        raise DomainError.of(ErrorCode.REQUIRED, "capacity")
    if not clean.isdigit():
        raise DomainError.of(ErrorCode.INVALID_CAPACITY, "capacity")
    return check_capacity(int(clean))


def _check_row(
    row: registration_setup.SheetRow,
    provinces: dict[str, int],
    scope: access.Scope | None,
    catalogue: _Catalogue,
    first_seen: dict[str, int],
) -> _CenterRow | None:
    province_id = registration_setup.check_row_province(row, "province_code", provinces, scope)
    province_code = unicodedata.normalize("NFKC", row.cell("province_code")).strip()
    code = None
    if province_id is not None:
        code = row.attempt("code", check_code, row.cell("code"), province_code)
    if code is not None:
        if code in first_seen:
            row.problem("code", ErrorCode.DUPLICATE_ROW, code, first_seen[code])
        else:
            first_seen[code] = row.line
    name = row.attempt("name", check_name, row.cell("name"))
    address = row.attempt("address", check_address, row.cell("address"))
    capacity = row.attempt("capacity", _parse_capacity, row.cell("capacity"))
    tokens = [t for t in _SEPARATORS.split(row.cell("subjects")) if t]
    subjects = row.attempt("subjects", catalogue.check, tokens)
    if row.problems:
        return None
    assert province_id is not None and code is not None and name is not None
    assert address is not None and capacity is not None and subjects is not None
    return _CenterRow(row.line, province_id, code, name, address, capacity, subjects, bool(address))


async def import_centers(
    *,
    actor: Account | None,
    session_code: str,
    content: bytes,
    filename: str = "",
    client_address: str | None = None,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    """Oral centres of one session from a file, keyed by centre code: new codes are created,
    known ones updated, all rows or none. Centres absent from the file are kept (a file is
    often one city's list). Shrinking a centre below its held seats, or dropping a subject
    someone holds a seat for, is a problem of that row, checked under the centres' locks."""
    session = await eligibility.session_by_code(session_code)
    scope = await access.scope_of(actor) if actor else None
    if scope is not None and not (scope.national or scope.province_ids):
        raise DomainError.of(ErrorCode.FORBIDDEN)
    sheet = await registration_setup.read_rows(content, CENTER_COLUMNS, CENTER_REQUIRED, progress)
    if sheet.problems:
        return ImportResult(problems=sheet.problems)
    provinces = await registration_setup.province_codes()
    catalogue = await _Catalogue.load(session)
    first_seen: dict[str, int] = {}
    rows: list[_CenterRow] = []
    problems: list[RowProblem] = []
    for done, sheet_row in enumerate(sheet.rows, start=1):
        checked = _check_row(sheet_row, provinces, scope, catalogue, first_seen)
        problems += sheet_row.problems
        if checked is not None:
            rows.append(checked)
        registration_setup.report(progress, "validate", done, len(sheet.rows))
    if problems:
        return ImportResult(problems=problems)
    header = sheet.rows[0].header
    try:
        return await _write_centers(
            session, rows, header, actor, filename, client_address, progress
        )
    except registration_setup.RowsRefused as refused:
        return ImportResult(problems=refused.problems)


async def _write_centers(
    session: ExamSession,
    rows: list[_CenterRow],
    header: Callable[[str], str],
    actor: Account | None,
    filename: str,
    client_address: str | None,
    progress: ProgressCallback | None,
) -> ImportResult:
    result = ImportResult()
    registration_setup.report(progress, "write", 0, len(rows))
    async with in_transaction():
        existing = {
            c.code: c
            for c in await OralCenter.select_for_update()
            .filter(session_id=session.id, code__in=[r.code for r in rows])
            .order_by("id")
        }
        held = await _held([c.id for c in existing.values()], clock.now())
        problems: list[RowProblem] = []
        for row in rows:
            center = existing.get(row.code)
            if center is None:
                continue
            if center.province_id != row.province_id:  # type: ignore[attr-defined]
                problems.append(RowProblem(row.line, header("code"), ErrorCode.CENTER_CODE_TAKEN))
                continue
            for p in _seat_problems(row.capacity, row.subject_codes, held.get(center.id, {})):
                problems.append(row.problem_line(p, header))
        if problems:
            raise registration_setup.RowsRefused(problems)
        for done, row in enumerate(rows, start=1):
            center = existing.get(row.code)
            if center is None:
                await OralCenter.create(
                    session=session,
                    province_id=row.province_id,
                    code=row.code,
                    name=row.name,
                    address=row.address,
                    capacity=row.capacity,
                    subject_codes=row.subject_codes,
                )
                result.created += 1
            else:
                before = _details(center)
                center.name, center.capacity = row.name, row.capacity
                center.subject_codes = row.subject_codes
                if row.has_address:
                    center.address = row.address
                if _details(center) == before:
                    result.unchanged += 1
                else:
                    await center.save(
                        update_fields=["name", "address", "capacity", "subject_codes"]
                    )
                    result.updated += 1
            registration_setup.report(progress, "write", done, len(rows))
        await audit.record(
            "oral_center.import",
            actor=actor,
            subject=f"ExamSession:{session.id}",
            client_address=client_address,
            file=filename[:128],
            rows=len(rows),
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
        )
    return result
