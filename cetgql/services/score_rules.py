"""The reporting rules of scores (R2–R4), as plain functions of plain values.

Everything that decides what a score *says* lives here once: the import checks rows with it,
the history and the reports show scores through it, and score checks validate corrections
with it.

- Written sections: listening 0–248.5, reading 0–248.5, writing and translation 0–213, in
  half points; the total is their sum (0–710).
- The reported total is 0 when the candidate was absent, for a violation, or under 220
  (219.5 → 0, 220 → 220). The section scores are not reported then either: a report never
  shows parts of a total it reports as 0.
- Oral grades: sessions before 2023H1 (the May 2023 oral test) use A/B/C/D, D a fail; from
  2023H1 on 优秀/良好/合格, and 不合格 for a fail. A fail is never on a report.
- A report (R4) is issued for a candidate, session and level when the written total is 220 or
  more or the oral grade is a pass; one report carries both.
- Report numbers: year (2) + half (1) + level (1, the written subject's ticket digit) + centre
  (6) + serial (5): 15 digits.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from cetgql.services.errors import DomainError, ErrorCode

PASS_LINE = Decimal(220)
MAX_LISTENING = Decimal("248.5")
MAX_READING = Decimal("248.5")
MAX_WRITING_TRANSLATION = Decimal(213)
MAX_TOTAL = Decimal(710)
HALF = Decimal("0.5")
ONE_PLACE = Decimal("0.1")

FIRST_SESSION = (2005, 1)  # June 2005: the first sitting with records (R8, R9)
NEW_ORAL_SCALE_FROM = (2023, 1)  # the May 2023 oral test
ELECTRONIC_REPORTS_FROM = (2021, 1)  # R5

OLD_ORAL_SCALE = ("A", "B", "C", "D")
NEW_ORAL_SCALE = ("优秀", "良好", "合格", "不合格")
FAILED_GRADES = frozenset({"D", "不合格"})
_GRADE_ALIASES = {"优": "优秀", "良": "良好", "合": "合格", "不及格": "不合格"}


def score_value(text: str, maximum: Decimal, field: str) -> Decimal:
    """A score cell as a number of half points between 0 and ``maximum``."""
    cleaned = unicodedata.normalize("NFKC", text).strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation as error:
        raise DomainError.of(ErrorCode.INVALID_FORMAT, field) from error
    if not value.is_finite():
        raise DomainError.of(ErrorCode.INVALID_FORMAT, field)
    if value < 0 or value > maximum:
        raise DomainError.of(ErrorCode.SCORE_OUT_OF_RANGE, field)
    if (value / HALF) % 1 != 0:
        raise DomainError.of(ErrorCode.SCORE_NOT_HALF_POINT, field)
    return value.quantize(ONE_PLACE)


def check_total(listening: Decimal, reading: Decimal, writing: Decimal, total: str) -> Decimal:
    """The total: the sum of the sections, which a given total must equal."""
    computed = (listening + reading + writing).quantize(ONE_PLACE)
    if total.strip():
        given = score_value(total, MAX_TOTAL, "total")
        if given != computed:
            raise DomainError.of(ErrorCode.TOTAL_MISMATCH, "total", detail=f"{computed}")
    return computed


def reported_total(total: Decimal | None, absent: bool, violation: bool) -> Decimal:
    """R2: absent, a violation, no total or a total under 220 is reported as 0."""
    if absent or violation or total is None or Decimal(total) < PASS_LINE:
        return Decimal(0)
    return Decimal(total).quantize(ONE_PLACE)


def oral_scale(year: int, half: int) -> tuple[str, ...]:
    return NEW_ORAL_SCALE if (year, half) >= NEW_ORAL_SCALE_FROM else OLD_ORAL_SCALE


def oral_grade(text: str, year: int, half: int) -> str:
    """The grade of a cell in the scale of the session, or ``INVALID_ORAL_GRADE``."""
    cleaned = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).upper()
    cleaned = _GRADE_ALIASES.get(cleaned, cleaned)
    scale = oral_scale(year, half)
    if cleaned not in scale:
        raise DomainError.of(ErrorCode.INVALID_ORAL_GRADE, "oralGrade", detail="/".join(scale))
    return cleaned


def oral_passed(grade: str | None, absent: bool = False, violation: bool = False) -> bool:
    return bool(grade) and grade not in FAILED_GRADES and not absent and not violation


def oral_failed(grade: str | None) -> bool:
    return grade in FAILED_GRADES


def report_issued(
    written_total: Decimal | None, oral: str | None, *, oral_absent: bool = False
) -> bool:
    """R4: a report when the written score (as reported) is 220 or more or the oral passed."""
    return (written_total is not None and written_total >= PASS_LINE) or oral_passed(
        oral, oral_absent
    )


def report_prefix(year: int, half: int, level: int, centre: str) -> str:
    """The first ten digits of a report number: year, half, level, centre."""
    return f"{year % 100:02d}{half}{level}{centre}"


def report_number(prefix: str, serial: int) -> str:
    if not 1 <= serial <= 99_999:
        raise ValueError("report serials run from 00001 to 99999 per centre and level")
    return f"{prefix}{serial:05d}"


def electronic_reports(year: int, half: int) -> bool:
    """R5: electronic reports (certificates for the other languages) from 2021 H1 on."""
    return (year, half) >= ELECTRONIC_REPORTS_FROM
