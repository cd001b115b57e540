"""Database wiring: one Tortoise configuration for the API, the CLI, migrations and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate as run_migrations

from cetgql.settings import get_settings

MODELS_MODULE = "cetgql.models"
MIGRATIONS_MODULE = "cetgql.models.migrations"


def normalise_url(url: str) -> str:
    """Accept the URL spellings people paste (``postgresql://``, ``postgres://``)."""
    if url.startswith("postgresql://"):
        return "postgres://" + url.removeprefix("postgresql://")
    return url


def is_postgres(url: str) -> bool:
    return normalise_url(url).startswith(("postgres://", "asyncpg://"))


_LIBPQ_PARAMS = frozenset(
    {
        "application_name",
        "connect_timeout",
        "options",
        "passfile",
        "sslcert",
        "sslkey",
        "sslmode",
        "sslpassword",
        "sslrootcert",
        "target_session_attrs",
    }
)
_SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})


def libpq_url(url: str) -> str:
    """The same PostgreSQL database as a libpq URL (psycopg, procrastinate, psql).

    Settings use Tortoise's spelling (``postgres://`` or ``asyncpg://`` with pool parameters);
    libpq wants ``postgresql://`` and rejects parameters it does not know, so those are dropped
    and Tortoise's ``ssl=`` becomes ``sslmode=``.
    """
    if not is_postgres(url):
        raise ValueError("not a PostgreSQL URL")
    parts = urlsplit(normalise_url(url))
    given = parse_qsl(parts.query, keep_blank_values=True)
    query = [(key, value) for key, value in given if key in _LIBPQ_PARAMS]
    ssl = dict(given).get("ssl", "").lower()
    if ssl and "sslmode" not in dict(query):
        mode = "require" if ssl in {"true", "1", "on"} else ssl
        if mode in _SSL_MODES:
            query.append(("sslmode", mode))
    return urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(query), ""))


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled PostgreSQL connection that goes back to the pool without a round trip.

    asyncpg's pool resets every connection it takes back with ``SELECT
    pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``, and Tortoise takes a pooled
    connection for each statement outside a transaction, so every such statement cost two
    round trips. cetgql leaves nothing of that kind on pooled connections: no advisory locks
    (the job queue has its own connections), no cursors, no LISTEN (order events listen on a
    dedicated connection), no SET. An open transaction is still rolled back on release, by
    asyncpg itself, before the (now empty) reset query would run.
    """

    def get_reset_query(self) -> str:
        return ""


def tortoise_config(url: str, *, pool_max: int | None = None) -> dict[str, Any]:
    """The Tortoise configuration for a database URL. On PostgreSQL each process gets a pool of
    ``pool_max`` connections (default: the ``db_pool_size`` setting) unless the URL says
    ``maxsize=`` itself."""
    url = normalise_url(url)
    if url.startswith("sqlite://") and not url.startswith("sqlite://:memory:"):
        Path(url.removeprefix("sqlite://").split("?")[0]).parent.mkdir(parents=True, exist_ok=True)
    connection: str | dict[str, Any] = url
    if url.startswith("sqlite://") and "busy_timeout" not in url:
        # Several processes (CLI, server, tests) may share the file: wait for locks.
        connection = f"{url}{'&' if '?' in url else '?'}busy_timeout=10000"
    if is_postgres(url):
        if "maxsize=" not in url:
            size = pool_max or get_settings().db_pool_size
            url = f"{url}{'&' if '?' in url else '?'}minsize=1&maxsize={size}"
        connection = expand_db_url(url)
        connection["credentials"]["connection_class"] = PooledConnection
    return {
        "connections": {"default": connection},
        "apps": {
            "cetgql": {
                "models": [MODELS_MODULE],
                "default_connection": "default",
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def connect(url: str) -> None:
    await Tortoise.init(config=tortoise_config(url))


async def migrate(url: str) -> None:
    """Bring the schema to the newest migration (idempotent); on PostgreSQL also the job
    queue's own schema (see :mod:`cetgql.jobs`)."""
    try:
        await run_migrations(config=tortoise_config(url))
    finally:
        # The migration opens its own connections; an open SQLite one keeps a non-daemon
        # thread alive and the process (``cetgql migrate``, ``cetgql demo``) would never exit.
        await Tortoise.close_connections()
    if is_postgres(url):
        from cetgql.jobs import ensure_queue_schema

        await ensure_queue_schema(url)


async def disconnect() -> None:
    await Tortoise.close_connections()
