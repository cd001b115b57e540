"""Prepared queries (cetgql/models/prepared.py) answer exactly what Tortoise answers, call after
call with other values, on SQLite and PostgreSQL, and fall back to Tortoise where a shape
cannot be prepared."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tortoise.exceptions import DoesNotExist
from tortoise.transactions import in_transaction

from cetgql import models
from cetgql.models import IdType, RegistrationStatus
from cetgql.models.prepared import PreparedQuery, _Template
from cetgql.services import clock, sessions
from tests.registration_setup import build_world, qualified_candidate


async def _accounts(n: int) -> list[models.Account]:
    return [
        await models.Account.create(
            name=f"考生{i}",
            name_key=f"考生{i}",
            id_type=IdType.PASSPORT,
            id_number=f"E{i:08d}",
            phone=f"1380000{i:04d}",
            password_hash="!",
        )
        for i in range(n)
    ]


def _prepared(query: PreparedQuery[Any]) -> bool:
    return bool(query._templates) and all(
        isinstance(t, _Template) for t in query._templates.values()
    )


async def test_models_values_counts_and_updates_match_tortoise():
    accounts = await _accounts(4)
    by_number: PreparedQuery[models.Account | None] = PreparedQuery(
        lambda number: models.Account.filter(id_number=number).first()
    )
    some: PreparedQuery[list[models.Account]] = PreparedQuery(
        lambda ids, limit: models.Account.filter(id__in=ids).order_by("-id").limit(limit)
    )
    names: PreparedQuery[list[str]] = PreparedQuery(
        lambda ids: models.Account.filter(id__in=ids).order_by("id").values_list("name", flat=True)
    )
    count: PreparedQuery[int] = PreparedQuery(
        lambda prefix_id: models.Account.filter(id__gte=prefix_id).count()
    )
    exists: PreparedQuery[bool] = PreparedQuery(
        lambda phone: models.Account.filter(phone=phone).exists()
    )
    rename: PreparedQuery[int] = PreparedQuery(
        lambda account_id, name: models.Account.filter(id=account_id).update(name=name)
    )
    get: PreparedQuery[models.Account] = PreparedQuery(
        lambda account_id: models.Account.get(id=account_id)
    )

    for account in accounts:  # the same shape, other values each time
        found = await by_number(account.id_number)
        assert found is not None and found.id == account.id
        assert (await get(account.id)).name == account.name
        assert await exists(account.phone)
    assert await by_number("nobody") is None
    assert not await exists("13999999999")
    with pytest.raises(DoesNotExist):
        await get(accounts[-1].id + 1000)

    ids = [a.id for a in accounts]
    assert [a.id for a in await some(ids, 2)] == sorted(ids, reverse=True)[:2]
    assert [a.id for a in await some(ids[:3], 5)] == sorted(ids[:3], reverse=True)
    assert await names(ids[1:3]) == [accounts[1].name, accounts[2].name]
    assert await count(accounts[1].id) == 3
    assert await rename(accounts[0].id, "改名") == 1
    assert await rename(accounts[1].id, "又改名") == 1
    assert (await models.Account.get(id=accounts[0].id)).name == "改名"
    assert (await models.Account.get(id=accounts[1].id)).name == "又改名"
    for query in (by_number, some, names, count, exists, rename, get):
        assert _prepared(query), query.build


async def test_related_rows_datetimes_and_enums():
    world = await build_world()
    candidate = await qualified_candidate(world)
    other = await qualified_candidate(world)
    by_token: PreparedQuery[models.AuthSession | None] = PreparedQuery(
        lambda digest, now: (
            models.AuthSession.filter(
                token_hash=digest, revoked_at__isnull=True, expires_at__gt=now
            )
            .select_related("account")
            .first()
        )
    )
    active: PreparedQuery[list[models.Registration]] = PreparedQuery(
        lambda account_id, statuses: models.Registration.filter(
            account_id=account_id, status__in=statuses
        )
    )
    for person in (candidate, other):
        session = await by_token(sessions._digest(person.token), clock.now())
        assert session is not None and session.account.id == person.account.id
    assert (
        await by_token(sessions._digest(candidate.token), clock.now() + timedelta(days=2)) is None
    )
    assert await active(candidate.account.id, [RegistrationStatus.PAID]) == []
    assert _prepared(by_token)


async def test_a_none_argument_changes_the_sql_and_is_not_mixed_up():
    accounts = await _accounts(2)
    await models.Account.filter(id=accounts[1].id).update(phone=None)
    by_phone: PreparedQuery[list[models.Account]] = PreparedQuery(
        lambda phone: models.Account.filter(phone=phone)
    )
    assert [a.id for a in await by_phone(accounts[0].phone)] == [accounts[0].id]
    assert [a.id for a in await by_phone(None)] == [accounts[1].id]  # IS NULL, its own shape
    assert [a.id for a in await by_phone(accounts[0].phone)] == [accounts[0].id]


async def test_a_builder_that_transforms_its_arguments_runs_through_tortoise():
    accounts = await _accounts(3)
    containing: PreparedQuery[list[models.Account]] = PreparedQuery(
        lambda text: models.Account.filter(id_number__contains=text).order_by("id")
    )
    assert [a.id for a in await containing("0001")] == [accounts[1].id]
    assert [a.id for a in await containing("0002")] == [accounts[2].id]
    assert not _prepared(containing)


async def test_inside_a_transaction_it_reads_the_transaction():
    (account,) = await _accounts(1)
    lock: PreparedQuery[models.Account] = PreparedQuery(
        lambda account_id: models.Account.select_for_update().get(id=account_id)
    )
    rename: PreparedQuery[int] = PreparedQuery(
        lambda account_id, name: models.Account.filter(id=account_id).update(name=name)
    )
    with pytest.raises(RuntimeError):
        async with in_transaction():
            assert (await lock(account.id)).name == account.name
            await rename(account.id, "未提交")
            assert (await lock(account.id)).name == "未提交"
            raise RuntimeError("roll back")
    assert (await models.Account.get(id=account.id)).name == account.name
