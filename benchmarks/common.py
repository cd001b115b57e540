"""What the rush and overview benchmarks share: the machine report, throw-away PostgreSQL
databases seeded in bulk, the two servers under test, and the latency statistics.

Both benchmarks run the GraphQL server (``cetgql serve``) and the bare reference
(``benchmarks/bare.py``) one after the other, each on its own freshly created and identically
seeded database, with the same uvicorn settings (uvloop, httptools, same worker count, no access
log), and drive them with the same load from a separate process (``benchmarks/load.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cetgql import db  # noqa: E402
from cetgql.services import identity  # noqa: E402

DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/test"
SESSION_CODE = "2026H1"
PASSWORD = "Rush-2026!"
PROVINCE_CODE = "44"
SCHOOL_CODE = "10558"
WRITTEN_FEE_FEN = 3000
ORAL_FEE_FEN = 5000
ORAL_CENTERS = 10
SECRET_KEY = "benchmark-secret-key-" + "x" * 32


def admin_url() -> str:
    return db.normalise_url(os.environ.get("CETGQL_BENCH_DATABASE_URL") or DEFAULT_ADMIN_URL)


def _libpq(url: str) -> str:
    return db.normalise_url(url).replace("postgres://", "postgresql://", 1)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, "", ""))


# --- the machine ---------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


async def postgres_version(url: str) -> str:
    import asyncpg

    connection = await asyncpg.connect(_libpq(url))
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


def machine_report(pg_version: str) -> list[str]:
    return [
        f"machine: {os.cpu_count()} CPUs (nproc), {cpu_model()}",
        f"PostgreSQL {pg_version}, Python {platform.python_version()}, {platform.platform()}",
        f"load average (1, 5, 15 min) before the run: {load_average()}",
    ]


# --- throw-away databases ------------------------------------------------------------------


async def _admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_libpq(admin_url()))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@dataclass
class BenchDatabase:
    name: str
    url: str


async def create_database(label: str) -> BenchDatabase:
    name = f"cetgql_bench_{uuid.uuid4().hex[:8]}_{label}"
    await _admin(f'CREATE DATABASE "{name}"')
    return BenchDatabase(name, with_database(admin_url(), name))


async def drop_database(database: BenchDatabase) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')


# --- seeding -------------------------------------------------------------------------------


def resident_id(index: int) -> str:
    """A valid, unique mainland ID number per index (up to 100 000 candidates)."""
    born = 20030101 + (index % 28)
    first17 = f"44{(index // 1000) % 100:02d}06{born}{index % 1000:03d}"
    return first17 + identity.resident_id_check_char(first17)


@dataclass(frozen=True)
class Seeded:
    """What the load generator needs to know about a seeded database."""

    logins: list[str]
    tokens: list[str]  # an open session per candidate (overview), empty for the rush
    oral_center_ids: list[int]


async def seed(
    url: str,
    candidates: int,
    *,
    server_url: str,
    with_sessions: bool = False,
) -> Seeded:
    """Migrate, then create a session with its catalogue, one province with one school, open
    windows, fees, oral centres with room for everybody, Alipay on with the sandbox's test
    merchant at ``server_url``, and ``candidates`` qualified, confirmed candidates who share one
    password (hashed once: every verification still costs a full Argon2 run)."""
    from tortoise import Tortoise

    from cetgql import models
    from cetgql.models import IdType, SubjectKind
    from cetgql.payments.manager import registry
    from cetgql.services import catalog, clock, passwords, sessions
    from cetgql.settings import Settings, configure

    configure(Settings(database_url=url, secret_key=SECRET_KEY, public_url=server_url))
    await db.migrate(url)
    await db.connect(url)
    try:
        session = await catalog.ensure_session(SESSION_CODE)
        province = await models.Province.create(code=PROVINCE_CODE, name="广东省")
        school = await models.School.create(code=SCHOOL_CODE, name="中山大学", province=province)
        campus = await models.Campus.create(school=school, code="1", name="南校园")
        now = clock.now()
        for kind in (SubjectKind.WRITTEN, SubjectKind.ORAL):
            await models.RegistrationWindow.create(
                session=session,
                province=province,
                kind=kind,
                opens_at=now - timedelta(days=1),
                closes_at=now + timedelta(days=10),
            )
        for subject in await models.Subject.all():
            await models.Fee.create(
                session=session,
                province=province,
                subject=subject,
                amount_fen=ORAL_FEE_FEN if subject.kind == SubjectKind.ORAL else WRITTEN_FEE_FEN,
            )
        centers = [
            await models.OralCenter.create(
                session=session,
                province=province,
                code=f"44{n + 1:04d}",
                name=f"广州口试考点{n + 1}",
                address=f"广州市海珠区新港西路{n + 1}号",
                capacity=max(candidates, 1),
            )
            for n in range(ORAL_CENTERS)
        ]
        alipay = registry().get("alipay")
        if alipay is None:
            raise SystemExit("the Alipay plugin is not installed (scripts/bootstrap)")
        values = alipay.sandbox_merchant(f"{server_url}/sandbox/alipay")
        secret = {f.name for f in alipay.settings_fields if f.secret}
        await models.ProviderSetting.create(
            province=province,
            provider="alipay",
            enabled=True,
            values={k: v for k, v in values.items() if k not in secret},
            secrets={k: v for k, v in values.items() if k in secret},
        )

        password_hash = await passwords.hash_password(PASSWORD)
        logins = [resident_id(i) for i in range(candidates)]
        name = "李雷"
        key = identity.name_key(name)
        batch = 2000
        for start in range(0, candidates, batch):
            chunk = logins[start : start + batch]
            await models.Account.bulk_create(
                [
                    models.Account(
                        name=name,
                        name_key=key,
                        id_type=IdType.RESIDENT_ID,
                        id_number=number,
                        password_hash=password_hash,
                    )
                    for number in chunk
                ]
            )
            await models.RosterRecord.bulk_create(
                [
                    models.RosterRecord(
                        session=session,
                        school=school,
                        campus=campus,
                        name=name,
                        name_key=key,
                        id_type=IdType.RESIDENT_ID,
                        id_number=number,
                        eligible_subjects=["CET4", "CET6", "CET-SET4", "CET-SET6"],
                        updated_at=now,
                    )
                    for number in chunk
                ]
            )
            account_ids = dict(
                await models.Account.filter(id_number__in=chunk).values_list("id_number", "id")
            )
            record_ids = dict(
                await models.RosterRecord.filter(id_number__in=chunk).values_list("id_number", "id")
            )
            await models.Qualification.bulk_create(
                [
                    models.Qualification(
                        account_id=account_ids[number],
                        session=session,
                        roster_record_id=record_ids[number],
                        verified_at=now,
                        confirmed_at=now,
                    )
                    for number in chunk
                ]
            )
        tokens: list[str] = []
        if with_sessions:
            for account in await models.Account.all().order_by("id"):
                tokens.append(
                    await sessions.open_session(
                        account, client_address="127.0.0.1", user_agent="benchmark"
                    )
                )
        connection = Tortoise.get_connection("default")
        await connection.execute_script("ANALYZE")
        return Seeded(logins=logins, tokens=tokens, oral_center_ids=[c.id for c in centers])
    finally:
        await db.disconnect()
        configure(None)


async def analyze(url: str) -> None:
    """Fresh planner statistics after bulk loading, as autovacuum would gather them later."""
    import asyncpg

    connection = await asyncpg.connect(_libpq(url))
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def has_tickets_field() -> bool:
    """Whether the schema has ``Account.tickets`` (admission tickets may not be built yet)."""
    from cetgql.graphql.schema import schema

    account = schema._schema.get_type("Account")
    return "tickets" in getattr(account, "fields", {})


# --- servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server process on 127.0.0.1 (GraphQL or bare), started and waited for."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], url: str, label: str) -> None:
        self.url = url
        self.label = label
        self.log = tempfile.NamedTemporaryFile(prefix=f"cetgql-bench-{label}-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(  # noqa: S603
            list(argv),
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{label} server exited:\n{self.output()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{label} server did not start:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def server_env(database_url: str, public_url: str) -> dict[str, str]:
    return {
        "CETGQL_DATABASE_URL": database_url,
        "CETGQL_SECRET_KEY": SECRET_KEY,
        "CETGQL_PUBLIC_URL": public_url,
        "CETGQL_SANDBOXES": "1",
        # Periodic jobs run in `cetgql worker` processes in production, not in the API.
        "CETGQL_RUN_JOBS": "0",
        # No access log: both servers run without one, it would cost both the same.
        "CETGQL_LOG_LEVEL": "WARNING",
    }


@contextlib.contextmanager
def graphql_server(database_url: str, port: int, workers: int) -> Iterator[Server]:
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "cetgql.cli", "serve", "--port", str(port)]
    argv += ["--workers", str(workers)]
    server = Server(argv, server_env(database_url, url), url, "graphql")
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def bare_server(database_url: str, port: int, workers: int) -> Iterator[Server]:
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "benchmarks.bare", "--port", str(port)]
    argv += ["--workers", str(workers)]
    server = Server(argv, server_env(database_url, url), url, "bare")
    try:
        yield server
    finally:
        server.stop()


# --- CPU accounting ------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int, *, system_only: bool = False) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a process, from /proc; only the system
    (kernel) part with ``system_only``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    kernel = int(fields[12])
    return int(fields[1]), (kernel if system_only else int(fields[11]) + kernel) / _TICK


def process_tree_cpu(root: int, *, system_only: bool = False) -> float:
    """CPU seconds used so far by a process and all its descendants (uvicorn's workers)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if (
            entry.name.isdigit()
            and (stat := _proc_stat(int(entry.name), system_only=system_only)) is not None
        ):
            stats[int(entry.name)] = stat
    tree, total = {root}, 0.0
    changed = True
    while changed:
        changed = False
        for pid, (parent, _) in stats.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                changed = True
    for pid in tree:
        if pid in stats:
            total += stats[pid][1]
    return total


async def database_backends_cpu(database: str) -> dict[int, float]:
    """CPU seconds per PostgreSQL backend connected to ``database`` (same machine only)."""
    import asyncpg

    connection = await asyncpg.connect(_libpq(admin_url()))
    try:
        pids = await connection.fetch("SELECT pid FROM pg_stat_activity WHERE datname=$1", database)
    finally:
        await connection.close()
    found = {}
    for row in pids:
        if (stat := _proc_stat(row["pid"])) is not None:
            found[row["pid"]] = stat[1]
    return found


class CpuMeter:
    """CPU used during a run by the server processes and by the database's backends."""

    def __init__(self, server: Server, database: str) -> None:
        self.server, self.database = server, database

    async def start(self) -> None:
        self.server_start = process_tree_cpu(self.server.process.pid)
        self.kernel_start = process_tree_cpu(self.server.process.pid, system_only=True)
        self.db_start = await database_backends_cpu(self.database)

    async def stop(self) -> tuple[float, float]:
        """Server and database CPU seconds since :meth:`start`; ``kernel`` keeps the server's
        part spent in the kernel (sockets, mostly)."""
        server = process_tree_cpu(self.server.process.pid) - self.server_start
        self.kernel = (
            process_tree_cpu(self.server.process.pid, system_only=True) - self.kernel_start
        )
        now = await database_backends_cpu(self.database)
        database = sum(cpu - self.db_start.get(pid, 0.0) for pid, cpu in now.items())
        return server, database


# --- statistics ----------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation), 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)
