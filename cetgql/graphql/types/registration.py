"""Registrations, orders, oral centres and subject options (S1–S12)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from cetgql import models
from cetgql.graphql.errors import UserErrorCode
from cetgql.graphql.scalars import Money
from cetgql.graphql.types.exams import ExamSession, Subject, SubjectKind
from cetgql.graphql.types.payments import Payment
from cetgql.services import access, clock, eligibility

if TYPE_CHECKING:
    from cetgql.graphql.types.tickets import Ticket

RegistrationStatus = strawberry.enum(models.RegistrationStatus, name="RegistrationStatus")
OrderStatus = strawberry.enum(models.OrderStatus, name="OrderStatus")


async def _owned_or_national(info: Info, account_id: int) -> bool:
    viewer = await info.context.viewer()
    if viewer is None or viewer.must_change_password:
        return False
    return viewer.id == account_id or (await access.scope_of(viewer)).national


def _preloaded(model: Any, relation: str) -> Any:
    """The related object a query fetched along (``select_related``), else None."""
    return model.__dict__.get(f"_{relation}")


async def _then(pending: Awaitable[Any], convert: Callable[[Any], Any]) -> Any:
    return convert(await pending)


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: convert(value) if value is not None else None


def _node_ids(node_ids: Iterable[str]) -> list[int]:
    return [int(i) for i in node_ids if i.isdigit()]


@strawberry.type
class OralCenter(relay.Node):
    id: relay.NodeID[int]
    code: str
    name: str
    address: str
    capacity: int
    model: strawberry.Private[models.OralCenter]

    @classmethod
    def from_model(cls, center: models.OralCenter) -> OralCenter:
        return cls(
            id=center.id,
            code=center.code,
            name=center.name,
            address=center.address,
            capacity=center.capacity,
            model=center,
        )

    @strawberry.field(description="The province's name.")
    def province(self, info: Info) -> str:
        province = _preloaded(self.model, "province")
        if province is not None:
            return str(province.name)
        return _then(  # type: ignore[return-value]
            info.context.loaders.province.load(self.model.province_id),  # type: ignore[attr-defined]
            lambda found: found.name if found else "",
        )

    @strawberry.field(description="Oral subjects examined here; empty means all of them.")
    def subject_codes(self) -> list[str]:
        return list(self.model.subject_codes or [])

    @strawberry.field(description="Seats not held by a paid or still-pending choice right now.")
    def remaining_seats(self, info: Info) -> int:
        loader = info.context.loaders.seats_taken
        counted = loader.cache_map.get(self.id)  # primed by oralCenters for all its centres
        if counted is not None and counted.done():
            return max(self.capacity - counted.result(), 0)
        return _then(  # type: ignore[return-value]
            loader.load(self.id), lambda taken: max(self.capacity - taken, 0)
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        found = {c.id: c for c in await models.OralCenter.filter(id__in=_node_ids(node_ids))}
        return [
            cls.from_model(found[int(i)]) if i.isdigit() and int(i) in found else None
            for i in node_ids
        ]


@strawberry.type
class SubjectOption:
    subject: Subject
    eligible: bool
    reasons: list[UserErrorCode]  # type: ignore[valid-type]
    fee: Money | None


@strawberry.type
class Registration(relay.Node):
    """Scalars are plain fields, worked out once here: a resolver per field costs Strawberry
    several times what reading an attribute does, and the overview shows every registration."""

    id: relay.NodeID[int]
    model: strawberry.Private[models.Registration]

    @classmethod
    def from_model(cls, registration: models.Registration) -> Registration:
        status = eligibility.effective_status(
            registration.status, registration.expires_at, clock.now()
        )
        unpaid = status in (
            models.RegistrationStatus.PENDING_PAYMENT,
            models.RegistrationStatus.LAPSED,
        )
        return cls(
            id=registration.id,
            status=status,
            expires_at=registration.expires_at if unpaid else None,
            paid_at=registration.paid_at,
            model=registration,
        )

    @strawberry.field
    def subject(self, info: Info) -> Subject:
        offering = _preloaded(self.model, "offering")
        if offering is not None:
            return Subject.from_offering(offering)
        return _then(  # type: ignore[return-value]
            info.context.loaders.offering.load(self.model.offering_id),  # type: ignore[attr-defined]
            Subject.from_offering,
        )

    @strawberry.field
    async def session(self, info: Info) -> ExamSession:
        session = await info.context.loaders.session.load(self.model.session_id)  # type: ignore[attr-defined]
        return ExamSession.from_model(session)

    status: RegistrationStatus = strawberry.field(  # type: ignore[valid-type]
        description="LAPSED from the payment deadline on, even before any job ran."
    )

    @strawberry.field
    def oral_center(self, info: Info) -> OralCenter | None:
        center_id = self.model.oral_center_id  # type: ignore[attr-defined]
        if center_id is None:
            return None
        center = _preloaded(self.model, "oral_center")
        if center is not None:
            return OralCenter.from_model(center)
        return _then(  # type: ignore[return-value]
            info.context.loaders.oral_center.load(center_id), _optional(OralCenter.from_model)
        )

    @strawberry.field
    def order(self, info: Info) -> Order | None:
        order = _preloaded(self.model, "order")
        if order is not None:
            return Order.from_model(order)
        return _then(  # type: ignore[return-value]
            info.context.loaders.order.load(self.model.order_id),  # type: ignore[attr-defined]
            _optional(Order.from_model),
        )

    @strawberry.field(description="The admission ticket, once published (T1); null before.")
    async def ticket(
        self, info: Info
    ) -> Annotated[Ticket, strawberry.lazy("cetgql.graphql.types.tickets")] | None:
        from cetgql.graphql.types.tickets import ticket_of_registration

        return await ticket_of_registration(info, self.id)

    expires_at: datetime | None = strawberry.field(
        description="The payment deadline while unpaid; null once paid or closed."
    )
    paid_at: datetime | None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        found = {
            r.id: r
            for r in await models.Registration.filter(id__in=_node_ids(node_ids))
            if await _owned_or_national(info, r.account_id)  # type: ignore[attr-defined]
        }
        return [
            cls.from_model(found[int(i)]) if i.isdigit() and int(i) in found else None
            for i in node_ids
        ]


@strawberry.type
class Order(relay.Node):
    id: relay.NodeID[int]
    number: str = strawberry.field(description="Our order number, to quote to the help desk.")
    kind: SubjectKind  # type: ignore[valid-type]
    amount: Money
    created_at: datetime
    expires_at: datetime
    model: strawberry.Private[models.Order]
    status: OrderStatus = strawberry.field(  # type: ignore[valid-type]
        description="LAPSED from the deadline on, even before any job ran."
    )
    paid_at: datetime | None
    paid_by_school: bool = strawberry.field(
        description="True when the school registered and paid collectively (S11)."
    )

    @classmethod
    def from_model(cls, order: models.Order) -> Order:
        return cls(
            id=order.id,
            number=order.number,
            kind=order.kind,
            amount=Money(fen=order.amount_fen),
            created_at=order.created_at,
            expires_at=order.expires_at,
            model=order,
            status=models.OrderStatus(
                eligibility.effective_status(order.status, order.expires_at, clock.now())
            ),
            paid_at=order.paid_at,
            paid_by_school=order.group_paid_by_id is not None,  # type: ignore[attr-defined]
        )

    @strawberry.field
    async def registrations(self, info: Info) -> list[Registration]:
        rows = await info.context.loaders.registrations_of_order.load(self.id)
        return [Registration.from_model(r) for r in rows]

    @strawberry.field(description="Every payment attempt of this order, newest first.")
    async def payments(self, info: Info) -> list[Payment]:
        rows = await info.context.loaders.payments_of_order.load(self.id)
        return [Payment.from_model(p) for p in rows]

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        found = {
            o.id: o
            for o in await models.Order.filter(id__in=_node_ids(node_ids))
            if await _owned_or_national(info, o.account_id)  # type: ignore[attr-defined]
        }
        return [
            cls.from_model(found[int(i)]) if i.isdigit() and int(i) in found else None
            for i in node_ids
        ]
