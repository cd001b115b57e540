"""Setting registration up: sessions and their timetable (S1), registration windows (S6) and
fees (P5), as the national office, the provinces and the schools do it.

Who may change what is decided here, once, for GraphQL and the command line alike: the national
office creates sessions and moves sittings; a province sets its fees and the windows of its
province and schools; a school sets its own written window, which then wins over the
province's (see :func:`cetgql.services.eligibility.applicable_windows`). An admin reaching past
their province or school gets ``OUT_OF_SCOPE``, a role that never does this kind of change
``FORBIDDEN``. ``actor=None`` is the national command line. Every change is audited in the
transaction that makes it.

Fee files (``cetgql import-fees``) are read with the roster's reader and follow its contract:
every bad row reported with its spreadsheet line, and nothing written unless the whole file is
clean.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Subquery
from tortoise.transactions import in_transaction

from cetgql.models import (
    Account,
    ExamSession,
    Fee,
    Province,
    Qualification,
    Registration,
    RegistrationWindow,
    School,
    SessionSubject,
    Subject,
    SubjectKind,
)
from cetgql.services import access, audit, catalog, clock, eligibility
from cetgql.services.errors import DomainError, ErrorCode, Problem, message_for
from cetgql.services.roster_import import (
    ImportResult,
    ProgressCallback,
    RowProblem,
    map_headers,
    print_problems,
    read_sheet,
)

if TYPE_CHECKING:
    from rich.console import Console

T = TypeVar("T")

MIN_FEE_FEN = 1
MAX_FEE_FEN = 100_000  # 1000 CNY: far above any real fee, low enough to catch a yuan/fen slip
MAX_SLOT_LENGTH = 32


# --- lookups and scope ---------------------------------------------------------------------


def _code(value: str) -> str:
    """A code as people type it: full-width digits folded, spaces trimmed; bounded in size."""
    return unicodedata.normalize("NFKC", value).strip().upper()[:32]


async def province_by_code(code: str, *field: str) -> Province:
    province = await Province.get_or_none(code=_code(code))
    if province is None:
        raise DomainError.of(ErrorCode.UNKNOWN_PROVINCE, *field)
    return province


async def _school_in(province: Province, code: str, *field: str) -> School:
    school = await School.get_or_none(code=_code(code))
    if school is None:
        raise DomainError.of(ErrorCode.UNKNOWN_SCHOOL, *field)
    if school.province_id != province.id:  # type: ignore[attr-defined]
        raise DomainError.of(ErrorCode.SCHOOL_NOT_IN_PROVINCE, *field)
    return school


async def _scope(actor: Account | None) -> access.Scope | None:
    return None if actor is None else await access.scope_of(actor)


def require_province(scope: access.Scope | None, province_id: int, *field: str) -> None:
    """Province-level changes: the province's own admins and the national office. A province
    admin elsewhere is out of scope; anyone else lacks the role altogether."""
    if scope is None or scope.covers_province(province_id):
        return
    raise DomainError.of(
        ErrorCode.OUT_OF_SCOPE if scope.province_ids else ErrorCode.FORBIDDEN, *field
    )


def require_school(scope: access.Scope | None, school: School, *field: str) -> None:
    """School-level changes: the school's admins, its province's admins, the national office."""
    if scope is None or scope.covers_school(school):
        return
    raise DomainError.of(ErrorCode.OUT_OF_SCOPE if scope.is_admin else ErrorCode.FORBIDDEN, *field)


async def require_national(actor: Account | None) -> None:
    if actor is not None:
        await access.require_national(actor)


def _utc(value: datetime) -> datetime:
    """Aware UTC; a naive time is read as Beijing time, the only zone admins think in."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=clock.SHANGHAI)
    return value.astimezone(UTC)


# --- sessions and their timetable (S1) -----------------------------------------------------


async def create_session(
    actor: Account | None, code: str, *, client_address: str | None = None
) -> ExamSession:
    """A new session with the usual timetable of its half year; an existing code is refused
    rather than silently returned, so an admin never believes they made a fresh session."""
    await require_national(actor)
    try:
        year, half = catalog.parse_session_code(code)
    except DomainError as error:
        raise DomainError.of(ErrorCode.INVALID_FORMAT, "code") from error
    normal = f"{year}H{half}"
    try:
        async with in_transaction():
            if await ExamSession.exists(code=normal):
                raise DomainError.of(ErrorCode.SESSION_EXISTS, "code")
            session = await catalog.ensure_session(normal)
            await audit.record(
                "session.create",
                actor=actor,
                subject=f"ExamSession:{session.id}",
                client_address=client_address,
                code=normal,
            )
    except IntegrityError as error:  # created by someone else a moment ago
        raise DomainError.of(ErrorCode.SESSION_EXISTS, "code") from error
    return session


async def update_offering(
    actor: Account | None,
    session_code: str,
    subject_code: str,
    *,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    slot: str | None = None,
    client_address: str | None = None,
) -> SessionSubject:
    """Move a sitting or change its slot; ``None`` keeps a value. A slot change that would put
    a candidate in two subjects of one slot is refused: the slot is what keeps choices apart."""
    await require_national(actor)
    session = await eligibility.session_by_code(session_code)
    subject = await Subject.get_or_none(code=_code(subject_code))
    problems: list[Problem] = []
    clean_slot = None
    if slot is not None:
        clean_slot = unicodedata.normalize("NFKC", slot).strip()
        if not clean_slot:
            problems.append(Problem(ErrorCode.REQUIRED, ("slot",)))
        elif len(clean_slot) > MAX_SLOT_LENGTH:
            problems.append(Problem(ErrorCode.TOO_LONG, ("slot",)))
    async with in_transaction():
        offering = (
            await SessionSubject.select_for_update()
            .filter(session_id=session.id, subject_id=subject.id)
            .first()
            if subject is not None
            else None
        )
        if offering is None:
            raise DomainError([Problem(ErrorCode.UNKNOWN_SUBJECT, ("subjectCode",)), *problems])
        start = _utc(starts_at) if starts_at is not None else offering.starts_at
        end = _utc(ends_at) if ends_at is not None else offering.ends_at
        if start >= end:
            problems.append(Problem(ErrorCode.INVALID_TIME_RANGE, ("endsAt",)))
        if problems:
            raise DomainError(problems)
        assert subject is not None
        before = _offering_details(offering)
        if clean_slot is not None and clean_slot != offering.slot:
            await _refuse_slot_clash(offering, clean_slot)
            offering.slot = clean_slot
        offering.starts_at, offering.ends_at = start, end
        await offering.save(update_fields=["slot", "starts_at", "ends_at"])
        await audit.record(
            "session.offering_update",
            actor=actor,
            subject=f"SessionSubject:{offering.id}",
            client_address=client_address,
            session=session.code,
            subject_code=subject.code,
            before=before,
            after=_offering_details(offering),
        )
    offering.subject = subject
    return offering


def _offering_details(offering: SessionSubject) -> dict[str, str]:
    return {
        "slot": offering.slot,
        "starts_at": offering.starts_at.isoformat(),
        "ends_at": offering.ends_at.isoformat(),
    }


async def _refuse_slot_clash(offering: SessionSubject, slot: str) -> None:
    """Refuse when a candidate holding this subject also holds another one in ``slot``."""
    now = clock.now()
    holders = Registration.filter(
        eligibility.active_seats_filter(now), offering_id=offering.id
    ).values("account_id")
    clashes = (
        await Registration.filter(
            eligibility.active_seats_filter(now),
            session_id=offering.session_id,  # type: ignore[attr-defined]
            offering__slot=slot,
            account_id__in=Subquery(holders),
        )
        .exclude(offering_id=offering.id)
        .count()
    )
    if clashes:
        raise DomainError.of(ErrorCode.SLOT_CHANGE_CONFLICT, "slot", detail=f"({clashes})")


# --- registration windows (S6) -------------------------------------------------------------


@dataclass(frozen=True)
class WindowKey:
    """Which window: a province's, or one school's own (written only)."""

    session: ExamSession
    province: Province
    school: School | None
    kind: SubjectKind


async def _window_key(
    actor: Account | None,
    session_code: str,
    province_code: str,
    school_code: str | None,
    kind: SubjectKind,
) -> WindowKey:
    session = await eligibility.session_by_code(session_code)
    province = await province_by_code(province_code, "provinceCode")
    scope = await _scope(actor)
    school = None
    if school_code and school_code.strip():
        school = await _school_in(province, school_code, "schoolCode")
        require_school(scope, school, "schoolCode")
        if kind != SubjectKind.WRITTEN:
            # Oral centres are the province's, so is the time to book them (S3, S6).
            raise DomainError.of(ErrorCode.SCHOOL_WINDOW_WRITTEN_ONLY, "kind")
    else:
        require_province(scope, province.id, "provinceCode")
    return WindowKey(session, province, school, SubjectKind(kind))


async def _lock_province(province: Province) -> None:
    """Serialise changes of one province's set-up: a province-wide window has no school, and
    a NULL in a unique key does not stop two concurrent inserts, so the lock does."""
    await Province.select_for_update().filter(id=province.id).first()


def _window_details(window: RegistrationWindow) -> dict[str, str]:
    return {"opens_at": window.opens_at.isoformat(), "closes_at": window.closes_at.isoformat()}


async def set_window(
    actor: Account | None,
    *,
    session_code: str,
    province_code: str,
    school_code: str | None,
    kind: SubjectKind,
    opens_at: datetime,
    closes_at: datetime,
    client_address: str | None = None,
) -> RegistrationWindow:
    """Create or replace the window of a province, or a school's own written window."""
    key = await _window_key(actor, session_code, province_code, school_code, kind)
    opens, closes = _utc(opens_at), _utc(closes_at)
    if opens >= closes:
        raise DomainError.of(ErrorCode.INVALID_TIME_RANGE, "closesAt")
    async with in_transaction():
        await _lock_province(key.province)
        window = await RegistrationWindow.filter(
            session_id=key.session.id,
            province_id=key.province.id,
            school_id=key.school.id if key.school else None,
            kind=key.kind,
        ).first()
        before = _window_details(window) if window else None
        if window is None:
            window = await RegistrationWindow.create(
                session=key.session,
                province=key.province,
                school=key.school,
                kind=key.kind,
                opens_at=opens,
                closes_at=closes,
            )
        else:
            window.opens_at, window.closes_at = opens, closes
            await window.save(update_fields=["opens_at", "closes_at"])
        await audit.record(
            "registration.window_set",
            actor=actor,
            subject=f"RegistrationWindow:{window.id}",
            client_address=client_address,
            session=key.session.code,
            province=key.province.code,
            school=key.school.code if key.school else None,
            kind=key.kind.value,
            before=before,
            after=_window_details(window),
        )
    window.session, window.province, window.school = key.session, key.province, key.school
    return window


async def clear_window(
    actor: Account | None,
    *,
    session_code: str,
    province_code: str,
    school_code: str | None,
    kind: SubjectKind,
    client_address: str | None = None,
) -> bool:
    """Remove a window: for a school, its province's window governs again. Whether one was
    there to remove."""
    key = await _window_key(actor, session_code, province_code, school_code, kind)
    async with in_transaction():
        await _lock_province(key.province)
        window = await RegistrationWindow.filter(
            session_id=key.session.id,
            province_id=key.province.id,
            school_id=key.school.id if key.school else None,
            kind=key.kind,
        ).first()
        if window is None:
            return False
        await audit.record(
            "registration.window_clear",
            actor=actor,
            subject=f"RegistrationWindow:{window.id}",
            client_address=client_address,
            session=key.session.code,
            province=key.province.code,
            school=key.school.code if key.school else None,
            kind=key.kind.value,
            before=_window_details(window),
        )
        await window.delete()
    return True


async def visible_windows(
    actor: Account, windows: Iterable[RegistrationWindow]
) -> list[RegistrationWindow]:
    """The windows an admin may see: all of their province's for its province admins and the
    national office; the province's own and their school's for a school's admins."""
    scope = await access.scope_of(actor)
    if not scope.is_admin:
        return []
    school_provinces = set(
        await School.filter(id__in=list(scope.school_ids)).values_list("province_id", flat=True)
    )
    return [
        w
        for w in windows
        if scope.covers_province(w.province_id)  # type: ignore[attr-defined]
        or w.school_id in scope.school_ids  # type: ignore[attr-defined]
        or (w.school_id is None and w.province_id in school_provinces)  # type: ignore[attr-defined]
    ]


async def list_windows(
    actor: Account, session_code: str, province_code: str
) -> list[RegistrationWindow]:
    """A province's windows of a session, as far as the admin may see them."""
    session = await eligibility.session_by_code(session_code)
    province = await province_by_code(province_code, "provinceCode")
    windows = await RegistrationWindow.filter(
        session_id=session.id, province_id=province.id
    ).select_related("session", "province", "school")
    visible = await visible_windows(actor, windows)
    return sorted(visible, key=lambda w: (w.kind, w.school.code if w.school else "", w.id))


async def window_for_candidate(
    account: Account, session_id: int, kind: SubjectKind
) -> RegistrationWindow | None:
    """The window that governs this candidate's registration of a kind: their school's own,
    else their province's; ``None`` before qualification or when none is set."""
    qualification = (
        await Qualification.filter(account_id=account.id, session_id=session_id)
        .select_related("roster_record__school")
        .first()
    )
    if qualification is None:
        return None
    school = qualification.roster_record.school
    windows = await eligibility.applicable_windows(session_id, school.province_id, school.id)  # type: ignore[attr-defined]
    return windows.get(kind)


# --- fees (P5) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FeeItem:
    subject_code: str
    fen: int


def check_fee(fen: int) -> int:
    if isinstance(fen, bool) or not isinstance(fen, int) or not MIN_FEE_FEN <= fen <= MAX_FEE_FEN:
        raise DomainError.of(ErrorCode.FEE_OUT_OF_RANGE, "fen")
    return fen


async def _offered(session: ExamSession) -> dict[str, int]:
    """Subject code → subject id, for the subjects the session offers."""
    return {
        code: subject_id
        for code, subject_id in await SessionSubject.filter(session_id=session.id).values_list(
            "subject__code", "subject_id"
        )
    }


async def _upsert_fees(
    session_id: int, province_id: int, wanted: dict[int, int], result: ImportResult
) -> None:
    """Write ``subject id → fen`` for one province; the caller holds the province lock."""
    existing = {
        fee.subject_id: fee  # type: ignore[attr-defined]
        for fee in await Fee.filter(session_id=session_id, province_id=province_id)
    }
    for subject_id, fen in wanted.items():
        fee = existing.get(subject_id)
        if fee is None:
            await Fee.create(
                session_id=session_id,
                province_id=province_id,
                subject_id=subject_id,
                amount_fen=fen,
            )
            result.created += 1
        elif fee.amount_fen == fen:
            result.unchanged += 1
        else:
            fee.amount_fen = fen
            await fee.save(update_fields=["amount_fen"])
            result.updated += 1


async def set_fees(
    actor: Account | None,
    *,
    session_code: str,
    province_code: str,
    items: Sequence[FeeItem],
    client_address: str | None = None,
) -> list[Fee]:
    """Set some of a province's fees; the province's whole fee list afterwards.

    A fee also says the province offers the subject (no fee: not offered). Orders already
    made keep the amount they were made with; the new fee applies to new choices."""
    session = await eligibility.session_by_code(session_code)
    province = await province_by_code(province_code, "provinceCode")
    require_province(await _scope(actor), province.id, "provinceCode")
    if not items:
        raise DomainError.of(ErrorCode.REQUIRED, "fees")
    offered = await _offered(session)
    problems: list[Problem] = []
    wanted: dict[int, int] = {}
    seen: set[str] = set()
    for index, item in enumerate(items):
        path = ("fees", str(index))
        code = _code(item.subject_code)
        if code in seen:
            problems.append(Problem(ErrorCode.DUPLICATE_SUBJECT, (*path, "subjectCode")))
        elif code not in offered:
            problems.append(Problem(ErrorCode.UNKNOWN_SUBJECT, (*path, "subjectCode")))
        seen.add(code)
        try:
            fen = check_fee(item.fen)
        except DomainError:
            problems.append(Problem(ErrorCode.FEE_OUT_OF_RANGE, (*path, "fen")))
            continue
        if code in offered:
            wanted[offered[code]] = fen
    if problems:
        raise DomainError(problems)
    result = ImportResult()
    async with in_transaction():
        await _lock_province(province)
        await _upsert_fees(session.id, province.id, wanted, result)
        codes = {subject_id: code for code, subject_id in offered.items()}
        await audit.record(
            "registration.fees_set",
            actor=actor,
            subject=f"Province:{province.id}",
            client_address=client_address,
            session=session.code,
            province=province.code,
            fees={codes[subject_id]: fen for subject_id, fen in wanted.items()},
        )
    return await list_fees(session.code, province.code)


async def list_fees(session_code: str, province_code: str) -> list[Fee]:
    """A province's fees, as every candidate may know them before choosing."""
    session = await eligibility.session_by_code(session_code)
    province = await province_by_code(province_code, "provinceCode")
    fees = await Fee.filter(session_id=session.id, province_id=province.id).select_related(
        "subject"
    )
    return sorted(fees, key=lambda f: (f.subject.kind, f.subject.level, f.subject.code))


# --- sheets (import files) -----------------------------------------------------------------


class RowsRefused(Exception):
    """Raised inside a write transaction to roll it back with line-numbered problems."""

    def __init__(self, problems: list[RowProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass
class SheetRow:
    """One data row of an import file, with the problems found in it so far."""

    line: int
    cells: list[str]
    headers: list[str]
    index: dict[str, int]
    columns: dict[str, tuple[str, ...]]
    problems: list[RowProblem] = field(default_factory=list)

    def header(self, canonical: str) -> str:
        position = self.index.get(canonical)
        return self.headers[position] if position is not None else self.columns[canonical][0]

    def cell(self, canonical: str) -> str:
        position = self.index.get(canonical)
        if position is None or position >= len(self.cells):
            return ""
        return unicodedata.normalize("NFC", self.cells[position]).strip()

    def problem(
        self,
        canonical: str,
        code: ErrorCode,
        value: str | None = None,
        other_line: int | None = None,
    ) -> None:
        short = value if value is None or len(value) <= 40 else value[:39] + "…"
        self.problems.append(
            RowProblem(self.line, self.header(canonical), code, short or None, other_line)
        )

    def attempt(self, canonical: str, check: Callable[..., T], *args: Any) -> T | None:
        """Run a check that raises :class:`DomainError`; its codes become this row's problems."""
        try:
            return check(*args)
        except DomainError as error:
            for p in error.problems:
                self.problem(canonical, p.code, p.detail or self.cell(canonical) or None)
            return None


@dataclass
class Sheet:
    rows: list[SheetRow]
    problems: list[RowProblem]


def report(progress: ProgressCallback | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


async def read_rows(
    content: bytes,
    columns: dict[str, tuple[str, ...]],
    required: Iterable[str],
    progress: ProgressCallback | None = None,
) -> Sheet:
    """The data rows of a CSV or XLSX import file (the roster's reader), or the problems that
    stop it being read at all: a missing or doubled column, no data rows."""
    report(progress, "read", 0, 1)
    sheet = await asyncio.to_thread(read_sheet, content)
    report(progress, "read", 1, 1)
    index, problems = map_headers(
        sheet.headers, columns, list(required), duplicate=ErrorCode.DUPLICATE_ROW
    )
    if problems:
        return Sheet([], problems)
    if not sheet.rows:
        first = next(iter(columns))
        return Sheet([], [RowProblem(2, columns[first][0], ErrorCode.NO_DATA_ROWS)])
    rows = [SheetRow(line, cells, sheet.headers, index, columns) for line, cells in sheet.rows]
    return Sheet(rows, [])


async def province_codes() -> dict[str, int]:
    return {
        code: province_id for province_id, code in await Province.all().values_list("id", "code")
    }


def check_row_province(
    row: SheetRow, canonical: str, provinces: dict[str, int], scope: access.Scope | None
) -> int | None:
    """The row's province id, known and within the acting admin's scope."""
    code = unicodedata.normalize("NFKC", row.cell(canonical)).strip()
    if not code:
        row.problem(canonical, ErrorCode.REQUIRED)
        return None
    province_id = provinces.get(code)
    if province_id is None:
        row.problem(canonical, ErrorCode.UNKNOWN_PROVINCE, code)
        return None
    try:
        require_province(scope, province_id)
    except DomainError as error:
        row.problem(canonical, error.problems[0].code, code)
        return None
    return province_id


# --- fee files (cetgql import-fees) --------------------------------------------------------

FEE_COLUMNS: dict[str, tuple[str, ...]] = {
    "province_code": ("省份代码", "省代码", "省份编码", "省份", "provincecode", "province"),
    "subject": ("科目代码", "科目", "科目名称", "考试科目", "subjectcode", "subject"),
    "fee": (
        "报名费",
        "考试费",
        "收费标准",
        "费用",
        "金额",
        "fee",
        "fen",
        "feefen",
        "yuan",
        "feeyuan",
        "amount",
    ),
}
FEE_REQUIRED = ("province_code", "subject", "fee")


def fee_column_in_fen(header: str) -> bool:
    """Whether a fee column counts fen: its header says so (``fen``, ``分``, ``费用（分）``);
    otherwise it is yuan, the unit provinces publish fees in (``30`` or ``30.00``)."""
    folded = unicodedata.normalize("NFKC", header).lower()
    return "分" in folded or "fen" in folded


def parse_fee(text: str, in_fen: bool) -> int:
    """A fee cell in fen: an integer of fen, or yuan with at most two decimals (``元``, ``¥``
    and thousands separators allowed); within the fee bounds."""
    cleaned = unicodedata.normalize("NFKC", text).strip()
    for noise in ("元", "¥", "￥", "CNY", "RMB", ",", " "):
        cleaned = cleaned.replace(noise, "")
    if not cleaned:
        raise DomainError.of(ErrorCode.REQUIRED, "fen")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation as error:
        raise DomainError.of(ErrorCode.INVALID_FORMAT, "fen") from error
    fen = amount if in_fen else amount * 100
    if not fen.is_finite() or fen != fen.to_integral_value():
        raise DomainError.of(ErrorCode.INVALID_FORMAT, "fen")
    return check_fee(int(fen))


async def import_fees(
    *,
    actor: Account | None,
    session_code: str,
    content: bytes,
    filename: str = "",
    client_address: str | None = None,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    """Fees of one session for any number of provinces (one row per province and subject),
    all or nothing. Rows absent from the file leave their fees as they are."""
    session = await eligibility.session_by_code(session_code)
    scope = await _scope(actor)
    if scope is not None and not (scope.national or scope.province_ids):
        raise DomainError.of(ErrorCode.FORBIDDEN)
    sheet = await read_rows(content, FEE_COLUMNS, FEE_REQUIRED, progress)
    if sheet.problems:
        return ImportResult(problems=sheet.problems)
    provinces = await province_codes()
    offered = await _offered(session)
    names = {name: code for code, name in await Subject.all().values_list("code", "name")}
    in_fen = fee_column_in_fen(sheet.rows[0].header("fee"))
    wanted: dict[int, dict[int, int]] = {}
    first_seen: dict[tuple[int, int], int] = {}
    problems: list[RowProblem] = []
    for done, row in enumerate(sheet.rows, start=1):
        province_id = check_row_province(row, "province_code", provinces, scope)
        subject_text = unicodedata.normalize("NFKC", row.cell("subject")).strip()
        code = names.get(subject_text, subject_text.upper())
        subject_id = offered.get(code)
        if not subject_text:
            row.problem("subject", ErrorCode.REQUIRED)
        elif subject_id is None:
            row.problem("subject", ErrorCode.UNKNOWN_SUBJECT, subject_text)
        fen = row.attempt("fee", parse_fee, row.cell("fee"), in_fen)
        if province_id is not None and subject_id is not None:
            key = (province_id, subject_id)
            if key in first_seen:
                row.problem("subject", ErrorCode.DUPLICATE_ROW, subject_text, first_seen[key])
            else:
                first_seen[key] = row.line
        problems += row.problems
        if not row.problems:
            assert province_id is not None and subject_id is not None and fen is not None
            wanted.setdefault(province_id, {})[subject_id] = fen
        report(progress, "validate", done, len(sheet.rows))
    if problems:
        return ImportResult(problems=problems)
    result = ImportResult()
    report(progress, "write", 0, len(wanted))
    async with in_transaction():
        for done, (province_id, fees) in enumerate(sorted(wanted.items()), start=1):
            await Province.select_for_update().filter(id=province_id).first()
            await _upsert_fees(session.id, province_id, fees, result)
            report(progress, "write", done, len(wanted))
        codes = {province_id: code for code, province_id in provinces.items()}
        await audit.record(
            "registration.fees_import",
            actor=actor,
            subject=f"ExamSession:{session.id}",
            client_address=client_address,
            file=filename[:128],
            rows=len(sheet.rows),
            provinces=sorted(codes[p] for p in wanted),
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
        )
    return result


# --- command line --------------------------------------------------------------------------

Importer = Callable[..., Awaitable[ImportResult]]

_STAGE_LABELS = {"read": "Reading file", "validate": "Checking rows", "write": "Writing"}


def print_domain_error(console: Console, error: DomainError) -> None:
    for p in error.problems:
        where = ".".join(p.field or ())
        detail = f" {p.detail}" if p.detail else ""
        console.print(
            f"{p.code.value} {where} {message_for(p.code, 'en')}{detail}",
            markup=False,
            highlight=False,
        )


async def import_from_cli(
    importer: Importer, file: Path, session_code: str, console: Console, what: str
) -> bool:
    """Run an import as the national office with a progress bar, then print a summary or the
    line-numbered problems (nothing written then). Whether the file was imported."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    try:
        content = await asyncio.to_thread(file.read_bytes)
    except OSError as error:
        console.print(f"cannot read {error.filename}: {error.strerror}", markup=False)
        return False
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        ) as bar:
            tasks: dict[str, Any] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(_STAGE_LABELS.get(stage, stage), total=total)
                bar.update(tasks[stage], completed=done, total=total)

            result = await importer(
                actor=None,
                session_code=session_code,
                content=content,
                filename=file.name,
                progress=progress,
            )
    except DomainError as error:
        print_domain_error(console, error)
        return False
    if not result.ok:
        invalid = ErrorCode.FILE_INVALID
        console.print(
            f"{invalid.value} {message_for(invalid, 'en')} {len(result.problems)} problem(s):",
            markup=False,
        )
        print_problems(console, result.problems)
        return False
    console.print(
        f"imported {what} from {file.name} into {session_code.strip().upper()}: "
        f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged",
        markup=False,
    )
    return True
