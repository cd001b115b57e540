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
    id: relay.NodeID[int]
    card: strawberry.Private[tickets.TicketCard]

    @classmethod
    def from_card(cls, card: tickets.TicketCard) -> Ticket:
        return cls(id=card.view.ticket.id, card=card)

    @strawberry.field(description="15 digits (T4); final once published.")
    def number(self) -> str:
        return self.card.view.ticket.number

    @strawberry.field
    def kind(self) -> SubjectKind:  # type: ignore[valid-type]
        return self.card.view.kind

    @strawberry.field
    def subject(self) -> Subject:
        return Subject.from_offering(self.card.view.offering)

    @strawberry.field(description='The exam session\'s code, e.g. "2026H1".')
    def session_code(self) -> str:
        return self.card.view.session.code

    @strawberry.field
    def exam_start(self) -> datetime:
        return self.card.view.offering.starts_at

    @strawberry.field
    def exam_end(self) -> datetime:
        return self.card.view.offering.ends_at

    @strawberry.field(description="The test centre: the school and campus, or the oral centre.")
    def center_name(self) -> str:
        return self.card.view.centre_name

    @strawberry.field
    def center_address(self) -> str:
        return self.card.view.centre_address

    @strawberry.field(description='The room number as printed: "003" (oral: "03").')
    def room(self) -> str | None:
        return self.card.view.room_label

    @strawberry.field(description="Where the room is, e.g. 第一教学楼 A101.")
    def room_name(self) -> str | None:
        return self.card.view.room.name or None

    @strawberry.field(description='The seat number as printed: "05".')
    def seat(self) -> str | None:
        return self.card.view.seat_label

    @strawberry.field(description="Start of the print window; null when there is none (yet).")
    def printable_from(self) -> datetime | None:
        return self.card.printable_from

    @strawberry.field(description="End of the print window.")
    def printable_until(self) -> datetime | None:
        return self.card.printable_until

    @strawberry.field(
        description="True when the school hands written tickets out itself (T3): no download."
    )
    def handed_out_by_school(self) -> bool:
        return self.card.handed_out

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
        found = await models.Ticket.filter(id__in=_ids(node_ids), published_at__isnull=False)
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
