"""Admin operations that set registration up: sessions and sittings (national office),
registration windows (provinces and schools), fees and oral centres (provinces).

The permission classes turn away anyone without an admin role of the right level at the top
level; which province or school an admin may touch is the services' decision and comes back
as ``OUT_OF_SCOPE`` / ``FORBIDDEN`` in ``userErrors``.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.types import Info

from cetgql import models
from cetgql.graphql.errors import UserError, attempt
from cetgql.graphql.permissions import IsNationalAdmin, IsProvinceAdmin, IsSchoolAdmin
from cetgql.graphql.types.exams import ExamSession, SubjectKind
from cetgql.graphql.types.registration import OralCenter
from cetgql.graphql.types.registration_setup import (
    ProvinceFee,
    RegistrationWindow,
    SessionSubject,
    province_fees,
)
from cetgql.services import oral_centers, registration_setup
from cetgql.services.errors import DomainError, ErrorCode

# --- inputs and payloads -------------------------------------------------------------------


@strawberry.input
class CreateExamSessionInput:
    code: str = strawberry.field(description='The half year, e.g. "2027H1".')


@strawberry.type
class CreateExamSessionPayload:
    exam_session: ExamSession | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class UpdateSessionSubjectInput:
    session_code: str
    subject_code: str
    starts_at: datetime | None = strawberry.field(default=None, description="Unchanged if null.")
    ends_at: datetime | None = strawberry.field(default=None, description="Unchanged if null.")
    slot: str | None = strawberry.field(default=None, description="Unchanged if null.")


@strawberry.type
class UpdateSessionSubjectPayload:
    session_subject: SessionSubject | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class SetRegistrationWindowInput:
    session_code: str
    province_code: str
    school_code: str | None = strawberry.field(
        default=None, description="Set for a school's own written window; null for the province."
    )
    kind: SubjectKind  # type: ignore[valid-type]
    opens_at: datetime
    closes_at: datetime


@strawberry.type
class SetRegistrationWindowPayload:
    registration_window: RegistrationWindow | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ClearRegistrationWindowInput:
    session_code: str
    province_code: str
    school_code: str | None = None
    kind: SubjectKind  # type: ignore[valid-type]


@strawberry.type
class ClearRegistrationWindowPayload:
    cleared: bool = strawberry.field(
        default=False, description="Whether there was a window to remove."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class FeeInput:
    subject_code: str
    fen: int = strawberry.field(description="In fen: 3000 is 30.00 CNY; 1 to 100000.")


@strawberry.input
class SetFeesInput:
    session_code: str
    province_code: str
    fees: list[FeeInput]


@strawberry.type
class SetFeesPayload:
    fees: list[ProvinceFee] = strawberry.field(
        default_factory=list, description="All of the province's fees after the change."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class CreateOralCenterInput:
    session_code: str
    province_code: str
    code: str = strawberry.field(description="6 digits beginning with the province code.")
    name: str
    address: str = ""
    capacity: int
    subject_codes: list[str] = strawberry.field(
        default_factory=list, description="Oral subjects examined; empty means all of them."
    )


@strawberry.input
class UpdateOralCenterInput:
    oral_center_id: relay.GlobalID
    name: str | None = None
    address: str | None = None
    capacity: int | None = strawberry.field(
        default=None, description="Never below the seats already held."
    )
    subject_codes: list[str] | None = strawberry.field(
        default=None, description="Empty means all oral subjects; null leaves them."
    )


@strawberry.type
class CreateOralCenterPayload:
    oral_center: OralCenter | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class UpdateOralCenterPayload:
    oral_center: OralCenter | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _oral_center_pk(global_id: relay.GlobalID) -> int:
    if global_id.type_name != "OralCenter" or not global_id.node_id.isdigit():
        raise DomainError.of(ErrorCode.NOT_FOUND, "oralCenterId")
    return int(global_id.node_id)


# --- roots ---------------------------------------------------------------------------------


@strawberry.type
class RegistrationAdminQueries:
    @strawberry.field(
        permission_classes=[IsSchoolAdmin],
        description="A province's registration windows, as far as the viewer administers them.",
    )
    async def registration_windows(
        self, info: Info, session_code: str, province_code: str
    ) -> list[RegistrationWindow]:
        viewer = await info.context.viewer()
        try:
            windows = await registration_setup.list_windows(viewer, session_code, province_code)
        except DomainError:
            return []
        return [RegistrationWindow.from_model(w) for w in windows]

    @strawberry.field(description="A province's fees of a session: public, as fees are.")
    async def province_fees(self, session_code: str, province_code: str) -> list[ProvinceFee]:
        try:
            fees = await registration_setup.list_fees(session_code, province_code)
        except DomainError:
            return []
        return await province_fees(fees, fees[0].session_id) if fees else []  # type: ignore[attr-defined]


@strawberry.type
class RegistrationAdminMutations:
    @strawberry.mutation(
        permission_classes=[IsNationalAdmin],
        description="Create a session with the usual timetable of its half year (S1).",
    )
    async def create_exam_session(
        self, info: Info, input: CreateExamSessionInput
    ) -> CreateExamSessionPayload:
        viewer = await info.context.viewer()
        session, errors = await attempt(
            info,
            registration_setup.create_session(
                viewer, input.code, client_address=info.context.client_address
            ),
        )
        return CreateExamSessionPayload(
            exam_session=ExamSession.from_model(session) if session else None, user_errors=errors
        )

    @strawberry.mutation(
        permission_classes=[IsNationalAdmin],
        description="Move a subject's sitting or change its slot in a session.",
    )
    async def update_session_subject(
        self, info: Info, input: UpdateSessionSubjectInput
    ) -> UpdateSessionSubjectPayload:
        viewer = await info.context.viewer()
        offering, errors = await attempt(
            info,
            registration_setup.update_offering(
                viewer,
                input.session_code,
                input.subject_code,
                starts_at=input.starts_at,
                ends_at=input.ends_at,
                slot=input.slot,
                client_address=info.context.client_address,
            ),
        )
        return UpdateSessionSubjectPayload(
            session_subject=SessionSubject.from_model(offering) if offering else None,
            user_errors=errors,
        )

    @strawberry.mutation(
        permission_classes=[IsSchoolAdmin],
        description="Set a province's window (province admins) or a school's own written "
        "window (its school or province admins); replaces the one there.",
    )
    async def set_registration_window(
        self, info: Info, input: SetRegistrationWindowInput
    ) -> SetRegistrationWindowPayload:
        viewer = await info.context.viewer()
        window, errors = await attempt(
            info,
            registration_setup.set_window(
                viewer,
                session_code=input.session_code,
                province_code=input.province_code,
                school_code=input.school_code,
                kind=models.SubjectKind(input.kind),
                opens_at=input.opens_at,
                closes_at=input.closes_at,
                client_address=info.context.client_address,
            ),
        )
        return SetRegistrationWindowPayload(
            registration_window=RegistrationWindow.from_model(window) if window else None,
            user_errors=errors,
        )

    @strawberry.mutation(
        permission_classes=[IsSchoolAdmin],
        description="Remove a window; for a school, the province's window governs again.",
    )
    async def clear_registration_window(
        self, info: Info, input: ClearRegistrationWindowInput
    ) -> ClearRegistrationWindowPayload:
        viewer = await info.context.viewer()
        cleared, errors = await attempt(
            info,
            registration_setup.clear_window(
                viewer,
                session_code=input.session_code,
                province_code=input.province_code,
                school_code=input.school_code,
                kind=models.SubjectKind(input.kind),
                client_address=info.context.client_address,
            ),
        )
        return ClearRegistrationWindowPayload(cleared=bool(cleared), user_errors=errors)

    @strawberry.mutation(
        permission_classes=[IsProvinceAdmin],
        description="Set fees of a province's subjects, in fen (P5); new choices pay them.",
    )
    async def set_fees(self, info: Info, input: SetFeesInput) -> SetFeesPayload:
        viewer = await info.context.viewer()
        fees, errors = await attempt(
            info,
            registration_setup.set_fees(
                viewer,
                session_code=input.session_code,
                province_code=input.province_code,
                items=[registration_setup.FeeItem(f.subject_code, f.fen) for f in input.fees],
                client_address=info.context.client_address,
            ),
        )
        if not fees:
            return SetFeesPayload(user_errors=errors)
        session_id = fees[0].session_id  # type: ignore[attr-defined]
        return SetFeesPayload(fees=await province_fees(fees, session_id), user_errors=errors)

    @strawberry.mutation(
        permission_classes=[IsProvinceAdmin], description="Open an oral centre of the province."
    )
    async def create_oral_center(
        self, info: Info, input: CreateOralCenterInput
    ) -> CreateOralCenterPayload:
        viewer = await info.context.viewer()
        center, errors = await attempt(
            info,
            oral_centers.create_center(
                viewer,
                session_code=input.session_code,
                province_code=input.province_code,
                code=input.code,
                name=input.name,
                address=input.address,
                capacity=input.capacity,
                subject_codes=input.subject_codes,
                client_address=info.context.client_address,
            ),
        )
        return CreateOralCenterPayload(
            oral_center=OralCenter.from_model(center) if center else None, user_errors=errors
        )

    @strawberry.mutation(
        permission_classes=[IsProvinceAdmin],
        description="Change an oral centre's name, address, seats or subjects.",
    )
    async def update_oral_center(
        self, info: Info, input: UpdateOralCenterInput
    ) -> UpdateOralCenterPayload:
        viewer = await info.context.viewer()

        async def update() -> models.OralCenter:
            return await oral_centers.update_center(
                viewer,
                _oral_center_pk(input.oral_center_id),
                oral_centers.CenterChanges(
                    name=input.name,
                    address=input.address,
                    capacity=input.capacity,
                    subject_codes=input.subject_codes,
                ),
                client_address=info.context.client_address,
            )

        center, errors = await attempt(info, update())
        return UpdateOralCenterPayload(
            oral_center=OralCenter.from_model(center) if center else None, user_errors=errors
        )
