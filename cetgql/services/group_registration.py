"""Group registration (集体报名, S11; FAQ 七): a school registers and pays the written subjects
of its students in one batch.

Each student must be on the school's roster for the session, and each subject must pass the
same rules a candidate meets online (``eligibility.subject_reasons``: offered and priced in the
province, allowed by the roster or an approved CET6 review, one subject per slot, not already
held, the written window open). The roster record stands in for the student's own
qualification: the school vouches for its students. Oral subjects are not group-registered;
the students add them online themselves (S5, S10).

Decisions:

- The written registration window applies to the school too. Rooms and seats are allocated
  when registration closes (T4), so a late batch would miss the allocation; a school that needs
  other dates sets its own written window (a school's window wins over its province's, S6).
- All or nothing: every entry is checked and every problem reported with its place in the
  input; only a batch without problems is written, in one transaction.
- Each student gets one written order, PAID at once, with ``group_paid_by`` = the school; its
  amount is the province's fees (a subject without a fee is not offered there).
- A student without an account gets one made from the roster (name, ID type and number), with
  the initial password 123456 and ``must_change_password``: they sign in with their ID number
  and must change the password before anything else (FAQ 七.1). 123456 is deliberately below
  the password policy, so it bypasses ``passwords.check_policy``; it is hashed once per batch
  (Argon2id, tens of ms a hash), as every such account holds the same publicly known password.
- A student who has an account is attached to it, provided the account's ID type and name are
  the roster's; otherwise the entry is refused (``ACCOUNT_IDENTITY_MISMATCH``) instead of
  putting paid registrations on an account that may belong to somebody else.
- No qualification is created: the student passes the qualification check and confirms their
  data (Q1, Q2) before choosing more subjects online, as every candidate does.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from cetgql.models import (
    Account,
    ExamSession,
    IdType,
    Order,
    OrderStatus,
    Registration,
    RegistrationStatus,
    RosterRecord,
    School,
    SessionSubject,
    Subject,
    SubjectKind,
)
from cetgql.services import (
    access,
    audit,
    clock,
    eligibility,
    identity,
    passwords,
    registration,
    roster_import,
)
from cetgql.services.errors import DomainError, ErrorCode, Problem, message_for

if TYPE_CHECKING:
    from rich.console import Console

INITIAL_PASSWORD = "123456"  # noqa: S105 - the published initial password of FAQ 七.1
MAX_ENTRIES = 2000  # per GraphQL request; larger batches go through the command line
_CHUNK = 2000  # keeps IN (...) lists well under SQLite's bound-parameter limit
_RECORD_FIELDS = (
    "id",
    "session_id",
    "school_id",
    "campus_id",
    "name",
    "name_key",
    "id_type",
    "id_number",
    "eligible_subjects",
)

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``(stage, done, total)``; stages are check and write."""


@dataclass(frozen=True)
class Entry:
    """One student of the batch and the written subjects the school registers for them."""

    id_type: IdType
    id_number: str
    subject_codes: tuple[str, ...]


@dataclass(frozen=True)
class Registered:
    """What the batch did for one student."""

    index: int
    record: RosterRecord
    account: Account
    order: Order
    account_created: bool


@dataclass
class GroupResult:
    school: School
    session: ExamSession
    students: list[Registered] = field(default_factory=list)
    dry_run: bool = False

    @property
    def accounts_created(self) -> int:
        return sum(1 for s in self.students if s.account_created)

    @property
    def total_fen(self) -> int:
        return sum(s.order.amount_fen for s in self.students)


@dataclass
class _Student:
    index: int
    path: tuple[str, ...]
    id_type: IdType
    id_number: str
    codes: list[str]
    record: RosterRecord | None = None
    account: Account | None = None


def _report(progress: ProgressCallback | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


async def _school(actor: Account | None, school_code: str | None) -> School:
    """The registering school: named, or the one school an admin administers. ``actor`` None
    is the national command line."""
    code = (school_code or "").strip()
    if actor is not None:
        scope = await access.scope_of(actor)
        if not scope.is_admin:
            raise DomainError.of(ErrorCode.FORBIDDEN)
        if not code:
            if scope.national or scope.province_ids or len(scope.school_ids) != 1:
                raise DomainError.of(ErrorCode.REQUIRED, "schoolCode")
            return await School.get(id=next(iter(scope.school_ids)))
    if not code:
        raise DomainError.of(ErrorCode.REQUIRED, "schoolCode")
    school = await School.get_or_none(code=code)
    if school is None:
        raise DomainError.of(ErrorCode.UNKNOWN_SCHOOL, "schoolCode")
    if actor is not None:
        await access.require_school(actor, school)
    return school


def _at(path: tuple[str, ...], error: DomainError) -> list[Problem]:
    """The problems of a field check, placed under the entry's path."""
    return [Problem(p.code, (*path, *(p.field or ())), p.detail) for p in error.problems]


def _clean(entries: Sequence[Entry]) -> tuple[list[_Student], list[Problem]]:
    """Entries with normalised ID numbers and subject codes; problems of their form."""
    students: list[_Student] = []
    problems: list[Problem] = []
    seen: dict[tuple[IdType, str], int] = {}
    for index, entry in enumerate(entries):
        path = ("entries", str(index))
        before = len(problems)
        number = ""
        if entry.id_type == IdType.STAFF:
            problems.append(Problem(ErrorCode.ID_TYPE_NOT_ALLOWED, (*path, "idType")))
        else:
            try:
                number = identity.validate_id(entry.id_type, entry.id_number)
            except DomainError as error:
                problems += _at(path, error)
        if number:
            key = (entry.id_type, number)
            if key in seen:
                problems.append(
                    Problem(
                        ErrorCode.DUPLICATE_IN_FILE,
                        (*path, "idNumber"),
                        f"(entries.{seen[key]})",
                    )
                )
            else:
                seen[key] = index
        codes: list[str] = []
        if not entry.subject_codes:
            problems.append(Problem(ErrorCode.REQUIRED, (*path, "subjectCodes")))
        for position, raw in enumerate(entry.subject_codes):
            code = unicodedata.normalize("NFKC", raw).strip().upper()[:16]
            where = (*path, "subjectCodes", str(position))
            if not code:
                problems.append(Problem(ErrorCode.REQUIRED, where))
            elif code in codes:
                problems.append(Problem(ErrorCode.DUPLICATE_SUBJECT, where))
            codes.append(code)
        if len(problems) == before:
            students.append(_Student(index, path, entry.id_type, number, codes))
    return students, problems


async def _attach_records(
    session: ExamSession, school: School, students: list[_Student]
) -> list[Problem]:
    """Find each student on the school's roster (photos left in the database)."""
    found: dict[tuple[str, str], RosterRecord] = {}
    numbers = sorted({s.id_number for s in students})
    for chunk in _chunks(numbers):
        for record in await RosterRecord.filter(
            session_id=session.id, id_number__in=list(chunk)
        ).only(*_RECORD_FIELDS):
            found[(str(record.id_type), record.id_number)] = record
    problems = []
    for student in students:
        match = found.get((student.id_type.value, student.id_number))
        if match is None or match.school_id != school.id:
            # The same answer whether the student is on no roster or another school's.
            problems.append(Problem(ErrorCode.NOT_ON_SCHOOL_ROSTER, (*student.path, "idNumber")))
        else:
            student.record = match
    return problems


async def _attach_accounts(students: list[_Student]) -> list[Problem]:
    """Attach the account of each student who has one; refuse one that is not clearly theirs."""
    by_number: dict[str, list[Account]] = defaultdict(list)
    numbers = sorted({s.id_number for s in students})
    for chunk in _chunks(numbers):
        for account in await Account.filter(id_number__in=list(chunk)).order_by("id"):
            by_number[account.id_number].append(account)
    problems = []
    for student in students:
        held = by_number.get(student.id_number, [])
        same_type = [a for a in held if a.id_type == student.id_type]
        record = student.record
        assert record is not None
        if held and not (same_type and same_type[0].name_key == record.name_key):
            problems.append(
                Problem(ErrorCode.ACCOUNT_IDENTITY_MISMATCH, (*student.path, "idNumber"))
            )
        elif same_type:
            student.account = same_type[0]
    return problems


def _subject_problems(student: _Student, situation: eligibility.Situation) -> list[Problem]:
    """The online rules for each subject (S1, S4, S6, S10), written subjects only."""
    problems = []
    chosen_slots: set[str] = set()
    for position, code in enumerate(student.codes):
        where = (*student.path, "subjectCodes", str(position))
        offering = situation.offerings.get(code)
        if offering is not None and offering.subject.kind == SubjectKind.ORAL:
            problems.append(Problem(ErrorCode.GROUP_WRITTEN_ONLY, where))
            continue
        why = eligibility.subject_reasons(
            situation, code, chosen_slots=chosen_slots, check_seats=False
        )
        problems += [Problem(reason, where) for reason in why]
        if offering is not None:
            chosen_slots.add(offering.slot)
    return problems


async def _write_student(
    student: _Student,
    situation: eligibility.Situation,
    school: School,
    password_hash: str,
    now: datetime,
) -> Registered:
    record = student.record
    assert record is not None
    created = student.account is None
    if student.account is None:
        try:
            student.account = await Account.create(
                name=record.name,
                name_key=record.name_key,
                id_type=student.id_type,
                id_number=student.id_number,
                password_hash=password_hash,
                must_change_password=True,
            )
        except IntegrityError as error:  # the student signed up while the batch ran
            raise DomainError(
                Problem(ErrorCode.ID_NUMBER_TAKEN, (*student.path, "idNumber"))
            ) from error
    account = student.account
    offerings = [situation.offerings[code] for code in student.codes]
    order = await Order.create(
        number=registration._order_number(now),
        account_id=account.id,
        session_id=situation.session.id,
        province_id=school.province_id,  # type: ignore[attr-defined]
        kind=SubjectKind.WRITTEN,
        status=OrderStatus.PAID,
        amount_fen=sum(situation.fees[code] for code in student.codes),
        group_paid_by_id=school.id,
        created_at=now,
        expires_at=now,
        paid_at=now,
    )
    try:
        await Registration.bulk_create(
            [
                Registration(
                    account_id=account.id,
                    session_id=situation.session.id,
                    offering_id=offering.id,
                    order_id=order.id,
                    status=RegistrationStatus.PAID,
                    school_id=record.school_id,  # type: ignore[attr-defined]
                    campus_id=record.campus_id,  # type: ignore[attr-defined]
                    # The same key as an online choice: one live choice per subject (S9).
                    active_key=f"{account.id}:{offering.id}",
                    created_at=now,
                    expires_at=now,
                    paid_at=now,
                )
                for offering in offerings
            ]
        )
    except IntegrityError as error:  # the student chose one of them online meanwhile
        raise DomainError(
            Problem(ErrorCode.ALREADY_REGISTERED, (*student.path, "subjectCodes"))
        ) from error
    return Registered(student.index, record, account, order, created)


async def group_register(
    *,
    actor: Account | None,
    session_code: str,
    school_code: str | None,
    entries: Sequence[Entry],
    max_entries: int | None = MAX_ENTRIES,
    dry_run: bool = False,
    source: str = "",
    client_address: str | None = None,
    progress: ProgressCallback | None = None,
) -> GroupResult:
    """Register and pay the written subjects of a school's students: all or nothing.

    ``actor`` None is the national command line. Every problem is raised at once as a
    :class:`DomainError` whose fields are paths into the input (``["entries", "3",
    "subjectCodes", "1"]``); with ``dry_run`` a clean batch is checked and nothing written.
    """
    session = await eligibility.session_by_code(session_code)
    school = await _school(actor, school_code)
    if not entries:
        raise DomainError.of(ErrorCode.REQUIRED, "entries")
    if max_entries is not None and len(entries) > max_entries:
        raise DomainError.of(ErrorCode.TOO_MANY_ITEMS, "entries", detail=f"(≤ {max_entries})")
    students, problems = _clean(entries)
    problems += await _attach_records(session, school, students)
    students = [s for s in students if s.record is not None]
    problems += await _attach_accounts(students)
    password_hash = ""
    if not problems and not dry_run and any(s.account is None for s in students):
        password_hash = await passwords.hash_password(INITIAL_PASSWORD)

    result = GroupResult(school=school, session=session, dry_run=dry_run)
    total = len(students)
    async with in_transaction():
        now = clock.now()
        existing = sorted({s.account.id for s in students if s.account is not None})
        for chunk in _chunks(existing):
            # Lock as selectSubjects does, so a student choosing online at the same moment
            # cannot slip past the checks below; then free places of overdue choices.
            await Account.select_for_update().filter(id__in=list(chunk)).order_by("id")
        for account_id in existing:
            await registration.lapse_account(account_id, now)
        situations = await eligibility.load_for_school(
            session, school, [(s.record, s.account) for s in students if s.record is not None]
        )
        for done, (student, situation) in enumerate(zip(students, situations, strict=True), 1):
            problems += _subject_problems(student, situation)
            if done % 200 == 0 or done == total:
                _report(progress, "check", done, total)
        if problems:
            raise DomainError(sorted(problems, key=_entry_order))
        if dry_run:
            return result
        for done, (student, situation) in enumerate(zip(students, situations, strict=True), 1):
            result.students.append(
                await _write_student(student, situation, school, password_hash, now)
            )
            if done % 50 == 0 or done == total:
                _report(progress, "write", done, total)
        subjects = Counter(code for s in students for code in s.codes)
        await audit.record(
            "group_registration.registered",
            actor=actor,
            subject=f"School:{school.id}",
            client_address=client_address,
            session=session.code,
            school=school.code,
            source=source[:128],
            students=len(result.students),
            accounts_created=result.accounts_created,
            total_fen=result.total_fen,
            subjects=dict(sorted(subjects.items())),
            orders=[s.order.number for s in result.students][:1000],
        )
    return result


def _entry_order(problem: Problem) -> tuple[tuple[int, int, str], ...]:
    """Problems in input order (entry, then field, then list position), whatever check found
    them; problems of the whole request first."""
    path = problem.field or ()
    if not (len(path) >= 2 and path[0] == "entries" and path[1].isdigit()):
        return ((-1, 0, ".".join(path)),)
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in path[1:])


# --- files (command line) ------------------------------------------------------------------

_FILE_COLUMNS: dict[str, tuple[str, ...]] = {
    "id_type": roster_import.COLUMNS["id_type"],
    "id_number": roster_import.COLUMNS["id_number"],
    "subjects": ("报考科目", "科目", "科目代码", "subjects", "subjectcodes", "subject"),
}
_FIELD_COLUMNS = {"idType": "id_type", "idNumber": "id_number", "subjectCodes": "subjects"}


@dataclass
class FileEntries:
    """A group registration file read into entries, remembering where each came from."""

    entries: list[Entry] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # canonical → header as written
    problems: list[roster_import.RowProblem] = field(default_factory=list)

    def header(self, canonical: str) -> str:
        return self.headers.get(canonical) or _FILE_COLUMNS[canonical][0]

    def locate(self, problem: Problem) -> roster_import.RowProblem:
        """A service problem as the line and column of the file it concerns."""
        path = problem.field or ()
        if len(path) >= 3 and path[0] == "entries" and path[1].isdigit():
            index = int(path[1])
            column = _FIELD_COLUMNS.get(path[2], "id_number")
            entry = self.entries[index]
            value: str | None = entry.id_number
            if column == "subjects":
                value = (
                    entry.subject_codes[int(path[3])]
                    if len(path) > 3 and path[3].isdigit()
                    else ",".join(entry.subject_codes)
                )
            return roster_import.RowProblem(
                self.lines[index], self.header(column), problem.code, value
            )
        return roster_import.RowProblem(1, ".".join(path), problem.code, problem.detail)


def _folded(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).lower().split()).replace("_", "")


def read_entries(
    sheet: roster_import.Sheet, offered: set[str], names: dict[str, str]
) -> FileEntries:
    """Entries from a sheet with columns 证件类型 (optional: a resident ID when blank),
    证件号码 and 报考科目 (codes or names, separated by ``;`` ``,`` ``、`` or spaces); other
    columns (name, class, ...) are ignored. Problems carry the file's line numbers."""
    result = FileEntries()
    aliases = {_folded(alias): key for key, names_ in _FILE_COLUMNS.items() for alias in names_}
    index: dict[str, int] = {}
    for position, header in enumerate(sheet.headers):
        key = aliases.get(_folded(header))
        if key is not None and key not in index:
            index[key] = position
            result.headers[key] = header
    for key in ("id_number", "subjects"):
        if key not in index:
            result.problems.append(
                roster_import.RowProblem(1, _FILE_COLUMNS[key][0], ErrorCode.MISSING_COLUMN)
            )
    if result.problems:
        return result
    if not sheet.rows:
        result.problems.append(
            roster_import.RowProblem(2, result.header("id_number"), ErrorCode.EMPTY_FILE)
        )
        return result

    def cell(cells: list[str], key: str) -> str:
        position = index.get(key)
        return cells[position] if position is not None and position < len(cells) else ""

    for line, cells in sheet.rows:
        problems: list[roster_import.RowProblem] = []
        id_type = IdType.RESIDENT_ID
        subjects: list[str] = []
        try:
            id_type = roster_import.parse_id_type(cell(cells, "id_type"))
        except DomainError as error:
            problems += [
                roster_import.RowProblem(
                    line, result.header("id_type"), p.code, cell(cells, "id_type")
                )
                for p in error.problems
            ]
        try:
            subjects = roster_import.parse_subjects(cell(cells, "subjects"), offered, names)
        except DomainError as error:
            problems += [
                roster_import.RowProblem(
                    line, result.header("subjects"), p.code, p.detail or cell(cells, "subjects")
                )
                for p in error.problems
            ]
        if problems:
            result.problems += problems
            continue
        result.entries.append(Entry(id_type, cell(cells, "id_number"), tuple(subjects)))
        result.lines.append(line)
    return result


async def _catalogue(session_code: str) -> tuple[set[str], dict[str, str]]:
    session = await eligibility.session_by_code(session_code)
    offered = set(
        await SessionSubject.filter(session_id=session.id).values_list("subject__code", flat=True)
    )
    names = {name: code for code, name in await Subject.all().values_list("code", "name")}
    return offered, names  # type: ignore[return-value]


_STAGE_LABELS = {"check": "Checking students", "write": "Registering"}


async def register_from_cli(
    file: Path, session_code: str, school_code: str, console: Console, *, dry_run: bool = False
) -> bool:
    """``cetgql group-register``: read the file, register all rows or none with a progress
    bar, then print the line-numbered problems or a summary. Returns whether it succeeded."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    try:
        content = await asyncio.to_thread(file.read_bytes)
    except OSError as error:
        console.print(f"[red]cannot read[/red] {error.filename}: {error.strerror}")
        return False
    try:
        offered, names = await _catalogue(session_code)
        sheet = await asyncio.to_thread(roster_import.read_sheet, content)
        read = read_entries(sheet, offered, names)
        problems = list(read.problems)
        result: GroupResult | None = None
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

            if read.entries:
                try:
                    # With problems in the file already, only check the rest (all or nothing).
                    result = await group_register(
                        actor=None,
                        session_code=session_code,
                        school_code=school_code,
                        entries=read.entries,
                        max_entries=None,
                        dry_run=dry_run or bool(problems),
                        source=file.name,
                        progress=progress,
                    )
                except DomainError as error:
                    if not any(p.field and p.field[0] == "entries" for p in error.problems):
                        raise
                    problems += [read.locate(p) for p in error.problems]
    except DomainError as error:
        for p in error.problems:
            where = ".".join(p.field or ())
            detail = f" {p.detail}" if p.detail else ""
            console.print(f"[red]{p.code.value}[/red] {where} {message_for(p.code, 'en')}{detail}")
        return False
    if problems or result is None:
        invalid = ErrorCode.GROUP_REGISTRATION_INVALID
        problems.sort(key=lambda p: (p.line, p.column))
        console.print(
            f"[red]{invalid.value}[/red] {message_for(invalid, 'en')} {len(problems)} problem(s):"
        )
        roster_import.print_problems(console, problems)
        return False
    if dry_run:
        console.print(f"{file.name}: {len(read.entries)} student(s) checked, nothing registered")
        return True
    console.print(
        f"registered {len(result.students)} student(s) of school {result.school.code} for "
        f"{result.session.code}: {result.accounts_created} account(s) created, "
        f"{result.total_fen / 100:.2f} CNY paid by the school"
    )
    return True
