"""Rate limits live in the database, so every server process shares them, and each limited
operation answers a coded ``RATE_LIMITED`` (or the sign-in codes) with ``retryAfter``.

The table test fills a bucket with hits written by *this* process straight into the database
and shows the operation, run by the API, refuses: the service reads the shared table, not
process memory. The last test proves it with two real server processes on one database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from strawberry.relay import GlobalID

from cetgql import models
from cetgql.services import clock, rate_limits
from tests.accounts_support import CANDIDATE, PASSWORD, signed_up_and_in
from tests.conftest import ServerProcess
from tests.registration_setup import build_world, qualified_candidate

CLIENT_ADDRESS = "203.0.113.7"  # the `client` fixture's address
USER_ERRORS = "userErrors { code retryAfter field }"


async def fill(limit: rate_limits.Limit, key: str) -> None:
    """The bucket at its limit, as if other processes had counted the hits."""
    now = clock.now()
    bucket = f"{limit.name}:{key}"[:160]
    await models.RateLimitHit.bulk_create(
        [models.RateLimitHit(bucket=bucket, at=now) for _ in range(limit.hits)]
    )


@dataclass
class Case:
    name: str
    limit: rate_limits.Limit
    prepare: Callable[[Any], Awaitable[tuple[str, str, dict[str, Any], str | None]]]
    # returns (bucket key, mutation, variables, token)


async def _sign_in(gql: Any):
    await signed_up_and_in(gql)
    mutation = f"mutation($i: SignInInput!) {{ signIn(input: $i) {{ token {USER_ERRORS} }} }}"
    return (
        CLIENT_ADDRESS,
        mutation,
        {"i": {"login": CANDIDATE["email"], "password": PASSWORD}},
        None,
    )


async def _code(gql: Any):
    await signed_up_and_in(gql)
    mutation = f"""mutation($i: RequestVerificationCodeInput!) {{
      requestVerificationCode(input: $i) {{ {USER_ERRORS} }} }}"""
    variables = {
        "i": {"purpose": "RESET_PASSWORD", "channel": "EMAIL", "login": CANDIDATE["email"]}
    }
    return CLIENT_ADDRESS, mutation, variables, None


async def _qualification(gql: Any):
    world = await build_world()
    me = await qualified_candidate(world, confirmed=False)
    mutation = f"""mutation($i: VerifyQualificationInput!) {{
      verifyQualification(input: $i) {{ {USER_ERRORS} }} }}"""
    variables = {
        "i": {
            "sessionCode": "2026H1",
            "name": me.account.name,
            "idType": "RESIDENT_ID",
            "idNumber": me.account.id_number,
        }
    }
    return str(me.account.id), mutation, variables, me.token


async def _cet6_review(gql: Any):
    world = await build_world()
    me = await qualified_candidate(world, subjects=("CET4",))
    mutation = f"""mutation($i: RequestCet6ReviewInput!) {{
      requestCet6Review(input: $i) {{ {USER_ERRORS} }} }}"""
    variables = {"i": {"sessionCode": "2026H1", "cet4TicketNumber": "100010251100101"}}
    return str(me.account.id), mutation, variables, me.token


async def _order(world: Any, me: Any) -> models.Order:
    order = await models.Order.create(
        account=me.account,
        session=world.session,
        province=world.province,
        number="202601010001",
        kind="WRITTEN",
        status="PENDING_PAYMENT",
        amount_fen=3000,
        created_at=clock.now(),
        expires_at=clock.now().replace(year=clock.now().year + 1),
    )
    return order


async def _start_payment(gql: Any):
    world = await build_world()
    me = await qualified_candidate(world)
    order = await _order(world, me)
    mutation = (
        f"""mutation($i: StartPaymentInput!) {{ startPayment(input: $i) {{ {USER_ERRORS} }} }}"""
    )
    variables = {"i": {"orderId": str(GlobalID("Order", str(order.id))), "provider": "alipay"}}
    return str(me.account.id), mutation, variables, me.token


async def _refresh_payment(gql: Any):
    world = await build_world()
    me = await qualified_candidate(world)
    mutation = f"""mutation($i: RefreshPaymentInput!) {{
      refreshPayment(input: $i) {{ {USER_ERRORS} }} }}"""
    variables = {"i": {"paymentId": str(GlobalID("Payment", "1"))}}
    return str(me.account.id), mutation, variables, me.token


CASES = [
    Case("signIn", rate_limits.SIGN_IN_PER_ADDRESS, _sign_in),
    Case("requestVerificationCode", rate_limits.CODE_PER_ADDRESS, _code),
    Case("verifyQualification", rate_limits.QUALIFICATION_PER_ACCOUNT, _qualification),
    Case("requestCet6Review", rate_limits.CET6_REVIEW_PER_ACCOUNT, _cet6_review),
    Case("startPayment", rate_limits.START_PAYMENT_PER_ACCOUNT, _start_payment),
    Case("refreshPayment", rate_limits.REFRESH_PAYMENT_PER_ACCOUNT, _refresh_payment),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_a_full_shared_bucket_refuses_with_retry_after(gql, case):
    key, mutation, variables, token = await case.prepare(gql)
    await fill(case.limit, key)
    result = await gql.execute(mutation, variables, token=token or "")
    assert "errors" not in result, result
    payload = result["data"][case.name]
    errors = payload["userErrors"]
    assert [e["code"] for e in errors] == ["RATE_LIMITED"], payload
    assert 0 < errors[0]["retryAfter"] <= case.limit.window.total_seconds()
    if case.name == "signIn":
        assert payload["token"] is None


async def test_payment_starts_are_limited_per_account(gql):
    world = await build_world()
    me = await qualified_candidate(world)
    order = await _order(world, me)
    mutation = (
        f"""mutation($i: StartPaymentInput!) {{ startPayment(input: $i) {{ {USER_ERRORS} }} }}"""
    )
    variables = {"i": {"orderId": str(GlobalID("Order", str(order.id))), "provider": "nosuch"}}
    for _ in range(rate_limits.START_PAYMENT_PER_ACCOUNT.hits):
        data = await gql.data(mutation, variables, token=me.token)
        assert [e["code"] for e in data["startPayment"]["userErrors"]] == ["PROVIDER_NOT_AVAILABLE"]
    data = await gql.data(mutation, variables, token=me.token)
    [error] = data["startPayment"]["userErrors"]
    assert error["code"] == "RATE_LIMITED" and 0 < error["retryAfter"] <= 60
    clock.advance(rate_limits.START_PAYMENT_PER_ACCOUNT.window)
    data = await gql.data(mutation, variables, token=me.token)
    assert [e["code"] for e in data["startPayment"]["userErrors"]] == ["PROVIDER_NOT_AVAILABLE"]


@pytest.fixture
def two_servers(database: str, settings) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    first = ServerProcess(database, settings)
    try:
        second = ServerProcess(database, settings)
    except Exception:
        first.stop()
        raise
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


async def test_two_server_processes_share_the_counts(two_servers):
    """Failed qualification checks alternate between two processes; the limit still holds at
    the tenth, whichever process counted the earlier ones."""
    world = await build_world()
    me = await qualified_candidate(world, confirmed=False)
    mutation = f"""mutation($i: VerifyQualificationInput!) {{
      verifyQualification(input: $i) {{ {USER_ERRORS} }} }}"""
    variables = {
        "i": {"sessionCode": "2026H1", "name": "别人", "idType": "RESIDENT_ID", "idNumber": "x"}
    }
    limit = rate_limits.QUALIFICATION_PER_ACCOUNT
    codes = []
    async with httpx.AsyncClient(timeout=30) as http:
        for attempt in range(limit.hits + 1):
            server = two_servers[attempt % 2]
            response = await http.post(
                f"{server.url}/graphql",
                json={"query": mutation, "variables": variables},
                headers={"Authorization": f"Bearer {me.token}"},
            )
            [error] = response.json()["data"]["verifyQualification"]["userErrors"]
            codes.append((error["code"], error["retryAfter"]))
    assert [c for c, _ in codes[: limit.hits]] == ["IDENTITY_NOT_ACCOUNT_HOLDER"] * limit.hits
    code, retry_after = codes[-1]
    assert code == "RATE_LIMITED" and 0 < retry_after <= limit.window.total_seconds()
    counted = await models.RateLimitHit.filter(bucket=f"{limit.name}:{me.account.id}").count()
    assert counted == limit.hits
