"""Subscriptions over ``graphql-transport-ws``: ``orderUpdated`` pushes an order to its owner.

The client authenticates in the ``connection_init`` payload (``{"Authorization": "Bearer
<token>"}``), see :class:`cetgql.graphql.context.Context`. Events come from
:mod:`cetgql.services.order_events`, which carries them across API processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import strawberry
from graphql import GraphQLError
from strawberry import relay
from strawberry.types import Info

from cetgql import models
from cetgql.graphql.loaders import Loaders
from cetgql.graphql.permissions import IsAuthenticated
from cetgql.graphql.types.registration import Order
from cetgql.services import clock, order_events
from cetgql.services.errors import DomainError, ErrorCode, message_for


def _error(code: ErrorCode, language: str) -> GraphQLError:
    return GraphQLError(message_for(code, language), extensions={"code": code.value})


def _order_pk(global_id: relay.GlobalID, language: str) -> int:
    if global_id.type_name != "Order" or not global_id.node_id.isdigit():
        raise _error(ErrorCode.NOT_FOUND, language)
    return int(global_id.node_id)


async def _current(info: Info, account_id: int, order_id: int) -> Order:
    """The order as the database has it now, for a viewer whose session is still open.

    The context lives as long as the WebSocket, so the session is checked again on every
    push (a signed-out or reset account stops receiving) and the DataLoaders are renewed
    (their cache would otherwise serve the registrations and payments of the first push).
    """
    info.context.forget_viewer()
    viewer = await info.context.viewer()
    if viewer is None or viewer.id != account_id or viewer.must_change_password:
        raise GraphQLError(
            "The session has ended; sign in again and resubscribe.",
            extensions={"code": "UNAUTHENTICATED"},
        )
    try:
        order = await order_events.owned_order(viewer, order_id)
    except DomainError as error:
        raise _error(error.problems[0].code, info.context.language) from error
    info.context.loaders = Loaders()
    return Order.from_model(order)


def _seconds_to_deadline(order: models.Order) -> float | None:
    """Until the unpaid order lapses: its status turns LAPSED then even if no job runs (S8)."""
    if order.status != models.OrderStatus.PENDING_PAYMENT:
        return None
    remaining = (order.expires_at - clock.now()).total_seconds()
    return remaining if remaining > 0 else None


@strawberry.type
class OrderSubscriptions:
    @strawberry.subscription(
        permission_classes=[IsAuthenticated],
        description="The order now, then again on every change of its status, its choices or "
        "its payments, and when its payment deadline passes. Only the order's owner may "
        "subscribe; any other order id is NOT_FOUND. A state may repeat (after a reconnect), "
        "but the last one is never missed.",
    )
    async def order_updated(
        self, info: Info, order_id: relay.GlobalID
    ) -> AsyncGenerator[Order, None]:
        viewer = await info.context.viewer()
        assert viewer is not None  # IsAuthenticated
        order_pk = _order_pk(order_id, info.context.language)
        # Listen first, then read: a change between the two is in the read or in an event.
        async with order_events.subscribe(order_pk) as events:
            order = await _current(info, viewer.id, order_pk)
            yield order
            while True:
                deadline = _seconds_to_deadline(order.model)
                try:
                    async with asyncio.timeout(deadline):
                        await events.wait()
                except TimeoutError:
                    pass  # the deadline passed: push the order, now LAPSED
                order = await _current(info, viewer.id, order_pk)
                yield order
