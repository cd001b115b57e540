"""National-admin views of accounts: phone appeals to review and the message outbox.

The outbox holds every code and notice the system sent (the only copy in demo mode), so it is
readable by national admins alone, never by candidates.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from cetgql import models
from cetgql.graphql.accounts import Channel, PhoneAppealStatus
from cetgql.graphql.errors import UserError, attempt
from cetgql.graphql.permissions import IsNationalAdmin
from cetgql.graphql.types.accounts import Account, IdType
from cetgql.services import access, appeals
from cetgql.services.errors import DomainError, ErrorCode


async def _is_national(info: Info) -> bool:
    viewer = await info.context.viewer()
    if viewer is None or viewer.must_change_password:
        return False
    return (await access.scope_of(viewer)).national


def _ids(node_ids: Iterable[str]) -> list[int]:
    return [int(i) for i in node_ids if i.isdigit()]


@strawberry.type(description="信息占用申诉: a request to move a mobile number to an account.")
class PhoneAppeal(relay.Node):
    id: relay.NodeID[int]
    name: str
    id_type: IdType  # type: ignore[valid-type]
    id_number: str
    new_phone: str
    email: str | None
    reason: str
    status: PhoneAppealStatus  # type: ignore[valid-type]
    review_note: str | None
    created_at: datetime
    reviewed_at: datetime | None
    model: strawberry.Private[models.PhoneAppeal]

    @classmethod
    def from_model(cls, appeal: models.PhoneAppeal) -> PhoneAppeal:
        return cls(
            id=appeal.id,
            name=appeal.name,
            id_type=appeal.id_type,
            id_number=appeal.id_number,
            new_phone=appeal.new_phone,
            email=appeal.email,
            reason=appeal.reason,
            status=appeal.status,
            review_note=appeal.review_note,
            created_at=appeal.created_at,
            reviewed_at=appeal.reviewed_at,
            model=appeal,
        )

    @strawberry.field(description="The account the appeal would move the number to.")
    async def account(self) -> Account | None:
        found = await models.Account.get_or_none(id=self.model.account_id)  # type: ignore[attr-defined]
        return Account.from_model(found) if found else None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        node_ids = list(node_ids)
        allowed = await _is_national(info)
        found = (
            {a.id: a for a in await models.PhoneAppeal.filter(id__in=_ids(node_ids))}
            if allowed
            else {}
        )
        return [
            cls.from_model(found[int(i)]) if i.isdigit() and int(i) in found else None
            for i in node_ids
        ]


@strawberry.type(name="PhoneAppealConnection")
class PhoneAppealConnection(relay.ListConnection[PhoneAppeal]):
    @classmethod
    def resolve_node(cls, node: Any, *, info: Info, **kwargs: Any) -> PhoneAppeal:
        return PhoneAppeal.from_model(node)


@strawberry.type(description="A message the system sent, or in demo mode only recorded.")
class OutboxMessage(relay.Node):
    id: relay.NodeID[int]
    channel: Channel  # type: ignore[valid-type]
    destination: str
    subject: str
    body: str
    delivered: bool = strawberry.field(description="Handed to the mail server or SMS gateway.")
    error: str | None = strawberry.field(description="Why delivery failed, if it did.")
    created_at: datetime

    @classmethod
    def from_model(cls, message: models.OutboxMessage) -> OutboxMessage:
        return cls(
            id=message.id,
            channel=message.channel,
            destination=message.destination,
            subject=message.subject,
            body=message.body,
            delivered=message.delivered,
            error=message.error,
            created_at=message.created_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        node_ids = list(node_ids)
        allowed = await _is_national(info)
        found = (
            {m.id: m for m in await models.OutboxMessage.filter(id__in=_ids(node_ids))}
            if allowed
            else {}
        )
        return [
            cls.from_model(found[int(i)]) if i.isdigit() and int(i) in found else None
            for i in node_ids
        ]


@strawberry.type(name="OutboxMessageConnection")
class OutboxMessageConnection(relay.ListConnection[OutboxMessage]):
    @classmethod
    def resolve_node(cls, node: Any, *, info: Info, **kwargs: Any) -> OutboxMessage:
        return OutboxMessage.from_model(node)


@strawberry.type
class AdminAccountQueries:
    @relay.connection(
        PhoneAppealConnection,
        description="Phone appeals, newest first (national admins).",
        permission_classes=[IsNationalAdmin],
    )
    async def phone_appeals(
        self,
        status: PhoneAppealStatus | None = None,  # type: ignore[valid-type]
    ) -> AsyncIterable[models.PhoneAppeal]:
        query = models.PhoneAppeal.all().order_by("-id")
        return query.filter(status=status) if status is not None else query

    @relay.connection(
        OutboxMessageConnection,
        description="Messages sent or recorded, newest first (national admins).",
        permission_classes=[IsNationalAdmin],
    )
    async def outbox_messages(
        self, destination: str | None = None
    ) -> AsyncIterable[models.OutboxMessage]:
        query = models.OutboxMessage.all().order_by("-id")
        if destination:
            query = query.filter(destination=destination.strip().lower())
        return query


@strawberry.input
class ReviewPhoneAppealInput:
    appeal_id: strawberry.ID
    approve: bool
    note: str | None = None


@strawberry.type
class ReviewPhoneAppealPayload:
    appeal: PhoneAppeal | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _appeal_pk(global_id: str) -> int:
    try:
        decoded = relay.GlobalID.from_id(global_id)
    except Exception as error:  # any malformed id is simply not found
        raise DomainError.of(ErrorCode.NOT_FOUND, "appealId") from error
    if decoded.type_name != "PhoneAppeal" or not decoded.node_id.isdigit():
        raise DomainError.of(ErrorCode.NOT_FOUND, "appealId")
    return int(decoded.node_id)


@strawberry.type
class AdminAccountMutations:
    @strawberry.mutation(
        description="Approve (moves the number) or reject a pending phone appeal.",
        permission_classes=[IsNationalAdmin],
    )
    async def review_phone_appeal(
        self, info: Info, input: ReviewPhoneAppealInput
    ) -> ReviewPhoneAppealPayload:
        viewer = await info.context.viewer()

        async def review() -> models.PhoneAppeal:
            return await appeals.review_phone_appeal(
                viewer, _appeal_pk(str(input.appeal_id)), approve=input.approve, note=input.note
            )

        appeal, errors = await attempt(info, review())
        return ReviewPhoneAppealPayload(
            appeal=PhoneAppeal.from_model(appeal) if appeal else None, user_errors=errors
        )
