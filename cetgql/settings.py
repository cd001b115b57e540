"""Typed settings, read once from ``CETGQL_*`` environment variables.

Every process (API worker, CLI, job) reads the same variables, so a deployment is configured in
one place; nothing else in the package looks at ``os.environ``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

DEFAULT_SQLITE_PATH = Path("var/cetgql.sqlite3")


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(value: str | None, default: int) -> int:
    return int(value) if value not in (None, "") else default


def _origins(value: str | None) -> tuple[str, ...]:
    """``https://a.example, https://b.example`` (commas or spaces) without trailing slashes."""
    items = (value or "").replace(",", " ").split()
    return tuple(item.rstrip("/") for item in items)


@dataclass(frozen=True)
class Settings:
    database_url: str = f"sqlite://{DEFAULT_SQLITE_PATH}"
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    demo: bool = False
    public_url: str = "http://127.0.0.1:8000"
    session_ttl_hours: int = 12
    graphiql: bool = True
    introspection: bool = True
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "CET 报名 <noreply@cet.example.cn>"
    sms_webhook_url: str | None = None
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one JSON object per line (docs/operations.md)
    # Browser origins of partner front ends allowed by CORS (docs/security.md).
    cors_origins: tuple[str, ...] = ()
    metrics: bool = True  # serve Prometheus metrics at /metrics
    # PostgreSQL connections per process (each uvicorn worker has its own pool); see
    # docs/performance.md for how it was chosen.
    db_pool_size: int = 10
    # Run the periodic jobs (order lapse, pruning, ...) inside each API process.
    run_jobs: bool = True
    sandboxes: bool = False

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        defaults = cls()
        return cls(
            database_url=env.get("CETGQL_DATABASE_URL") or defaults.database_url,
            secret_key=env.get("CETGQL_SECRET_KEY") or defaults.secret_key,
            demo=_bool(env.get("CETGQL_DEMO"), False),
            public_url=(env.get("CETGQL_PUBLIC_URL") or defaults.public_url).rstrip("/"),
            session_ttl_hours=_int(env.get("CETGQL_SESSION_TTL_HOURS"), 12),
            graphiql=_bool(env.get("CETGQL_GRAPHIQL"), True),
            introspection=_bool(env.get("CETGQL_INTROSPECTION"), True),
            smtp_host=env.get("CETGQL_SMTP_HOST") or None,
            smtp_port=_int(env.get("CETGQL_SMTP_PORT"), 25),
            smtp_user=env.get("CETGQL_SMTP_USER") or None,
            smtp_password=env.get("CETGQL_SMTP_PASSWORD") or None,
            smtp_starttls=_bool(env.get("CETGQL_SMTP_STARTTLS"), False),
            mail_from=env.get("CETGQL_MAIL_FROM") or defaults.mail_from,
            sms_webhook_url=env.get("CETGQL_SMS_WEBHOOK_URL") or None,
            log_level=env.get("CETGQL_LOG_LEVEL") or "INFO",
            log_format=(env.get("CETGQL_LOG_FORMAT") or "text").strip().lower(),
            cors_origins=_origins(env.get("CETGQL_CORS_ORIGINS")),
            metrics=_bool(env.get("CETGQL_METRICS"), True),
            db_pool_size=max(1, _int(env.get("CETGQL_DB_POOL_SIZE"), defaults.db_pool_size)),
            run_jobs=_bool(env.get("CETGQL_RUN_JOBS"), True),
            sandboxes=_bool(env.get("CETGQL_SANDBOXES"), _bool(env.get("CETGQL_DEMO"), False)),
        )

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


_current: Settings | None = None


@lru_cache(maxsize=1)
def _from_env() -> Settings:
    return Settings.from_env()


def get_settings() -> Settings:
    """The settings in force: those installed by :func:`configure`, else the environment's."""
    return _current if _current is not None else _from_env()


def configure(settings: Settings | None) -> None:
    """Install settings for this process (the CLI and tests use it; ``None`` reverts to env)."""
    global _current
    _current = settings
