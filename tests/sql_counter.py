"""Count the SQL statements a piece of code sends, in-process and per context.

Every Tortoise backend funnels its statements through a handful of client methods
(``execute_query``, ``execute_query_dict``, ``execute_insert``, ``execute_many``,
``execute_script``). :func:`recording` wraps those methods once, on every client class that
defines them (pooled clients and their transaction wrappers alike), and appends each statement
to the log of the current context. The log lives in a context variable, so it follows the
request into DataLoader batches (tasks inherit the context they were scheduled from) and
statements of other requests running at the same time are not counted.

A statement is counted once even when one wrapped method calls another (SQLite's
``execute_query_dict`` goes through ``execute_query``).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

METHODS = (
    "execute_query",
    "execute_query_dict",
    "execute_insert",
    "execute_many",
    "execute_script",
)


@dataclass
class SqlLog:
    statements: list[str] = field(default_factory=list)
    # The parameters of each statement, in the same order (``benchmarks/explain.py`` needs them).
    values: list[list[Any]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)

    def selects(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith("SELECT")]

    def __str__(self) -> str:
        return "\n".join(f"{i + 1:3}. {s}" for i, s in enumerate(self.statements))


_log: ContextVar[SqlLog | None] = ContextVar("cetgql_sql_log", default=None)
_inside: ContextVar[bool] = ContextVar("cetgql_sql_inside", default=False)
_installed = False


def _wrap(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def counted(self: BaseDBAsyncClient, query: str, *args: Any, **kwargs: Any) -> Any:
        log = _log.get()
        if log is None or _inside.get():
            return await method(self, query, *args, **kwargs)
        log.statements.append(" ".join(str(query).split()))
        log.values.append(list(args[0]) if args and isinstance(args[0], list | tuple) else [])
        token = _inside.set(True)
        try:
            return await method(self, query, *args, **kwargs)
        finally:
            _inside.reset(token)

    counted.__cetgql_counted__ = True  # type: ignore[attr-defined]
    return counted


def _client_classes() -> Iterator[type[BaseDBAsyncClient]]:
    seen: set[type] = set()
    stack: list[type] = [BaseDBAsyncClient]
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        yield cls
        stack.extend(cls.__subclasses__())


def install() -> None:
    """Wrap the execute methods of every client class loaded so far (idempotent). The
    backends are imported when Tortoise opens its connections, so call this after that."""
    global _installed
    for cls in _client_classes():
        for name in METHODS:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "__cetgql_counted__", False):
                setattr(cls, name, _wrap(method))
    _installed = True


@contextmanager
def recording() -> Iterator[SqlLog]:
    """Collect the statements sent from this context (and tasks started from it)."""
    install()
    log = SqlLog()
    token = _log.set(log)
    try:
        yield log
    finally:
        _log.reset(token)
