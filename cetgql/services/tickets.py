"""Admission tickets for candidates and admins: print windows, what a ticket shows, its PDF,
batches, and what its QR code verifies (T1–T5).

- A candidate sees their tickets once their unit's tickets are published, one per paid
  subject (T1). The PDF link exists only for the ticket's owner, inside the print window of its
  unit: the province's for oral tickets (T2), the school's for written ones, unless the school
  hands the tickets out itself (T3). The link is a signed URL that expires within 15 minutes
  and never after the window closes; the download route checks the window again.
- The PDF (A4, T5) carries the roster photo, name, masked ID number, subject, time, centre,
  room, seat, the exam rules and a QR code of the ticket's verification URL. It is rendered
  once and kept in the database (every API process serves it, and a restart keeps it) with a
  fingerprint: the SHA-256 of everything printed on it. A download whose fingerprint matches
  is served from the cache; a change of name, photo, time, centre or room renders it again.
- Admins print batches: one PDF of a school's or an oral centre's published tickets, in
  subject, room and seat order, for handing out.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from cetgql.models import (
    Account,
    Campus,
    ExamRoom,
    ExamSession,
    IdType,
    OralCenter,
    RosterRecord,
    SessionSubject,
    SubjectKind,
    Ticket,
    TicketPdf,
    TicketPrintWindow,
)
from cetgql.models.prepared import PreparedQuery
from cetgql.services import (
    audit,
    clock,
    documents,
    exam_rooms,
    identity,
    pdf,
    signed_urls,
)
from cetgql.services.documents import DocumentKind, Fact, Verification
from cetgql.services.errors import DomainError, ErrorCode
from cetgql.services.exam_rooms import Unit

TEMPLATE_VERSION = "ticket-2"
MAX_BATCH = 1000  # pages per batch PDF: bounded memory, and printers cope
_IN_CHUNK = 1000

_WEEKDAYS = "一二三四五六日"
_ID_TYPES = {
    IdType.RESIDENT_ID: "居民身份证",
    IdType.HK_MACAO_PERMIT: "港澳居民来往内地通行证",
    IdType.TAIWAN_PERMIT: "台湾居民来往大陆通行证",
    IdType.HK_MACAO_RESIDENCE: "港澳居民居住证",
    IdType.TAIWAN_RESIDENCE: "台湾居民居住证",
    IdType.PASSPORT: "护照",
    IdType.STAFF: "工作证件",
}


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


# --- what a ticket shows --------------------------------------------------------------------


@dataclass(frozen=True)
class TicketView:
    """Everything a ticket shows, loaded once for many tickets by :func:`load_views`."""

    ticket: Ticket
    session: ExamSession
    offering: SessionSubject  # with its subject
    room: ExamRoom
    name: str  # as on the roster: the school keeps it right (Q2)
    id_type: IdType
    id_number: str
    record_id: int | None
    photo_digest: str
    centre_name: str
    centre_address: str

    @property
    def kind(self) -> SubjectKind:
        return SubjectKind(self.ticket.kind)

    @property
    def code(self) -> str:
        return documents.issue_code(DocumentKind.TICKET, self.ticket.number)

    @property
    def room_label(self) -> str:
        digits = 3 if self.kind == SubjectKind.WRITTEN else 2
        return f"{self.room.number:0{digits}d}"

    @property
    def seat_label(self) -> str:
        return f"{self.ticket.seat:02d}"

    @property
    def subject_title(self) -> str:
        kind = "笔试" if self.kind == SubjectKind.WRITTEN else "口试"
        return f"{self.offering.subject.name}（{kind}）"

    def printed_data(self) -> dict[str, str]:
        """The data fields printed on the ticket, by input name (the rest is template text)."""
        return {
            "name": self.name,
            "centreName": self.centre_name,
            "centreAddress": self.centre_address,
            "roomName": self.room.name,
        }

    def unprintable(self) -> str | None:
        """Which characters of the ticket no font can draw, or None when it prints."""
        missing: dict[str, None] = {}
        for text in self.printed_data().values():
            missing.update(dict.fromkeys(pdf.missing_glyphs(text)))
        return pdf.describe(missing) if missing else None

    def fingerprint(self) -> str:
        """SHA-256 of everything printed: the PDF cache is valid while this is unchanged."""
        printed = {
            "template": TEMPLATE_VERSION,
            "number": self.ticket.number,
            "session": self.session.name,
            "subject": self.subject_title,
            "start": self.offering.starts_at.isoformat(),
            "end": self.offering.ends_at.isoformat(),
            "id": [self.id_type, identity.mask_id_number(self.id_number)],
            "photo": self.photo_digest,
            "room": self.room_label,
            "seat": self.seat_label,
            "verify": documents.verify_url(self.code),
            **self.printed_data(),
        }
        return hashlib.sha256(json.dumps(printed, sort_keys=True).encode()).hexdigest()


# What a ticket view shows besides the ticket, joined to the tickets wherever they are read
# for showing them (:func:`with_view_relations`): one query instead of one per table.
VIEW_RELATIONS = (
    "offering__subject",
    "session",
    "room__campus__school",
    "room__oral_center",
    "account",
)


def with_view_relations(query: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """``query`` with everything :func:`load_views` needs fetched along."""
    return query.select_related(*VIEW_RELATIONS)


_NOT_FETCHED: Any = object()


def _fetched(model: Model, relation: str) -> Any:
    """The related object a query fetched along (``select_related`` keeps it in ``_<name>``):
    None for an empty nullable relation, :data:`_NOT_FETCHED` when it was not fetched."""
    return model.__dict__.get(f"_{relation}", _NOT_FETCHED)


# The reads of ticket views whose tickets came without their relations (and of every view:
# roster records), prepared (models/prepared.py): their SQL is built once per batch size.
_OFFERINGS: PreparedQuery[list[SessionSubject]] = PreparedQuery(
    lambda ids: SessionSubject.filter(id__in=ids).select_related("subject")
)
_SESSIONS: PreparedQuery[list[ExamSession]] = PreparedQuery(
    lambda ids: ExamSession.filter(id__in=ids)
)
_ROOMS: PreparedQuery[list[ExamRoom]] = PreparedQuery(lambda ids: ExamRoom.filter(id__in=ids))
_CAMPUSES: PreparedQuery[list[Campus]] = PreparedQuery(
    lambda ids: Campus.filter(id__in=ids).select_related("school")
)
_CENTERS: PreparedQuery[list[OralCenter]] = PreparedQuery(lambda ids: OralCenter.filter(id__in=ids))
_ACCOUNTS: PreparedQuery[list[tuple[int, str, str, str]]] = PreparedQuery(
    lambda ids: Account.filter(id__in=ids).values_list("id", "name", "id_type", "id_number")
)
_RECORDS: PreparedQuery[list[tuple[int, int, str, str, str, str]]] = PreparedQuery(
    lambda session_ids, numbers: RosterRecord.filter(
        session_id__in=session_ids, id_number__in=numbers
    ).values_list("id", "session_id", "id_type", "id_number", "name", "photo_digest")
)
_WINDOWS: PreparedQuery[list[TicketPrintWindow]] = PreparedQuery(
    lambda session_ids, unit_keys: TicketPrintWindow.filter(
        session_id__in=session_ids, unit_key__in=unit_keys
    )
)

_M = TypeVar("_M", bound=Model)


async def _by_id(query: PreparedQuery[list[_M]], ids: Iterable[int], into: dict[int, _M]) -> None:
    """Add the rows of ``ids`` not in ``into`` yet; no query when there are none."""
    wanted = set(ids)
    wanted -= into.keys()
    if not wanted:  # every ticket came with it (the usual case)
        return
    for chunk in _chunks(sorted(wanted)):
        into.update((row.pk, row) for row in await query(list(chunk)))


async def load_views(tickets: Sequence[Ticket]) -> list[TicketView]:
    """The views of ``tickets``, in their order, with a fixed number of queries.

    Relations the tickets were read with (:func:`with_view_relations`) are used as they are,
    which leaves a single query, for the roster records; whatever was not fetched along is
    read here, a query per table."""
    if not tickets:
        return []
    await pdf.load_fonts()  # views are checked for printable characters
    offerings: dict[int, SessionSubject] = {}
    sessions: dict[int, ExamSession] = {}
    rooms: dict[int, ExamRoom] = {}
    campuses: dict[int, Campus] = {}
    centers: dict[int, OralCenter] = {}
    accounts: dict[int, tuple[str, str, str]] = {}
    for ticket in tickets:
        offering = _fetched(ticket, "offering")
        if offering is not _NOT_FETCHED and _fetched(offering, "subject") is not _NOT_FETCHED:
            offerings[offering.id] = offering
        session = _fetched(ticket, "session")
        if session is not _NOT_FETCHED:
            sessions[session.id] = session
        room = _fetched(ticket, "room")
        if room is not _NOT_FETCHED:
            rooms[room.id] = room
            campus = _fetched(room, "campus")
            if (
                campus is not None
                and campus is not _NOT_FETCHED
                and _fetched(campus, "school") is not _NOT_FETCHED
            ):
                campuses[campus.id] = campus
            center = _fetched(room, "oral_center")
            if center is not None and center is not _NOT_FETCHED:
                centers[center.id] = center
        account = _fetched(ticket, "account")
        if account is not _NOT_FETCHED:
            accounts[account.id] = (account.name, account.id_type, account.id_number)
    await _by_id(_OFFERINGS, (t.offering_id for t in tickets), offerings)
    await _by_id(_SESSIONS, (t.session_id for t in tickets), sessions)
    await _by_id(_ROOMS, (t.room_id for t in tickets), rooms)
    await _by_id(_CAMPUSES, (r.campus_id for r in rooms.values() if r.campus_id), campuses)
    await _by_id(_CENTERS, (r.oral_center_id for r in rooms.values() if r.oral_center_id), centers)
    for chunk in _chunks(sorted({t.account_id for t in tickets} - accounts.keys())):
        for account_id, name, id_type, id_number in await _ACCOUNTS(list(chunk)):
            accounts[account_id] = (name, id_type, id_number)
    records: dict[tuple[int, str, str], tuple[int, str, str]] = {}
    numbers = sorted({a[2] for a in accounts.values()})
    for chunk in _chunks(numbers):
        for record_id, session_id, id_type, id_number, name, digest in await _RECORDS(
            sorted(sessions), list(chunk)
        ):
            records[(session_id, id_type, id_number)] = (record_id, name, digest)
    views = []
    for ticket in tickets:
        account_name, id_type, id_number = accounts[ticket.account_id]
        record = records.get((ticket.session_id, id_type, id_number))
        room = rooms[ticket.room_id]
        campus = campuses.get(room.campus_id) if room.campus_id else None
        center = centers.get(room.oral_center_id) if room.oral_center_id else None
        views.append(
            TicketView(
                ticket=ticket,
                session=sessions[ticket.session_id],
                offering=offerings[ticket.offering_id],
                room=room,
                name=record[1] if record else account_name,
                id_type=IdType(id_type),
                id_number=id_number,
                record_id=record[0] if record else None,
                photo_digest=record[2] if record else "",
                centre_name=exam_rooms.centre_name(
                    campus.school if campus else None, campus, center
                ),
                centre_address=(campus.address if campus else center.address if center else ""),
            )
        )
    return views


# --- print windows (T2, T3) -----------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    """Aware UTC; a naive time is Beijing time, the only zone admins think in."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=clock.SHANGHAI)
    return value.astimezone(UTC)


async def set_print_window(
    actor: Account | None,
    unit: Unit,
    *,
    opens_at: datetime | None,
    closes_at: datetime | None,
    handed_out: bool = False,
    client_address: str | None = None,
) -> TicketPrintWindow:
    """When the unit's candidates print their tickets, or (written only) that the school
    hands them out instead; replaces the unit's window."""
    if handed_out:
        if unit.kind != SubjectKind.WRITTEN:
            raise DomainError.of(ErrorCode.SCHOOL_TICKETS_WRITTEN_ONLY, "handedOutBySchool")
        opens, closes = None, None
    else:
        if opens_at is None:
            raise DomainError.of(ErrorCode.REQUIRED, "opensAt")
        if closes_at is None:
            raise DomainError.of(ErrorCode.REQUIRED, "closesAt")
        opens, closes = _utc(opens_at), _utc(closes_at)
        if opens >= closes:
            raise DomainError.of(ErrorCode.INVALID_TIME_RANGE, "closesAt")
    now = clock.now()
    async with in_transaction():
        await exam_rooms.lock_unit(unit)
        window = await TicketPrintWindow.get_or_none(session_id=unit.session.id, unit_key=unit.key)
        before = _window_details(window) if window else None
        if window is None:
            window = await TicketPrintWindow.create(
                session_id=unit.session.id,
                kind=unit.kind,
                province_id=unit.province.id,
                school_id=unit.school.id if unit.school else None,
                unit_key=unit.key,
                opens_at=opens,
                closes_at=closes,
                handed_out=handed_out,
                updated_at=now,
            )
        else:
            window.opens_at, window.closes_at, window.handed_out = opens, closes, handed_out
            window.updated_at = now
            await window.save(update_fields=["opens_at", "closes_at", "handed_out", "updated_at"])
        await audit.record(
            "tickets.print_window_set",
            actor=actor,
            subject=f"TicketPrintWindow:{window.id}",
            client_address=client_address,
            unit=unit.label,
            before=before,
            after=_window_details(window),
        )
    return window


def _window_details(window: TicketPrintWindow) -> dict[str, Any]:
    return {
        "opens_at": window.opens_at.isoformat() if window.opens_at else None,
        "closes_at": window.closes_at.isoformat() if window.closes_at else None,
        "handed_out": window.handed_out,
    }


async def print_window(unit: Unit) -> TicketPrintWindow | None:
    return await TicketPrintWindow.get_or_none(session_id=unit.session.id, unit_key=unit.key)


def window_open(window: TicketPrintWindow | None, now: datetime) -> bool:
    return (
        window is not None
        and not window.handed_out
        and window.opens_at is not None
        and window.closes_at is not None
        and window.opens_at <= now < window.closes_at
    )


# --- tickets for their candidate ------------------------------------------------------------


@dataclass(frozen=True)
class TicketCard:
    """A published ticket as its candidate sees it: what it shows and when it prints."""

    view: TicketView
    window: TicketPrintWindow | None

    @property
    def printable_from(self) -> datetime | None:
        return self.window.opens_at if self.window and not self.window.handed_out else None

    @property
    def printable_until(self) -> datetime | None:
        return self.window.closes_at if self.window and not self.window.handed_out else None

    @property
    def handed_out(self) -> bool:
        return bool(self.window and self.window.handed_out)


async def cards(tickets: Sequence[Ticket]) -> list[TicketCard]:
    """The cards of ``tickets``, in their order: read with :func:`with_view_relations`, as
    every reader here does, they cost two queries (roster records, print windows)."""
    if not tickets:  # most candidates, until tickets are published: no query at all
        return []
    views = await load_views(tickets)
    session_ids = sorted({t.session_id for t in tickets})
    windows: dict[tuple[int, str], TicketPrintWindow] = {}
    for chunk in _chunks(sorted({t.unit_key for t in tickets})):
        for window in await _WINDOWS(session_ids, list(chunk)):
            windows[(window.session_id, window.unit_key)] = window
    return [TicketCard(v, windows.get((v.ticket.session_id, v.ticket.unit_key))) for v in views]


async def tickets_of_account(account_id: int, session_code: str | None = None) -> list[Ticket]:
    """The account's published tickets (T1: one per paid subject), by exam time, with
    what their views show (:func:`with_view_relations`)."""
    if session_code and session_code.strip():
        return await _TICKETS_IN(account_id, session_code.strip().upper()[:8])
    return await _TICKETS(account_id)


# The candidate's overview reads these on every visit: one joined query, prepared.
_TICKETS: PreparedQuery[list[Ticket]] = PreparedQuery(
    lambda account_id: with_view_relations(
        Ticket.filter(account_id=account_id, published_at__isnull=False)
    ).order_by("offering__starts_at", "id")
)
_TICKETS_IN: PreparedQuery[list[Ticket]] = PreparedQuery(
    lambda account_id, session_code: with_view_relations(
        Ticket.filter(account_id=account_id, published_at__isnull=False, session__code=session_code)
    ).order_by("offering__starts_at", "id")
)
_PUBLISHED: PreparedQuery[Ticket | None] = PreparedQuery(
    lambda ticket_id: with_view_relations(
        Ticket.filter(id=ticket_id, published_at__isnull=False)
    ).first()
)
_PUBLISHED_NUMBER: PreparedQuery[Ticket | None] = PreparedQuery(
    lambda number: with_view_relations(
        Ticket.filter(number=number, published_at__isnull=False)
    ).first()
)


async def published_tickets(ticket_ids: Sequence[int]) -> list[Ticket]:
    """The published tickets among ``ticket_ids``, with what their views show."""
    found: list[Ticket] = []
    for chunk in _chunks(sorted(set(ticket_ids))):
        found.extend(
            await with_view_relations(Ticket.filter(id__in=list(chunk), published_at__isnull=False))
        )
    return found


async def published_ticket_of(registration_ids: Sequence[int]) -> dict[int, Ticket]:
    """The published ticket of each registration that has one, with what its view shows."""
    found: dict[int, Ticket] = {}
    for chunk in _chunks(sorted(set(registration_ids))):
        for ticket in await with_view_relations(
            Ticket.filter(registration_id__in=list(chunk), published_at__isnull=False)
        ):
            found[ticket.registration_id] = ticket
    return found


def ticket_path(ticket_id: int) -> str:
    """The download route of a ticket's PDF; hand it out only through :func:`pdf_url`."""
    return f"/files/tickets/{ticket_id}"


def pdf_url(viewer: Account | None, card: TicketCard) -> str | None:
    """A signed link to the PDF for the ticket's owner inside the print window; else None.

    The link lasts 15 minutes at most and never beyond the window's close."""
    now = clock.now()
    if viewer is None or viewer.id != card.view.ticket.account_id:
        return None
    if card.view.ticket.published_at is None or not window_open(card.window, now):
        return None
    if card.view.unprintable() is not None:
        return None
    assert card.window is not None and card.window.closes_at is not None
    left = int((card.window.closes_at - now).total_seconds())
    ttl = max(1, min(int(signed_urls.DEFAULT_TTL.total_seconds()), left))
    return signed_urls.sign(ticket_path(card.view.ticket.id), ttl)


def print_problem(card: TicketCard) -> DomainError | None:
    """Why the ticket cannot be printed (a character no font has), for the candidate."""
    detail = card.view.unprintable()
    return DomainError.of(ErrorCode.MISSING_GLYPH, detail=detail) if detail else None


class DownloadRefused(Exception):
    """The ticket is not published, or its print window is not open now."""


async def download(ticket_id: int) -> tuple[bytes, str]:
    """The PDF and its file name, for the signed route. The URL is the permission; the
    window is checked again, so a window closed early stops links already handed out."""
    ticket = await _PUBLISHED(ticket_id)
    if ticket is None:
        raise DownloadRefused
    (card,) = await cards([ticket])
    if not window_open(card.window, clock.now()):
        raise DownloadRefused
    return await ticket_pdf(card.view), f"{ticket.number}.pdf"


# --- the PDF --------------------------------------------------------------------------------

# Floats rather than tables: WeasyPrint lays tables out markedly slower (docs/tickets.md).
TICKET_CSS = """
.ticket { border: 0.5mm solid #000; padding: 7mm 9mm 6mm; }
.head { text-align: center; border-bottom: 0.3mm solid #000; padding-bottom: 3mm; }
.head .session { font-size: 12pt; }
.head h1 { font-size: 26pt; font-weight: normal; letter-spacing: 6mm; margin: 1mm 0 0; }
.head .subject { font-size: 14pt; }
.photo { float: right; width: 30mm; height: 40mm; margin-top: 5mm; border: 0.2mm solid #000; }
img.photo { object-fit: cover; }
span.photo { text-align: center; line-height: 40mm; color: #555; }
.fields { margin-top: 5mm; margin-right: 34mm; }
.field { padding: 1.2mm 0 1.2mm 24mm; font-size: 12pt; }
.field .label { float: left; margin-left: -24mm; width: 24mm; font-size: 10.5pt; color: #333; }
.number { font-size: 17pt; letter-spacing: 0.5mm; }
.field small { font-size: 9pt; color: #333; }
.rules { clear: both; padding-top: 6mm; font-size: 9.5pt; }
.rules h2 { font-size: 11pt; font-weight: normal; margin: 0 0 1mm; }
.rules ol { margin: 0; padding-left: 6mm; }
.verify { margin-top: 6mm; overflow: hidden; }
.verify .qr { float: left; width: 30mm; margin-right: 4mm; }
.verify .code { font-size: 9pt; color: #333; }
"""

_RULES: dict[SubjectKind, tuple[str, ...]] = {
    SubjectKind.WRITTEN: (
        "考生须凭本准考证和报名时所用的有效身份证件参加考试，二者缺一不可。",
        "考生须在开考前 30 分钟到达考场，按考场号和座位号就座，将准考证和身份证件放在"
        "桌面左上角以备查验。",
        "听力考试开始后不得入场；考试期间不得提前交卷、离开考场。",
        "除黑色签字笔、2B 铅笔和橡皮外，不得携带书籍、资料及手机、智能手表、耳机等任何"
        "电子设备进入考场。",
        "服从监考人员管理，遵守考场纪律；违纪、作弊者按《国家教育考试违规处理办法》处理。",
        "请妥善保管本准考证：查询成绩和核验成绩报告单时需用准考证号。",
    ),
    SubjectKind.ORAL: (
        "考生须凭本准考证和报名时所用的有效身份证件参加考试，二者缺一不可。",
        "考生须在开考前 30 分钟到达考点候考室报到，按考场号和座位号参加考试。",
        "口试为计算机化考试：请听从考务人员指令佩戴耳机、试音，考试期间不得离开座位。",
        "不得携带书籍、资料及手机、智能手表等任何电子设备进入考场。",
        "服从考务人员管理，遵守考场纪律；违纪、作弊者按《国家教育考试违规处理办法》处理。",
        "请妥善保管本准考证：查询成绩时需用准考证号。",
    ),
}


def exam_time(start: datetime, end: datetime) -> str:
    """2026年6月13日（星期六）09:00–11:20, in Beijing time."""
    begin, finish = start.astimezone(clock.SHANGHAI), end.astimezone(clock.SHANGHAI)
    return (
        f"{begin.year}年{begin.month}月{begin.day}日（星期{_WEEKDAYS[begin.weekday()]}）"
        f"{begin:%H:%M}–{finish:%H:%M}"
    )


def ticket_body(view: TicketView, photo: tuple[bytes, str] | None) -> str:
    """The HTML of one ticket page; every piece of data escaped."""
    e = html.escape
    picture = (
        f'<img class="photo" src="{pdf.data_uri(photo[0], photo[1])}" alt="">'
        if photo
        else '<span class="photo">照片</span>'
    )
    address = f"<br><small>{e(view.centre_address)}</small>" if view.centre_address else ""
    room_name = f"　{e(view.room.name)}" if view.room.name else ""
    rows = (
        ("姓　　名", e(view.name)),
        ("证件类型", e(_ID_TYPES.get(view.id_type, ""))),
        ("证件号码", e(identity.mask_id_number(view.id_number))),
        ("准考证号", f'<span class="number">{e(view.ticket.number)}</span>'),
        ("考试科目", e(view.subject_title)),
        ("考试时间", e(exam_time(view.offering.starts_at, view.offering.ends_at))),
        ("考　　点", f"{e(view.centre_name)}{address}"),
        ("考　　场", f"第 {e(view.room_label)} 考场{room_name}"),
        ("座 位 号", e(view.seat_label)),
    )
    fields = "".join(
        f'<div class="field"><span class="label">{label}</span>{value}</div>'
        for label, value in rows
    )
    rules = "".join(f"<li>{e(rule)}</li>" for rule in _RULES[view.kind])
    url = documents.verify_url(view.code)
    return (
        '<div class="ticket">'
        f'<div class="head"><div class="session">{e(view.session.name)}</div>'
        f'<h1>准考证</h1><div class="subject">{e(view.subject_title)}</div></div>'
        f'{picture}<div class="fields">{fields}</div>'
        f'<div class="rules"><h2>考生须知</h2><ol>{rules}</ol></div>'
        f'<div class="verify"><div class="qr">{pdf.qr_svg(url)}</div>'
        "扫描二维码或访问下列网址核验本准考证：<br>"
        f'<span class="code">{e(url)}</span></div>'
        "</div>"
    )


async def _photos(record_ids: Iterable[int | None]) -> dict[int, tuple[bytes, str]]:
    wanted = sorted({i for i in record_ids if i is not None})
    found: dict[int, tuple[bytes, str]] = {}
    for chunk in _chunks(wanted):
        for record_id, content, content_type in await RosterRecord.filter(
            id__in=list(chunk)
        ).values_list("id", "photo", "photo_type"):
            if content:
                found[record_id] = (bytes(content), content_type or "image/jpeg")
    return found


def _title(view: TicketView) -> str:
    return f"准考证 {view.ticket.number}"


async def render_ticket(view: TicketView) -> bytes:
    """Render one ticket, not looking at the cache (``MISSING_GLYPH`` if it cannot print)."""
    photo = (await _photos([view.record_id])).get(view.record_id or 0)
    document = pdf.html_document(ticket_body(view, photo), title=_title(view), css=TICKET_CSS)
    return await pdf.render_pdf(document)


async def ticket_pdf(view: TicketView) -> bytes:
    """The ticket's PDF: from the cache while its fingerprint holds, else rendered and kept."""
    fingerprint = view.fingerprint()
    cached = await TicketPdf.filter(ticket_id=view.ticket.id).values_list("fingerprint", "content")
    if cached and cached[0][0] == fingerprint:
        return bytes(cached[0][1])
    content = await render_ticket(view)
    now = clock.now()
    updated = await TicketPdf.filter(ticket_id=view.ticket.id).update(
        fingerprint=fingerprint, content=content, rendered_at=now
    )
    if not updated:
        try:
            await TicketPdf.create(
                ticket_id=view.ticket.id, fingerprint=fingerprint, content=content, rendered_at=now
            )
        except IntegrityError:  # another process rendered it at the same moment
            await TicketPdf.filter(ticket_id=view.ticket.id).update(
                fingerprint=fingerprint, content=content, rendered_at=now
            )
    return content


# --- batches for admins ---------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """A school's written tickets or an oral centre's tickets, optionally of one subject."""

    session: ExamSession
    key: str  # S<school id> (a written unit) or O<oral centre id> (a centre)
    subject_code: str | None
    label: str

    @property
    def path(self) -> str:
        return f"/files/ticket-batches/{self.session.code}/{self.key}/{self.subject_code or 'ALL'}"


async def batch_for_school(
    actor: Account | None, session_code: str, school_code: str, subject_code: str | None = None
) -> Batch:
    unit = await exam_rooms.resolve_unit(
        actor, session_code=session_code, kind=SubjectKind.WRITTEN, school_code=school_code
    )
    return Batch(unit.session, unit.key, _subject(subject_code), unit.label)


async def batch_for_oral_center(
    actor: Account | None,
    session_code: str,
    *,
    oral_center_id: int | None = None,
    oral_center_code: str | None = None,
    subject_code: str | None = None,
) -> Batch:
    centre = await exam_rooms.resolve_centre(
        actor,
        session_code=session_code,
        oral_center_id=oral_center_id,
        oral_center_code=oral_center_code,
    )
    assert centre.oral_center is not None
    label = f"{centre.unit.session.code} {centre.oral_center.code} {centre.oral_center.name}"
    return Batch(centre.unit.session, centre.key, _subject(subject_code), label)


def _subject(code: str | None) -> str | None:
    clean = (code or "").strip().upper()[:16]
    return clean or None


async def batch_from_path(session_code: str, key: str, subject: str) -> Batch | None:
    """The batch a batch URL names; the caller checks the URL's signature against its path."""
    session = await ExamSession.get_or_none(code=session_code[:8])
    if session is None or key[:1] not in {"S", "O"} or not key[1:].isdigit():
        return None
    return Batch(session, key, None if subject == "ALL" else subject, key)


async def batch_tickets(batch: Batch) -> list[Ticket]:
    """The batch's published tickets: by subject, centre, room and seat (handing-out order)."""
    query = with_view_relations(
        Ticket.filter(session_id=batch.session.id, published_at__isnull=False)
    )
    if batch.key.startswith("S"):
        query = query.filter(unit_key=batch.key)
    else:
        query = query.filter(room__oral_center_id=int(batch.key[1:]))
    if batch.subject_code:
        query = query.filter(offering__subject__code=batch.subject_code)
    return await query.order_by(
        "offering__starts_at", "offering__subject__code", "room__centre_key", "room__number", "seat"
    )


async def check_batch(batch: Batch) -> int:
    """How many pages the batch has: ``NOTHING_TO_PRINT`` for none, ``TOO_MANY_ITEMS`` above
    :data:`MAX_BATCH` (narrow it to a subject, or use ``cetgql print-batch``)."""
    query = Ticket.filter(session_id=batch.session.id, published_at__isnull=False)
    if batch.key.startswith("S"):
        query = query.filter(unit_key=batch.key)
    else:
        query = query.filter(room__oral_center_id=int(batch.key[1:]))
    if batch.subject_code:
        query = query.filter(offering__subject__code=batch.subject_code)
    count = await query.count()
    if count == 0:
        raise DomainError.of(ErrorCode.NOTHING_TO_PRINT)
    if count > MAX_BATCH:
        raise DomainError.of(ErrorCode.TOO_MANY_ITEMS, detail=f"({count} > {MAX_BATCH})")
    return count


async def batch_link(
    actor: Account | None, batch: Batch, *, client_address: str | None = None
) -> tuple[str, int]:
    """A signed link to the batch PDF and its page count. Handing out a batch of names,
    photos and ID numbers is audited."""
    pages = await check_batch(batch)
    await record_batch(actor, batch, pages, client_address=client_address)
    return signed_urls.sign(batch.path), pages


async def record_batch(
    actor: Account | None, batch: Batch, pages: int, *, client_address: str | None = None
) -> None:
    await audit.record(
        "tickets.batch_print",
        actor=actor,
        subject=f"ExamSession:{batch.session.id}",
        client_address=client_address,
        batch=batch.label,
        subject_code=batch.subject_code,
        pages=pages,
    )


async def render_batch(
    tickets: Sequence[Ticket], *, progress: Callable[[int, int], None] | None = None
) -> bytes:
    """One PDF with a page per ticket (at most :data:`MAX_BATCH`)."""
    if not tickets:
        raise DomainError.of(ErrorCode.NOTHING_TO_PRINT)
    if len(tickets) > MAX_BATCH:
        raise DomainError.of(ErrorCode.TOO_MANY_ITEMS, detail=f"({len(tickets)} > {MAX_BATCH})")
    views = await load_views(tickets)
    photos = await _photos(v.record_id for v in views)
    bodies = [ticket_body(v, photos.get(v.record_id or 0)) for v in views]
    title = f"准考证 {views[0].session.code}（{len(views)}）"
    return await pdf.render_pdf_pages(bodies, title=title, css=TICKET_CSS, progress=progress)


# --- verification (the QR code) -------------------------------------------------------------


async def verify_ticket(reference: str) -> Verification | None:
    """What the QR code of a published ticket tells whoever scans it."""
    ticket = await _PUBLISHED_NUMBER(reference)
    if ticket is None:
        return None
    (view,) = await load_views([ticket])
    return Verification(
        kind=DocumentKind.TICKET,
        reference=reference,
        title=f"{view.session.name} {view.subject_title} 准考证",
        holder_name=view.name,
        id_number_masked=identity.mask_id_number(view.id_number),
        issued_at=ticket.published_at,
        facts=(
            Fact("number", "准考证号", "Ticket number", ticket.number),
            Fact("subject", "考试科目", "Subject", view.subject_title),
            Fact(
                "examTime",
                "考试时间",
                "Exam time",
                exam_time(view.offering.starts_at, view.offering.ends_at),
            ),
            Fact("centre", "考点", "Test centre", view.centre_name),
            Fact("room", "考场", "Room", view.room_label),
            Fact("seat", "座位号", "Seat", view.seat_label),
        ),
    )


documents.register_verifier(DocumentKind.TICKET, verify_ticket)
