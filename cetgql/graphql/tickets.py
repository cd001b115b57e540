"""Ticket operations: verifying any printed document (public), and for admins the rooms,
seat allocation, publication, print windows and batch printing of their units (T1–T5).

The permission classes keep anyone without an admin role out at the top level; which school
or province an admin may act on is the services' decision and comes back as
``OUT_OF_SCOPE`` / ``FORBIDDEN`` in ``userErrors``.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.types import Info

from cetgql import models
from cetgql.graphql.errors import UserError, attempt
from cetgql.graphql.permissions import IsSchoolAdmin
from cetgql.graphql.types.exams import SubjectKind
from cetgql.graphql.types.tickets import (
    AllocationRun,
    DocumentVerification,
    ExamRoom,
    TicketPrintWindow,
)
from cetgql.services import allocation, documents, exam_rooms, tickets
from cetgql.services.errors import DomainError, ErrorCode

# --- inputs and payloads -------------------------------------------------------------------


@strawberry.input(
    description="A unit: a school's written tickets (schoolCode) or a province's oral tickets "
    "(provinceCode)."
)
class TicketUnitInput:
    session_code: str
    kind: SubjectKind  # type: ignore[valid-type]
    school_code: str | None = strawberry.field(default=None, description="For WRITTEN.")
    province_code: str | None = strawberry.field(default=None, description="For ORAL.")


async def _unit(info: Info, unit: TicketUnitInput) -> exam_rooms.Unit:
    return await exam_rooms.resolve_unit(
        await info.context.viewer(),
        session_code=unit.session_code,
        kind=models.SubjectKind(unit.kind),
        school_code=unit.school_code,
        province_code=unit.province_code,
    )


def _oral_center_pk(global_id: relay.GlobalID | None) -> int | None:
    if global_id is None:
        return None
    if global_id.type_name != "OralCenter" or not global_id.node_id.isdigit():
        raise DomainError.of(ErrorCode.NOT_FOUND, "oralCenterId")
    return int(global_id.node_id)


@strawberry.input
class ExamRoomInput:
    number: int = strawberry.field(description="1–999 (oral centres 1–99): the room digits.")
    capacity: int = strawberry.field(description="Seats, 1–99.")
    name: str = strawberry.field(default="", description="Where it is, e.g. 第一教学楼 A101.")


@strawberry.input(
    description="The whole room list of a centre: a campus (schoolCode and campusCode) or an "
    "oral centre (oralCenterId). Rooms left out are removed."
)
class SetExamRoomsInput:
    session_code: str
    school_code: str | None = None
    campus_code: str | None = None
    oral_center_id: relay.GlobalID | None = None
    rooms: list[ExamRoomInput]


@strawberry.type
class SetExamRoomsPayload:
    exam_rooms: list[ExamRoom] = strawberry.field(default_factory=list)
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class AllocateSeatsInput(TicketUnitInput):
    seed: str | None = strawberry.field(
        default=None,
        description="Reproduces an earlier run when given; a fresh random seed otherwise.",
    )


@strawberry.type
class AllocateSeatsPayload:
    allocation_run: AllocationRun | None = strawberry.field(
        default=None, description="The run made (null when a top-up found nobody new)."
    )
    created: int = strawberry.field(default=0, description="Tickets created by this run.")
    total: int = strawberry.field(default=0, description="Tickets of the unit afterwards.")
    top_up: bool = strawberry.field(
        default=False,
        description="True after publication: only candidates without a ticket were seated.",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class PublishTicketsInput(TicketUnitInput):
    pass


@strawberry.type
class PublishTicketsPayload:
    published: int = strawberry.field(default=0, description="Tickets published now.")
    total: int = strawberry.field(default=0, description="Published tickets of the unit.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class SetTicketPrintWindowInput(TicketUnitInput):
    opens_at: datetime | None = None
    closes_at: datetime | None = None
    handed_out_by_school: bool = strawberry.field(
        default=False,
        description="WRITTEN only: the school hands the tickets out; candidates get no link.",
    )


@strawberry.type
class SetTicketPrintWindowPayload:
    print_window: TicketPrintWindow | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(
    description="A school's written tickets (schoolCode) or an oral centre's (oralCenterId), "
    "optionally of one subject."
)
class PrintTicketBatchInput:
    session_code: str
    school_code: str | None = None
    oral_center_id: relay.GlobalID | None = None
    subject_code: str | None = None


@strawberry.type
class PrintTicketBatchPayload:
    url: str | None = strawberry.field(
        default=None, description="A signed link to the PDF, valid for 15 minutes."
    )
    pages: int = 0
    user_errors: list[UserError] = strawberry.field(default_factory=list)


# --- roots ---------------------------------------------------------------------------------


@strawberry.type
class TicketQueries:
    @strawberry.field(
        description="Public: is this ticket, report or certificate genuine? The code is the "
        "one printed under the document's QR code."
    )
    async def verify_document(self, info: Info, code: str) -> DocumentVerification | None:
        code = code.strip()[: documents.MAX_CODE_LENGTH + 8]
        return DocumentVerification.of(code, await documents.verify(code), info.context.language)

    @strawberry.field(
        permission_classes=[IsSchoolAdmin], description="The rooms of a unit's centres."
    )
    async def exam_rooms(self, info: Info, unit: TicketUnitInput) -> list[ExamRoom]:
        try:
            rooms = await exam_rooms.rooms_of_unit(await _unit(info, unit))
        except DomainError:
            return []
        return [ExamRoom.from_model(r) for r in rooms]

    @strawberry.field(
        permission_classes=[IsSchoolAdmin], description="A unit's allocation runs, newest first."
    )
    async def allocation_runs(self, info: Info, unit: TicketUnitInput) -> list[AllocationRun]:
        try:
            runs = await allocation.runs_of_unit(await _unit(info, unit))
        except DomainError:
            return []
        return [AllocationRun.from_model(r) for r in runs]

    @strawberry.field(permission_classes=[IsSchoolAdmin], description="A unit's print window.")
    async def ticket_print_window(
        self, info: Info, unit: TicketUnitInput
    ) -> TicketPrintWindow | None:
        try:
            window = await tickets.print_window(await _unit(info, unit))
        except DomainError:
            return None
        return TicketPrintWindow.from_model(window) if window else None


@strawberry.type
class TicketMutations:
    @strawberry.mutation(
        permission_classes=[IsSchoolAdmin],
        description="Replace the rooms of a campus (school admins) or an oral centre "
        "(province admins).",
    )
    async def set_exam_rooms(self, info: Info, input: SetExamRoomsInput) -> SetExamRoomsPayload:
        viewer = await info.context.viewer()

        async def run() -> list[models.ExamRoom]:
            centre = await exam_rooms.resolve_centre(
                viewer,
                session_code=input.session_code,
                school_code=input.school_code,
                campus_code=input.campus_code,
                oral_center_id=_oral_center_pk(input.oral_center_id),
            )
            rooms = [exam_rooms.RoomInput(r.number, r.capacity, r.name) for r in input.rooms]
            return await exam_rooms.set_rooms(
                viewer, centre, rooms, client_address=info.context.client_address
            )

        rooms, errors = await attempt(info, run())
        return SetExamRoomsPayload(
            exam_rooms=[ExamRoom.from_model(r) for r in rooms or []], user_errors=errors
        )

    @strawberry.mutation(
        permission_classes=[IsSchoolAdmin],
        description="Allocate rooms and seats to a unit's paid registrations once registration "
        "has closed; re-runnable until publication, a top-up afterwards.",
    )
    async def allocate_seats(self, info: Info, input: AllocateSeatsInput) -> AllocateSeatsPayload:
        viewer = await info.context.viewer()

        async def run() -> allocation.AllocationResult:
            return await allocation.allocate(
                viewer,
                await _unit(info, input),
                seed=input.seed,
                client_address=info.context.client_address,
            )

        result, errors = await attempt(info, run())
        if result is None:
            return AllocateSeatsPayload(user_errors=errors)
        return AllocateSeatsPayload(
            allocation_run=AllocationRun.from_model(result.run) if result.run else None,
            created=result.created,
            total=result.total,
            top_up=result.top_up,
        )

    @strawberry.mutation(
        permission_classes=[IsSchoolAdmin],
        description="Publish a unit's tickets: candidates see them and the numbers are final. "
        "Refused (MISSING_GLYPH) while any ticket has a character that cannot be printed.",
    )
    async def publish_tickets(
        self, info: Info, input: PublishTicketsInput
    ) -> PublishTicketsPayload:
        viewer = await info.context.viewer()

        async def run() -> allocation.PublishResult:
            return await allocation.publish(
                viewer, await _unit(info, input), client_address=info.context.client_address
            )

        result, errors = await attempt(info, run())
        if result is None:
            return PublishTicketsPayload(user_errors=errors)
        return PublishTicketsPayload(published=result.published, total=result.total)

    @strawberry.mutation(
        permission_classes=[IsSchoolAdmin],
        description="Set when candidates print their tickets: oral windows by province admins "
        "(T2), written windows or handing out by the school (T3).",
    )
    async def set_ticket_print_window(
        self, info: Info, input: SetTicketPrintWindowInput
    ) -> SetTicketPrintWindowPayload:
        viewer = await info.context.viewer()

        async def run() -> models.TicketPrintWindow:
            return await tickets.set_print_window(
                viewer,
                await _unit(info, input),
                opens_at=input.opens_at,
                closes_at=input.closes_at,
                handed_out=input.handed_out_by_school,
                client_address=info.context.client_address,
            )

        window, errors = await attempt(info, run())
        return SetTicketPrintWindowPayload(
            print_window=TicketPrintWindow.from_model(window) if window else None,
            user_errors=errors,
        )

    @strawberry.mutation(
        permission_classes=[IsSchoolAdmin],
        description="A link to one PDF of the published tickets of a school or an oral centre, "
        f"in subject, room and seat order; at most {tickets.MAX_BATCH} pages.",
    )
    async def print_ticket_batch(
        self, info: Info, input: PrintTicketBatchInput
    ) -> PrintTicketBatchPayload:
        viewer = await info.context.viewer()

        async def run() -> tuple[str, int]:
            oral_center_id = _oral_center_pk(input.oral_center_id)
            if oral_center_id is not None:
                batch = await tickets.batch_for_oral_center(
                    viewer,
                    input.session_code,
                    oral_center_id=oral_center_id,
                    subject_code=input.subject_code,
                )
            else:
                batch = await tickets.batch_for_school(
                    viewer, input.session_code, input.school_code or "", input.subject_code
                )
            return await tickets.batch_link(
                viewer, batch, client_address=info.context.client_address
            )

        result, errors = await attempt(info, run())
        if result is None:
            return PrintTicketBatchPayload(user_errors=errors)
        return PrintTicketBatchPayload(url=result[0], pages=result[1])
