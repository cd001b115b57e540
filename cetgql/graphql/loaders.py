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
from cetgql.services import clock, eligibility

M = TypeVar("M", bound=Model)


def _by_id(model: type[M], *related: str) -> Callable[[list[int]], Awaitable[list[M | None]]]:
    async def load(ids: list[int]) -> list[M | None]:
        query = model.filter(id__in=ids)
        if related:
            query = query.select_related(*related)
        found = {obj.pk: obj for obj in await query}
        return [found.get(i) for i in ids]

    return load


def _grouped(
    model: type[M], key: str, order_by: Sequence[str] = ("id",), *related: str
) -> Callable[[list[int]], Awaitable[list[list[M]]]]:
    async def load(keys: list[int]) -> list[list[M]]:
        query = model.filter(**{f"{key}__in": keys}).order_by(*order_by)
        if related:
            query = query.select_related(*related)
        groups: dict[int, list[M]] = defaultdict(list)
        for obj in await query:
            groups[getattr(obj, key)].append(obj)
        return [groups.get(k, []) for k in keys]

    return load


async def _seats_taken(center_ids: list[int]) -> list[int]:
    taken = await eligibility.seats_taken(center_ids, clock.now())
    return [taken.get(i, 0) for i in center_ids]


@dataclass
class Loaders:
    order: DataLoader[int, models.Order | None] = field(
        default_factory=lambda: DataLoader(_by_id(models.Order))
    )
    offering: DataLoader[int, models.SessionSubject | None] = field(
        default_factory=lambda: DataLoader(_by_id(models.SessionSubject, "subject"))
    )
    session: DataLoader[int, models.ExamSession | None] = field(
        default_factory=lambda: DataLoader(_by_id(models.ExamSession))
    )
    oral_center: DataLoader[int, models.OralCenter | None] = field(
        default_factory=lambda: DataLoader(_by_id(models.OralCenter, "province"))
    )
    province: DataLoader[int, models.Province | None] = field(
        default_factory=lambda: DataLoader(_by_id(models.Province))
    )
    registrations_of_order: DataLoader[int, list[models.Registration]] = field(
        default_factory=lambda: DataLoader(_grouped(models.Registration, "order_id"))
    )
    payments_of_order: DataLoader[int, list[models.Payment]] = field(
        default_factory=lambda: DataLoader(_grouped(models.Payment, "order_id", ("-id",)))
    )
    seats_taken: DataLoader[int, int] = field(default_factory=lambda: DataLoader(_seats_taken))

    def prime(self, loader: DataLoader[int, Any], objects: Iterable[Model]) -> None:
        for obj in objects:
            loader.prime(obj.pk, obj)
