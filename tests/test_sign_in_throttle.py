"""A4: repeated sign-in failures slow down, then lock the account; failures per client address
are capped too. Time moves with the service clock, never by sleeping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from cetgql import models
from cetgql.services import clock, rate_limits
from tests.accounts_support import CANDIDATE, PASSWORD, VIEWER, candidate, sign_in, sign_up
from tests.conftest import GraphQLClient

WRONG = "Wrong@pass1"


def problem(payload: dict[str, Any]) -> tuple[str, int | None]:
    [error] = payload["userErrors"]
    return error["code"], error["retryAfter"]


async def test_failures_slow_down_then_lock_and_success_resets(gql):
    await sign_up(gql)
    login = CANDIDATE["phone"]
    for _ in range(3):  # the first three failures are free
        assert problem(await sign_in(gql, login, WRONG)) == ("INVALID_CREDENTIALS", None)

    # From the fourth attempt on, each must wait 2^(n-3) s after the last failure; even the
    # right password is refused while waiting, and nothing is counted.
    assert problem(await sign_in(gql, login, PASSWORD)) == ("SIGN_IN_THROTTLED", 1)
    for failures, wait in [(3, 1), (4, 2), (5, 4), (6, 8), (7, 16), (8, 32)]:
        clock.advance(timedelta(seconds=wait))
        assert problem(await sign_in(gql, login, WRONG)) == ("INVALID_CREDENTIALS", None)
        code, retry_after = problem(await sign_in(gql, login, WRONG))
        assert code == "SIGN_IN_THROTTLED", failures
        assert retry_after == min(2 ** (failures + 1 - 3), 60)
    clock.advance(timedelta(seconds=60))

    # The tenth consecutive failure locks the account for 15 minutes.
    assert problem(await sign_in(gql, login, WRONG)) == ("ACCOUNT_LOCKED", 900)
    code, retry_after = problem(await sign_in(gql, login, PASSWORD))
    assert code == "ACCOUNT_LOCKED" and 890 <= retry_after <= 900
    clock.advance(timedelta(minutes=14))
    code, retry_after = problem(await sign_in(gql, CANDIDATE["email"], PASSWORD))
    assert code == "ACCOUNT_LOCKED" and retry_after <= 60
    assert await models.AuditEvent.filter(action="account.locked").count() == 1

    clock.advance(timedelta(minutes=1, seconds=1))
    signed = await sign_in(gql, login, PASSWORD)
    assert signed["userErrors"] == [] and signed["token"]
    assert (await gql.data(VIEWER, token=signed["token"]))["viewer"]["name"] == "张三"

    # Success resets the count: three free failures again.
    for _ in range(3):
        assert problem(await sign_in(gql, login, WRONG)) == ("INVALID_CREDENTIALS", None)
    assert problem(await sign_in(gql, login, WRONG))[0] == "SIGN_IN_THROTTLED"


async def test_a_failure_after_the_lock_ends_locks_again(gql):
    await sign_up(gql)
    account = await models.Account.get(phone=CANDIDATE["phone"])
    account.failed_sign_ins = 9
    account.last_failed_sign_in_at = clock.now()
    await account.save()
    clock.advance(timedelta(seconds=60))
    assert problem(await sign_in(gql, CANDIDATE["phone"], WRONG)) == ("ACCOUNT_LOCKED", 900)
    clock.advance(timedelta(minutes=15, seconds=1))
    assert problem(await sign_in(gql, CANDIDATE["phone"], WRONG)) == ("ACCOUNT_LOCKED", 900)


async def test_throttling_is_per_account(gql):
    await sign_up(gql)
    other = candidate(1)
    await sign_up(gql, other)
    for _ in range(4):
        await sign_in(gql, CANDIDATE["phone"], WRONG)
    assert problem(await sign_in(gql, CANDIDATE["phone"], PASSWORD))[0] == "SIGN_IN_THROTTLED"
    assert (await sign_in(gql, other["phone"], PASSWORD))["token"]


@pytest.fixture
async def other_address(app: Any) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.20", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield GraphQLClient(http)


async def test_failures_per_client_address_are_capped(gql, other_address):
    await sign_up(gql)
    limit = rate_limits.SIGN_IN_PER_ADDRESS.hits
    # Spraying many logins from one address: unknown logins count as failures too.
    for n in range(limit):
        assert problem(await sign_in(gql, f"1390000{n:04d}", WRONG))[0] == "INVALID_CREDENTIALS"
    code, retry_after = problem(await sign_in(gql, CANDIDATE["phone"], PASSWORD))
    assert code == "RATE_LIMITED"
    assert 0 < retry_after <= 15 * 60
    # Another address is unaffected, and the window passes.
    assert (await sign_in(other_address, CANDIDATE["phone"], PASSWORD))["token"]
    clock.advance(rate_limits.SIGN_IN_PER_ADDRESS.window + timedelta(seconds=1))
    assert (await sign_in(gql, CANDIDATE["phone"], PASSWORD))["token"]


async def test_successful_sign_ins_do_not_count_against_the_address(gql):
    await sign_up(gql)
    account = await models.Account.get(phone=CANDIDATE["phone"])
    for _ in range(3):
        assert (await sign_in(gql, CANDIDATE["phone"], PASSWORD))["token"]
    assert await models.RateLimitHit.all().count() == 0
    assert (await models.AuthSession.filter(account_id=account.id).count()) == 3
