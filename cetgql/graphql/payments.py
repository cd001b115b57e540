"""Candidate operations of payment: start one, and ask the provider again (P2, P3)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from cetgql.graphql.errors import UserError, attempt
from cetgql.graphql.permissions import IsAuthenticated
from cetgql.graphql.types.payments import Payment
from cetgql.graphql.types.registration import Order
from cetgql.services import payments
from cetgql.services.errors import DomainError, ErrorCode


def _pk(global_id: relay.GlobalID, type_name: str, field: str) -> int:
    if global_id.type_name != type_name or not global_id.node_id.isdigit():
        raise DomainError.of(ErrorCode.NOT_FOUND, field)
    return int(global_id.node_id)


@strawberry.input
class StartPaymentInput:
    order_id: relay.GlobalID
    provider: str = strawberry.field(description='A name from paymentProviders, e.g. "alipay".')
    return_url: str | None = strawberry.field(
        default=None, description="Where our return page sends the candidate back to."
    )
    mobile: bool = strawberry.field(default=False, description="Use the phone-sized cashier.")


async def _order_of(root: Any, info: Info) -> Order | None:
    """The payment's order, loaded only when the client asks for it (through the request's
    order loader, so asking twice costs one query)."""
    if root.payment is None:
        return None
    order = await info.context.loaders.order.load(root.payment.model.order_id)
    return Order.from_model(order) if order else None


@strawberry.type
class StartPaymentPayload:
    payment: Payment | None
    order: Order | None = strawberry.field(resolver=_order_of)
    user_errors: list[UserError]


@strawberry.input
class RefreshPaymentInput:
    payment_id: relay.GlobalID


@strawberry.type
class RefreshPaymentPayload:
    payment: Payment | None
    order: Order | None = strawberry.field(resolver=_order_of)
    user_errors: list[UserError]


@strawberry.type
class PaymentMutations:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Hand the candidate to a provider. Pressing twice never makes two trades; "
        "switching provider closes the earlier trade first.",
    )
    async def start_payment(self, info: Info, input: StartPaymentInput) -> StartPaymentPayload:
        viewer = await info.context.viewer()

        async def run() -> Payment:
            model = await payments.start_payment(
                viewer,
                _pk(input.order_id, "Order", "orderId"),
                input.provider.strip().lower()[:32],
                return_url=input.return_url,
                mobile=input.mobile,
            )
            return Payment.from_model(model)

        payment, errors = await attempt(info, run())
        return StartPaymentPayload(payment=payment, user_errors=errors)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Ask the provider about a payment now (the 更新 button).",
    )
    async def refresh_payment(
        self, info: Info, input: RefreshPaymentInput
    ) -> RefreshPaymentPayload:
        viewer = await info.context.viewer()

        async def run() -> Payment:
            model = await payments.refresh(viewer, _pk(input.payment_id, "Payment", "paymentId"))
            return Payment.from_model(model)

        payment, errors = await attempt(info, run())
        return RefreshPaymentPayload(payment=payment, user_errors=errors)
