"""Request ids and logs: every log line of a request carries its id, and the client gets it too.

An operator answering "it said Unexpected error" needs the one request among millions. The
:class:`RequestIdMiddleware` gives each HTTP request and WebSocket a request id: the client's
``X-Request-Id`` when it is sane (a load balancer or partner front end may already have made
one), else a fresh random one. The id is kept in a context variable for the request's code, is
sent back in the ``X-Request-Id`` response header, is put in the ``extensions`` of masked
errors (``graphql/extensions.py``), and :class:`RequestIdFilter` adds it to every log record.

Logs are text lines by default and JSON lines (one object per line, for a log shipper) with
``CETGQL_LOG_FORMAT=json``. :func:`log_config` is a ``logging.config.dictConfig`` dictionary
that ``cetgql serve`` hands to uvicorn, so every worker process logs the same way. Access log
lines drop the query string: a GET query's variables may hold personal data.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cetgql.settings import Settings

HEADER = "X-Request-Id"
_SANE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")
_request_id: ContextVar[str | None] = ContextVar("cetgql_request_id", default=None)
logger = logging.getLogger("cetgql")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s [%(request_id)s] %(message)s"


def current_request_id() -> str | None:
    """The id of the request being served, or None outside a request (jobs, CLI)."""
    return _request_id.get()


def request_id_from(value: str | None) -> str:
    """The client's id when it is sane (letters, digits, ``._:-``, at most 128 characters,
    so it cannot inject log lines or headers), else a new random one."""
    if value and _SANE_ID.match(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Pure ASGI (no ``BaseHTTPMiddleware``), so the context variable reaches the endpoint and
    every log call made while serving, uvicorn's access line included.

    It is also the last resort for exceptions that escape the application: they are logged in
    full with the request id and answered with a 500 that carries the id, instead of
    reaching the server's handler, which knows neither."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = request_id_from(incoming)
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] in ("http.response.start", "websocket.accept"):
                started = True
                message.setdefault("headers", [])
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        token = _request_id.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("unhandled error in %s %s", scope.get("method", "WS"), scope["path"])
            if started or scope["type"] != "http":
                raise
            body = json.dumps(
                {
                    "errors": [
                        {
                            "message": "Unexpected error.",
                            "extensions": {
                                "code": "INTERNAL_SERVER_ERROR",
                                "requestId": request_id,
                            },
                        }
                    ]
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                        (HEADER.lower().encode(), request_id.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        finally:
            _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (``-`` outside a request), for the formatters."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or "-"
        return True


class AccessLogFilter(logging.Filter):
    """Drops the query string from uvicorn's access lines: GraphQL GET requests carry the
    query and its variables there, which may hold ID numbers or codes."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
        return True


# Attributes every LogRecord has; anything else was passed as ``extra`` and is kept.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request id,
    the exception with its traceback when there is one, and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "pid": record.process,  # which worker of `cetgql serve --workers N`
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, _, status = args
            entry.update(client=client, method=method, path=path, status=status)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        return json.dumps(entry, ensure_ascii=False)


def log_config(settings: Settings) -> dict[str, Any]:
    """The ``dictConfig`` of a server process: one stderr handler on the root logger with the
    request id filter and the text or JSON formatter; uvicorn's loggers propagate to it."""
    level = settings.log_level.upper()
    formatter: dict[str, Any] = (
        {"()": "cetgql.observability.JsonFormatter"}
        if settings.log_format == "json"
        else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "cetgql.observability.RequestIdFilter"},
            "access": {"()": "cetgql.observability.AccessLogFilter"},
        },
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request_id"],
            }
        },
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {
                "level": level,
                "handlers": [],
                "propagate": True,
                "filters": ["access"],
            },
            # Strawberry logs every GraphQL error at ERROR, a client's typo or a missing token
            # included; unexpected ones are logged with their traceback where they are masked
            # (graphql/extensions.py), so its own lines would only be noise.
            "strawberry.execution": {"level": "CRITICAL"},
        },
        "root": {"level": level, "handlers": ["default"]},
    }


def configure_logging(settings: Settings) -> None:
    """Install :func:`log_config` in this process (CLI commands that log, ``serve``)."""
    import logging.config

    logging.config.dictConfig(log_config(settings))
