"""The ``Account`` type. Only its owner and national admins can reach an account."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from cetgql import models
from cetgql.graphql.types.registration import Order, Registration
from cetgql.graphql.types.scores import Score, ScoreCertificate
from cetgql.graphql.types.scores import history as score_history
from cetgql.models.prepared import PreparedQuery
from cetgql.services import access, identity

if TYPE_CHECKING:
    from cetgql.graphql.cet6_review import Cet6Review
    from cetgql.graphql.types.qualification import Qualification
    from cetgql.graphql.types.tickets import Ticket

IdType = strawberry.enum(models.IdType, name="IdType", description="Kinds of identity document.")
Role = strawberry.enum(models.Role, name="Role")


# The candidate's overview reads, prepared (models/prepared.py): built once, not per request.
# Registrations come with their subject, oral centre and order joined in: the overview shows
# them all, and one query with joins costs less than three batched ones.
_REGISTRATION_RELATIONS = ("offering__subject", "oral_center", "order")
_REGISTRATIONS: PreparedQuery[list[models.Registration]] = PreparedQuery(
    lambda account_id: (
        models.Registration.filter(account_id=account_id)
        .select_related(*_REGISTRATION_RELATIONS)
        .order_by("-created_at", "-id")
    )
)
_REGISTRATIONS_IN: PreparedQuery[list[models.Registration]] = PreparedQuery(
    lambda account_id, session_code: (
        models.Registration.filter(account_id=account_id, session__code=session_code)
        .select_related(*_REGISTRATION_RELATIONS)
        .order_by("-created_at", "-id")
    )
)
_ORDERS: PreparedQuery[list[models.Order]] = PreparedQuery(
    lambda account_id: models.Order.filter(account_id=account_id).order_by("-created_at", "-id")
)


async def can_see_account(info: Info, account_id: int) -> bool:
    viewer = await info.context.viewer()
    if viewer is None or viewer.must_change_password:
        return False
    return viewer.id == account_id or (await access.scope_of(viewer)).national


@strawberry.type
class Account(relay.Node):
    id: relay.NodeID[int]
    name: str
    id_type: IdType  # type: ignore[valid-type]
    must_change_password: bool
    model: strawberry.Private[models.Account]

    @classmethod
    def from_model(cls, account: models.Account) -> Account:
        return cls(
            id=account.id,
            name=account.name,
            id_type=account.id_type,
            must_change_password=account.must_change_password,
            model=account,
        )

    @strawberry.field(description="The ID number with all but the first and last 4 masked.")
    def id_number_masked(self) -> str:
        return identity.mask_id_number(self.model.id_number)

    @strawberry.field(description="The full ID number: only for the owner and admins.")
    async def id_number(self, info: Info) -> str | None:
        return self.model.id_number if await can_see_account(info, self.id) else None

    @strawberry.field
    def phone_masked(self) -> str | None:
        return identity.mask_phone(self.model.phone)

    @strawberry.field
    def email_masked(self) -> str | None:
        return identity.mask_email(self.model.email)

    @strawberry.field
    async def roles(self) -> list[Role]:  # type: ignore[valid-type]
        return sorted(await access.roles_of(self.model))

    @strawberry.field(
        description="The roster match for the session (Q1), confirmed or not (Q2); null before "
        "the qualification check. Only the owner and national admins see it."
    )
    async def qualification(
        self, info: Info, session_code: str
    ) -> Annotated[Qualification, strawberry.lazy("cetgql.graphql.types.qualification")] | None:
        from cetgql.graphql.types.qualification import Qualification

        return await Qualification.for_account(info, self.id, session_code)

    @strawberry.field(
        description="The latest CET6 qualification review of the session (S4); null if none."
    )
    async def cet6_review(
        self, info: Info, session_code: str
    ) -> Annotated[Cet6Review, strawberry.lazy("cetgql.graphql.cet6_review")] | None:
        from cetgql.graphql.cet6_review import Cet6Review

        return await Cet6Review.for_account(info, self.id, session_code)

    @strawberry.field(description="Every subject chosen, with its state and payment (S12).")
    async def registrations(
        self, info: Info, session_code: str | None = None
    ) -> list[Registration]:
        if not await can_see_account(info, self.id):
            return []  # also while an initial password is still to be changed (S11)
        rows = await (
            _REGISTRATIONS_IN(self.id, session_code.strip().upper()[:8])
            if session_code
            else _REGISTRATIONS(self.id)
        )
        return [Registration.from_model(r) for r in rows]

    @strawberry.field(
        description="Published admission tickets, one per paid subject (T1), by exam time."
    )
    async def tickets(
        self, info: Info, session_code: str | None = None
    ) -> list[Annotated[Ticket, strawberry.lazy("cetgql.graphql.types.tickets")]]:
        from cetgql.graphql.types.tickets import tickets_of_account

        if not await can_see_account(info, self.id):
            return []
        return await tickets_of_account(self.id, session_code)

    @relay.connection(
        relay.ListConnection[Score],
        description="Scores of every session since June 2005 (R9) that have been released, "
        "newest first, matched by ID and name (or the ticket held).",
    )
    async def scores(self, info: Info) -> Iterable[Score]:
        return await score_history(info, self.id)

    @strawberry.field(description="Score certificates issued (R8), newest first; owner only.")
    async def score_certificates(self, info: Info) -> list[ScoreCertificate]:
        viewer = await info.context.viewer()
        if viewer is None or viewer.must_change_password or viewer.id != self.id:
            return []
        return [
            ScoreCertificate.from_model(c)
            for c in await models.ScoreCertificate.filter(account_id=self.id).order_by(
                "-issued_at", "-id"
            )
        ]

    @relay.connection(relay.ListConnection[Order], description="Orders, newest first.")
    async def orders(self, info: Info) -> Iterable[Order]:
        if not await can_see_account(info, self.id):
            return []
        # Not primed into the order loader: registrations' orders are loaded concurrently,
        # and whether a prime came first would make the statement count vary by timing.
        return [Order.from_model(o) for o in await _ORDERS(self.id)]

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        wanted = [int(i) for i in node_ids if i.isdigit()]
        visible = [i for i in wanted if await can_see_account(info, i)]
        found = {a.id: a for a in await models.Account.filter(id__in=visible)}
        return [
            cls.from_model(found[int(i)]) if i.isdigit() and int(i) in found else None
            for i in node_ids
        ]
