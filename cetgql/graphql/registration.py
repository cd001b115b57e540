"""Candidate operations of registration: what can be chosen, choosing it, cancelling it."""

from __future__ import annotations

import strawberry
from strawberry import relay
from strawberry.types import Info

from cetgql.graphql.errors import UserError, attempt
from cetgql.graphql.permissions import IsAuthenticated
from cetgql.graphql.scalars import Money
from cetgql.graphql.types.exams import Subject
from cetgql.graphql.types.registration import OralCenter, Order, Registration, SubjectOption
from cetgql.services import clock, eligibility, oral_centers, registration
from cetgql.services.errors import DomainError, ErrorCode


@strawberry.input
class SubjectChoiceInput:
    subject_code: str
    oral_center_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Required for oral subjects; the written centre is your school."
    )


@strawberry.input
class SelectSubjectsInput:
    session_code: str
    items: list[SubjectChoiceInput]


@strawberry.type
class SelectSubjectsPayload:
    orders: list[Order] = strawberry.field(
        description="One order per kind chosen: written and oral are paid separately (S7)."
    )
    user_errors: list[UserError]

    @strawberry.field(description="The first of `orders`; most selections make exactly one.")
    def order(self) -> Order | None:
        return self.orders[0] if self.orders else None

    @strawberry.field
    async def registrations(self, info: Info) -> list[Registration]:
        loader = info.context.loaders.registrations_of_order
        rows = [r for group in await loader.load_many([o.id for o in self.orders]) for r in group]
        return [Registration.from_model(r) for r in rows]


@strawberry.input
class CancelOrderInput:
    order_id: relay.GlobalID


@strawberry.type
class CancelOrderPayload:
    order: Order | None
    user_errors: list[UserError]


def _node_pk(global_id: relay.GlobalID | None, type_name: str, *field: str) -> int | None:
    if global_id is None:
        return None
    if global_id.type_name != type_name or not global_id.node_id.isdigit():
        raise DomainError.of(ErrorCode.NOT_FOUND, *field)
    return int(global_id.node_id)


@strawberry.type
class RegistrationQueries:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Every subject of the session for the viewer, with why it cannot be chosen.",
    )
    async def available_subjects(self, info: Info, session_code: str) -> list[SubjectOption]:
        viewer = await info.context.viewer()
        try:
            options = await registration.available_subjects(viewer, session_code)
        except DomainError:
            return []
        missing = [x.offering_id for x in options if x.offering is None]
        offerings = {x.offering_id: x.offering for x in options if x.offering is not None}
        for found in await info.context.loaders.offering.load_many(missing) if missing else []:
            if found is not None:
                offerings[found.id] = found
        return [
            SubjectOption(
                subject=Subject.from_offering(offerings[o.offering_id]),
                eligible=o.eligible,
                reasons=list(o.reasons),
                fee=Money(fen=o.fee_fen) if o.fee_fen is not None else None,
            )
            for o in options
        ]

    @strawberry.field(
        description="Oral centres for a subject: in `province` (code or name), "
        "else in the viewer's province when known."
    )
    async def oral_centers(
        self, info: Info, session_code: str, subject_code: str, province: str | None = None
    ) -> list[OralCenter]:
        try:
            centers = await oral_centers.list_for_subject(
                session_code, subject_code, province=province, viewer=await info.context.viewer()
            )
        except DomainError:
            return []
        # The seats of every centre in one query, before the fields ask for them one by one.
        taken = await eligibility.seats_taken([c.id for c in centers], clock.now())
        info.context.loaders.seats_taken.prime_many({c.id: taken.get(c.id, 0) for c in centers})
        return [OralCenter.from_model(c) for c in centers]


@strawberry.type
class RegistrationMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def select_subjects(
        self, info: Info, input: SelectSubjectsInput
    ) -> SelectSubjectsPayload:
        viewer = await info.context.viewer()

        async def run() -> list[Order]:
            choices = [
                registration.Choice(
                    subject_code=item.subject_code,
                    oral_center_id=_node_pk(
                        item.oral_center_id, "OralCenter", "items", str(i), "oralCenterId"
                    ),
                )
                for i, item in enumerate(input.items)
            ]
            orders = await registration.select_subjects(viewer, input.session_code, choices)
            return [Order.from_model(o) for o in orders]

        orders, errors = await attempt(info, run())
        return SelectSubjectsPayload(orders=orders or [], user_errors=errors)

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def cancel_order(self, info: Info, input: CancelOrderInput) -> CancelOrderPayload:
        viewer = await info.context.viewer()

        async def run() -> Order:
            order_id = _node_pk(input.order_id, "Order", "orderId")
            assert order_id is not None
            return Order.from_model(await registration.cancel_order(viewer, order_id))

        order, errors = await attempt(info, run())
        return CancelOrderPayload(order=order, user_errors=errors)
