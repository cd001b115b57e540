"""Periodic jobs (DESIGN §2, S8) on the real database: the registry, the in-process scheduler,
the jobs inside an API process, and one run per tick across several worker processes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from tortoise import Tortoise

from cetgql import db, jobs, models
from cetgql.app import create_app
from cetgql.models import OrderStatus
from cetgql.services import clock, rate_limits, registration
from cetgql.services.jobs import PeriodicJob, register, registered
from tests.registration_setup import SESSION, build_world, qualified_candidate

ROOT = Path(__file__).resolve().parent.parent
LAPSE = "lapse-overdue-orders"
PRUNE = "prune-rate-limits"
# 2026-06-01 08:00:30 UTC: 30 s after a tick of the minutely and of the hourly job.
EIGHT_AM_AND_30_S = 1_780_300_830.0
QUEUE_TABLES = (
    "procrastinate_jobs",
    "procrastinate_periodic_defers",
    "procrastinate_events",
    "procrastinate_workers",
)


@pytest.fixture(autouse=True)
async def empty_job_queue(database: str) -> None:
    """On PostgreSQL each test also starts from an empty procrastinate queue."""
    if db.is_postgres(database):
        tables = ", ".join(QUEUE_TABLES)
        await Tortoise.get_connection("default").execute_script(
            f"TRUNCATE {tables} RESTART IDENTITY CASCADE"
        )


def job(name: str) -> PeriodicJob:
    return next(j for j in registered() if j.name == name)


async def unpaid_order() -> models.Order:
    world = await build_world()
    me = await qualified_candidate(world)
    [order] = await registration.select_subjects(me.account, SESSION, [registration.Choice("CET4")])
    return order


async def status_of(order: models.Order) -> OrderStatus:
    return (await models.Order.get(id=order.id)).status


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def rows(sql: str, *params: object) -> list[dict]:
    return await Tortoise.get_connection("default").execute_query_dict(sql, list(params))


def test_registry_names_each_housekeeping_job_with_its_schedule():
    assert job(LAPSE).run is registration.lapse_overdue_orders
    assert job(LAPSE).cron == "* * * * *"  # every minute
    assert job(PRUNE).run is rate_limits.prune
    assert job(PRUNE).cron == "0 * * * *"  # hourly
    with pytest.raises(ValueError, match="already registered"):
        register(LAPSE, "* * * * *", registration.lapse_overdue_orders)
    with pytest.raises(ValueError, match="cron"):
        register("another-job", "every minute", registration.lapse_overdue_orders)


async def test_scheduler_lapses_overdue_orders_every_minute_and_prunes_hourly():
    order = await unpaid_order()
    scheduler = jobs.InProcessScheduler([job(LAPSE), job(PRUNE)])
    at = EIGHT_AM_AND_30_S

    # After a start, the latest tick of each job runs at once (as procrastinate does).
    assert await scheduler.run_due(at=at) == {LAPSE: 0, PRUNE: 0}
    assert await scheduler.run_due(at=at + 20) == {}  # nothing due within the same minute

    clock.advance(timedelta(hours=24, seconds=1))
    stale = await models.RateLimitHit.create(bucket="test", at=clock.now() - timedelta(days=2))
    assert await scheduler.run_due(at=at + 31) == {LAPSE: 1}  # 08:01:01: the next minute
    assert await status_of(order) == OrderStatus.LAPSED
    assert await models.RateLimitHit.filter(id=stale.id).exists()  # not this minute

    # Ticks missed while a run was slow are coalesced into one run per job.
    assert await scheduler.run_due(at=at + 3600) == {LAPSE: 0, PRUNE: 1}  # 09:00:30
    assert not await models.RateLimitHit.filter(id=stale.id).exists()


async def test_scheduler_survives_a_failing_job_and_stops_on_cancel(caplog):
    calls = {"boom": 0, "count": 0}

    async def boom() -> None:
        calls["boom"] += 1
        raise RuntimeError("provider unreachable")

    async def count() -> int:
        calls["count"] += 1
        return calls["count"]

    every_second = "* * * * * *"
    scheduler = jobs.InProcessScheduler(
        [PeriodicJob("boom", every_second, boom), PeriodicJob("count", every_second, count)]
    )
    with caplog.at_level(logging.ERROR, logger="cetgql.jobs"):
        task = asyncio.create_task(scheduler.run_forever())

        async def ran_twice() -> bool:
            return calls["count"] >= 2

        await eventually(ran_twice, within=10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert task.cancelled()
    assert calls["boom"] >= 2  # it failed, and ran again at its next tick
    assert any("job boom" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_each_api_process_runs_the_jobs_in_the_background(settings, database):
    order = await unpaid_order()
    clock.advance(timedelta(hours=24, seconds=1))
    app = create_app(settings, manage_database=False)

    async def lapsed() -> bool:
        return await status_of(order) == OrderStatus.LAPSED

    async with app.router.lifespan_context(app):
        background = app.state.jobs
        expected = "procrastinate" if db.is_postgres(database) else "in-process"
        assert background.engine == expected
        assert background.running
        await eventually(lapsed)
    assert not background.running

    quiet = create_app(settings.with_overrides(run_jobs=False), manage_database=False)
    async with quiet.router.lifespan_context(quiet):
        assert quiet.state.jobs is None


async def test_migrate_installs_the_job_queue_schema_once(database, monkeypatch):
    if not db.is_postgres(database):
        assert jobs.engine_for(database) == jobs.ENGINE_IN_PROCESS
        found = await rows("SELECT name FROM sqlite_master WHERE name LIKE 'procrastinate%'")
        assert found == []  # SQLite needs no queue
        return
    # The session's `database` fixture ran db.migrate, which installed the queue schema.
    found = await rows("SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS present")
    assert found == [{"present": True}]
    assert await jobs.ensure_queue_schema(database) == []  # idempotent

    # A later procrastinate release ships a migration: it is applied once, in order.
    shipped = jobs._queue_migrations()
    probe = "99.00.00_01_cetgql_probe.sql"
    monkeypatch.setattr(
        jobs,
        "_queue_migrations",
        lambda: {**shipped, probe: "CREATE TABLE cetgql_queue_probe (id int)"},
    )
    try:
        assert await jobs.ensure_queue_schema(database) == [probe]
        assert await jobs.ensure_queue_schema(database) == []
        found = await rows("SELECT to_regclass('cetgql_queue_probe') IS NOT NULL AS present")
        assert found == [{"present": True}]
    finally:
        await rows("DROP TABLE IF EXISTS cetgql_queue_probe")
        await rows("DELETE FROM cetgql_procrastinate_migrations WHERE name = $1", probe)


def start_worker(database: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CETGQL_DATABASE_URL": database, "CETGQL_LOG_LEVEL": "INFO"}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cetgql.cli", "worker", "--concurrency", "2"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> list[int]:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    codes = []
    for worker in workers:
        try:
            codes.append(worker.wait(timeout=15))
        except subprocess.TimeoutExpired:
            worker.kill()
            codes.append(worker.wait())
    return codes


async def test_a_tick_runs_once_however_many_worker_processes(database, tmp_path):
    order = await unpaid_order()
    # Worker processes read the real clock: make the order overdue in real time.
    await models.Order.filter(id=order.id).update(expires_at=clock.now() - timedelta(seconds=1))

    async def lapsed() -> bool:
        return await status_of(order) == OrderStatus.LAPSED

    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    if not db.is_postgres(database):
        # Embedded mode: no procrastinate; one `cetgql worker` runs the in-process scheduler.
        assert jobs.engine_for(database) == jobs.ENGINE_IN_PROCESS
        with pytest.raises(ValueError, match="PostgreSQL"):
            jobs.procrastinate_app(database)
        workers = [start_worker(database, logs[0])]
        try:
            await eventually(lapsed)
        finally:
            assert stop_workers(workers) == [0], logs[0].read_text()
        return

    tick = int(time.time()) // 60 * 60  # the latest minute: every worker's deferrer tries it
    workers = [start_worker(database, log) for log in logs]
    try:
        # Meanwhile this process defers the same tick five times at once, as a third party.
        app = jobs.procrastinate_app(database, [job(LAPSE)])
        async with app.open_async():
            periodic = app.periodic_registry.periodic_tasks[(LAPSE, "")]
            deferred = periodic.task.configure(task_kwargs={"timestamp": tick}).job
            ids = await asyncio.gather(
                *(
                    app.job_manager.defer_periodic_job(
                        deferred, periodic_id="", defer_timestamp=tick
                    )
                    for _ in range(5)
                )
            )
        assert sum(i is not None for i in ids) <= 1  # the workers may have won the race

        async def both_workers_up() -> bool:
            return len(await rows("SELECT id FROM procrastinate_workers")) == 2

        async def tick_done() -> bool:
            found = await rows(
                "SELECT status FROM procrastinate_jobs"
                " WHERE task_name = $1 AND (args->>'timestamp')::bigint = $2",
                LAPSE,
                tick,
            )
            return any(r["status"] == "succeeded" for r in found)

        await eventually(both_workers_up)
        await eventually(tick_done)
        assert await lapsed()
    finally:
        codes = stop_workers(workers)
    output = [log.read_text() for log in logs]
    assert codes == [0, 0], output

    runs = await rows(
        "SELECT j.id, j.status, count(e.id) FILTER (WHERE e.type = 'started') AS starts"
        " FROM procrastinate_jobs j LEFT JOIN procrastinate_events e ON e.job_id = j.id"
        " WHERE j.task_name = $1 AND (j.args->>'timestamp')::bigint = $2 GROUP BY j.id",
        LAPSE,
        tick,
    )
    assert [(r["status"], r["starts"]) for r in runs] == [("succeeded", 1)]  # one job, one run
    done = f"job {LAPSE} tick={tick} done"
    assert sum(text.count(done) for text in output) == 1, output  # logged by one worker only
