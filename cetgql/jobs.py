"""The engines that run the periodic jobs of :mod:`cetgql.services.jobs` (see docs/jobs.md).

- PostgreSQL: procrastinate. Every worker (``cetgql worker`` processes, and API processes with
  ``CETGQL_RUN_JOBS=1``) tries to defer each cron tick; the insert into
  ``procrastinate_periodic_defers`` is unique on (task, periodic id, tick), so one job is
  created per tick however many workers race, and a job is fetched by exactly one worker
  (``FOR UPDATE SKIP LOCKED``). Jobs live in the database, so they survive restarts.
- SQLite (embedded, one process): :class:`InProcessScheduler`, an asyncio loop on the same
  cron schedules.

Nothing here knows what a job does; Tortoise must already be connected when jobs run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, LiteralString, cast

from croniter import croniter

from cetgql import db, metrics
from cetgql.services.jobs import PeriodicJob, registered
from cetgql.settings import Settings

if TYPE_CHECKING:
    import procrastinate
    import psycopg
    from procrastinate.app import WorkerOptions

logger = logging.getLogger("cetgql.jobs")

ENGINE_PROCRASTINATE = "procrastinate"
ENGINE_IN_PROCESS = "in-process"
QUEUE = "cetgql"
# A tick missed by more than this (all workers down) is skipped, not caught up; procrastinate's
# periodic deferrer uses the same 10 minutes.
MAX_DELAY = 600.0
MARGIN = 0.5  # wake a little after the tick, never before it
RESTART_DELAY = 30.0  # after an engine failure inside an API process
SHUTDOWN_GRACE = 10.0  # seconds a running job may take to finish when an API process stops
KEEP_FINISHED_JOBS_HOURS = 24 * 7
_SCHEMA_LOCK = 0x63657467716C  # pg advisory lock key ("cetgql") for installing the queue schema


def engine_for(database_url: str) -> str:
    return ENGINE_PROCRASTINATE if db.is_postgres(database_url) else ENGINE_IN_PROCESS


def latest_tick(cron: str, at: float) -> int:
    """The last tick of ``cron`` at or before ``at`` (Unix seconds, UTC)."""
    following = croniter(cron, at).get_next(float)
    return round(croniter(cron, following).get_prev(float))


def next_tick(cron: str, at: float) -> float:
    return float(croniter(cron, at).get_next(float))


async def run_job(job: PeriodicJob, tick: int) -> object:
    """Run one tick of a job, logging its outcome and counting it in the metrics (both
    engines)."""
    started = time.monotonic()
    try:
        result = await job.run()
    except Exception:
        metrics.observe_job(job.name, False, time.monotonic() - started)
        raise
    elapsed = time.monotonic() - started
    metrics.observe_job(job.name, True, elapsed)
    logger.info("job %s tick=%d done in %.3f s: %r", job.name, tick, elapsed, result)
    return result


class InProcessScheduler:
    """Runs each job once per tick inside this process (the embedded SQLite mode).

    Like procrastinate, the first check after start runs a job whose latest tick is at most
    ``max_delay`` old, and several ticks missed while a run was slow are coalesced into one run.
    A failing job is logged and runs again at its next tick.
    """

    def __init__(
        self, jobs: Iterable[PeriodicJob] | None = None, *, max_delay: float = MAX_DELAY
    ) -> None:
        self.jobs = tuple(registered() if jobs is None else jobs)
        self.max_delay = max_delay
        self._last: dict[str, int] = {}

    def _due(self, job: PeriodicJob, at: float) -> int | None:
        tick = latest_tick(job.cron, at)
        last = self._last.get(job.name)
        if last is None:
            return tick if at - tick <= self.max_delay else None
        return tick if tick > last else None

    async def run_due(self, at: float | None = None) -> dict[str, object]:
        """Run the jobs due at ``at`` (default now); their results, or the exception raised."""
        at = time.time() if at is None else at
        outcomes: dict[str, object] = {}
        for job in self.jobs:
            tick = self._due(job, at)
            if tick is None:
                continue
            self._last[job.name] = tick
            try:
                outcomes[job.name] = await run_job(job, tick)
            except Exception as error:
                logger.exception("job %s tick=%d failed; it runs again next tick", job.name, tick)
                outcomes[job.name] = error
        return outcomes

    def seconds_to_next_tick(self, at: float) -> float:
        return max(0.0, min(next_tick(job.cron, at) for job in self.jobs) - at)

    async def run_forever(self) -> None:
        if not self.jobs:
            logger.info("no periodic jobs registered")
            return
        logger.info("in-process scheduler running %s", ", ".join(j.name for j in self.jobs))
        while True:
            await self.run_due()
            await asyncio.sleep(self.seconds_to_next_tick(time.time()) + MARGIN)


# --- PostgreSQL: procrastinate -------------------------------------------------------------


def procrastinate_app(
    database_url: str, jobs: Iterable[PeriodicJob] | None = None, *, pool_size: int = 4
) -> procrastinate.App:
    """A procrastinate app with one periodic task per job, plus the queue's own upkeep."""
    from procrastinate import App, PsycopgConnector

    if not db.is_postgres(database_url):
        raise ValueError("procrastinate needs PostgreSQL; SQLite uses the in-process scheduler")
    app = App(
        connector=PsycopgConnector(
            conninfo=db.libpq_url(database_url), min_size=1, max_size=max(2, pool_size)
        )
    )
    for job in registered() if jobs is None else jobs:
        _add_periodic_task(app, job)
    _add_queue_upkeep(app)
    return app


def _add_periodic_task(app: procrastinate.App, job: PeriodicJob) -> None:
    async def run(timestamp: int) -> None:
        await run_job(job, timestamp)

    # The queueing lock keeps at most one tick of a job waiting: a backlog never piles up.
    task = app.task(name=job.name, queue=QUEUE, queueing_lock=job.name)(run)
    app.periodic(cron=job.cron)(task)


def _add_queue_upkeep(app: procrastinate.App) -> None:
    """Housekeeping of procrastinate's own tables (not business work)."""
    from procrastinate.jobs import Status

    async def fail_stalled_jobs(timestamp: int) -> None:
        # A job whose worker died (no heartbeat) stays "doing" forever; close it as failed.
        # Periodic jobs need no retry: their next tick does the work.
        for job in await app.job_manager.get_stalled_jobs():
            logger.warning("job %s (%s) stalled: its worker is gone", job.id, job.task_name)
            await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)

    async def remove_old_jobs(timestamp: int) -> None:
        await app.job_manager.delete_old_jobs(
            nb_hours=KEEP_FINISHED_JOBS_HOURS,
            include_failed=True,
            include_cancelled=True,
            include_aborted=True,
        )

    for cron, function in (("*/5 * * * *", fail_stalled_jobs), ("40 3 * * *", remove_old_jobs)):
        name = "queue-" + function.__name__.replace("_", "-")
        task = app.task(name=name, queue=QUEUE, queueing_lock=name)(function)
        app.periodic(cron=cron)(task)


async def ensure_queue_schema(database_url: str) -> list[str]:
    """Install procrastinate's schema, or apply the migrations it shipped since (idempotent).

    Concurrent callers are serialised by an advisory lock; each step runs in one transaction
    and is recorded in ``cetgql_procrastinate_migrations``. Returns the steps applied.
    """
    import psycopg
    from procrastinate.schema import SchemaManager

    migrations = _queue_migrations()
    applied: list[str] = []
    async with await psycopg.AsyncConnection.connect(
        db.libpq_url(database_url), autocommit=True
    ) as connection:
        await connection.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
        try:
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS cetgql_procrastinate_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cursor = await connection.execute("SELECT to_regclass('procrastinate_jobs')")
            row = await cursor.fetchone()
            installed = row is not None and row[0] is not None
            cursor = await connection.execute("SELECT name FROM cetgql_procrastinate_migrations")
            done = {name for (name,) in await cursor.fetchall()}
            if not installed or not done:
                # schema.sql is the result of every migration shipped with this version.
                async with connection.transaction():
                    if not installed:
                        await connection.execute(SchemaManager.get_schema())
                        applied.append("schema.sql")
                    await _record(connection, list(migrations))
                return applied
            for name, sql in migrations.items():
                if name in done:
                    continue
                async with connection.transaction():
                    await connection.execute(cast(LiteralString, sql))
                    await _record(connection, [name])
                applied.append(name)
            return applied
        finally:
            await connection.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))


def _queue_migrations() -> dict[str, str]:
    """procrastinate's migration scripts by file name, in the order they apply."""
    from procrastinate.schema import SchemaManager

    folder = Path(SchemaManager.get_migrations_path())
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.sql"))}


async def _record(connection: psycopg.AsyncConnection[Any], names: Sequence[str]) -> None:
    async with connection.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO cetgql_procrastinate_migrations (name) VALUES (%s) ON CONFLICT DO NOTHING",
            [(name,) for name in names],
        )


# --- running -------------------------------------------------------------------------------


async def run_worker(
    database_url: str,
    *,
    concurrency: int = 2,
    name: str | None = None,
    install_signal_handlers: bool = True,
    shutdown_graceful_timeout: float | None = None,
    jobs: Iterable[PeriodicJob] | None = None,
) -> None:
    """Run the jobs until stopped (a signal when ``install_signal_handlers``, else cancel)."""
    if engine_for(database_url) == ENGINE_IN_PROCESS:
        scheduler = InProcessScheduler(jobs)
        if install_signal_handlers:
            await _until_signalled(scheduler.run_forever())
        else:
            await scheduler.run_forever()
        return
    app = procrastinate_app(database_url, jobs, pool_size=concurrency + 3)
    options: WorkerOptions = {
        "concurrency": concurrency,
        "name": name or f"worker-{os.getpid()}",
        "install_signal_handlers": install_signal_handlers,
    }
    if shutdown_graceful_timeout is not None:
        options["shutdown_graceful_timeout"] = shutdown_graceful_timeout
    async with app.open_async():
        await app.run_worker_async(**options)


async def _until_signalled(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` until it ends or SIGINT/SIGTERM arrives (then cancel it)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(work)
    waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        waiter.cancel()
        task.cancel()
        await asyncio.gather(waiter, task, return_exceptions=True)
    if not task.cancelled():
        task.result()  # re-raise what stopped the work


class BackgroundJobs:
    """The jobs engine inside an API process, started and stopped by the app's lifespan.

    An engine failure (database down, queue schema missing) is logged and retried later: the
    API keeps serving, since no read depends on a job having run.
    """

    def __init__(self, database_url: str, *, concurrency: int = 1) -> None:
        self.database_url = database_url
        self.engine = engine_for(database_url)
        self.concurrency = concurrency
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name="cetgql-jobs")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _supervise(self) -> None:
        while True:
            try:
                await run_worker(
                    self.database_url,
                    concurrency=self.concurrency,
                    name=f"api-{os.getpid()}",
                    install_signal_handlers=False,
                    shutdown_graceful_timeout=SHUTDOWN_GRACE,
                )
                return
            except Exception:
                logger.exception("background jobs failed; restarting in %.0f s", RESTART_DELAY)
                await asyncio.sleep(RESTART_DELAY)


@contextlib.asynccontextmanager
async def background(settings: Settings) -> AsyncIterator[BackgroundJobs | None]:
    """Run the jobs in this process for the duration of the block if ``settings.run_jobs``."""
    if not settings.run_jobs:
        yield None
        return
    jobs = BackgroundJobs(settings.database_url)
    jobs.start()
    try:
        yield jobs
    finally:
        await jobs.stop()
