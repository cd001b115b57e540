"""Score reports (成绩报告单) and their paper copies (R4–R6).

A report belongs to a candidate, a session and a level: the written subject (CET4, CET6, or a
written test of another language) and the oral test of that level (CET-SET4, CET-SET6). The
records of one report share a *report key* (written subject code, ID type, ID number), so
"one report carries both" is a matter of looking up one key.

- :class:`ReportSync` keeps a key's report in line with its records after every import or
  correction: a report appears when R4 holds, disappears (is superseded with no successor)
  when it no longer does, and changes when its content does. Before the release nothing has
  been seen, so a change rewrites the report in place; after it, the report is re-issued as a
  new version under the same number and the old version's verification code answers
  "superseded". A report's content is frozen into it: the PDF and ``verifyDocument`` show
  exactly what that version said.
- Numbers: year (2), half (1), level (1), centre (6, the written ticket's centre, or the oral
  ticket's centre for an oral-only report) and a serial (5) per year, half, level and centre.
  Serials are handed out by whoever holds the session's lock (``score_release.lock``), so
  they never collide and never need a counter table. A key keeps its number for good.
- Paper copies: a candidate opts in when registering (a flag on the registration, copied onto
  the report when it is issued) or within the period after release; the centre records the
  collection; six months after release an uncollected copy is forfeited. The deadline is
  applied when read; the periodic job only writes down what readers already see.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from cetgql.models import (
    Account,
    ExamSession,
    Registration,
    RegistrationStatus,
    School,
    ScoreRecord,
    ScoreReport,
    Subject,
    SubjectKind,
)
from cetgql.services import access, audit, clock, score_release, score_rules
from cetgql.services.errors import DomainError, ErrorCode

_IN_CHUNK = 1000

RECORD_FIELDS = (
    "id",
    "ticket_number",
    "subject_id",
    "account_id",
    "name",
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


_VALUE_FIELDS = (
    "written_record_id",
    "oral_record_id",
    "name",
    "id_type",
    "id_number",
    "language",
    "content",
)
_PAPER_FIELDS = (
    "paper_requested_at",
    "paper_collected_at",
    "paper_collected_by_id",
    "paper_forfeited_at",
)
_INSERT_FIELDS = (
    "session_id",
    "report_key",
    "number",
    "version",
    "centre_code",
    "issued_at",
    *_VALUE_FIELDS,
    *_PAPER_FIELDS,
)
REPORT_FIELDS = (
    "id",
    "report_key",
    "number",
    "version",
    "centre_code",
    "superseded_at",
    *_VALUE_FIELDS,
    *_PAPER_FIELDS,
)


def in_condition(dialect: str, column: str, count: int, sql_type: str = "varchar") -> str:
    """``column IN (?, ?, ...)``; on PostgreSQL ``column = ANY(?)`` with one array parameter,
    which keeps the statement the same whatever the number of values."""
    if dialect == "postgres":
        return f"{column} = ANY(?::{sql_type}[])"
    return f"{column} IN ({', '.join('?' for _ in range(count))})"


def in_values(dialect: str, values: Sequence[Any]) -> list[Any]:
    """The parameters of :func:`in_condition`."""
    return [list(values)] if dialect == "postgres" else list(values)


def placeholders(dialect: str, sql: str) -> str:
    """Write raw SQL with ``?`` and get the dialect's placeholders (``$1``... for asyncpg)."""
    if dialect != "postgres":
        return sql
    parts = sql.split("?")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], start=1)) + parts[-1]


@dataclass(frozen=True)
class SubjectInfo:
    id: int
    code: str
    name: str
    kind: SubjectKind
    ticket_code: int | None
    language: str
    written_prerequisite: str | None
    oral: bool  # read for every row of an import: a plain attribute, not a property


async def subject_infos() -> dict[int, SubjectInfo]:
    return {
        s.id: SubjectInfo(
            s.id,
            s.code,
            s.name,
            SubjectKind(s.kind),
            s.ticket_code,
            s.language,
            s.written_prerequisite,
            SubjectKind(s.kind) == SubjectKind.ORAL,
        )
        for s in await Subject.all()
    }


def written_code(subject: SubjectInfo) -> str:
    """The written subject a record's report is named after (an oral test: its written one)."""
    return (subject.written_prerequisite or subject.code) if subject.oral else subject.code


def report_key(subject: SubjectInfo, id_type: str, id_number: str) -> str:
    return f"{written_code(subject)}|{id_type}|{id_number}"


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.1f}"


def written_entry(record: dict[str, Any], subject: SubjectInfo) -> dict[str, Any]:
    """What a report says of a written record: the reported total and, unless that is 0, the
    sections (R2)."""
    total = score_rules.reported_total(
        _decimal(record["total"]), bool(record["absent"]), bool(record["violation"])
    )
    shown = total >= score_rules.PASS_LINE
    return {
        "subject": subject.code,
        "subjectName": subject.name,
        "ticket": record["ticket_number"],
        "total": _text(total),
        "listening": _text(_decimal(record["listening"])) if shown else None,
        "reading": _text(_decimal(record["reading"])) if shown else None,
        "writingTranslation": _text(_decimal(record["writing_translation"])) if shown else None,
    }


def report_content(
    session: ExamSession,
    written: dict[str, Any] | None,
    oral: dict[str, Any] | None,
    subjects: dict[int, SubjectInfo],
) -> dict[str, Any] | None:
    """The content of the report of one key, or None when R4 gives no report. A failed or
    missed oral test is never on it (R3)."""
    written_part = written_entry(written, subjects[written["subject_id"]]) if written else None
    passed_oral = oral is not None and score_rules.oral_passed(
        oral["oral_grade"], bool(oral["absent"]), bool(oral["violation"])
    )
    total = Decimal(written_part["total"]) if written_part else None
    if not score_rules.report_issued(total, oral["oral_grade"] if oral and passed_oral else None):
        return None
    holder = written or oral
    assert holder is not None
    subject = subjects[holder["subject_id"]]
    level_subject = next((s for s in subjects.values() if s.code == written_code(subject)), subject)
    oral_part = None
    if oral is not None and passed_oral:
        oral_subject = subjects[oral["subject_id"]]
        oral_part = {
            "subject": oral_subject.code,
            "subjectName": oral_subject.name,
            "ticket": oral["ticket_number"],
            "grade": oral["oral_grade"],
        }
    return {
        "session": session.code,
        "sessionName": session.name,
        "name": holder["name"],
        "idType": str(holder["id_type"]),
        "idNumber": holder["id_number"],
        "subject": level_subject.code,
        "subjectName": level_subject.name,
        "language": level_subject.language,
        "written": written_part,
        "oral": oral_part,
    }


@dataclass
class SyncStats:
    issued: int = 0  # new reports (version 1, or a report again after being withdrawn)
    reissued: int = 0  # new versions of released reports
    withdrawn: int = 0  # reports that no longer hold (R4)
    rewritten: int = 0  # unreleased reports changed in place


@dataclass
class ReportSync:
    """Brings the reports of report keys of one session in line with their records.

    Run it inside the transaction that holds the session's lock (``score_release.lock``)."""

    session: ExamSession
    connection: BaseDBAsyncClient
    now: datetime
    released: bool
    subjects: dict[int, SubjectInfo] = field(default_factory=dict)
    serials: dict[str, int] = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)  # written code → ticket digit
    stats: SyncStats = field(default_factory=SyncStats)

    @classmethod
    async def start(cls, session: ExamSession, connection: BaseDBAsyncClient) -> ReportSync:
        now = clock.now()
        info = await score_release.info(session.id)
        sync = cls(session, connection, now, info.released(now))
        sync.subjects = await subject_infos()
        sync.levels = {s.code: s.ticket_code or 0 for s in sync.subjects.values()}
        table = ScoreReport._meta.db_table
        rows = await connection.execute_query_dict(
            placeholders(
                connection.capabilities.dialect,
                f'SELECT substr(number, 1, 10) AS prefix, MAX(number) AS top FROM "{table}" '  # noqa: S608
                "WHERE session_id = ? GROUP BY substr(number, 1, 10)",
            ),
            [session.id],
        )
        sync.serials = {row["prefix"]: int(row["top"][10:]) for row in rows}
        return sync

    def _next_number(self, content: dict[str, Any], centre: str) -> str:
        level = self.levels[content["subject"]]
        prefix = score_rules.report_prefix(self.session.year, self.session.half, level or 0, centre)
        serial = self.serials.get(prefix, 0) + 1
        self.serials[prefix] = serial
        return score_rules.report_number(prefix, serial)

    async def _paper_wishes(self, account_ids: set[int]) -> set[tuple[int, str]]:
        """(account, written subject code) of registrations that opted in to paper (R6)."""
        wishes: set[tuple[int, str]] = set()
        ids = sorted(account_ids)
        by_code = {s.code: s for s in self.subjects.values()}
        for start in range(0, len(ids), _IN_CHUNK):
            for account_id, code in await Registration.filter(
                session_id=self.session.id,
                account_id__in=ids[start : start + _IN_CHUNK],
                paper_report=True,
                status__in=[RegistrationStatus.PAID, RegistrationStatus.PENDING_PAYMENT],
            ).values_list("account_id", "offering__subject__code"):
                subject = by_code.get(code)  # type: ignore[call-overload]
                if subject is not None:
                    wishes.add((account_id, written_code(subject)))  # type: ignore[arg-type]
        return wishes

    async def _query(self, sql: str, values: list[Any]) -> list[dict[str, Any]]:
        return await self.connection.execute_query_dict(placeholders(self.dialect, sql), values)

    @property
    def dialect(self) -> str:
        return self.connection.capabilities.dialect

    async def _load(
        self, keys: list[str]
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
        """The records and every report version of ``keys``, by key, in two queries of plain
        SQL (thousands of keys per call: the ORM's query building would cost more than the
        database does)."""
        records: dict[str, list[dict[str, Any]]] = defaultdict(list)
        reports: dict[str, list[dict[str, Any]]] = defaultdict(list)
        condition = in_condition(self.dialect, "report_key", len(keys))
        for row in await self._query(
            f"SELECT {', '.join(RECORD_FIELDS)} FROM "  # noqa: S608
            f'"{ScoreRecord._meta.db_table}" WHERE session_id = ? AND {condition}',
            [self.session.id, *in_values(self.dialect, keys)],
        ):
            records[row["report_key"]].append(row)
        for row in await self._query(
            f"SELECT {', '.join(REPORT_FIELDS)} FROM "  # noqa: S608
            f'"{ScoreReport._meta.db_table}" WHERE session_id = ? AND {condition}',
            [self.session.id, *in_values(self.dialect, keys)],
        ):
            if isinstance(row["content"], str):
                row["content"] = json.loads(row["content"])
            reports[row["report_key"]].append(row)
        return records, reports

    async def sync(self, keys: Sequence[str]) -> None:
        """Issue, re-issue, rewrite or withdraw the reports of ``keys``."""
        keys = sorted({k for k in keys if k})
        if not keys:
            return
        records, reports = await self._load(keys)
        wishes = await self._paper_wishes(
            {r["account_id"] for rows in records.values() for r in rows if r["account_id"]}
        )
        created: list[list[Any]] = []
        superseded: list[int] = []
        rewritten: list[list[Any]] = []
        relinked: list[list[Any]] = []
        encode = ScoreReport._meta.fields_map["content"].to_db_value
        for key in keys:
            written = next(
                (r for r in records[key] if not self.subjects[r["subject_id"]].oral), None
            )
            oral = next((r for r in records[key] if self.subjects[r["subject_id"]].oral), None)
            content = report_content(self.session, written, oral, self.subjects)
            versions = sorted(reports[key], key=lambda r: r["version"])
            current = next((r for r in versions if r["superseded_at"] is None), None)
            if content is None:
                if current is not None:
                    superseded.append(current["id"])
                    self.stats.withdrawn += 1
                continue
            holder = written or oral
            assert holder is not None
            links = [written["id"] if written else None, oral["id"] if oral else None]
            values = [
                *links,
                holder["name"],
                str(holder["id_type"]),
                holder["id_number"],
                content["language"],
                encode(content, ScoreReport),
            ]
            if current is not None and current["content"] == content:
                if [current["written_record_id"], current["oral_record_id"]] != links:
                    relinked.append([*links, current["id"]])
                continue
            if current is not None and not self.released:
                # Nobody has seen it: correct it where it stands.
                rewritten.append([*values, current["id"]])
                self.stats.rewritten += 1
                continue
            paper: list[Any] = [None, None, None, None]
            if current is not None:
                superseded.append(current["id"])
                paper = [current[f] for f in _PAPER_FIELDS]
                self.stats.reissued += 1
            else:
                self.stats.issued += 1
                if holder["account_id"] and (holder["account_id"], content["subject"]) in wishes:
                    paper[0] = self.now
            centre = holder["centre_code"] or "000000"
            if versions:
                number, version = versions[-1]["number"], versions[-1]["version"] + 1
                centre = versions[-1]["centre_code"]
            else:
                number, version = self._next_number(content, centre), 1
            created.append(
                [self.session.id, key, number, version, centre, self.now, *values, *paper]
            )
        await self._write(created, superseded, rewritten, relinked)

    async def _write(
        self,
        created: list[list[Any]],
        superseded: list[int],
        rewritten: list[list[Any]],
        relinked: list[list[Any]],
    ) -> None:
        table = ScoreReport._meta.db_table
        for start in range(0, len(superseded), _IN_CHUNK):
            ids = superseded[start : start + _IN_CHUNK]
            await self.connection.execute_query(
                placeholders(
                    self.dialect,
                    f'UPDATE "{table}" SET superseded_at = ? '  # noqa: S608
                    f"WHERE {in_condition(self.dialect, 'id', len(ids), 'bigint')}",
                ),
                [self.now, *in_values(self.dialect, ids)],
            )
        if rewritten:
            assignments = ", ".join(f"{c} = ?" for c in _VALUE_FIELDS)
            await self.connection.execute_many(
                placeholders(self.dialect, f'UPDATE "{table}" SET {assignments} WHERE id = ?'),  # noqa: S608
                rewritten,
            )
        if relinked:
            await self.connection.execute_many(
                placeholders(
                    self.dialect,
                    f'UPDATE "{table}" SET written_record_id = ?, oral_record_id = ? '  # noqa: S608
                    "WHERE id = ?",
                ),
                relinked,
            )
        if not created:
            return
        if self.dialect == "postgres":
            # COPY: several times faster than a prepared INSERT per report.
            async with self.connection.acquire_connection() as raw:
                await raw.copy_records_to_table(table, records=created, columns=_INSERT_FIELDS)
            return
        marks = ", ".join("?" for _ in _INSERT_FIELDS)
        await self.connection.execute_many(
            placeholders(
                self.dialect,
                f'INSERT INTO "{table}" ({", ".join(_INSERT_FIELDS)}) VALUES ({marks})',  # noqa: S608
            ),
            created,
        )


async def sync_keys(session: ExamSession, keys: Sequence[str]) -> SyncStats:
    """Sync some keys of a session in a transaction of their own, holding the session lock."""
    await score_release.ensure_row(session.id)
    async with in_transaction() as connection:
        await score_release.lock(session.id)
        sync = await ReportSync.start(session, connection)
        await sync.sync(keys)
    return sync.stats


async def current_reports(pairs: Sequence[tuple[int, str]]) -> dict[tuple[int, str], ScoreReport]:
    """The current report of each (session id, report key)."""
    found: dict[tuple[int, str], ScoreReport] = {}
    by_session: dict[int, list[str]] = defaultdict(list)
    for session_id, key in pairs:
        if key:
            by_session[session_id].append(key)
    for session_id, keys in by_session.items():
        for start in range(0, len(keys), _IN_CHUNK):
            for report in await ScoreReport.filter(
                session_id=session_id,
                report_key__in=keys[start : start + _IN_CHUNK],
                superseded_at__isnull=True,
            ):
                found[(session_id, report.report_key)] = report
    return found


# --- paper reports (R6) ---------------------------------------------------------------------


class PaperStatus:
    AWAITING_COLLECTION = "AWAITING_COLLECTION"
    COLLECTED = "COLLECTED"
    FORFEITED = "FORFEITED"


def paper_status(report: ScoreReport, info: score_release.ReleaseInfo, now: datetime) -> str | None:
    """Where a requested paper copy stands; None when none was requested. Forfeited from the
    six-month deadline on, whether or not the job has marked it yet."""
    if report.paper_requested_at is None:
        return None
    if report.paper_collected_at is not None:
        return PaperStatus.COLLECTED
    if report.paper_forfeited_at is not None or (
        info.paper_collect_until is not None and now >= info.paper_collect_until
    ):
        return PaperStatus.FORFEITED
    return PaperStatus.AWAITING_COLLECTION


async def _can_record_collection(actor: Account, report: ScoreReport) -> bool:
    """The centre's school admin (written centre = school code + campus code), the province
    admin of the centre, or the national office."""
    scope = await access.scope_of(actor)
    if scope.national:
        return True
    if report.written_record_id is not None:
        school = await School.get_or_none(code=report.centre_code[:5])
        return school is not None and scope.covers_school(school)
    # An oral-only report: the oral centre's code starts with its province code.
    from cetgql.models import Province

    province = await Province.get_or_none(code=report.centre_code[:2])
    return province is not None and scope.covers_province(province.id)


async def record_collection(
    actor: Account, report_number: str, *, client_address: str | None = None
) -> ScoreReport:
    """The centre hands a paper report over (R6). Past the six-month deadline it is forfeited
    and not handed out."""
    number = report_number.strip()
    async with in_transaction():
        report = (
            await ScoreReport.select_for_update()
            .filter(number=number, superseded_at__isnull=True)
            .first()
        )
        if report is None or not await _can_record_collection(actor, report):
            raise DomainError.of(ErrorCode.NOT_FOUND, "reportNumber")
        now = clock.now()
        info = await score_release.info(report.session_id)
        if not info.released(now):
            raise DomainError.of(ErrorCode.NOT_FOUND, "reportNumber")
        status = paper_status(report, info, now)
        if status is None:
            raise DomainError.of(ErrorCode.PAPER_REPORT_NOT_REQUESTED, "reportNumber")
        if status == PaperStatus.COLLECTED:
            raise DomainError.of(ErrorCode.PAPER_REPORT_COLLECTED, "reportNumber")
        if status == PaperStatus.FORFEITED:
            raise DomainError.of(ErrorCode.PAPER_REPORT_FORFEITED, "reportNumber")
        report.paper_collected_at = now
        report.paper_collected_by = actor
        await report.save(update_fields=["paper_collected_at", "paper_collected_by_id"])
        await audit.record(
            "scores.paper_collected",
            actor=actor,
            subject=f"ScoreReport:{report.id}",
            client_address=client_address,
            number=report.number,
        )
    return report


async def forfeit_uncollected() -> int:
    """The periodic job: mark paper copies not collected within six months of their session's
    release forfeited. Readers already treat them so from the deadline on (R6)."""
    now = clock.now()
    released = await score_release.released_session_ids(now)
    infos = await score_release.infos(released)
    total = 0
    for session_id, info in infos.items():
        if info.paper_collect_until is None or now < info.paper_collect_until:
            continue
        total += await ScoreReport.filter(
            session_id=session_id,
            paper_requested_at__isnull=False,
            paper_collected_at__isnull=True,
            paper_forfeited_at__isnull=True,
            superseded_at__isnull=True,
        ).update(paper_forfeited_at=now)
    return total


async def paper_reports(
    actor: Account, session_code: str, *, school_code: str | None = None
) -> list[tuple[ScoreReport, str]]:
    """The paper copies a centre hands out: current reports of released sessions whose copy
    was requested, in the admin's scope, with their status, by number."""
    from cetgql.services import eligibility

    scope = await access.scope_of(actor)
    if not scope.is_admin:
        raise DomainError.of(ErrorCode.FORBIDDEN)
    session = await eligibility.session_by_code(session_code)
    now = clock.now()
    info = await score_release.info(session.id)
    if not info.released(now):
        return []
    query = ScoreReport.filter(
        session_id=session.id, paper_requested_at__isnull=False, superseded_at__isnull=True
    )
    if school_code:
        school = await School.get_or_none(code=school_code.strip())
        if school is None:
            raise DomainError.of(ErrorCode.UNKNOWN_SCHOOL, "schoolCode")
        if not scope.covers_school(school):
            raise DomainError.of(ErrorCode.OUT_OF_SCOPE, "schoolCode")
        query = query.filter(centre_code__startswith=school.code)
    elif not scope.national:
        raise DomainError.of(ErrorCode.REQUIRED, "schoolCode")
    reports = await query.order_by("number").limit(10_000)
    return [(r, paper_status(r, info, now) or "") for r in reports]
