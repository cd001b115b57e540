"""The subject catalogue and the sessions that offer it (S1).

June sessions offer every written language, December only English; the oral English tests sit
in May and November. Fours sit in the morning and sixes in the afternoon of the written day, so
two subjects of one slot can never both be taken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from cetgql.models import ExamSession, SessionSubject, Subject, SubjectKind
from cetgql.services.clock import SHANGHAI
from cetgql.services.errors import DomainError, ErrorCode


@dataclass(frozen=True)
class SubjectSpec:
    code: str
    name: str
    kind: SubjectKind
    level: int
    language: str
    ticket_code: int | None = None
    written_prerequisite: str | None = None


CATALOGUE: tuple[SubjectSpec, ...] = (
    SubjectSpec("CET4", "英语四级", SubjectKind.WRITTEN, 4, "ENGLISH", 1),
    SubjectSpec("CET6", "英语六级", SubjectKind.WRITTEN, 6, "ENGLISH", 2),
    SubjectSpec("CJT4", "日语四级", SubjectKind.WRITTEN, 4, "JAPANESE", 3),
    SubjectSpec("CJT6", "日语六级", SubjectKind.WRITTEN, 6, "JAPANESE", 4),
    SubjectSpec("CGT4", "德语四级", SubjectKind.WRITTEN, 4, "GERMAN", 5),
    SubjectSpec("CGT6", "德语六级", SubjectKind.WRITTEN, 6, "GERMAN", 6),
    SubjectSpec("CRT4", "俄语四级", SubjectKind.WRITTEN, 4, "RUSSIAN", 7),
    SubjectSpec("CRT6", "俄语六级", SubjectKind.WRITTEN, 6, "RUSSIAN", 8),
    SubjectSpec("CFT4", "法语四级", SubjectKind.WRITTEN, 4, "FRENCH", 9),
    SubjectSpec("CET-SET4", "英语四级口语", SubjectKind.ORAL, 4, "ENGLISH", None, "CET4"),
    SubjectSpec("CET-SET6", "英语六级口语", SubjectKind.ORAL, 6, "ENGLISH", None, "CET6"),
)

_JUNE_ONLY = {"CJT4", "CJT6", "CGT4", "CGT6", "CRT4", "CRT6", "CFT4"}
_SESSION_CODE = re.compile(r"^(20\d\d)H([12])$")


def parse_session_code(code: str) -> tuple[int, int]:
    match = _SESSION_CODE.match(code.strip().upper())
    if not match:
        raise DomainError.of(ErrorCode.INVALID_FORMAT, "sessionCode")
    return int(match.group(1)), int(match.group(2))


def _second_saturday(year: int, month: int) -> date:
    first = date(year, month, 1)
    first_saturday = first + timedelta(days=(5 - first.weekday()) % 7)
    return first_saturday + timedelta(days=7)


def _at(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI)


def default_timetable(year: int, half: int) -> dict[str, tuple[str, datetime, datetime]]:
    """Subject code → (slot, start, end) in the usual pattern of a half year."""
    written_day = _second_saturday(year, 6 if half == 1 else 12)
    oral_day = written_day - timedelta(days=20)  # the oral weekend, three weeks earlier
    table: dict[str, tuple[str, datetime, datetime]] = {}
    for spec in CATALOGUE:
        if spec.kind == SubjectKind.ORAL:
            day = oral_day if spec.level == 4 else oral_day + timedelta(days=1)
            table[spec.code] = (f"ORAL-{day.isoformat()}", _at(day, 9, 0), _at(day, 17, 0))
        elif half == 2 and spec.code in _JUNE_ONLY:
            continue
        elif spec.level == 4:
            table[spec.code] = (
                f"{written_day.isoformat()}-AM",
                _at(written_day, 9, 0),
                _at(written_day, 11, 20),
            )
        else:
            table[spec.code] = (
                f"{written_day.isoformat()}-PM",
                _at(written_day, 15, 0),
                _at(written_day, 17, 25),
            )
    return table


async def ensure_catalogue() -> dict[str, Subject]:
    subjects = {s.code: s for s in await Subject.all()}
    for spec in CATALOGUE:
        if spec.code not in subjects:
            subjects[spec.code] = await Subject.create(
                code=spec.code,
                name=spec.name,
                kind=spec.kind,
                level=spec.level,
                language=spec.language,
                ticket_code=spec.ticket_code,
                written_prerequisite=spec.written_prerequisite,
            )
    return subjects


async def ensure_session(code: str) -> ExamSession:
    """The session with this code, created with the default timetable if it is new."""
    year, half = parse_session_code(code)
    code = f"{year}H{half}"
    session = await ExamSession.get_or_none(code=code)
    if session is not None:
        return session
    subjects = await ensure_catalogue()
    session = await ExamSession.create(
        code=code,
        year=year,
        half=half,
        name=f"{year}年{'上' if half == 1 else '下'}半年全国大学英语四、六级考试",
    )
    await SessionSubject.bulk_create(
        [
            SessionSubject(
                session=session,
                subject=subjects[subject_code],
                slot=slot,
                starts_at=start,
                ends_at=end,
            )
            for subject_code, (slot, start, end) in default_timetable(year, half).items()
        ]
    )
    return session
