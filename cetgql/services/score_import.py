"""Score import (R1–R4): the national centre's CSV or XLSX of written section scores and oral
grades, by ticket number, streamed in bounded memory and applied all or nothing.

A file may hold millions of rows (a June session has about ten million candidates), so it is
never held in memory:

1. **Load.** The file is read as a stream (CSV through an incremental decoder, XLSX with
   openpyxl's read-only mode), :data:`CHUNK_ROWS` rows at a time. Each row is checked on its
   own (ticket layout, subject, identity, bounds, half points, total = sum of the sections,
   oral scale of the session) and against what the system knows of its ticket; a good row
   goes into a staging table (``score_import_row``), a bad one into the import's problem list
   (``score_import_problem``) with its line. Each chunk is written in its own short
   transaction, so an import never holds the database's write lock for long (SQLite has one
   writer) and memory stays at a chunk, whatever the file's size.
2. **Check and apply, in one transaction** holding the session's lock: the checks that need
   the whole file run as SQL over the staging table (a ticket or a candidate twice in the
   file, a ticket already scored in another session, a candidate with another ticket for the
   same subject). With any problem, nothing is applied. Otherwise rows equal to the record
   on file are left alone, the others are upserted by ticket number (a re-import corrects,
   never duplicates), and the reports of every changed candidate are brought in line
   (``score_reports.ReportSync``), key by key, in chunks.

The staging rows of an import are deleted when it ends, applied or not. Its problems are kept
(so that every one can be listed, however many) until :func:`prune` removes old imports.

Columns (headers in Chinese or English, folded like the roster's): 准考证号 (required), 姓名,
证件类型, 证件号码, 科目, 听力, 阅读, 写作和翻译, 总分, 口试成绩, 缺考, 违纪. The subject is read
from the ticket number (T4: the 10th digit is the written subject's code; an oral ticket has 0
there and the level, 4 or 6, in the 11th), so the 科目 column is optional and, when given, must
agree. Name and ID may be left blank for a ticket this system issued: they come from its
holder; given, they must match. Old sittings (no ticket here) need them.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import io
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from cetgql.models import (
    Account,
    ExamSession,
    IdType,
    ScoreImport,
    ScoreImportProblem,
    ScoreImportRow,
    ScoreImportStatus,
    ScoreRecord,
    SessionSubject,
    Ticket,
)
from cetgql.services import access, audit, clock, eligibility, identity, score_release, score_rules
from cetgql.services.errors import DomainError, ErrorCode, message_for
from cetgql.services.roster_import import (
    RowProblem,
    _cell_text,
    map_headers,
    parse_id_type,
    print_problems,
)
from cetgql.services.score_reports import (
    ReportSync,
    SubjectInfo,
    in_condition,
    in_values,
    placeholders,
    report_key,
    subject_infos,
)

if TYPE_CHECKING:
    from rich.console import Console

CHUNK_ROWS = 5000  # rows read, checked and staged at a time: what bounds the memory
KEY_CHUNK = 1000  # candidates whose reports are synced at a time
MAX_RETURNED_PROBLEMS = 1000  # in a GraphQL payload; the command line prints them all
MAX_UPLOAD_BYTES = 1024 * 1024 * 1024  # 1 GiB through GraphQL; the command line has no limit
_SNIFF_BYTES = 64 * 1024

COLUMNS: dict[str, tuple[str, ...]] = {
    "ticket_number": ("准考证号", "准考证号码", "准考证", "ticketnumber", "ticket"),
    "name": ("姓名", "考生姓名", "name"),
    "id_type": ("证件类型", "idtype"),
    "id_number": ("证件号码", "证件号", "身份证号", "身份证号码", "idnumber", "idno"),
    "subject": ("科目", "考试科目", "科目代码", "subject", "subjectcode"),
    "listening": ("听力", "听力分", "listening"),
    "reading": ("阅读", "阅读分", "reading"),
    "writing_translation": (
        "写作和翻译",
        "写作与翻译",
        "写作翻译",
        "写译",
        "writingtranslation",
        "writingandtranslation",
        "writing",
    ),
    "total": ("总分", "total"),
    "oral_grade": ("口试成绩", "口语成绩", "口试等级", "口语等级", "oralgrade", "oral"),
    "absent": ("缺考", "absent"),
    "violation": ("违纪", "违规", "violation"),
}
REQUIRED_COLUMNS = ("ticket_number",)
_SCORE_COLUMNS = ("listening", "reading", "writing_translation", "total")
_TRUE = {"1", "Y", "YES", "TRUE", "T", "是", "√", "✓", "缺考", "违纪", "违规"}
_FALSE = {"", "0", "N", "NO", "FALSE", "F", "否"}

ProgressCallback = Callable[[str, int, int], None]
"""``(stage, done, total)``; stages: read (bytes or rows), check, write (candidates)."""


def _report(progress: ProgressCallback | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


# --- reading a stream --------------------------------------------------------------------


@dataclass
class SheetStream:
    """A header row and an iterator of (line, cells); ``position`` tells how far it got in
    units of ``size`` (bytes of a CSV, rows of an XLSX when known, else 0)."""

    headers: list[str]
    rows: Iterator[tuple[int, list[str]]]
    position: Callable[[], int]
    size: int
    close: Callable[[], None]


def _encoding(head: bytes) -> str:
    """UTF-8 (with or without BOM) or, from Chinese Excel, GB18030: told from the first
    64 KiB, a character cut at the end of the sample not counting against UTF-8."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "gb18030"


def _csv_stream(binary: IO[bytes], size: int) -> SheetStream:
    head = binary.read(_SNIFF_BYTES)
    binary.seek(0)
    if b"\x00" in head[:4096]:
        raise DomainError.of(ErrorCode.UNSUPPORTED_FILE, "file")
    text = io.TextIOWrapper(binary, encoding=_encoding(head), newline="")
    first_line = head.split(b"\n", 1)[0]
    delimiter = "\t" if b"\t" in first_line and b"," not in first_line else ","
    reader = csv.reader(text, delimiter=delimiter)
    try:
        headers = [cell.strip() for cell in next(reader, [])]
    except (csv.Error, UnicodeDecodeError) as error:
        raise DomainError.of(ErrorCode.UNSUPPORTED_FILE, "file") from error

    def rows() -> Iterator[tuple[int, list[str]]]:
        consumed = reader.line_num
        for record in reader:
            line = consumed + 1  # a quoted cell may span lines: report where the row starts
            consumed = reader.line_num
            cells = [cell.strip() for cell in record]
            if any(cells):
                yield line, cells

    def position() -> int:
        try:
            return binary.tell()
        except (OSError, ValueError):
            return 0

    def close() -> None:
        text.detach()  # leave the caller's file open: it closes it

    return SheetStream(headers, rows(), position, size, close)


def _xlsx_stream(binary: IO[bytes]) -> SheetStream:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(binary, read_only=True, data_only=True)
        sheet = workbook.worksheets[0]
    except Exception as error:  # openpyxl raises many kinds for a damaged or foreign ZIP
        raise DomainError.of(ErrorCode.UNSUPPORTED_FILE, "file") from error
    declared = sheet.max_row if isinstance(sheet.max_row, int) else 0
    sheet.reset_dimensions()  # some writers record a wrong size; read what is there
    source = enumerate(sheet.iter_rows(values_only=True), start=1)
    first = next(source, None)
    headers = [_cell_text(v) for v in first[1]] if first else []
    done = [1]

    def rows() -> Iterator[tuple[int, list[str]]]:
        for line, values in source:
            done[0] = line
            cells = [_cell_text(v) for v in values]
            if any(cells):
                yield line, cells

    return SheetStream(headers, rows(), lambda: done[0], declared, workbook.close)


def open_sheet(binary: IO[bytes], size: int) -> SheetStream:
    """A CSV or XLSX stream, told apart by content, not by file name."""
    magic = binary.read(8)
    binary.seek(0)
    if magic.startswith(b"PK\x03\x04"):
        return _xlsx_stream(binary)
    if magic.startswith(b"\xd0\xcf\x11\xe0"):  # legacy .xls: ask for XLSX or CSV
        raise DomainError.of(ErrorCode.UNSUPPORTED_FILE, "file")
    return _csv_stream(binary, size)


# --- checking a row ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Lookups:
    session: ExamSession
    subjects: dict[int, SubjectInfo]
    by_code: dict[str, SubjectInfo]  # codes and Chinese names
    by_ticket_digit: dict[int, SubjectInfo]  # written subjects by the 10th ticket digit
    offered: frozenset[int]  # subject ids of the session
    headers: list[str]
    index: dict[str, int]

    def header(self, column: str) -> str:
        position = self.index.get(column)
        return self.headers[position] if position is not None else COLUMNS[column][0]


@dataclass
class _Row:
    """A row that passed its own checks; identity may still come from the ticket's holder."""

    line: int
    ticket_number: str
    subject: SubjectInfo
    name: str | None
    id_type: IdType | None
    id_number: str | None
    total: Decimal | None = None
    listening: Decimal | None = None
    reading: Decimal | None = None
    writing_translation: Decimal | None = None
    oral_grade: str | None = None
    absent: bool = False
    violation: bool = False
    account_id: int | None = None


class _Checker:
    def __init__(self, lookups: _Lookups, line: int, cells: list[str]) -> None:
        self.lookups = lookups
        self.line = line
        self.cells = cells
        self.problems: list[RowProblem] = []

    def cell(self, column: str) -> str:
        position = self.lookups.index.get(column)
        if position is None or position >= len(self.cells):
            return ""
        return unicodedata.normalize("NFKC", self.cells[position]).strip()

    def problem(
        self, column: str, code: ErrorCode, value: str | None = None, detail: str | None = None
    ) -> None:
        shown = value if value is None or len(value) <= 40 else value[:39] + "…"
        if detail:
            shown = f"{shown} → {detail}" if shown else detail
        self.problems.append(RowProblem(self.line, self.lookups.header(column), code, shown))

    def attempt(self, column: str, parse: Callable[..., Any], *args: Any) -> Any:
        try:
            return parse(*args)
        except DomainError as error:
            for p in error.problems:
                self.problem(column, p.code, self.cell(column) or None, p.detail)
            return None

    def flag(self, column: str) -> bool:
        text = self.cell(column).upper()
        if text in _FALSE:
            return False
        if text in _TRUE:
            return True
        self.problem(column, ErrorCode.INVALID_FORMAT, text)
        return False

    def subject(self, ticket: str) -> SubjectInfo | None:
        session = self.lookups.session
        if int(ticket[6:8]) != session.year % 100 or int(ticket[8]) != session.half:
            self.problem("ticket_number", ErrorCode.TICKET_SESSION_MISMATCH, ticket)
            return None
        digit, level = int(ticket[9]), ticket[10]
        if digit:
            subject = self.lookups.by_ticket_digit.get(digit)
        else:  # an oral ticket: 0, then the level
            subject = self.lookups.by_code.get(f"CET-SET{level}") if level in "46" else None
        if subject is None:
            self.problem("ticket_number", ErrorCode.TICKET_NUMBER_INVALID, ticket)
            return None
        named = self.cell("subject")
        if named:
            given = self.lookups.by_code.get(named) or self.lookups.by_code.get(named.upper())
            if given is None:
                self.problem("subject", ErrorCode.UNKNOWN_SUBJECT, named)
                return None
            if given.id != subject.id:
                self.problem("subject", ErrorCode.TICKET_SUBJECT_MISMATCH, named)
                return None
        if subject.id not in self.lookups.offered:
            self.problem("ticket_number", ErrorCode.UNKNOWN_SUBJECT, ticket, subject.code)
            return None
        return subject

    def written(self, row: _Row) -> None:
        if self.cell("oral_grade"):
            self.problem("oral_grade", ErrorCode.WRONG_SCORE_KIND, self.cell("oral_grade"))
        given = [c for c in _SCORE_COLUMNS if self.cell(c)]
        if row.absent:
            for column in given:
                if self.cell(column) not in {"0", "0.0", "0.00"}:
                    self.problem(column, ErrorCode.SCORES_WHEN_ABSENT, self.cell(column))
            return
        if row.violation and not given:
            return  # a violation may leave no scores; it is reported as 0 anyway
        sections: list[Decimal | None] = []
        for column, maximum in (
            ("listening", score_rules.MAX_LISTENING),
            ("reading", score_rules.MAX_READING),
            ("writing_translation", score_rules.MAX_WRITING_TRANSLATION),
        ):
            if not self.cell(column):
                self.problem(column, ErrorCode.REQUIRED)
                sections.append(None)
                continue
            sections.append(
                self.attempt(column, score_rules.score_value, self.cell(column), maximum, column)
            )
        if any(value is None for value in sections):
            return
        row.listening, row.reading, row.writing_translation = sections
        row.total = self.attempt("total", score_rules.check_total, *sections, self.cell("total"))

    def oral(self, row: _Row) -> None:
        for column in _SCORE_COLUMNS:
            if self.cell(column):
                self.problem(column, ErrorCode.WRONG_SCORE_KIND, self.cell(column))
        grade = self.cell("oral_grade")
        if row.absent:
            if grade:
                self.problem("oral_grade", ErrorCode.SCORES_WHEN_ABSENT, grade)
            return
        if not grade:
            if not row.violation:
                self.problem("oral_grade", ErrorCode.REQUIRED)
            return
        session = self.lookups.session
        row.oral_grade = self.attempt(
            "oral_grade", score_rules.oral_grade, grade, session.year, session.half
        )

    def check(self) -> _Row | None:
        ticket = self.cell("ticket_number").replace(" ", "")
        if not ticket:
            self.problem("ticket_number", ErrorCode.REQUIRED)
            return None
        if len(ticket) != 15 or not ticket.isascii() or not ticket.isdigit():
            self.problem("ticket_number", ErrorCode.TICKET_NUMBER_INVALID, ticket)
            return None
        subject = self.subject(ticket)
        name = (
            self.attempt("name", identity.validate_name, self.cell("name"))
            if self.cell("name")
            else None
        )
        id_type = self.attempt("id_type", parse_id_type, self.cell("id_type"))
        id_number = None
        if id_type is not None and self.cell("id_number"):
            id_number = self.attempt(
                "id_number", identity.validate_id, id_type, self.cell("id_number")
            )
        if subject is None:
            return None
        row = _Row(self.line, ticket, subject, name, id_type, id_number)
        row.absent = self.flag("absent")
        row.violation = self.flag("violation")
        if subject.oral:
            self.oral(row)
        else:
            self.written(row)
        return None if self.problems else row


def _check_chunk(
    lookups: _Lookups, chunk: list[tuple[int, list[str]]]
) -> tuple[list[_Row], list[RowProblem]]:
    """Each row on its own: pure computation, run off the event loop."""
    rows: list[_Row] = []
    problems: list[RowProblem] = []
    for line, cells in chunk:
        checker = _Checker(lookups, line, cells)
        row = checker.check()
        problems.extend(checker.problems)
        if row is not None:
            rows.append(row)
    return rows, problems


async def _holders(lookups: _Lookups, rows: list[_Row]) -> tuple[list[_Row], list[RowProblem]]:
    """Rows against the tickets this system issued and its accounts: a known ticket must be
    held by the row's candidate (whose name and ID fill blanks); otherwise name and ID are
    required, and an account with that ID and name is linked."""
    connection = ScoreImport._meta.db
    dialect = connection.capabilities.dialect
    numbers = [r.ticket_number for r in rows]
    tickets: dict[str, dict[str, Any]] = {}
    if numbers:
        # Plain SQL: an IN list of thousands costs the ORM more than the database.
        sql = (
            "SELECT t.number, t.session_id, t.account_id, o.subject_id, a.name, a.name_key, "  # noqa: S608
            f'a.id_type, a.id_number FROM "{Ticket._meta.db_table}" t '
            f'JOIN "{SessionSubject._meta.db_table}" o ON o.id = t.offering_id '
            f'JOIN "{Account._meta.db_table}" a ON a.id = t.account_id '
            f"WHERE {in_condition(dialect, 't.number', len(numbers))}"
        )
        for found in await connection.execute_query_dict(
            placeholders(dialect, sql), in_values(dialect, numbers)
        ):
            tickets[found["number"]] = found
    ids = sorted({r.id_number for r in rows if r.id_number and r.ticket_number not in tickets})
    accounts: dict[tuple[str, str], tuple[int, str]] = {}
    if ids:
        sql = (
            f'SELECT id, id_type, id_number, name_key FROM "{Account._meta.db_table}" '  # noqa: S608
            f"WHERE {in_condition(dialect, 'id_number', len(ids))}"
        )
        for found in await connection.execute_query_dict(
            placeholders(dialect, sql), in_values(dialect, ids)
        ):
            accounts[(str(found["id_type"]), found["id_number"])] = (
                found["id"],
                found["name_key"],
            )
    good: list[_Row] = []
    problems: list[RowProblem] = []

    def problem(row: _Row, column: str, code: ErrorCode, value: str | None = None) -> None:
        problems.append(RowProblem(row.line, lookups.header(column), code, value))

    for row in rows:
        ticket = tickets.get(row.ticket_number)
        if ticket is not None:
            if ticket["session_id"] != lookups.session.id:
                problem(row, "ticket_number", ErrorCode.TICKET_SESSION_MISMATCH, row.ticket_number)
                continue
            if ticket["subject_id"] != row.subject.id:
                problem(row, "ticket_number", ErrorCode.TICKET_SUBJECT_MISMATCH, row.ticket_number)
                continue
            holder_type = IdType(ticket["id_type"])
            if (
                (row.name is not None and identity.name_key(row.name) != ticket["name_key"])
                or (row.id_number is not None and row.id_number != ticket["id_number"])
                or (row.id_number is not None and row.id_type != holder_type)
            ):
                problem(row, "ticket_number", ErrorCode.TICKET_IDENTITY_MISMATCH, row.ticket_number)
                continue
            row.name = row.name or ticket["name"]
            row.id_type, row.id_number = holder_type, ticket["id_number"]
            row.account_id = ticket["account_id"]
        else:
            missing = False
            if row.name is None:
                problem(row, "name", ErrorCode.REQUIRED)
                missing = True
            if row.id_number is None:
                problem(row, "id_number", ErrorCode.REQUIRED)
                missing = True
            if missing:
                continue
            assert row.id_type is not None and row.name is not None and row.id_number is not None
            account = accounts.get((row.id_type.value, row.id_number))
            if account is not None and account[1] == identity.name_key(row.name):
                row.account_id = account[0]
        good.append(row)
    return good, problems


# --- writing -------------------------------------------------------------------------------

_ROW_COLUMNS = (
    "import_id",
    "line",
    "ticket_number",
    "subject_id",
    "account_id",
    "name",
    "name_key",
    "id_type",
    "id_number",
    "total",
    "listening",
    "reading",
    "writing_translation",
    "oral_grade",
    "absent",
    "violation",
    "oral",
    "report_key",
    "centre_code",
    "changed",
)
_PROBLEM_COLUMNS = ("import_id", "line", "column_label", "code", "value", "other_line")


def _insert_sql(dialect: str, table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    return placeholders(dialect, f'INSERT INTO "{table}" ({names}) VALUES ({marks})')  # noqa: S608


def _row_values(import_id: int, row: _Row) -> list[Any]:
    assert row.name is not None and row.id_type is not None and row.id_number is not None
    return [
        import_id,
        row.line,
        row.ticket_number,
        row.subject.id,
        row.account_id,
        row.name,
        identity.name_key(row.name),
        row.id_type.value,
        row.id_number,
        row.total,
        row.listening,
        row.reading,
        row.writing_translation,
        row.oral_grade,
        row.absent,
        row.violation,
        row.subject.oral,
        report_key(row.subject, row.id_type.value, row.id_number),
        row.ticket_number[:6],
        True,
    ]


async def _stage(
    connection: BaseDBAsyncClient,
    import_id: int,
    rows: list[_Row],
    problems: list[RowProblem],
) -> None:
    dialect = connection.capabilities.dialect
    async with in_transaction() as transaction:
        if rows:
            values = [_row_values(import_id, row) for row in rows]
            if dialect == "postgres":
                # COPY: several times faster than a prepared INSERT per row.
                async with transaction.acquire_connection() as raw:
                    await raw.copy_records_to_table(
                        ScoreImportRow._meta.db_table, records=values, columns=_ROW_COLUMNS
                    )
            else:
                await transaction.execute_many(
                    _insert_sql(dialect, ScoreImportRow._meta.db_table, _ROW_COLUMNS), values
                )
        if problems:
            await transaction.execute_many(
                _insert_sql(dialect, ScoreImportProblem._meta.db_table, _PROBLEM_COLUMNS),
                [
                    [
                        import_id,
                        p.line,
                        p.column[:64],
                        p.code.value,
                        (p.value or "")[:64] or None,
                        p.other_line,
                    ]
                    for p in problems
                ],
            )


# --- whole-file checks and the apply step, in SQL over the staging table -------------------


def _same(dialect: str) -> str:
    """Null-safe equality."""
    return "IS NOT DISTINCT FROM" if dialect == "postgres" else "IS"


async def _file_checks(
    connection: BaseDBAsyncClient, import_id: int, session_id: int, lookups: _Lookups
) -> None:
    """Problems only the whole file shows, written as problem rows by SQL."""
    dialect = connection.capabilities.dialect
    rows = ScoreImportRow._meta.db_table
    problems = ScoreImportProblem._meta.db_table
    records = ScoreRecord._meta.db_table
    ticket_header = lookups.header("ticket_number")
    id_header = lookups.header("id_number")
    insert = f'INSERT INTO "{problems}" (import_id, line, column_label, code, value, other_line) '
    statements: list[tuple[str, list[Any]]] = [
        (  # the same ticket twice in the file
            insert + f"SELECT r.import_id, r.line, ?, ?, r.ticket_number, f.first_line "  # noqa: S608
            f'FROM "{rows}" r JOIN (SELECT ticket_number, MIN(line) AS first_line '
            f'FROM "{rows}" WHERE import_id = ? GROUP BY ticket_number HAVING COUNT(*) > 1) f '
            "ON f.ticket_number = r.ticket_number "
            "WHERE r.import_id = ? AND r.line <> f.first_line",
            [ticket_header, ErrorCode.DUPLICATE_ROW.value, import_id, import_id],
        ),
        (  # one candidate with two tickets of one subject in the file: each further ticket
            # is reported once, at its first line (a repeated ticket is a DUPLICATE_ROW)
            insert + f"SELECT r.import_id, r.line, ?, ?, r.id_number, f.first_line "  # noqa: S608
            f'FROM "{rows}" r JOIN (SELECT report_key, subject_id, MIN(line) AS first_line '
            f'FROM "{rows}" WHERE import_id = ? GROUP BY report_key, subject_id '
            "HAVING COUNT(DISTINCT ticket_number) > 1) f "
            "ON f.report_key = r.report_key AND f.subject_id = r.subject_id "
            "WHERE r.import_id = ? AND r.line <> f.first_line AND NOT EXISTS "
            f'(SELECT 1 FROM "{rows}" o WHERE o.import_id = r.import_id '
            "AND o.ticket_number = r.ticket_number AND o.line < r.line) AND NOT EXISTS "
            f'(SELECT 1 FROM "{rows}" o WHERE o.import_id = r.import_id '
            "AND o.line = f.first_line AND o.ticket_number = r.ticket_number)",
            [id_header, ErrorCode.DUPLICATE_CANDIDATE.value, import_id, import_id],
        ),
        (  # a ticket already scored in another session
            insert + f"SELECT r.import_id, r.line, ?, ?, r.ticket_number, CAST(NULL AS INTEGER) "  # noqa: S608
            f'FROM "{rows}" r JOIN "{records}" s ON s.ticket_number = r.ticket_number '
            "WHERE r.import_id = ? AND s.session_id <> ?",
            [ticket_header, ErrorCode.TICKET_IN_OTHER_SESSION.value, import_id, session_id],
        ),
        (  # the candidate already has another ticket of this subject, not in this file
            insert + f"SELECT r.import_id, r.line, ?, ?, s.ticket_number, CAST(NULL AS INTEGER) "  # noqa: S608
            f'FROM "{rows}" r JOIN "{records}" s ON s.session_id = ? '
            "AND s.report_key = r.report_key AND s.subject_id = r.subject_id "
            "AND s.ticket_number <> r.ticket_number "
            f'WHERE r.import_id = ? AND NOT EXISTS (SELECT 1 FROM "{rows}" o '
            "WHERE o.import_id = r.import_id AND o.ticket_number = s.ticket_number)",
            [id_header, ErrorCode.DUPLICATE_CANDIDATE.value, session_id, import_id],
        ),
    ]
    for sql, values in statements:
        await connection.execute_query(placeholders(dialect, sql), values)


_VALUE_COLUMNS = (
    "subject_id",
    "name",
    "name_key",
    "id_type",
    "id_number",
    "total",
    "listening",
    "reading",
    "writing_translation",
    "oral_grade",
    "absent",
    "violation",
    "report_key",
    "centre_code",
)


async def _apply(
    connection: BaseDBAsyncClient,
    import_id: int,
    session: ExamSession,
    progress: ProgressCallback | None,
) -> tuple[int, int, int, ReportSync]:
    """Upsert the changed rows and sync their candidates' reports; (created, updated,
    unchanged, the sync with its counts)."""
    dialect = connection.capabilities.dialect
    rows = ScoreImportRow._meta.db_table
    records = ScoreRecord._meta.db_table
    same = _same(dialect)

    async def scalar(sql: str, values: list[Any]) -> int:
        result = await connection.execute_query_dict(placeholders(dialect, sql), values)
        return int(next(iter(result[0].values())) or 0)

    total = await scalar(f'SELECT COUNT(*) AS n FROM "{rows}" WHERE import_id = ?', [import_id])  # noqa: S608
    created = await scalar(
        f'SELECT COUNT(*) AS n FROM "{rows}" r WHERE r.import_id = ? AND NOT EXISTS '  # noqa: S608
        f'(SELECT 1 FROM "{records}" s WHERE s.ticket_number = r.ticket_number)',
        [import_id],
    )
    equal = " AND ".join(f's."{c}" {same} "{rows}"."{c}"' for c in _VALUE_COLUMNS)
    await connection.execute_query(
        placeholders(
            dialect,
            f'UPDATE "{rows}" SET changed = FALSE WHERE import_id = ? AND EXISTS '  # noqa: S608
            f'(SELECT 1 FROM "{records}" s WHERE s.ticket_number = "{rows}".ticket_number '
            f"AND {equal})",
        ),
        [import_id],
    )
    await connection.execute_query(
        placeholders(
            dialect,
            # Only rows whose candidate changes (a corrected name or ID) get the old key.
            f'UPDATE "{rows}" SET old_report_key = (SELECT s.report_key FROM "{records}" s '  # noqa: S608
            f'WHERE s.ticket_number = "{rows}".ticket_number) WHERE import_id = ? AND changed '
            f'AND EXISTS (SELECT 1 FROM "{records}" s WHERE s.ticket_number = '
            f'"{rows}".ticket_number AND s.report_key <> "{rows}".report_key)',
        ),
        [import_id],
    )
    unchanged = await scalar(
        f'SELECT COUNT(*) AS n FROM "{rows}" WHERE import_id = ? AND NOT changed',  # noqa: S608
        [import_id],
    )
    columns = ("ticket_number", "session_id", "account_id", *_VALUE_COLUMNS, "imported_at")
    # PostgreSQL types a parameter in a SELECT list as text unless told.
    typed = {"session_id": "CAST(? AS BIGINT)", "imported_at": "CAST(? AS TIMESTAMPTZ)"}
    selected = ", ".join(
        (typed[c] if dialect == "postgres" else "?") if c in typed else c for c in columns
    )
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in (*_VALUE_COLUMNS, "imported_at"))
    await connection.execute_query(
        placeholders(
            dialect,
            f'INSERT INTO "{records}" ({", ".join(columns)}) '  # noqa: S608
            f'SELECT {selected} FROM "{rows}" WHERE import_id = ? AND changed '
            f"ON CONFLICT (ticket_number) DO UPDATE SET {updates}, "
            f'account_id = COALESCE(EXCLUDED.account_id, "{records}".account_id)',
        ),
        [session.id, clock.now(), import_id],
    )
    # Every candidate a changed row concerns, after and before (a corrected ID moves a record
    # from one candidate's report to another's), a page of keys at a time. Each page is a range
    # scan of an index of the staging table, so paging costs nothing however big the file.
    keys_total = await scalar(
        f'SELECT COUNT(DISTINCT report_key) AS n FROM "{rows}" WHERE import_id = ? AND changed',  # noqa: S608
        [import_id],
    )
    sync = await ReportSync.start(session, connection)
    done = 0
    _report(progress, "write", 0, keys_total)
    for column in ("report_key", "old_report_key"):
        last = ""
        while True:
            page = await connection.execute_query_dict(
                placeholders(
                    dialect,
                    f'SELECT DISTINCT {column} AS k FROM "{rows}" WHERE import_id = ? '  # noqa: S608
                    f"AND changed AND {column} > ? ORDER BY {column} LIMIT ?",
                ),
                [import_id, last, KEY_CHUNK],
            )
            keys = [row["k"] for row in page]
            if not keys:
                break
            await sync.sync(keys)
            last = keys[-1]
            if column == "report_key":
                done += len(keys)
                _report(progress, "write", done, keys_total)
    return created, total - created - unchanged, unchanged, sync


# --- the import ----------------------------------------------------------------------------


@dataclass
class ScoreImportResult:
    import_id: int
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    reports_issued: int = 0
    reports_reissued: int = 0
    reports_withdrawn: int = 0
    problem_count: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0


async def _lookups(session: ExamSession, stream: SheetStream) -> tuple[_Lookups, list[RowProblem]]:
    subjects = await subject_infos()
    offered = frozenset(
        int(row["subject_id"])
        for row in await SessionSubject.filter(session_id=session.id).values("subject_id")
    )
    by_code: dict[str, SubjectInfo] = {}
    for s in subjects.values():
        by_code[s.code] = by_code[s.name] = s
    index, problems = map_headers(stream.headers, COLUMNS, REQUIRED_COLUMNS)
    lookups = _Lookups(
        session=session,
        subjects=subjects,
        by_code=by_code,
        by_ticket_digit={s.ticket_code: s for s in subjects.values() if s.ticket_code},
        offered=offered,
        headers=stream.headers,
        index=index,
    )
    return lookups, problems


async def _problems_of(import_id: int, limit: int | None) -> list[RowProblem]:
    query = ScoreImportProblem.filter(import_id=import_id).order_by("line", "id")
    if limit is not None:
        query = query.limit(limit)
    return [
        RowProblem(p.line, p.column_label, ErrorCode(p.code), p.value, p.other_line)
        for p in await query
    ]


async def iter_problems(import_id: int, batch: int = 5000) -> AsyncIterator[RowProblem]:
    """Every problem of an import in line order, a batch at a time (the command line)."""
    after: tuple[int, int] = (0, 0)
    while True:
        page = (
            await ScoreImportProblem.filter(
                Q(line__gt=after[0]) | Q(line=after[0], id__gt=after[1]), import_id=import_id
            )
            .order_by("line", "id")
            .limit(batch)
        )
        if not page:
            return
        for p in page:
            yield RowProblem(p.line, p.column_label, ErrorCode(p.code), p.value, p.other_line)
        after = (page[-1].line, page[-1].id)


async def import_scores(
    *,
    actor: Account | None,
    session_code: str,
    binary: IO[bytes],
    size: int = 0,
    filename: str = "",
    client_address: str | None = None,
    progress: ProgressCallback | None = None,
    returned_problems: int | None = MAX_RETURNED_PROBLEMS,
) -> ScoreImportResult:
    """Stream a score file into the session: every row checked, every problem reported with
    its line, all applied or none. ``actor`` None is the command line (the national office);
    through GraphQL only national admins import scores."""
    if actor is not None:
        await access.require_national(actor)
    session = await eligibility.session_by_code(session_code)
    stream = await asyncio.to_thread(open_sheet, binary, size)
    job = await ScoreImport.create(
        session_id=session.id,
        actor=actor,
        filename=filename[:128],
        started_at=clock.now(),
    )
    connection = ScoreImport._meta.db
    try:
        lookups, header_problems = await _lookups(session, stream)
        if header_problems:
            await _stage(connection, job.id, [], header_problems)
        else:
            rows = await _load(connection, job.id, lookups, stream, progress)
            if rows == 0 and not await ScoreImportProblem.exists(import_id=job.id):
                await _stage(
                    connection,
                    job.id,
                    [],
                    [RowProblem(2, lookups.header("ticket_number"), ErrorCode.NO_DATA_ROWS)],
                )
            job.rows = rows
    except (csv.Error, UnicodeDecodeError) as error:
        await _finish_failed(job)
        raise DomainError.of(ErrorCode.UNSUPPORTED_FILE, "file") from error
    except BaseException:
        await _finish_failed(job)
        raise
    finally:
        stream.close()
    return await _check_and_apply(
        job, session, lookups, progress, returned_problems, actor, client_address
    )


async def _load(
    connection: BaseDBAsyncClient,
    import_id: int,
    lookups: _Lookups,
    stream: SheetStream,
    progress: ProgressCallback | None,
) -> int:
    """Read, check and stage the file a chunk at a time. The next chunk is read and checked in
    a thread while the current one goes to the database, so parsing and writing overlap; at
    most two chunks are in memory."""

    def next_chunk() -> tuple[int, list[_Row], list[RowProblem]]:
        chunk = list(islice(stream.rows, CHUNK_ROWS))
        rows, problems = _check_chunk(lookups, chunk)
        return len(chunk), rows, problems

    staged = 0
    pending = asyncio.ensure_future(asyncio.to_thread(next_chunk))
    try:
        while True:
            count, rows, problems = await pending
            if not count:
                return staged
            pending = asyncio.ensure_future(asyncio.to_thread(next_chunk))
            rows, holder_problems = await _holders(lookups, rows)
            await _stage(connection, import_id, rows, problems + holder_problems)
            staged += count
            _report(progress, "read", stream.position(), stream.size)
    finally:
        if not pending.done():
            # Let the thread finish its chunk before the stream is closed under it.
            with contextlib.suppress(BaseException):
                await pending


async def _finish_failed(job: ScoreImport) -> None:
    await ScoreImportRow.filter(import_id=job.id).delete()
    job.status = ScoreImportStatus.FAILED
    job.finished_at = clock.now()
    await job.save(update_fields=["status", "finished_at"])


async def _check_and_apply(
    job: ScoreImport,
    session: ExamSession,
    lookups: _Lookups,
    progress: ProgressCallback | None,
    returned_problems: int | None,
    actor: Account | None,
    client_address: str | None,
) -> ScoreImportResult:
    result = ScoreImportResult(import_id=job.id, rows=job.rows)
    await score_release.ensure_row(session.id)
    _report(progress, "check", 0, 1)
    async with in_transaction() as connection:
        await score_release.lock(session.id)
        if lookups.index:
            await _file_checks(connection, job.id, session.id, lookups)
        result.problem_count = await ScoreImportProblem.filter(import_id=job.id).count()
        _report(progress, "check", 1, 1)
        if result.ok:
            created, updated, unchanged, sync = await _apply(connection, job.id, session, progress)
            result.created, result.updated, result.unchanged = created, updated, unchanged
            result.reports_issued = sync.stats.issued
            result.reports_reissued = sync.stats.reissued
            result.reports_withdrawn = sync.stats.withdrawn
            await audit.record(
                "scores.imported",
                actor=actor,
                subject=f"ExamSession:{session.id}",
                client_address=client_address,
                file=job.filename,
                rows=job.rows,
                created=created,
                updated=updated,
                unchanged=unchanged,
                reports_issued=sync.stats.issued,
                reports_reissued=sync.stats.reissued,
                reports_withdrawn=sync.stats.withdrawn,
            )
        await ScoreImportRow.filter(import_id=job.id).delete()
        job.status = ScoreImportStatus.APPLIED if result.ok else ScoreImportStatus.FAILED
        job.finished_at = clock.now()
        job.problem_count = result.problem_count
        for name in (
            "created",
            "updated",
            "unchanged",
            "reports_issued",
            "reports_reissued",
            "reports_withdrawn",
        ):
            setattr(job, name, getattr(result, name))
        await job.save()
    if not result.ok:
        result.problems = await _problems_of(job.id, returned_problems)
    return result


async def prune(older_than: timedelta = timedelta(days=30)) -> int:
    """The periodic job: forget the problems and leftovers (a process killed mid-import) of
    imports that ended, or started, long ago. The import rows themselves stay as the log."""
    cutoff = clock.now() - older_than
    stale = list(
        await ScoreImport.filter(started_at__lt=cutoff).values_list("id", flat=True)  # type: ignore[arg-type]
    )
    removed = 0
    for start in range(0, len(stale), 1000):
        ids = stale[start : start + 1000]
        removed += await ScoreImportProblem.filter(import_id__in=ids).delete()
        removed += await ScoreImportRow.filter(import_id__in=ids).delete()
    await ScoreImport.filter(
        status=ScoreImportStatus.LOADING, started_at__lt=clock.now() - timedelta(days=1)
    ).update(status=ScoreImportStatus.FAILED, finished_at=clock.now())
    return removed


# --- command line --------------------------------------------------------------------------

_STAGE_LABELS = {
    "read": "Reading and checking rows",
    "check": "Checking the whole file",
    "write": "Writing scores and reports",
}


async def import_from_cli(file: Path, session_code: str, console: Console) -> bool:
    """``cetgql import-scores FILE --session CODE``: with a progress bar, then every problem
    (line, column, code, message) or a summary. Returns whether the file was applied."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    try:
        binary = await asyncio.to_thread(file.open, "rb")
    except OSError as error:
        console.print(f"[red]cannot read[/red] {error.filename}: {error.strerror}")
        return False
    size = (await asyncio.to_thread(file.stat)).st_size
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            console=console,
            transient=True,
        ) as bar:
            tasks: dict[str, Any] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(
                        _STAGE_LABELS.get(stage, stage), total=total or None
                    )
                bar.update(tasks[stage], completed=done, total=total or None)

            result = await import_scores(
                actor=None,
                session_code=session_code,
                binary=binary,
                size=size,
                filename=file.name,
                progress=progress,
                returned_problems=0,
            )
    except DomainError as error:
        for p in error.problems:
            where = ".".join(p.field or ())
            detail = f" {p.detail}" if p.detail else ""
            console.print(f"[red]{p.code.value}[/red] {where} {message_for(p.code, 'en')}{detail}")
        return False
    finally:
        binary.close()
    if not result.ok:
        invalid = ErrorCode.SCORES_INVALID
        console.print(
            f"[red]{invalid.value}[/red] {message_for(invalid, 'en')}"
            f" {result.problem_count} problem(s):"
        )
        batch: list[RowProblem] = []
        async for problem in iter_problems(result.import_id):
            batch.append(problem)
            if len(batch) >= 5000:
                print_problems(console, batch)
                batch = []
        print_problems(console, batch)
        return False
    console.print(
        f"imported {file.name} into {session_code.upper()}: {result.rows} rows, "
        f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged; "
        f"reports {result.reports_issued} issued, {result.reports_reissued} re-issued, "
        f"{result.reports_withdrawn} withdrawn"
    )
    return True
