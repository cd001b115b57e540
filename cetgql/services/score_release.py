"""Score release (R1) and the periods counted from it (R3, R5–R7).

- The national office sets the exact release time of each session. Until that instant nothing
  of the session shows anywhere: not in the history, not through ``node``, not on a report,
  certificate or verification. With no time set, the session is simply not released.
- The default it proposes (and uses when the admin gives no time) is 10:00 Beijing time on the
  60th working day after the last exam day of the session.
- Counted from the release day, in working days of :mod:`work_calendar`:
  the electronic report is available from 00:00 (Beijing) of the 10th working day after it
  (R5); score checks and paper-report requests are taken through the end of the N-th working
  day after it, N being per-session settings (default 10, see docs/scores.md).
- A paper report may be collected for six calendar months from the release instant (R6).
- A failed (or missed) oral test is visible from its session's release until the next
  session's release (R3: "只在当次考试成绩发布时可查询"): once the next results are out, the
  fail no longer shows.

All of these are computed when read, never stored: an admin who enters next year's calendar
moves the dates that depend on it at once, and nothing depends on a job having run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.functions import Count, Max
from tortoise.transactions import in_transaction

from cetgql.models import (
    Account,
    ExamSession,
    ScoreRelease,
    SessionSubject,
    WorkCalendarYear,
)
from cetgql.services import access, audit, clock, eligibility, work_calendar
from cetgql.services.clock import SHANGHAI
from cetgql.services.errors import DomainError, ErrorCode

RELEASE_AFTER_WORKING_DAYS = 60
ELECTRONIC_AFTER_WORKING_DAYS = 10
DEFAULT_PERIOD_WORKING_DAYS = 10
MAX_PERIOD_WORKING_DAYS = 60
DEFAULT_RELEASE_TIME = time(10, 0)
PAPER_COLLECTION_MONTHS = 6


def add_months(moment: datetime, months: int) -> datetime:
    """The same wall-clock time ``months`` later (in Beijing), clamped to the month's end:
    Aug 31 + 6 months is Feb 28 (or 29)."""
    local = moment.astimezone(SHANGHAI)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    next_month = date(year + (month == 12), month % 12 + 1, 1)
    last_day = (next_month - timedelta(days=1)).day
    return local.replace(year=year, month=month, day=min(local.day, last_day))


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=SHANGHAI)


# --- counting, memoised per calendar version -----------------------------------------------

_memo: dict[tuple[Any, date, int], work_calendar.CountedDay] = {}


async def _calendar_version() -> tuple[Any, ...]:
    """Changes whenever a year is entered or replaced, so memoised counts never go stale."""
    row = (
        await WorkCalendarYear.all()
        .annotate(n=Count("id"), latest=Max("updated_at"))
        .values_list("n", "latest")
    )
    return tuple(row[0]) if row else (0, None)


class Counter:
    """Counts working days with the calendar as it is now, each distinct count once."""

    def __init__(self, version: tuple[Any, ...]) -> None:
        self.version = version

    @classmethod
    async def current(cls) -> Counter:
        return cls(await _calendar_version())

    async def after(self, start: date, count: int) -> work_calendar.CountedDay:
        key = (self.version, start, count)
        found = _memo.get(key)
        if found is None:
            found = await work_calendar.working_day_after(start, count)
            if len(_memo) > 10_000:
                _memo.clear()
            # Keyed by the version seen before counting: if the count seeded a year from the
            # package, the next version differs and the next reader counts again, harmlessly.
            _memo[key] = found
        return found


# --- what a session's release means --------------------------------------------------------


@dataclass(frozen=True)
class ReleaseInfo:
    """A session's release and every instant that follows from it."""

    session_id: int
    session_code: str
    year: int
    half: int
    release_at: datetime | None
    verification_working_days: int
    paper_request_working_days: int
    next_release_at: datetime | None  # the following session's release: fails stop showing
    electronic_from: datetime | None = None
    verification_until: datetime | None = None
    paper_request_until: datetime | None = None
    paper_collect_until: datetime | None = None
    provisional: bool = False  # some date was counted through a year the calendar lacks

    def released(self, now: datetime) -> bool:
        return self.release_at is not None and now >= self.release_at

    def fail_visible(self, now: datetime) -> bool:
        return self.released(now) and (self.next_release_at is None or now < self.next_release_at)

    def electronic_available(self, now: datetime) -> bool:
        return self.electronic_from is not None and now >= self.electronic_from

    def verification_open(self, now: datetime) -> bool:
        return (
            self.released(now)
            and self.verification_until is not None
            and now < self.verification_until
        )

    def paper_request_open(self, now: datetime) -> bool:
        return (
            self.released(now)
            and self.paper_request_until is not None
            and now < self.paper_request_until
        )


async def infos(session_ids: list[int], counter: Counter | None = None) -> dict[int, ReleaseInfo]:
    """The release of each session (a handful of queries, whatever the number of sessions)."""
    if not session_ids:
        return {}
    counter = counter or await Counter.current()
    sessions = {s.id: s for s in await ExamSession.filter(id__in=session_ids)}
    releases = {r.session_id: r for r in await ScoreRelease.filter(session_id__in=session_ids)}
    timeline = sorted(
        (year, half, release_at)
        for year, half, release_at in await ScoreRelease.filter(
            release_at__isnull=False
        ).values_list("session__year", "session__half", "release_at")
    )
    result: dict[int, ReleaseInfo] = {}
    for session_id in session_ids:
        session = sessions.get(session_id)
        if session is None:
            continue
        release = releases.get(session_id)
        release_at = release.release_at if release else None
        following = [at for y, h, at in timeline if (y, h) > (session.year, session.half)]
        info = ReleaseInfo(
            session_id=session.id,
            session_code=session.code,
            year=session.year,
            half=session.half,
            release_at=release_at,
            verification_working_days=(
                release.verification_working_days if release else DEFAULT_PERIOD_WORKING_DAYS
            ),
            paper_request_working_days=(
                release.paper_request_working_days if release else DEFAULT_PERIOD_WORKING_DAYS
            ),
            next_release_at=min(following) if following else None,
        )
        result[session_id] = await _with_deadlines(info, counter) if release_at else info
    return result


async def info(session_id: int) -> ReleaseInfo:
    return (await infos([session_id]))[session_id]


async def _with_deadlines(info: ReleaseInfo, counter: Counter) -> ReleaseInfo:
    assert info.release_at is not None
    day = info.release_at.astimezone(SHANGHAI).date()
    electronic = await counter.after(day, ELECTRONIC_AFTER_WORKING_DAYS)
    checks = await counter.after(day, info.verification_working_days)
    paper = await counter.after(day, info.paper_request_working_days)
    return ReleaseInfo(
        **{
            **info.__dict__,
            "electronic_from": _start_of(electronic.day),
            "verification_until": _start_of(checks.day + timedelta(days=1)),
            "paper_request_until": _start_of(paper.day + timedelta(days=1)),
            "paper_collect_until": add_months(info.release_at, PAPER_COLLECTION_MONTHS),
            "provisional": electronic.provisional or checks.provisional or paper.provisional,
        }
    )


async def released_session_ids(now: datetime | None = None) -> list[int]:
    """Sessions whose scores are out at ``now``."""
    moment = now or clock.now()
    return list(
        await ScoreRelease.filter(release_at__lte=moment).values_list("session_id", flat=True)  # type: ignore[arg-type]
    )


async def exam_day(session: ExamSession) -> date | None:
    """The last exam day of the session (Beijing), from its timetable."""
    row = (
        await SessionSubject.filter(session_id=session.id)
        .annotate(last=Max("ends_at"))
        .values_list("last", flat=True)
    )
    last = row[0] if row else None
    if last is None:
        return None
    moment = last if isinstance(last, datetime) else datetime.fromisoformat(str(last))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    return moment.astimezone(SHANGHAI).date()


async def default_release(session: ExamSession) -> work_calendar.CountedDay | None:
    """The 60th working day after the exam: the release date the office starts from (R1)."""
    day = await exam_day(session)
    if day is None:
        return None
    return await (await Counter.current()).after(day, RELEASE_AFTER_WORKING_DAYS)


# --- the national office's settings --------------------------------------------------------


async def ensure_row(session_id: int) -> None:
    """The session's release row, so that it can be locked (see :func:`lock`)."""
    if await ScoreRelease.exists(session_id=session_id):
        return
    try:
        async with in_transaction():
            await ScoreRelease.create(session_id=session_id, updated_at=clock.now())
    except IntegrityError:
        pass  # made by a concurrent request


async def lock(session_id: int) -> ScoreRelease:
    """Lock the session's release row (call :func:`ensure_row` first, outside the
    transaction): score imports and corrections of one session take their turns, so report
    serials are handed out once and a correction never interleaves with an import."""
    return await ScoreRelease.select_for_update().get(session_id=session_id)


def _check_days(value: int | None, field: str) -> None:
    if value is not None and not 1 <= value <= MAX_PERIOD_WORKING_DAYS:
        raise DomainError.of(ErrorCode.INVALID_FORMAT, field, detail=f"1–{MAX_PERIOD_WORKING_DAYS}")


async def set_release(
    actor: Account | None,
    session_code: str,
    *,
    release_at: datetime | None = None,
    verification_working_days: int | None = None,
    paper_request_working_days: int | None = None,
    client_address: str | None = None,
) -> ReleaseInfo:
    """Set the session's release time (or, given none and none set yet, the default) and the
    lengths of its periods. Once the release instant has passed it cannot move: reports,
    checks and collection deadlines count from it. ``actor`` None is the command line."""
    if actor is not None:
        await access.require_national(actor)
    session = await eligibility.session_by_code(session_code)
    _check_days(verification_working_days, "verificationWorkingDays")
    _check_days(paper_request_working_days, "paperRequestWorkingDays")
    if release_at is not None and release_at.tzinfo is None:
        release_at = release_at.replace(tzinfo=SHANGHAI)
    default = None
    if release_at is None:
        default = await default_release(session)
    await ensure_row(session.id)
    now = clock.now()
    async with in_transaction():
        row = await lock(session.id)
        changes: dict[str, Any] = {}
        if release_at is None and row.release_at is None:
            if default is None:
                raise DomainError.of(ErrorCode.REQUIRED, "releaseAt")
            release_at = datetime.combine(default.day, DEFAULT_RELEASE_TIME, tzinfo=SHANGHAI)
        if release_at is not None and release_at != row.release_at:
            if row.release_at is not None and row.release_at <= now:
                raise DomainError.of(ErrorCode.SCORES_ALREADY_RELEASED, "releaseAt")
            row.release_at = release_at
            changes["release_at"] = release_at.isoformat()
        if verification_working_days is not None:
            row.verification_working_days = verification_working_days
            changes["verification_working_days"] = verification_working_days
        if paper_request_working_days is not None:
            row.paper_request_working_days = paper_request_working_days
            changes["paper_request_working_days"] = paper_request_working_days
        row.updated_at = now
        await row.save()
        await audit.record(
            "scores.release_set",
            actor=actor,
            subject=f"ExamSession:{session.id}",
            client_address=client_address,
            **changes,
        )
    return await info(session.id)
