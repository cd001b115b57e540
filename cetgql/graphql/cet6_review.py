"""CET6 qualification review (S4): the candidate's request, the school's queue and decision.

The candidate sees the state of their own review (``Account.cet6Review``); the deciding school
also sees the candidate's roster record and the score record the ticket names. Those two fields
are null for anybody but an admin whose scope covers the review's school.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from cetgql import models
from cetgql.graphql.errors import UserError, attempt
from cetgql.graphql.permissions import IsAuthenticated, IsSchoolAdmin
from cetgql.graphql.types.accounts import IdType, can_see_account
from cetgql.graphql.types.exams import ExamSession
from cetgql.graphql.types.geography import School
from cetgql.graphql.types.roster import RosterRecord
from cetgql.services import cet6_review, roster
from cetgql.services.errors import DomainError, ErrorCode

Cet6ReviewStatus = strawberry.enum(
    models.ReviewStatus, name="Cet6ReviewStatus", description="Where a CET6 review stands."
)
Cet6ReviewReason = strawberry.enum(
    cet6_review.Reason,
    name="Cet6ReviewReason",
    description="What the automatic check found: TICKET_AND_ID_MATCH (approved at once), "
    "NAME_MATCH_ONLY or EARLIER_THAN_2005 (the school decides).",
)


@strawberry.type(description="The CET4 score record a review's ticket names (for the school).")
class Cet6ReviewScore:
    ticket_number: str
    session_code: str
    name: str
    id_type: IdType  # type: ignore[valid-type]
    id_number: str
    total: float | None = strawberry.field(description="As imported; null when absent.")
    reported_total: float = strawberry.field(
        description="As reported: 0 when absent or for a violation (R2)."
    )

    @classmethod
    def from_model(cls, record: models.ScoreRecord) -> Cet6ReviewScore:
        return cls(
            ticket_number=record.ticket_number,
            session_code=record.session.code,
            name=record.name,
            id_type=record.id_type,
            id_number=record.id_number,
            total=float(record.total) if record.total is not None else None,
            reported_total=float(cet6_review.reported_total(record)),
        )


@strawberry.type(
    description="A request to sit CET6 on the strength of a CET4 score of 425 or more (S4)."
)
class Cet6Review(relay.Node):
    id: relay.NodeID[int]
    cet4_ticket_number: str
    status: Cet6ReviewStatus  # type: ignore[valid-type]
    reason: Cet6ReviewReason  # type: ignore[valid-type]
    note: str | None = strawberry.field(description="The school's note on its decision.")
    created_at: datetime
    decided_at: datetime | None
    model: strawberry.Private[models.Cet6Review]

    @classmethod
    def from_model(cls, review: models.Cet6Review) -> Cet6Review:
        return cls(
            id=review.id,
            cet4_ticket_number=review.cet4_ticket_number,
            status=review.status,
            reason=cet6_review.Reason(review.reason),
            note=review.note,
            created_at=review.created_at,
            decided_at=review.decided_at,
            model=review,
        )

    @classmethod
    async def for_account(cls, info: Info, account_id: int, session_code: str) -> Cet6Review | None:
        """The account's latest review of the session, for its owner (and national admins)."""
        if not await can_see_account(info, account_id):
            return None
        review = await cet6_review.latest_for(account_id, session_code)
        return cls.from_model(review) if review else None

    @strawberry.field
    async def session(self, info: Info) -> ExamSession:
        session = await info.context.loaders.session.load(self.model.session_id)  # type: ignore[attr-defined]
        return ExamSession.from_model(session)

    @strawberry.field(description="The school that decides.")
    async def school(self) -> School:
        return School.from_model(await models.School.get(id=self.model.school_id))  # type: ignore[attr-defined]

    async def _administered(self, info: Info) -> models.Account | None:
        viewer = await info.context.viewer()
        return viewer if await cet6_review.can_administer(viewer, self.model) else None

    @strawberry.field(description="The candidate's roster record: for the deciding school only.")
    async def roster_record(self, info: Info) -> RosterRecord | None:
        viewer = await self._administered(info)
        record_id = await cet6_review.roster_record_id_of(self.model) if viewer else None
        if viewer is None or record_id is None:
            return None
        record = await roster.visible_record(viewer, record_id)
        return (await RosterRecord.many([record]))[0] if record is not None else None

    @strawberry.field(
        description="The score record of the ticket, to compare with the candidate: for the "
        "deciding school only; null for tickets before 2005."
    )
    async def score_record(self, info: Info) -> Cet6ReviewScore | None:
        if await self._administered(info) is None:
            return None
        record = await cet6_review.score_record_of(self.model)
        return Cet6ReviewScore.from_model(record) if record is not None else None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        node_ids = list(node_ids)
        wanted = [int(i) for i in node_ids if i.isdigit()]
        found = {r.id: r for r in await cet6_review.visible(await info.context.viewer(), wanted)}
        return [
            cls.from_model(found[int(i)]) if i.isdigit() and int(i) in found else None
            for i in node_ids
        ]


@strawberry.input
class RequestCet6ReviewInput:
    session_code: str
    cet4_ticket_number: str = strawberry.field(
        description="The 15-digit ticket number of a CET4 written test since June 2005 with "
        "425 or more; for earlier tests the school decides."
    )


@strawberry.type
class RequestCet6ReviewPayload:
    review: Cet6Review | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ReviewCet6RequestInput:
    review_id: relay.GlobalID
    approve: bool
    note: str | None = strawberry.field(
        default=None, description="Shown to the candidate; at most 500 characters."
    )


@strawberry.type
class ReviewCet6RequestPayload:
    review: Cet6Review | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _review_pk(global_id: relay.GlobalID) -> int:
    if global_id.type_name != "Cet6Review" or not global_id.node_id.isdigit():
        raise DomainError.of(ErrorCode.NOT_FOUND, "reviewId")
    return int(global_id.node_id)


@strawberry.type
class Cet6ReviewQueries:
    @relay.connection(
        relay.ListConnection[Cet6Review],
        permission_classes=[IsSchoolAdmin],
        description="CET6 reviews of a session at the schools you administer, oldest first; "
        "filter by status (PENDING: the queue to decide) and school.",
    )
    async def cet6_reviews(
        self,
        info: Info,
        session_code: str,
        status: Cet6ReviewStatus | None = None,  # type: ignore[valid-type]
        school_code: str | None = None,
    ) -> list[Cet6Review]:
        viewer = await info.context.viewer()
        assert viewer is not None
        try:
            reviews = await cet6_review.list_reviews(
                viewer, session_code=session_code, status=status, school_code=school_code
            )
        except DomainError:
            return []
        return [Cet6Review.from_model(r) for r in reviews]


@strawberry.type
class Cet6ReviewMutations:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Ask for CET6 eligibility with a CET4 ticket of 425 or more (S4): approved "
        "at once when ticket and ID match a score record, else pending with your school. "
        "Rate limited.",
    )
    async def request_cet6_review(
        self, info: Info, input: RequestCet6ReviewInput
    ) -> RequestCet6ReviewPayload:
        viewer = await info.context.viewer()
        assert viewer is not None
        review, errors = await attempt(
            info,
            cet6_review.request_review(
                viewer,
                session_code=input.session_code,
                cet4_ticket_number=input.cet4_ticket_number,
                client_address=info.context.client_address,
            ),
        )
        return RequestCet6ReviewPayload(
            review=Cet6Review.from_model(review) if review else None, user_errors=errors
        )

    @strawberry.mutation(
        permission_classes=[IsSchoolAdmin],
        description="Approve or reject a pending CET6 review of your school; audited.",
    )
    async def review_cet6_request(
        self, info: Info, input: ReviewCet6RequestInput
    ) -> ReviewCet6RequestPayload:
        viewer = await info.context.viewer()
        assert viewer is not None

        async def run() -> models.Cet6Review:
            return await cet6_review.decide(
                viewer,
                _review_pk(input.review_id),
                approve=input.approve,
                note=input.note,
                client_address=info.context.client_address,
            )

        review, errors = await attempt(info, run())
        return ReviewCet6RequestPayload(
            review=Cet6Review.from_model(review) if review else None, user_errors=errors
        )
