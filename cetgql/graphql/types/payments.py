"""Payments of an order, as the candidate sees them (P2, P3, P4, P6)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from cetgql import models
from cetgql.graphql.scalars import Money
from cetgql.services import access

PaymentStatus = strawberry.enum(models.PaymentStatus, name="PaymentStatus")


@strawberry.type
class FormField:
    name: str
    value: str


@strawberry.type(description="How to hand the browser to the provider: follow or post a form.")
class PaymentRedirect:
    method: str
    url: str
    fields: list[FormField]


@strawberry.type
class Payment(relay.Node):
    id: relay.NodeID[int]
    provider: str
    out_trade_no: str = strawberry.field(
        description="Our trade number (交易订单号): keep it to ask about this payment."
    )
    amount: Money
    provider_trade_no: str | None
    paid_at: datetime | None
    qr_code: str | None
    refunded_at: datetime | None
    status: PaymentStatus  # type: ignore[valid-type]
    refund_reason: str | None = strawberry.field(
        description="Why this payment was refunded: DOUBLE_PAYMENT (the order was already paid) "
        "or LATE_PAYMENT (it arrived after the order lapsed and its places were gone)."
    )
    model: strawberry.Private[models.Payment]

    @classmethod
    def from_model(cls, payment: models.Payment) -> Payment:
        return cls(
            id=payment.id,
            provider=payment.provider,
            out_trade_no=payment.out_trade_no,
            amount=Money(fen=payment.amount_fen),
            provider_trade_no=payment.provider_trade_no,
            paid_at=payment.paid_at,
            qr_code=payment.qr_code,
            refunded_at=payment.refunded_at,
            status=payment.status,
            refund_reason=payment.refund_reason,
            model=payment,
        )

    @strawberry.field(description="Set while the payment waits for the candidate at the provider.")
    def redirect(self) -> PaymentRedirect | None:
        data = self.model.redirect or {}
        if self.model.status not in (models.PaymentStatus.CREATED, models.PaymentStatus.PENDING):
            return None
        if "url" not in data:
            return None
        return PaymentRedirect(
            method=data["method"],
            url=data["url"],
            fields=[FormField(name=n, value=v) for n, v in data.get("fields", [])],
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        viewer = await info.context.viewer()
        if viewer is None or viewer.must_change_password:
            return [None for _ in node_ids]
        national = (await access.scope_of(viewer)).national
        ids = [int(i) for i in node_ids if i.isdigit()]
        rows = await models.Payment.filter(id__in=ids).select_related("order")
        found = {
            p.id: p
            for p in rows
            if national or p.order.account_id == viewer.id  # type: ignore[attr-defined]
        }
        return [
            cls.from_model(found[int(i)]) if i.isdigit() and int(i) in found else None
            for i in node_ids
        ]
