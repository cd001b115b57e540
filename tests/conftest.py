"""Test fixtures: every run gets its own database (a SQLite file, or a fresh PostgreSQL
database when ``CETGQL_TEST_DATABASE_URL`` is set), migrated with the real migrations and
emptied before each test."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from tortoise import Tortoise

from cetgql import db
from cetgql.app import create_app
from cetgql.services import clock
from cetgql.settings import Settings, configure

ROOT = Path(__file__).resolve().parent.parent


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def _admin_execute(url: str, sql: str) -> None:
    import asyncpg

    parts = urlsplit(db.normalise_url(url).replace("postgres://", "postgresql://", 1))
    connection = await asyncpg.connect(urlunsplit(parts))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of this test run alone, dropped afterwards."""
    base = os.environ.get("CETGQL_TEST_DATABASE_URL")
    if not base:
        path = tmp_path_factory.mktemp(f"db-{_worker()}") / "cetgql.sqlite3"
        yield f"sqlite://{path}"
        return
    name = f"cetgql_test_{uuid.uuid4().hex[:10]}_{_worker()}"
    asyncio.run(_admin_execute(base, f'CREATE DATABASE "{name}"'))
    try:
        yield db.normalise_url(_with_database(base, name))
    finally:
        asyncio.run(_admin_execute(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key-" + "x" * 32,
        demo=False,
        public_url="http://testserver",
    )


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[str]:
    configure(settings)
    await db.migrate(settings.database_url)
    await Tortoise.close_connections()
    await db.connect(settings.database_url)
    yield settings.database_url
    await db.disconnect()


def _tables() -> list[str]:
    return [model._meta.db_table for model in Tortoise.apps["cetgql"].values()]


@pytest.fixture(autouse=True)
async def clean_database(database: str, settings: Settings) -> AsyncIterator[None]:
    """Each test starts from empty tables and the real clock."""
    configure(settings)
    clock.reset()
    connection = Tortoise.get_connection("default")
    tables = _tables()
    if db.is_postgres(database):
        quoted = ", ".join(f'"{t}"' for t in tables)
        await connection.execute_script(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")
    else:
        await connection.execute_script(
            "PRAGMA foreign_keys=OFF;"
            + "".join(f'DELETE FROM "{t}";' for t in tables)
            + "PRAGMA foreign_keys=ON;"
        )
    yield
    clock.reset()


@pytest.fixture
def app(settings: Settings) -> Any:
    return create_app(settings, manage_database=False)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


class GraphQLClient:
    """Posts operations to /graphql the way a partner front end does."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.token: str | None = None

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        sent = dict(headers or {})
        bearer = token if token is not None else self.token
        if bearer:
            sent["Authorization"] = f"Bearer {bearer}"
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=sent
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def data(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        """The ``data`` of a response that must have no top-level errors."""
        result = await self.execute(query, variables, **kw)
        assert "errors" not in result, result["errors"]
        return result["data"]


@pytest.fixture
def gql(client: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(client)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A real uvicorn process of cetgql on a test database, reached over a socket."""

    def __init__(
        self,
        database: str,
        settings: Settings,
        extra_env: dict[str, str] | None = None,
        *,
        workers: int = 1,
    ):
        self.port = port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "CETGQL_DATABASE_URL": database,
            "CETGQL_SECRET_KEY": settings.secret_key,
            "CETGQL_PUBLIC_URL": self.url,
            "CETGQL_SANDBOXES": "1",
            "CETGQL_RUN_JOBS": "0",  # tests that need the periodic jobs start them themselves
            **(extra_env or {}),
        }
        # `serve --workers N` makes a metrics directory of its own run; an inherited one would
        # mix in other runs' counters.
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        # The log goes to a file: a pipe nobody reads would block the server once full.
        self.log = tempfile.NamedTemporaryFile(prefix="cetgql-server-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "cetgql.cli", "serve"),
                *("--port", str(port), "--workers", str(workers)),
            ],
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30 * workers
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("live server did not start")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()  # with workers, the parent stops them first
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture(scope="session")
def live_server(database: str, settings: Settings) -> Iterator[str]:
    """A real uvicorn process on this run's database, for tests that need a socket."""
    server = ServerProcess(database, settings)
    yield server.url
    server.stop()
