"""Per-request DataLoaders: each relation is fetched in one query per request, however many
objects ask for it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader
from tortoise.models import Model

from cetgql import models
from cetgql.models.prepared import PreparedQuery
from cetgql.services import clock, eligibility

M = TypeVar("M", bound=Model)


def _by_id(model: type[M], *related: str) -> Callable[[list[int]], Awaitable[list[M | None]]]:
    # Prepared (models/prepared.py): built once per model and batch size, not per request.
    query: PreparedQuery[list[M]] = PreparedQuery(
        lambda ids: model.filter(id__in=ids).select_related(*related)
    )

    async def load(ids: list[int]) -> list[M | None]:
        found = {obj.pk: obj for obj in await query(list(ids))}
        return [found.get(i) for i in ids]

    return load


def _grouped(
    model: type[M], key: str, order_by: Sequence[str] = ("id",), *related: str
) -> Callable[[list[int]], Awaitable[list[list[M]]]]:
    query: PreparedQuery[list[M]] = PreparedQuery(
        lambda keys: (
            model.filter(**{f"{key}__in": keys}).order_by(*order_by).select_related(*related)
        )
    )

    async def load(keys: list[int]) -> list[list[M]]:
        groups: dict[int, list[M]] = defaultdict(list)
        for obj in await query(list(keys)):
            groups[getattr(obj, key)].append(obj)
        return [groups.get(k, []) for k in keys]

    return load


async def _seats_taken(center_ids: list[int]) -> list[int]:
    taken = await eligibility.seats_taken(center_ids, clock.now())
    return [taken.get(i, 0) for i in center_ids]


# The batch functions are made once per process, so their prepared queries are too; each
# request gets fresh DataLoaders (and so its own cache) around them.
_ORDERS = _by_id(models.Order)
_OFFERINGS = _by_id(models.SessionSubject, "subject")
_SESSIONS = _by_id(models.ExamSession)
_ORAL_CENTERS = _by_id(models.OralCenter, "province")
_PROVINCES = _by_id(models.Province)
_REGISTRATIONS_OF_ORDER = _grouped(models.Registration, "order_id")
_PAYMENTS_OF_ORDER = _grouped(models.Payment, "order_id", ("-id",))


@dataclass
class Loaders:
    order: DataLoader[int, models.Order | None] = field(default_factory=lambda: DataLoader(_ORDERS))
    offering: DataLoader[int, models.SessionSubject | None] = field(
        default_factory=lambda: DataLoader(_OFFERINGS)
    )
    session: DataLoader[int, models.ExamSession | None] = field(
        default_factory=lambda: DataLoader(_SESSIONS)
    )
    oral_center: DataLoader[int, models.OralCenter | None] = field(
        default_factory=lambda: DataLoader(_ORAL_CENTERS)
    )
    province: DataLoader[int, models.Province | None] = field(
        default_factory=lambda: DataLoader(_PROVINCES)
    )
    registrations_of_order: DataLoader[int, list[models.Registration]] = field(
        default_factory=lambda: DataLoader(_REGISTRATIONS_OF_ORDER)
    )
    payments_of_order: DataLoader[int, list[models.Payment]] = field(
        default_factory=lambda: DataLoader(_PAYMENTS_OF_ORDER)
    )
    seats_taken: DataLoader[int, int] = field(default_factory=lambda: DataLoader(_seats_taken))

    def prime(self, loader: DataLoader[int, Any], objects: Iterable[Model]) -> None:
        for obj in objects:
            loader.prime(obj.pk, obj)
