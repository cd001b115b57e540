"""Order events: "order N changed", from the service that changed it to whoever watches it.

Services call :func:`publish` after the transaction that changed an order (its status, its
choices, a payment of it) has committed; the ``orderUpdated`` subscription watches with
:func:`subscribe` and re-reads the order on each event. An event carries nothing but the
order id, so it can never leak data and a subscriber always shows what the database says.

How an event travels depends on the database, as DESIGN.md §2 asks ("cross-process events go
through the database's own pub/sub, never through process memory alone"):

- PostgreSQL (several stateless API processes): ``NOTIFY cetgql_order_events, '<id>'`` through
  Tortoise's connection. Each process holds one dedicated asyncpg connection that LISTENs on
  that channel, opened on the first subscription, and fans each notification out to the
  subscribers of that order in this process. The publishing process hears its own
  notification the same way, so there is exactly one delivery path. The connection is watched
  (termination callback and a periodic ping) and reopened when it drops.
- SQLite (the embedded mode): one API process by design, so events are fanned out in this
  process only. A second process on the same file (the CLI, a worker) would not reach its
  subscribers; that mode has none.

Delivery is at least once and coalescing: several events before a subscriber wakes make one
wake-up (it re-reads the latest state anyway, and a slow client never piles up a backlog),
and after the listening connection was lost every subscriber is woken once, because
notifications sent while it was down are gone. A subscriber may therefore see the same state
twice, never miss the last one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tortoise.connection import get_connection

from cetgql import db
from cetgql.models import Account, Order
from cetgql.services.errors import DomainError, ErrorCode
from cetgql.settings import get_settings

if TYPE_CHECKING:
    import asyncpg

logger = logging.getLogger("cetgql.order_events")

CHANNEL = "cetgql_order_events"
APPLICATION_NAME = "cetgql-order-events"  # how the listening connection shows in pg_stat_activity
CONNECT_TIMEOUT = 10.0  # seconds a first subscriber waits for the listening connection
PING_INTERVAL = 30.0  # a silently dead connection is noticed within about this long
PING_TIMEOUT = 10.0
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # after failed attempts, then the last


def _uses_postgres() -> bool:
    return db.is_postgres(get_settings().database_url)


async def publish(order_id: int) -> None:
    """Tell every subscriber of the order, in every API process, that it changed."""
    await publish_many((order_id,))


async def publish_many(order_ids: Iterable[int]) -> None:
    """:func:`publish` for several orders in one round trip (the lapse job closes batches).

    Call it after the change has committed: a subscriber re-reads the order at once and must
    see it. (Called inside a transaction on PostgreSQL, the NOTIFY goes through that
    transaction's connection, so PostgreSQL holds it until commit and drops it on rollback.)
    It never raises, since the change itself is made and a lost event only delays a
    screen; a failure is logged.
    """
    ids = sorted({int(order_id) for order_id in order_ids})
    if not ids:
        return
    if not _uses_postgres():
        hub = _hub()
        for order_id in ids:
            hub.deliver(order_id)
        return
    try:
        await get_connection("default").execute_query(
            "SELECT pg_notify($1, id::text) FROM unnest($2::bigint[]) AS id", [CHANNEL, ids]
        )
    except Exception:
        logger.exception("could not publish order events for %s", ids)


def subscribe(order_id: int) -> OrderSubscription:
    """Watch one order. Use as ``async with subscribe(id) as events``: events that happen
    after the block is entered are delivered, so read the order inside it, after entering."""
    return OrderSubscription(_hub(), order_id)


async def owned_order(account: Account, order_id: int) -> Order:
    """The order if it is the account's own; anybody else's is reported as not found, so a
    subscription cannot be used to learn which order ids exist."""
    order = await Order.get_or_none(id=order_id, account_id=account.id)
    if order is None:
        raise DomainError.of(ErrorCode.NOT_FOUND, "orderId")
    return order


class OrderSubscription:
    """One subscriber's events of one order, registered from creation until closed."""

    def __init__(self, hub: _Hub, order_id: int) -> None:
        self.order_id = order_id
        self._hub = hub
        self._pending = asyncio.Event()
        self._closed = False
        hub.add(self)

    def notify(self) -> None:
        self._pending.set()

    async def wait(self) -> None:
        """Wait for the next event (bound it with ``asyncio.timeout`` where needed)."""
        await self._pending.wait()
        self._pending.clear()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._hub.remove(self)

    def __aiter__(self) -> OrderSubscription:
        return self

    async def __anext__(self) -> None:
        if self._closed:
            raise StopAsyncIteration
        await self.wait()

    async def __aenter__(self) -> OrderSubscription:
        try:
            await self._hub.start_listening()
        except BaseException:
            self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class _Hub:
    """The subscribers of this process (of one event loop), by order id."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._subscribers: defaultdict[int, set[OrderSubscription]] = defaultdict(set)
        self.listener: PostgresListener | None = None

    def add(self, subscription: OrderSubscription) -> None:
        self._subscribers[subscription.order_id].add(subscription)

    def remove(self, subscription: OrderSubscription) -> None:
        watching = self._subscribers.get(subscription.order_id)
        if watching is not None:
            watching.discard(subscription)
            if not watching:
                del self._subscribers[subscription.order_id]

    def deliver(self, order_id: int) -> None:
        for subscription in tuple(self._subscribers.get(order_id, ())):
            subscription.notify()

    def deliver_all(self) -> None:
        for watching in tuple(self._subscribers.values()):
            for subscription in tuple(watching):
                subscription.notify()

    async def start_listening(self) -> None:
        if not _uses_postgres():
            return
        if self.listener is None:
            self.listener = PostgresListener(
                db.libpq_url(get_settings().database_url),
                on_event=self.deliver,
                on_reconnect=self.deliver_all,
            )
        await self.listener.ready()

    async def close(self) -> None:
        if self.listener is not None:
            await self.listener.close()
            self.listener = None


class PostgresListener:
    """One asyncpg connection that LISTENs on :data:`CHANNEL`, kept open by a supervising
    task: reconnects with back-off when the connection drops or stops answering pings."""

    def __init__(
        self,
        dsn: str,
        *,
        on_event: Callable[[int], None],
        on_reconnect: Callable[[], None],
    ) -> None:
        self.dsn = dsn
        self.on_event = on_event
        self.on_reconnect = on_reconnect
        self.connection: asyncpg.Connection | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def ready(self) -> None:
        """Start the listener if it is not running, and wait until it listens."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._supervise(), name="cetgql-order-events")
        try:
            await asyncio.wait_for(self._connected.wait(), CONNECT_TIMEOUT)
        except TimeoutError as error:
            raise ConnectionError("order events: cannot LISTEN on the database") from error

    async def close(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _supervise(self) -> None:
        import asyncpg

        failures = 0  # in a row; the wait before the next attempt grows with them
        listened_before = False
        while True:
            if failures:
                await asyncio.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS)) - 1])
            try:
                connection = await asyncpg.connect(
                    self.dsn,
                    timeout=CONNECT_TIMEOUT,
                    server_settings={"application_name": APPLICATION_NAME},
                )
            except Exception as error:
                failures += 1
                logger.warning("order events: cannot connect (%s); retrying", error)
                continue
            try:
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._received)
                self.connection = connection
                self._connected.set()
                failures = 0
                if listened_before:
                    logger.info("order events: listening again; waking every subscriber")
                    self.on_reconnect()
                listened_before = True
                await self._watch(connection, lost)
                logger.warning("order events: the listening connection was lost; reconnecting")
            except Exception as error:
                logger.warning("order events: listening failed (%r); reconnecting", error)
            finally:
                self._connected.clear()
                self.connection = None
                await _close_quietly(connection)
            failures += 1

    async def _watch(self, connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the connection is gone: closed under us, or no answer to a ping."""
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), PING_INTERVAL)
            except TimeoutError:
                await asyncio.wait_for(connection.fetchval("SELECT 1"), PING_TIMEOUT)

    def _received(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        try:
            order_id = int(payload)
        except ValueError:
            logger.warning("order events: ignoring payload %r", payload[:64])
            return
        self.on_event(order_id)


async def _close_quietly(connection: asyncpg.Connection) -> None:
    if connection.is_closed():
        return
    try:
        await asyncio.wait_for(connection.close(), 2)
    except asyncio.CancelledError:
        connection.terminate()
        raise
    except Exception:
        connection.terminate()


_current: _Hub | None = None


def _hub() -> _Hub:
    """This process's hub. One per event loop: a hub's events and connection belong to the
    loop that made them (a test run or a CLI command may run more than one loop)."""
    global _current
    loop = asyncio.get_running_loop()
    if _current is None or _current.loop is not loop:
        _current = _Hub(loop)
    return _current


async def close() -> None:
    """Close this process's listening connection (the app's shutdown); reopened on demand."""
    if _current is not None and _current.loop is asyncio.get_running_loop():
        await _current.close()


@contextlib.asynccontextmanager
async def lifespan() -> AsyncIterator[None]:
    """For the app's lifespan: nothing to open (the first subscriber does), close at the end."""
    try:
        yield
    finally:
        await close()
