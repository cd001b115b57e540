"""Candidate mutations of the qualification check (Q1) and its confirmation (Q2)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from cetgql.graphql.errors import UserError, attempt
from cetgql.graphql.permissions import IsAuthenticated
from cetgql.graphql.types.accounts import IdType
from cetgql.graphql.types.qualification import Qualification
from cetgql.services import qualification


@strawberry.input(description="The identity to check against the school's roster (学籍).")
class VerifyQualificationInput:
    session_code: str = strawberry.field(description='The exam session, e.g. "2026H1".')
    name: str = strawberry.field(description="As on the ID document and the account.")
    id_type: IdType  # type: ignore[valid-type]
    id_number: str


@strawberry.type
class VerifyQualificationPayload:
    qualification: Qualification | None
    user_errors: list[UserError]


@strawberry.input
class ConfirmQualificationInput:
    session_code: str


@strawberry.type
class ConfirmQualificationPayload:
    qualification: Qualification | None
    user_errors: list[UserError]


@strawberry.type
class QualificationMutations:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Match your identity against your school's roster for the session (Q1). "
        "A failed match never says which field differed and is rate limited.",
    )
    async def verify_qualification(
        self, info: Info, input: VerifyQualificationInput
    ) -> VerifyQualificationPayload:
        viewer = await info.context.viewer()
        match, errors = await attempt(
            info,
            qualification.verify(
                viewer,
                session_code=input.session_code,
                name=input.name,
                id_type=input.id_type,
                id_number=input.id_number,
                client_address=info.context.client_address,
            ),
        )
        return VerifyQualificationPayload(
            qualification=Qualification.from_model(match) if match else None,
            user_errors=errors,
        )

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Confirm the personal, enrolment and subject data shown after the match "
        "(Q2); subjects can be chosen only after this.",
    )
    async def confirm_qualification(
        self, info: Info, input: ConfirmQualificationInput
    ) -> ConfirmQualificationPayload:
        viewer = await info.context.viewer()
        match, errors = await attempt(info, qualification.confirm(viewer, input.session_code))
        return ConfirmQualificationPayload(
            qualification=Qualification.from_model(match) if match else None,
            user_errors=errors,
        )
