"""Prepared ORM queries: a Tortoise query's SQL built once per shape instead of on every call.

Tortoise builds the SQL of a query anew each time it runs: about 0.2 ms for a lookup by id
and 1.2-1.5 ms for one with ``select_related`` (pypika assembles every column, alias and
join), several times the cost of the database round trip. The hot queries of a registration
rush run with different values thousands of times a second, so their SQL is built once here
and reused.

Use it with a function that builds the query from its arguments::

    _REGISTRATIONS = PreparedQuery(
        lambda account_id: Registration.filter(account_id=account_id)
        .select_related("offering__subject", "oral_center", "order")
        .order_by("-created_at", "-id")
    )
    registrations = await _REGISTRATIONS(account.id)

Any Tortoise query works (``filter``/``get``/``first``, ``select_related``, ``only``,
``select_for_update``, ``values``/``values_list``, ``count``, ``exists``, ``update``) and
returns what Tortoise returns, with the same exceptions.

How: the first call of a shape builds the query once with *probe* values in place of the
arguments (ints, one-character strings and datetimes that no real value equals, which Tortoise
hands to the driver unchanged) and records, for each parameter of the SQL, which argument it
came from or the constant it is. It then checks itself: the SQL and parameters it renders for
the real arguments must equal what Tortoise builds for them, else the shape is never prepared
and always runs through Tortoise as usual. Each call runs a copy of the probe-built query with
the recorded SQL and the call's parameters, on the connection Tortoise would choose then (the
caller's transaction inside ``in_transaction``), so Tortoise's own code turns rows into model
instances, values or counts.

A shape is the builder plus, per argument: its type, the length of a list, and the value itself
where it cannot be probed (None, booleans, enums and anything else), since those change the
SQL (``IS NULL``, ``IN (...)`` with n parameters, enum values written into the query). The
SQL is the dialect's of the database it was prepared on; should a process later reach a
database of another kind, those calls run through Tortoise as usual.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Generic, TypeVar

from tortoise.queryset import AwaitableQuery, DeleteQuery, UpdateQuery
from tortoise.router import router

logger = logging.getLogger("cetgql.models.prepared")

T = TypeVar("T")

_PROBE_INT = 7_340_000_000_000_000  # positive: limit() and offset() refuse negatives
_PROBE_EPOCH = datetime(1901, 2, 3, 4, 5, 6, tzinfo=UTC)


@dataclass(frozen=True)
class _Slot:
    argument: int  # which argument, -1 for a constant
    item: int  # which element of a list argument, -1 for the argument itself
    constant: Any = None


@dataclass(frozen=True)
class _Template:
    prototype: AwaitableQuery[Any]  # the query built with probes; copied for each call
    sql: str
    slots: tuple[_Slot, ...]
    for_write: bool
    dialect: str  # the SQL is the dialect's own (placeholders, quoting)


class _Rendered:
    """Stands in for the pypika query of a copy: hands out the prepared SQL."""

    __slots__ = ("sql", "values")

    def __init__(self, sql: str, values: list[Any]) -> None:
        self.sql, self.values = sql, values

    def get_parameterized_sql(self) -> tuple[str, list[Any]]:
        return self.sql, self.values


_UNPREPARED = object()


def _probeable(value: Any) -> bool:
    if isinstance(value, bool | Enum):
        return False
    return isinstance(value, int | str | datetime)


def _shape(args: Sequence[Any]) -> Hashable | None:
    """The part of the arguments that decides the SQL; None when it cannot be told."""
    key: list[Any] = []
    for value in args:
        if _probeable(value):
            key.append(type(value))
        elif isinstance(value, list | tuple) and all(_probeable(v) for v in value):
            key.append((type(value), len(value), tuple(type(v) for v in value)))
        else:
            constant = tuple(value) if isinstance(value, list) else value
            try:
                hash(constant)
            except TypeError:
                return None
            key.append(("constant", type(value), constant))
    return tuple(key)


class _Probes:
    """Distinct stand-ins for arguments, and which argument each stands for."""

    def __init__(self) -> None:
        self.where: dict[Any, tuple[int, int]] = {}

    def _next(self, value: Any, argument: int, item: int) -> Any:
        n = len(self.where) + 1
        if isinstance(value, int):
            probe: Any = _PROBE_INT + n
        elif isinstance(value, str):
            # One character, so no max_length refuses it; from a private-use plane, so no
            # real value or constant of a query is ever equal to it.
            probe = chr(0xF0000 + n)
        else:
            probe = _PROBE_EPOCH + timedelta(microseconds=n)
        self.where[probe] = (argument, item)
        return probe

    def arguments(self, args: Sequence[Any]) -> list[Any]:
        probed: list[Any] = []
        for index, value in enumerate(args):
            if _probeable(value):
                probed.append(self._next(value, index, -1))
            elif isinstance(value, list | tuple) and all(_probeable(v) for v in value):
                items = [self._next(v, index, i) for i, v in enumerate(value)]
                probed.append(type(value)(items))
            else:
                probed.append(value)
        return probed

    def slot(self, value: Any) -> _Slot:
        try:
            found = self.where.get(value)
        except TypeError:  # an unhashable constant
            found = None
        return _Slot(*found) if found is not None else _Slot(-1, -1, value)


def _writes(query: AwaitableQuery[Any]) -> bool:
    """Whether Tortoise would run the query on the connection for writes."""
    return isinstance(query, UpdateQuery | DeleteQuery) or bool(
        getattr(query, "_select_for_update", False)
    )


def _values(template: _Template, args: Sequence[Any]) -> list[Any]:
    values = []
    for slot in template.slots:
        if slot.argument < 0:
            values.append(slot.constant)
        elif slot.item < 0:
            values.append(args[slot.argument])
        else:
            values.append(args[slot.argument][slot.item])
    return values


class PreparedQuery(Generic[T]):
    """A query the application runs often, given as a function that builds it."""

    def __init__(self, build: Callable[..., Any]) -> None:
        self.build = build
        self._templates: dict[Hashable, _Template | object] = {}

    def _built(self, args: Sequence[Any]) -> AwaitableQuery[Any]:
        query = self.build(*args)
        if not isinstance(query, AwaitableQuery):
            raise TypeError("a prepared query's builder must return a Tortoise query")
        if query._db is None:  # updates build their SQL with the connection's dialect
            query._db = query._choose_db(_writes(query))
        query._make_query()
        return query

    def _prepare(self, args: Sequence[Any]) -> _Template | None:
        probes = _Probes()
        try:
            probed = self._built(probes.arguments(args))
            sql, values = probed.query.get_parameterized_sql()
        except Exception:  # a builder that cannot take probes is simply not prepared
            logger.debug("query not prepared: the builder refused probe values", exc_info=True)
            return None
        slots = tuple(probes.slot(v) for v in values)
        assert probed._db is not None
        return _Template(probed, sql, slots, _writes(probed), probed._db.capabilities.dialect)

    def _template(self, args: Sequence[Any]) -> _Template | None:
        shape = _shape(args)
        if shape is None:
            return None
        template = self._templates.get(shape)
        if template is None:
            template = self._prepare(args)
            if template is not None:
                expected = self._built(args).query.get_parameterized_sql()
                if expected != (template.sql, _values(template, args)):
                    logger.warning("query not prepared: its SQL depends on more than its shape")
                    template = None
            self._templates[shape] = template if template is not None else _UNPREPARED
        return template if isinstance(template, _Template) else None

    async def __call__(self, *args: Any) -> T:
        template = self._template(args)
        if template is None:
            return await self.build(*args)
        model = template.prototype.model
        db = (
            router.db_for_write(model) if template.for_write else router.db_for_read(model)
        ) or model._meta.db
        if db.capabilities.dialect != template.dialect:  # the process changed databases
            return await self.build(*args)
        runner = copy.copy(template.prototype)
        runner.query = _Rendered(template.sql, _values(template, args))  # type: ignore[assignment]
        runner._db = db
        result: T = await runner._execute()  # type: ignore[attr-defined]
        return result
