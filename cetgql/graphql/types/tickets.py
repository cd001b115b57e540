"""Admission tickets (T1–T5), the rooms and allocation runs behind them, print windows, and
what a document's verification code proves."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from cetgql import models
from cetgql.graphql.errors import UserError, user_errors
from cetgql.graphql.types.exams import Subject, SubjectKind
from cetgql.services import access, exam_rooms, tickets
from cetgql.services.documents import DocumentKind as DocumentKindEnum
from cetgql.services.documents import Verification

DocumentKind = strawberry.enum(
    DocumentKindEnum, name="DocumentKind", description="Kinds of verifiable documents."
)


def _ids(node_ids: Iterable[str]) -> list[int]:
    return [int(i) for i in node_ids if i.isdigit()]


async def _owner_or_national(info: Info, account_id: int) -> bool:
    viewer = await info.context.viewer()
    if viewer is None or viewer.must_change_password:
        return False
    return viewer.id == account_id or (await access.scope_of(viewer)).national


@strawberry.type(description="An admission ticket (准考证): one per paid subject (T1).")
class Ticket(relay.Node):
    """A ticket as its candidate sees it. What it shows is filled in once, in
    :meth:`from_card`, as plain fields: a candidate's overview asks for most of them on every
    visit, and a field read from an attribute costs a fraction of one with a resolver."""

    id: relay.NodeID[int]
    number: str = strawberry.field(description="15 digits (T4); final once published.")
    kind: SubjectKind  # type: ignore[valid-type]
    subject: Subject
    session_code: str = strawberry.field(description='The exam session\'s code, e.g. "2026H1".')
    exam_start: datetime
    exam_end: datetime
    center_name: str = strawberry.field(
        description="The test centre: the school and campus, or the oral centre."
    )
    center_address: str
    room: str | None = strawberry.field(
        description='The room number as printed: "003" (oral: "03").'
    )
    room_name: str | None = strawberry.field(description="Where the room is, e.g. 第一教学楼 A101.")
    seat: str | None = strawberry.field(description='The seat number as printed: "05".')
    printable_from: datetime | None = strawberry.field(
        description="Start of the print window; null when there is none (yet)."
    )
    printable_until: datetime | None = strawberry.field(description="End of the print window.")
    handed_out_by_school: bool = strawberry.field(
        description="True when the school hands written tickets out itself (T3): no download."
    )
    card: strawberry.Private[tickets.TicketCard]

    @classmethod
    def from_card(cls, card: tickets.TicketCard) -> Ticket:
        view = card.view
        return cls(
            id=view.ticket.id,
            number=view.ticket.number,
            kind=view.kind,
            subject=Subject.from_offering(view.offering),
            session_code=view.session.code,
            exam_start=view.offering.starts_at,
            exam_end=view.offering.ends_at,
            center_name=view.centre_name,
            center_address=view.centre_address,
            room=view.room_label,
            room_name=view.room.name or None,
            seat=view.seat_label,
            printable_from=card.printable_from,
            printable_until=card.printable_until,
            handed_out_by_school=card.handed_out,
            card=card,
        )

    @strawberry.field(
        description="A signed link to the A4 PDF, valid for 15 minutes, for the ticket's owner "
        "inside the print window; null outside it."
    )
    async def pdf_url(self, info: Info) -> str | None:
        return tickets.pdf_url(await info.context.viewer(), self.card)

    @strawberry.field(
        description="Why the ticket cannot be printed (MISSING_GLYPH: a character of the data "
        "no font has); null when it can. Contact the school to correct the data."
    )
    def print_error(self, info: Info) -> UserError | None:
        problem = tickets.print_problem(self.card)
        return user_errors(problem, info.context.language)[0] if problem else None

    @strawberry.field(description="The code in the ticket's QR code, for verifyDocument.")
    async def verification_code(self, info: Info) -> str | None:
        ticket = self.card.view.ticket
        return self.card.view.code if await _owner_or_national(info, ticket.account_id) else None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        node_ids = list(node_ids)
        found = await tickets.published_tickets(_ids(node_ids))
        visible = [t for t in found if await _owner_or_national(info, t.account_id)]
        by_id = {c.view.ticket.id: c for c in await tickets.cards(visible)}
        return [
            cls.from_card(by_id[int(i)]) if i.isdigit() and int(i) in by_id else None
            for i in node_ids
        ]


_LOADER = "_cetgql_ticket_of_registration"


async def _load_tickets(registration_ids: list[int]) -> list[Ticket | None]:
    found = await tickets.published_ticket_of(registration_ids)
    by_registration = {
        c.view.ticket.registration_id: Ticket.from_card(c)
        for c in await tickets.cards(list(found.values()))
    }
    return [by_registration.get(i) for i in registration_ids]


async def ticket_of_registration(info: Info, registration_id: int) -> Ticket | None:
    """The registration's published ticket, loaded once per request for all registrations."""
    loader: DataLoader[int, Ticket | None] = info.context.__dict__.setdefault(
        _LOADER, DataLoader(_load_tickets)
    )
    return await loader.load(registration_id)


async def tickets_of_account(account_id: int, session_code: str | None) -> list[Ticket]:
    found = await tickets.tickets_of_account(account_id, session_code)
    return [Ticket.from_card(c) for c in await tickets.cards(found)]


# --- admin views ----------------------------------------------------------------------------


async def _administers(info: Info, kind: str, province_id: int, school_id: int | None) -> bool:
    viewer = await info.context.viewer()
    if viewer is None or viewer.must_change_password:
        return False
    return await exam_rooms.administers(viewer, models.SubjectKind(kind), province_id, school_id)


@strawberry.type(description="A room of a test centre: its number goes into ticket numbers.")
class ExamRoom(relay.Node):
    id: relay.NodeID[int]
    kind: SubjectKind  # type: ignore[valid-type]
    number: int
    name: str
    capacity: int = strawberry.field(description="Seats in each time slot, numbered from 1.")
    model: strawberry.Private[models.ExamRoom]

    @classmethod
    def from_model(cls, room: models.ExamRoom) -> ExamRoom:
        return cls(
            id=room.id,
            kind=room.kind,
            number=room.number,
            name=room.name,
            capacity=room.capacity,
            model=room,
        )

    @strawberry.field(description="C<campus id> or O<oral centre id>: the centre it belongs to.")
    def centre_key(self) -> str:
        return self.model.centre_key

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        node_ids = list(node_ids)
        found = {
            r.id: r
            for r in await models.ExamRoom.filter(id__in=_ids(node_ids))
            if await _administers(info, r.kind, r.province_id, r.school_id)
        }
        return [
            cls.from_model(found[int(i)]) if i.isdigit() and int(i) in found else None
            for i in node_ids
        ]


@strawberry.type(description="One seat allocation of a unit, with the seed that reproduces it.")
class AllocationRun(relay.Node):
    id: relay.NodeID[int]
    kind: SubjectKind  # type: ignore[valid-type]
    seed: str
    top_up: bool = strawberry.field(
        description="True for a run that only seated candidates paid after publication."
    )
    tickets: int = strawberry.field(description="Tickets this run created.")
    rooms_used: int
    created_at: datetime
    published_at: datetime | None

    @classmethod
    def from_model(cls, run: models.AllocationRun) -> AllocationRun:
        return cls(
            id=run.id,
            kind=run.kind,
            seed=run.seed,
            top_up=run.top_up,
            tickets=run.tickets,
            rooms_used=run.rooms_used,
            created_at=run.created_at,
            published_at=run.published_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        node_ids = list(node_ids)
        found = {
            r.id: r
            for r in await models.AllocationRun.filter(id__in=_ids(node_ids))
            if await _administers(info, r.kind, r.province_id, r.school_id)
        }
        return [
            cls.from_model(found[int(i)]) if i.isdigit() and int(i) in found else None
            for i in node_ids
        ]


@strawberry.type(
    description="When candidates print their tickets: a province's oral window (T2), a "
    "school's written window, or the school handing written tickets out (T3)."
)
class TicketPrintWindow:
    kind: SubjectKind  # type: ignore[valid-type]
    opens_at: datetime | None
    closes_at: datetime | None
    handed_out_by_school: bool

    @classmethod
    def from_model(cls, window: models.TicketPrintWindow) -> TicketPrintWindow:
        return cls(
            kind=window.kind,
            opens_at=window.opens_at,
            closes_at=window.closes_at,
            handed_out_by_school=window.handed_out,
        )


# --- verification ---------------------------------------------------------------------------


@strawberry.type(description="One fact a checker compares with the paper document.")
class DocumentFact:
    key: str = strawberry.field(description='Stable key, e.g. "number", "room", "total".')
    label: str
    value: str


@strawberry.type(
    description="What a document's verification code proves. A forged, altered or unknown "
    "code gives valid: false and nothing else."
)
class DocumentVerification:
    valid: bool
    code: str
    kind: DocumentKind | None = None  # type: ignore[valid-type]
    title: str | None = None
    holder_name: str | None = None
    id_number_masked: str | None = None
    issued_at: datetime | None = None
    facts: list[DocumentFact] = strawberry.field(default_factory=list)
    note: str | None = strawberry.field(
        default=None, description="Why a genuine document no longer counts."
    )

    @classmethod
    def of(cls, code: str, found: Verification | None, language: str) -> DocumentVerification:
        if found is None:
            return cls(valid=False, code=code)
        return cls(
            valid=found.valid,
            code=code,
            kind=found.kind,
            title=found.title,
            holder_name=found.holder_name,
            id_number_masked=found.id_number_masked,
            issued_at=found.issued_at,
            facts=[
                DocumentFact(key=f.key, label=f.label(language), value=f.value) for f in found.facts
            ],
            note=found.note,
        )
