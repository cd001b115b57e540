"""``/healthz``: can this process use its database right now?

A load balancer takes a process out of rotation on 503 and back on 200, so the check must be
quick and must fail when requests would: it has :data:`TIMEOUT_SECONDS` to finish, so a
database that hangs (a dropped network path) fails it instead of piling probes up.

- PostgreSQL: ``SELECT 1`` through the pool, which also replaces connections the server has
  closed, so the check turns green by itself once the database is back.
- SQLite (embedded): the file is local, so "unreachable" means locked by another process; a
  ``BEGIN IMMEDIATE`` with a short busy timeout tells whether this process could write, then
  rolls back. Reads of a WAL database still work while another process holds the write lock,
  but every mutation would fail, so the process is not healthy.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tortoise import Tortoise

from cetgql import db
from cetgql.settings import get_settings

logger = logging.getLogger("cetgql.health")

TIMEOUT_SECONDS = 3.0
SQLITE_PROBE_BUSY_MS = 1000
SQLITE_BUSY_MS = 10000  # what db.tortoise_config sets for normal work


async def _probe() -> None:
    connection: Any = Tortoise.get_connection("default")
    if not db.is_postgres(get_settings().database_url) and hasattr(
        connection, "acquire_connection"
    ):
        async with connection.acquire_connection() as raw:
            await raw.execute(f"PRAGMA busy_timeout={SQLITE_PROBE_BUSY_MS}")
            try:
                await raw.execute("BEGIN IMMEDIATE")
                await raw.execute("ROLLBACK")
            finally:
                await raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        return
    await connection.execute_query("SELECT 1")


async def database_ok() -> bool:
    """True when the database answered within :data:`TIMEOUT_SECONDS`; failures are logged."""
    try:
        await asyncio.wait_for(_probe(), TIMEOUT_SECONDS)
    except Exception:
        logger.exception("health check: database unavailable")
        return False
    return True
