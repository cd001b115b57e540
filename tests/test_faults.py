"""Faults: the database going away, mid-request and for a while, and a server killed between a
provider's charge and the notification that would have told us. Nothing is lost and the
service recovers by itself once the fault clears.

A provider that does not answer is covered by test_payments_e2e.py
(``test_an_unreachable_provider_leaves_the_payment_pending``: refresh answers
``PROVIDER_UNREACHABLE`` and the payment stays pending, for reconciliation to settle later).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from tortoise import Tortoise

from cetgql import db, models
from cetgql.payments.manager import registry
from cetgql.services import clock
from cetgql.services import jobs as job_registry
from tests.conftest import ServerProcess
from tests.fault_support import SqliteWriteLock, TcpProxy, serving
from tests.payment_support import enable_sandbox, open_cashier, press_pay, running_proxy, wait_for
from tests.registration_setup import build_world, qualified_candidate

SELECT = """mutation {
  selectSubjects(input: {sessionCode: "2026H1", items: [{subjectCode: "CET4"}]}) {
    order { id status } userErrors { code } } }"""
VIEWER = "{ viewer { name } }"
START = """mutation($i: StartPaymentInput!) { startPayment(input: $i) {
  payment { id outTradeNo status redirect { method url fields { name value } } }
  userErrors { code } } }"""
ORDER = """query($id: ID!) { node(id: $id) { ... on Order { status
  payments { outTradeNo status refundReason } registrations { status } } } }"""


class Api:
    """A candidate's requests to one server, with request ids of our choosing."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.serial = 0

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        self.serial += 1
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            return await http.post(
                "/graphql",
                json={"query": query, "variables": variables or {}},
                headers={
                    "authorization": f"Bearer {self.token}",
                    "x-request-id": f"fault-{self.serial}",
                },
            )

    async def health(self) -> int:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            return (await http.get("/healthz")).status_code


def masked(response: httpx.Response) -> bool:
    """A 200 whose errors are all masked unexpected ones, each with the request id."""
    assert response.status_code == 200, response.text
    errors = response.json().get("errors") or []
    return bool(errors) and all(
        e["message"] == "Unexpected error."
        and e["extensions"]
        == {
            "code": "INTERNAL_SERVER_ERROR",
            "requestId": response.headers["x-request-id"],
        }
        for e in errors
    )


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "the service did not recover by itself"
        await asyncio.sleep(0.2)


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    netloc_text = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
    return urlunsplit((parts.scheme, netloc_text, parts.path, parts.query, parts.fragment))


async def _orders_of(account: models.Account) -> int:
    return await models.Order.filter(account_id=account.id).count()


async def test_the_database_going_away_mid_request_and_coming_back(database, settings):
    world = await build_world()
    me = await qualified_candidate(world)
    if db.is_postgres(database):
        await _postgres_outage(database, settings, me)
    else:
        await _sqlite_outage(database, settings, me)


async def _postgres_outage(database: str, settings: Any, me: Any) -> None:
    parts = urlsplit(database)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    server = ServerProcess(_via(database, proxy.port), settings)
    api = Api(server.url, me.token)
    connection = Tortoise.get_connection("default")
    try:
        assert (await api.post(VIEWER)).json()["data"]["viewer"]["name"] == me.account.name

        # 1. Mid-request: the server's transaction waits for a row we lock, and its
        # database connection is killed while it waits.
        async with connection._in_transaction() as locking:  # type: ignore[attr-defined]
            await locking.execute_query(
                'SELECT id FROM "account" WHERE id = $1 FOR UPDATE', [me.account.id]
            )
            pending = asyncio.create_task(api.post(SELECT))

            async def waiting() -> bool:
                rows = await connection.execute_query_dict(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND client_port = ANY($1::int[])",
                    [proxy.upstream_ports()],
                )
                return bool(rows)

            await eventually(waiting, 10)
            await connection.execute_query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE client_port = ANY($1::int[])",
                [proxy.upstream_ports()],
            )
            response = await pending
        assert masked(response), response.text
        assert await _orders_of(me.account) == 0  # the aborted transaction wrote nothing
        server_log = server.output()
        request_id = response.headers["x-request-id"]
        assert f"[{request_id}]" in server_log and "Traceback" in server_log

        async def works_again() -> bool:
            answer = await api.post(VIEWER)
            return answer.status_code == 200 and "errors" not in answer.json()

        await eventually(works_again)

        # 2. For a while: the database cannot be reached at all.
        proxy.cut()
        assert await api.health() == 503
        assert masked(await api.post(VIEWER))
        assert masked(await api.post(SELECT))
        proxy.restore()

        async def healthy() -> bool:
            return await api.health() == 200

        await eventually(healthy)
        await eventually(works_again)
        chosen = (await api.post(SELECT)).json()["data"]["selectSubjects"]
        assert chosen["userErrors"] == [] and chosen["order"]["status"] == "PENDING_PAYMENT"
        assert await _orders_of(me.account) == 1
    finally:
        server.stop()
        proxy.close()


async def _sqlite_outage(database: str, settings: Any, me: Any) -> None:
    """SQLite is a local file: "going away" is another process holding the write lock for
    longer than our busy timeout (a long import, a backup). Reads of the WAL database go on;
    writes fail masked, /healthz says 503, and all is well once the lock is gone."""
    path = database.removeprefix("sqlite://")
    server = ServerProcess(f"{database}?busy_timeout=300", settings)
    api = Api(server.url, me.token)
    lock = SqliteWriteLock(path)
    try:
        assert await api.health() == 200
        lock.hold()
        response = await api.post(SELECT)  # waits for the lock mid-transaction, then fails
        assert masked(response), response.text
        server_log = server.output()
        assert f"[{response.headers['x-request-id']}]" in server_log
        assert "database is locked" in server_log
        assert await api.health() == 503
        assert (await api.post(VIEWER)).json()["data"]["viewer"]["name"] == me.account.name
        lock.release()
        assert await _orders_of(me.account) == 0  # nothing half-written

        async def healthy() -> bool:
            return await api.health() == 200

        await eventually(healthy)
        chosen = (await api.post(SELECT)).json()["data"]["selectSubjects"]
        assert chosen["userErrors"] == [] and chosen["order"]["status"] == "PENDING_PAYMENT"
        assert await _orders_of(me.account) == 1
    finally:
        lock.close()
        server.stop()


async def test_a_server_killed_after_the_charge_loses_nothing(database, settings):
    """The provider takes the money, its notification is lost, and our server dies
    (SIGKILL) before anything else happens. After a restart, the periodic reconciliation
    asks the provider about the open payment and applies it; nothing is charged twice."""
    provider = registry().get("alipay")
    assert provider is not None
    # The provider lives outside our server, as a real one does.
    sandbox = provider.sandbox("")
    provider_app = Starlette(routes=[Mount("/sandbox/alipay", sandbox)])
    with serving(provider_app) as provider_url, running_proxy() as proxy:
        proxy.drop_notifications = True
        first = ServerProcess(database, settings, {"CETGQL_PUBLIC_URL": proxy.url})
        proxy.target = first.url
        second: ServerProcess | None = None
        try:
            world = await build_world()
            await enable_sandbox(world.province, "alipay", provider_url)
            me = await qualified_candidate(world)
            api = Api(first.url, me.token)
            chosen = (await api.post(SELECT)).json()["data"]["selectSubjects"]
            order_id = chosen["order"]["id"]
            started = await api.post(START, {"i": {"orderId": order_id, "provider": "alipay"}})
            payment = started.json()["data"]["startPayment"]["payment"]
            trade = payment["outTradeNo"]
            assert payment["status"] == "PENDING"
            row = await models.Payment.get(out_trade_no=trade)  # written before the charge
            async with httpx.AsyncClient(timeout=30) as browser:
                paid = await press_pay(browser, await open_cashier(browser, payment["redirect"]))
                assert paid.status_code < 400

            async def notified() -> bool:
                return any(trade.encode() in n.body for n in proxy.notifications)

            await wait_for(notified)  # the provider tried to tell us; the message was lost
            first.process.kill()  # SIGKILL: no shutdown, no cleanup
            first.process.wait(timeout=10)

            assert (await models.Payment.get(id=row.id)).status == "PENDING"
            assert (await models.Order.get(id=row.order_id)).status == "PENDING_PAYMENT"  # type: ignore[attr-defined]

            second = ServerProcess(database, settings, {"CETGQL_PUBLIC_URL": proxy.url})
            proxy.target = second.url
            api = Api(second.url, me.token)
            order = (await api.post(ORDER, {"id": order_id})).json()["data"]["node"]
            assert order["status"] == "PENDING_PAYMENT"

            # The reconciliation job, as the scheduler runs it (it looks at payments
            # unchanged for a minute).
            clock.advance(timedelta(minutes=2))
            [reconcile] = [j for j in job_registry.registered() if j.name == "reconcile-payments"]
            assert await reconcile.run() >= 1

            order = (await api.post(ORDER, {"id": order_id})).json()["data"]["node"]
            assert order["status"] == "PAID"
            assert order["registrations"] == [{"status": "PAID"}]
            assert order["payments"] == [
                {"outTradeNo": trade, "status": "SUCCEEDED", "refundReason": None}
            ]
            # the provider holds exactly one paid trade for the order: charged once
            paid_trades = [t for t in sandbox.trades.values() if t.status == "TRADE_SUCCESS"]
            assert [t.out_trade_no for t in paid_trades] == [trade]
            outcomes = await models.PaymentEvent.filter(out_trade_no=trade).values_list(
                "kind", "outcome"
            )
            assert ("QUERY", "APPLIED") in outcomes
        finally:
            first.stop()
            if second is not None:
                second.stop()


@pytest.fixture(autouse=True)
def _no_stray_offset() -> Any:
    yield
    clock.reset()
