"""Working days (工作日) of mainland China: holidays, and weekend days worked in exchange (调休).

Score release is "about 60 working days after the exam" and the electronic report comes "10
working days after release" (R1, R5); counting those across 国庆 or 春节 with a plain
Monday-to-Friday rule is off by a week or more. The State Council announces each year's
arrangement late in the year before, so no package can know the future: the calendar lives in
the database.

- A year is *known* when it has a :class:`WorkCalendarYear` row. Its exceptional days (holidays
  and make-up working days, each with its name) are :class:`WorkCalendarDay` rows; every other
  day follows its weekday.
- The years the ``chinesecalendar`` package covers (2004–2026 in 1.11) are copied in on first
  use, one year at a time, so a fresh database needs no set-up step (``cetgql calendar seed``
  does it up front). A year already in the database is never overwritten by the package: an
  admin's correction stays.
- The national office enters a later year (``setWorkingCalendar``, ``cetgql calendar
  set-year``): the whole year at once, replacing what was there.
- Counting into a year nobody entered falls back to Monday-to-Friday and says so
  (``provisional``), rather than failing: a read such as "when is my electronic report
  available" must still answer, and the answer firms up once the year is entered.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from cetgql.models import Account, WorkCalendarDay, WorkCalendarYear
from cetgql.services import access, audit, clock
from cetgql.services.errors import DomainError, ErrorCode, Problem

SOURCE_PACKAGE = "chinesecalendar"
SOURCE_ADMIN = "admin"
MIN_YEAR = 2004
MAX_YEAR = 2100
MAX_NAME = 64

# The package names holidays in English; candidates and admins read Chinese.
HOLIDAY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "Mid-autumn Festival": "中秋节",
    "National Day": "国庆节",
    "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
}


@dataclass(frozen=True)
class DaySpec:
    """One exceptional day: a holiday (``workday`` False) or a make-up working day (True)."""

    day: date
    workday: bool
    name: str = ""


@dataclass(frozen=True)
class CountedDay:
    """A date reached by counting working days, and whether the count passed through a year
    the calendar does not know (and so assumed Monday to Friday)."""

    day: date
    provisional: bool


def package_years() -> range:
    """The years the installed ``chinesecalendar`` covers."""
    import chinese_calendar

    first = min(chinese_calendar.holidays).year
    last = max(max(chinese_calendar.holidays).year, max(chinese_calendar.workdays).year)
    return range(first, last + 1)


def package_days(year: int) -> list[DaySpec]:
    """The exceptional days of ``year`` according to ``chinesecalendar``."""
    import chinese_calendar

    days = [
        DaySpec(d, False, HOLIDAY_NAMES.get(name, name))
        for d, name in chinese_calendar.holidays.items()
        if d.year == year
    ]
    days += [
        DaySpec(d, True, HOLIDAY_NAMES.get(name, name) + "调休")
        for d, name in chinese_calendar.workdays.items()
        if d.year == year
    ]
    return sorted(days, key=lambda spec: spec.day)


async def _store_year(year: int, days: Sequence[DaySpec], source: str) -> None:
    """Replace the year's days (in the caller's transaction)."""
    await WorkCalendarDay.filter(year=year).delete()
    await WorkCalendarDay.bulk_create(
        [WorkCalendarDay(day=d.day, year=year, workday=d.workday, name=d.name) for d in days]
    )
    await WorkCalendarYear.filter(year=year).delete()
    await WorkCalendarYear.create(year=year, source=source, updated_at=clock.now())


async def ensure_years(years: Iterable[int]) -> None:
    """Copy the package's years among ``years`` that the database does not know yet."""
    wanted = set(years) & set(package_years())
    if not wanted:
        return
    known = await _known_years(wanted)
    for year in sorted(wanted - known):
        try:
            async with in_transaction():
                await _store_year(year, package_days(year), SOURCE_PACKAGE)
        except IntegrityError:
            pass  # another process seeded the same year at the same moment


async def seed() -> list[int]:
    """Copy every year of the package the database lacks; the years copied."""
    before = await _known_years()
    await ensure_years(package_years())
    return sorted(await _known_years() - before)


async def _known_years(years: Iterable[int] | None = None) -> set[int]:
    query = (
        WorkCalendarYear.all() if years is None else WorkCalendarYear.filter(year__in=list(years))
    )
    return {int(row["year"]) for row in await query.values("year")}


async def _days_between(first: date, last: date) -> tuple[dict[date, bool], set[int]]:
    """Exceptional days in [first, last] and the known years among theirs."""
    years = range(first.year, last.year + 1)
    await ensure_years(years)
    known = await _known_years(years)
    rows = await WorkCalendarDay.filter(day__gte=first, day__lte=last).values("day", "workday")
    return {row["day"]: bool(row["workday"]) for row in rows}, known


def _is_workday(day: date, exceptions: dict[date, bool]) -> bool:
    found = exceptions.get(day)
    return found if found is not None else day.weekday() < 5


async def is_workday(day: date) -> bool:
    exceptions, _ = await _days_between(day, day)
    return _is_workday(day, exceptions)


async def working_day_after(start: date, count: int) -> CountedDay:
    """The ``count``-th working day after ``start`` (``start`` itself not counted).

    ``working_day_after(exam day, 60)`` is the default release date; ``working_day_after(
    release day, 10)`` the first day of the electronic report."""
    if count < 1:
        raise ValueError("count must be at least 1")
    # Loaded in windows wide enough for the longest holidays; a longer count takes more.
    window = timedelta(days=count * 2 + 21)
    first = start + timedelta(days=1)
    found = 0
    provisional = False
    while True:
        last = first + window
        exceptions, known = await _days_between(first, last)
        day = first
        while day <= last:
            if day.year not in known:
                provisional = True
            if _is_workday(day, exceptions):
                found += 1
                if found == count:
                    return CountedDay(day, provisional)
            day += timedelta(days=1)
        first = last + timedelta(days=1)


# --- the calendar as admins and candidates see it -------------------------------------------


@dataclass(frozen=True)
class CalendarYear:
    year: int
    known: bool
    source: str | None
    days: list[DaySpec]


async def calendar_year(year: int) -> CalendarYear:
    """A year's exceptional days, and whether the calendar knows the year at all."""
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise DomainError.of(ErrorCode.INVALID_FORMAT, "year")
    await ensure_years([year])
    entry = await WorkCalendarYear.get_or_none(year=year)
    rows = await WorkCalendarDay.filter(year=year).order_by("day")
    return CalendarYear(
        year=year,
        known=entry is not None,
        source=entry.source if entry else None,
        days=[DaySpec(r.day, r.workday, r.name) for r in rows],
    )


def _check_days(year: int, days: Sequence[DaySpec]) -> list[DaySpec]:
    problems: list[Problem] = []
    seen: set[date] = set()
    cleaned: list[DaySpec] = []
    for index, spec in enumerate(days):
        path = ("days", str(index))
        name = unicodedata.normalize("NFC", spec.name).strip()
        if spec.day.year != year:
            problems.append(Problem(ErrorCode.DAY_OUTSIDE_YEAR, (*path, "date")))
        elif spec.day in seen:
            problems.append(Problem(ErrorCode.DUPLICATE_ROW, (*path, "date")))
        if len(name) > MAX_NAME:
            problems.append(Problem(ErrorCode.TOO_LONG, (*path, "name")))
        seen.add(spec.day)
        cleaned.append(DaySpec(spec.day, spec.workday, name))
    if problems:
        raise DomainError(problems)
    return sorted(cleaned, key=lambda spec: spec.day)


async def set_year(
    actor: Account | None,
    year: int,
    days: Sequence[DaySpec],
    *,
    client_address: str | None = None,
) -> CalendarYear:
    """The national office enters (or corrects) a whole year: its holidays and make-up
    working days; every other day follows its weekday. ``actor`` None is the command line."""
    if actor is not None:
        await access.require_national(actor)
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise DomainError.of(ErrorCode.INVALID_FORMAT, "year")
    cleaned = _check_days(year, days)
    async with in_transaction():
        await _store_year(year, cleaned, SOURCE_ADMIN)
        await audit.record(
            "calendar.year_set",
            actor=actor,
            subject=f"WorkCalendarYear:{year}",
            client_address=client_address,
            holidays=sum(1 for d in cleaned if not d.workday),
            workdays=sum(1 for d in cleaned if d.workday),
        )
    return await calendar_year(year)


_KINDS = {
    "休": False,
    "假": False,
    "holiday": False,
    "off": False,
    "0": False,
    "班": True,
    "workday": True,
    "work": True,
    "1": True,
}


def read_days(text: str) -> list[DaySpec]:
    """Days from CSV lines ``date,kind,name`` (``2027-10-01,休,国庆节``; kind 休/holiday or
    班/workday), for ``cetgql calendar set-year``. A header line is skipped; problems name
    their line."""
    import csv
    import io

    days: list[DaySpec] = []
    problems: list[Problem] = []
    for line, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in cells]
        if not any(cells) or (line == 1 and not cells[0][:1].isdigit()):
            continue
        try:
            day = date.fromisoformat(cells[0])
        except ValueError:
            problems.append(Problem(ErrorCode.INVALID_FORMAT, ("date",), f"line {line}"))
            continue
        kind = _KINDS.get((cells[1] if len(cells) > 1 else "").lower())
        if kind is None:
            problems.append(Problem(ErrorCode.INVALID_FORMAT, ("workday",), f"line {line}"))
            continue
        days.append(DaySpec(day, kind, cells[2] if len(cells) > 2 else ""))
    if problems:
        raise DomainError(problems)
    return days
