"""``orderUpdated`` over a real WebSocket speaking ``graphql-transport-ws`` (API.md): pushed to
the order's owner only, and across API processes on PostgreSQL (LISTEN/NOTIFY). SQLite is the
one-process embedded mode, where the events stay in the process: there the cross-process
tests check the in-process delivery instead."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from strawberry.relay import GlobalID
from tortoise.connection import get_connection
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from cetgql import db, models
from cetgql.services import clock, order_events, registration, sessions
from cetgql.settings import Settings
from tests.conftest import ROOT, _free_port
from tests.registration_setup import Candidate, build_world, qualified_candidate

PROTOCOL = "graphql-transport-ws"
TIMEOUT = 15.0
SELECT = """
mutation { selectSubjects(input: {sessionCode: "2026H1", items: [{subjectCode: "CET4"}]}) {
  order { id } userErrors { code } } }"""
CANCEL = """
mutation($id: ID!) { cancelOrder(input: {orderId: $id}) {
  order { status } userErrors { code } } }"""
ORDER_UPDATED = """
subscription($id: ID!) { orderUpdated(orderId: $id) {
  id number status registrations { status subject { code } } } }"""


# --- a graphql-transport-ws client ----------------------------------------------------------


def ws_url(http_base: str) -> str:
    return http_base.replace("http://", "ws://", 1) + "/graphql"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def receive(ws: ClientConnection) -> dict[str, Any]:
    """The next protocol message; pings are answered on the way."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if message["type"] == "ping":
            await ws.send(json.dumps({"type": "pong"}))
        elif message["type"] != "pong":
            return message


@contextlib.asynccontextmanager
async def acknowledged(base: str, init: dict[str, Any]) -> AsyncIterator[ClientConnection]:
    """A socket past ``connection_init`` / ``connection_ack``."""
    async with connect(ws_url(base), subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == PROTOCOL
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert (await receive(ws))["type"] == "connection_ack"
        yield ws


async def subscribe(ws: ClientConnection, order_id: str, operation_id: str = "1") -> None:
    payload = {"query": ORDER_UPDATED, "variables": {"id": order_id}}
    await ws.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": payload}))


async def next_order(ws: ClientConnection, operation_id: str = "1") -> dict[str, Any]:
    message = await receive(ws)
    assert message["type"] == "next" and message["id"] == operation_id, message
    assert "errors" not in message["payload"], message
    return message["payload"]["data"]["orderUpdated"]


def error_codes(message: dict[str, Any]) -> list[str]:
    """Codes of an operation's errors, sent as ``error`` or as ``next`` with ``errors``."""
    if message["type"] == "error":
        errors = message["payload"]
    else:
        assert message["type"] == "next", message
        assert message["payload"].get("data") is None, message
        errors = message["payload"]["errors"]
    return [e["extensions"]["code"] for e in errors]


# --- set-up ---------------------------------------------------------------------------------


async def order_of(gql: Any, candidate: Candidate) -> str:
    selected = (await gql.data(SELECT, token=candidate.token))["selectSubjects"]
    assert selected["userErrors"] == []
    return str(selected["order"]["id"])


def pk(order_id: str) -> int:
    return int(GlobalID.from_id(order_id).node_id)


async def cancel_over_http(base: str, token: str, order_id: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as http:
        response = await http.post(
            "/graphql",
            json={"query": CANCEL, "variables": {"id": order_id}},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.json()["data"]["cancelOrder"] == {
        "order": {"status": "CANCELLED"},
        "userErrors": [],
    }


@contextlib.contextmanager
def second_server(database: str, settings: Settings) -> Iterator[str]:
    """Another API process on the same database, started like the ``live_server`` fixture."""
    port = _free_port()
    env = {
        **os.environ,
        "CETGQL_DATABASE_URL": database,
        "CETGQL_SECRET_KEY": settings.secret_key,
        "CETGQL_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CETGQL_RUN_JOBS": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "cetgql.cli", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "the second server exited"
            assert time.monotonic() < deadline, "the second server did not start"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


async def heard(events: order_events.OrderSubscription) -> bool:
    try:
        async with asyncio.timeout(TIMEOUT):
            await events.wait()
    except TimeoutError:
        return False
    return True


# --- through the WebSocket ------------------------------------------------------------------


async def test_the_owner_hears_of_a_cancellation(gql, live_server):
    owner = await qualified_candidate(await build_world())
    order_id = await order_of(gql, owner)
    # The lower-case key works too, as some clients send it.
    async with acknowledged(live_server, {"authorization": f"Bearer {owner.token}"}) as ws:
        await subscribe(ws, order_id)
        first = await next_order(ws)  # the order as it is, at once
        assert first["id"] == order_id
        assert first["status"] == "PENDING_PAYMENT"
        assert first["registrations"] == [
            {"status": "PENDING_PAYMENT", "subject": {"code": "CET4"}}
        ]

        await cancel_over_http(live_server, owner.token, order_id)

        update = await next_order(ws)
        assert update["status"] == "CANCELLED"
        assert update["registrations"] == [{"status": "CANCELLED", "subject": {"code": "CET4"}}]
        await ws.send(json.dumps({"id": "1", "type": "complete"}))


async def test_an_unpaid_order_is_pushed_again_when_its_deadline_passes(gql, live_server):
    """The live server runs no lapse job: the order turns LAPSED at its deadline anyway (S8)."""
    owner = await qualified_candidate(await build_world())
    order_id = await order_of(gql, owner)
    soon = clock.now() + timedelta(seconds=2)
    await models.Order.filter(id=pk(order_id)).update(expires_at=soon)
    await models.Registration.filter(order_id=pk(order_id)).update(expires_at=soon)
    async with acknowledged(live_server, bearer(owner.token)) as ws:
        await subscribe(ws, order_id)
        assert (await next_order(ws))["status"] == "PENDING_PAYMENT"
        lapsed = await next_order(ws)
        assert lapsed["status"] == "LAPSED"
        assert lapsed["registrations"] == [{"status": "LAPSED", "subject": {"code": "CET4"}}]


async def test_nobody_but_the_owner_may_subscribe(gql, live_server):
    world = await build_world()
    owner = await qualified_candidate(world)
    other = await qualified_candidate(world, name="韩梅梅")
    order_id = await order_of(gql, owner)

    async with acknowledged(live_server, bearer(other.token)) as ws:
        await subscribe(ws, order_id)
        assert error_codes(await receive(ws)) == ["NOT_FOUND"]  # as if there were no such order

    async with acknowledged(live_server, {}) as ws:  # connected without signing in
        await subscribe(ws, order_id)
        assert error_codes(await receive(ws)) == ["UNAUTHENTICATED"]

    # A token that is no open session is refused at connection_init: 4403 Forbidden.
    async with connect(ws_url(live_server), subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": bearer("not-a-token")}))
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_a_subscriber_who_signed_out_hears_no_more(gql, live_server):
    owner = await qualified_candidate(await build_world())
    order_id = await order_of(gql, owner)
    async with acknowledged(live_server, bearer(owner.token)) as ws:
        await subscribe(ws, order_id)
        await next_order(ws)
        assert await sessions.close_session(owner.token)  # signed out elsewhere

        another_device = await sessions.open_session(
            owner.account, client_address="127.0.0.1", user_agent="tests"
        )
        await cancel_over_http(live_server, another_device, order_id)

        assert error_codes(await receive(ws)) == ["UNAUTHENTICATED"]


# --- across processes -----------------------------------------------------------------------


async def test_a_change_made_by_another_process_reaches_the_subscriber(
    gql, live_server, database, settings
):
    """PostgreSQL: subscribed on server A, cancelled through server B, and paid by this test
    process (a third one): both reach the socket on A. SQLite has one process by design:
    the same changes, made in this process, reach a subscriber in this process."""
    world = await build_world()
    owner, payer = await qualified_candidate(world), await qualified_candidate(world)
    to_cancel, to_pay = await order_of(gql, owner), await order_of(gql, payer)

    if db.is_postgres(database):
        with second_server(database, settings) as server_b:
            async with (
                acknowledged(live_server, bearer(owner.token)) as owner_ws,
                acknowledged(live_server, bearer(payer.token)) as payer_ws,
            ):
                await subscribe(owner_ws, to_cancel)
                await subscribe(payer_ws, to_pay)
                assert (await next_order(owner_ws))["status"] == "PENDING_PAYMENT"
                assert (await next_order(payer_ws))["status"] == "PENDING_PAYMENT"

                await cancel_over_http(server_b, owner.token, to_cancel)
                assert (await next_order(owner_ws))["status"] == "CANCELLED"

                await registration.mark_order_paid(pk(to_pay), clock.now())
                paid = await next_order(payer_ws)
                assert paid["status"] == "PAID"
                assert paid["registrations"] == [{"status": "PAID", "subject": {"code": "CET4"}}]
        return

    async with (
        order_events.subscribe(pk(to_cancel)) as cancelled,
        order_events.subscribe(pk(to_pay)) as paid_events,
    ):
        result = await gql.data(CANCEL, {"id": to_cancel}, token=owner.token)
        assert result["cancelOrder"]["order"] == {"status": "CANCELLED"}
        assert await heard(cancelled)

        await registration.mark_order_paid(pk(to_pay), clock.now())
        assert await heard(paid_events)


async def test_listening_survives_a_dropped_connection(gql, database):
    """PostgreSQL: the listening connection is killed; the subscriber is woken when it is
    back (notifications sent meanwhile are lost) and hears later events. SQLite needs no
    connection to listen on at all."""
    owner = await qualified_candidate(await build_world())
    order_id = pk(await order_of(gql, owner))
    try:
        async with order_events.subscribe(order_id) as events:
            listener = order_events._hub().listener
            if not db.is_postgres(database):
                assert listener is None
                await order_events.publish(order_id)
                assert await heard(events)
                return
            assert listener is not None and listener.connection is not None
            backend = listener.connection.get_server_pid()
            await get_connection("default").execute_query(
                "SELECT pg_terminate_backend($1)", [backend]
            )
            assert await heard(events)  # woken on reconnecting
            assert listener.connection is not None
            assert listener.connection.get_server_pid() != backend

            await order_events.publish(order_id)
            assert await heard(events)
    finally:
        await order_events.close()
