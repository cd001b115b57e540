"""Database wiring: one Tortoise configuration for the API, the CLI, migrations and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.migrations.api import migrate as run_migrations

MODELS_MODULE = "cetgql.models"
MIGRATIONS_MODULE = "cetgql.models.migrations"


def normalise_url(url: str) -> str:
    """Accept the URL spellings people paste (``postgresql://``, ``postgres://``)."""
    if url.startswith("postgresql://"):
        return "postgres://" + url.removeprefix("postgresql://")
    return url


def is_postgres(url: str) -> bool:
    return normalise_url(url).startswith(("postgres://", "asyncpg://"))


def tortoise_config(url: str, *, pool_max: int = 20) -> dict[str, Any]:
    url = normalise_url(url)
    if url.startswith("sqlite://") and not url.startswith("sqlite://:memory:"):
        Path(url.removeprefix("sqlite://").split("?")[0]).parent.mkdir(parents=True, exist_ok=True)
    connection = url
    if url.startswith("sqlite://") and "busy_timeout" not in url:
        # Several processes (CLI, server, tests) may share the file: wait for locks.
        connection = f"{url}{'&' if '?' in url else '?'}busy_timeout=10000"
    if is_postgres(url) and "maxsize=" not in url:
        connection = f"{url}{'&' if '?' in url else '?'}minsize=1&maxsize={pool_max}"
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
    """Bring the schema to the newest migration (idempotent)."""
    await run_migrations(config=tortoise_config(url))


async def disconnect() -> None:
    await Tortoise.close_connections()
