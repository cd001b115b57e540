"""What a candidate may register for: the one place the rules of S1–S6 and S10 are decided.

``availableSubjects`` lists :func:`reasons` for every offering and ``selectSubjects`` refuses on
the same reasons, so the list never promises what the mutation refuses. Everything time-bound
is judged against one instant, and a pending choice past its deadline counts as lapsed here
whether or not the lapse job has marked it yet (S8).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.expressions import Q
from tortoise.functions import Count
from tortoise.queryset import QuerySetSingle

from cetgql.models import (
    Account,
    Cet6Review,
    ExamSession,
    Fee,
    OralCenter,
    Qualification,
    Registration,
    RegistrationStatus,
    RegistrationWindow,
    ReviewStatus,
    RosterRecord,
    School,
    SessionSubject,
    SubjectKind,
)
from cetgql.models.prepared import PreparedQuery
from cetgql.services import clock
from cetgql.services.errors import DomainError, ErrorCode


def holds_place(status: str, expires_at: datetime, now: datetime) -> bool:
    """A choice holds its place (slot, seat, subject) while paid, or pending and in time."""
    return status == RegistrationStatus.PAID or (
        status == RegistrationStatus.PENDING_PAYMENT and expires_at > now
    )


def effective_status(status: str, expires_at: datetime, now: datetime) -> RegistrationStatus:
    """The status a user sees: a pending choice is lapsed from its deadline on (S8)."""
    if status == RegistrationStatus.PENDING_PAYMENT and expires_at <= now:
        return RegistrationStatus.LAPSED
    return RegistrationStatus(status)


def active_seats_filter(now: datetime) -> Q:
    return Q(status=RegistrationStatus.PAID) | Q(
        status=RegistrationStatus.PENDING_PAYMENT, expires_at__gt=now
    )


async def seats_taken(center_ids: list[int], now: datetime) -> dict[int, int]:
    """Seats held per oral centre, counting only choices that still hold their place."""
    if not center_ids:
        return {}
    rows = await _SEATS_TAKEN(center_ids, now)
    return {row["oral_center_id"]: row["taken"] for row in rows}


_SEATS_TAKEN: PreparedQuery[list[dict[str, Any]]] = PreparedQuery(
    lambda center_ids, now: (
        Registration.filter(active_seats_filter(now), oral_center_id__in=center_ids)
        .annotate(taken=Count("id"))
        .group_by("oral_center_id")
        .values("oral_center_id", "taken")
    )
)


@dataclass
class Situation:
    """Everything the rules need about one candidate in one session, loaded once."""

    # None only when a school acts for a student who has no account yet (S11).
    account: Account | None
    session: ExamSession
    now: datetime
    qualification: Qualification | None
    offerings: dict[str, SessionSubject]
    active: list[Registration]
    cet6_approved: bool
    fees: dict[str, int]
    open_kinds: set[SubjectKind]
    province_id: int | None
    oral_centers: list[OralCenter] = field(default_factory=list)
    taken: dict[int, int] = field(default_factory=dict)
    # The roster record the school acts on when there is no qualification (S11).
    record: RosterRecord | None = None

    @property
    def roster_record(self) -> RosterRecord | None:
        """The candidate's matched record, or the one the school acts on."""
        if self.qualification is not None:
            return self.qualification.roster_record
        return self.record

    @property
    def roster_subjects(self) -> set[str]:
        record = self.roster_record
        return set(record.eligible_subjects or []) if record is not None else set()

    def active_codes(self) -> set[str]:
        return {r.offering.subject.code for r in self.active}

    def paid_codes(self) -> set[str]:
        return {r.offering.subject.code for r in self.active if r.status == RegistrationStatus.PAID}

    def taken_slots(self) -> set[str]:
        return {r.offering.slot for r in self.active}

    def centers_for(self, subject_code: str) -> list[OralCenter]:
        return [
            c for c in self.oral_centers if not c.subject_codes or subject_code in c.subject_codes
        ]

    def remaining(self, center: OralCenter) -> int:
        return max(center.capacity - self.taken.get(center.id, 0), 0)


# The reads of every availableSubjects and selectSubjects, prepared (models/prepared.py): their
# SQL is built once, not on each of the thousands of calls a second of a registration rush.
_WINDOWS: PreparedQuery[list[RegistrationWindow]] = PreparedQuery(
    lambda session_id, province_id, school_id: RegistrationWindow.filter(
        Q(school_id=school_id) | Q(school_id=None), session_id=session_id, province_id=province_id
    )
)


def _qualification_query(account_id: int, session_id: int) -> QuerySetSingle[Qualification | None]:
    """The qualification with its roster record and school, without the record's photo (tens
    of kilobytes the rules never look at). Field lists are read when the query is built: the
    foreign-key columns exist only once Tortoise is initialised."""
    return (
        Qualification.filter(account_id=account_id, session_id=session_id)
        .select_related("roster_record__school")
        .only(
            *Qualification._meta.db_fields,
            *(f"roster_record__{f}" for f in RosterRecord._meta.db_fields if f != "photo"),
            *(f"roster_record__school__{f}" for f in School._meta.db_fields),
        )
        .first()
    )


_QUALIFICATION: PreparedQuery[Qualification | None] = PreparedQuery(_qualification_query)
_ACTIVE: PreparedQuery[list[Registration]] = PreparedQuery(
    lambda account_id, session_id: Registration.filter(
        account_id=account_id,
        session_id=session_id,
        status__in=[RegistrationStatus.PAID, RegistrationStatus.PENDING_PAYMENT],
    ).select_related("offering__subject")
)
_PROVINCE_CENTERS: PreparedQuery[list[OralCenter]] = PreparedQuery(
    lambda session_id, province_id: OralCenter.filter(
        session_id=session_id, province_id=province_id
    ).order_by("code")
)
_APPROVED_CET6: PreparedQuery[bool] = PreparedQuery(
    lambda account_id, session_id: Cet6Review.filter(
        account_id=account_id, session_id=session_id, status=ReviewStatus.APPROVED
    ).exists()
)
_OFFERINGS: PreparedQuery[list[SessionSubject]] = PreparedQuery(
    lambda session_id: SessionSubject.filter(session_id=session_id).select_related("subject")
)
_FEES: PreparedQuery[list[Fee]] = PreparedQuery(
    lambda session_id, province_id: Fee.filter(
        session_id=session_id, province_id=province_id
    ).select_related("subject")
)
_SESSION_BY_CODE: PreparedQuery[ExamSession | None] = PreparedQuery(
    lambda code: ExamSession.get_or_none(code=code)
)


async def applicable_windows(
    session_id: int, province_id: int, school_id: int
) -> dict[SubjectKind, RegistrationWindow]:
    """The window of each kind that governs a school: its own wins over its province's (S6)."""
    windows = await _WINDOWS(session_id, province_id, school_id)
    chosen: dict[SubjectKind, RegistrationWindow] = {}
    for window in windows:
        current = chosen.get(window.kind)
        if current is None or (current.school_id is None and window.school_id is not None):  # type: ignore[attr-defined]
            chosen[window.kind] = window
    return chosen


async def window_open_kinds(
    session_id: int, province_id: int, school_id: int, now: datetime
) -> set[SubjectKind]:
    """Kinds whose governing window is open now (S6)."""
    chosen = await applicable_windows(session_id, province_id, school_id)
    return {kind for kind, w in chosen.items() if w.opens_at <= now < w.closes_at}


async def load_situation(
    account: Account, session: ExamSession, *, with_centers: bool = True
) -> Situation:
    now = clock.now()
    qualification = await _QUALIFICATION(account.id, session.id)
    offerings = await _offerings(session.id)
    registrations = await _ACTIVE(account.id, session.id)
    active = [r for r in registrations if holds_place(r.status, r.expires_at, now)]
    province_id: int | None = None
    fees: dict[str, int] = {}
    open_kinds: set[SubjectKind] = set()
    centers: list[OralCenter] = []
    if qualification is not None:
        school = qualification.roster_record.school
        province_id = school.province_id  # type: ignore[attr-defined]
        fees = await _fees(session.id, province_id)  # type: ignore[arg-type]
        open_kinds = await window_open_kinds(session.id, province_id, school.id, now)  # type: ignore[arg-type]
        if with_centers:
            centers = await _PROVINCE_CENTERS(session.id, province_id)
    situation = Situation(
        account=account,
        session=session,
        now=now,
        qualification=qualification,
        offerings=offerings,
        active=active,
        cet6_approved=await _APPROVED_CET6(account.id, session.id),
        fees=fees,
        open_kinds=open_kinds,
        province_id=province_id,
        oral_centers=centers,
    )
    situation.taken = await seats_taken([c.id for c in centers], now)
    return situation


async def _offerings(session_id: int) -> dict[str, SessionSubject]:
    return {o.subject.code: o for o in await _OFFERINGS(session_id)}


async def _fees(session_id: int, province_id: int) -> dict[str, int]:
    return {f.subject.code: f.amount_fen for f in await _FEES(session_id, province_id)}


_IN_CHUNK = 2000  # keeps IN (...) lists well under SQLite's bound-parameter limit


async def load_for_school(
    session: ExamSession,
    school: School,
    students: Sequence[tuple[RosterRecord, Account | None]],
) -> list[Situation]:
    """The situations of students their school acts for (group registration, S11), in order.

    The school's roster record stands in for the qualification the student has not
    necessarily made; everything else is what the student would see themselves: the
    province's fees, the school's window, the choices they already hold and an approved CET6
    review. The session and school data are loaded once for the whole batch, not per student.
    """
    now = clock.now()
    province_id: int = school.province_id  # type: ignore[attr-defined]
    offerings = await _offerings(session.id)
    fees = await _fees(session.id, province_id)
    open_kinds = await window_open_kinds(session.id, province_id, school.id, now)
    account_ids = sorted({a.id for _, a in students if a is not None})
    active: dict[int, list[Registration]] = defaultdict(list)
    approved: set[int] = set()
    for start in range(0, len(account_ids), _IN_CHUNK):
        chunk = account_ids[start : start + _IN_CHUNK]
        for r in await Registration.filter(
            account_id__in=chunk,
            session_id=session.id,
            status__in=[RegistrationStatus.PAID, RegistrationStatus.PENDING_PAYMENT],
        ).select_related("offering__subject"):
            if holds_place(r.status, r.expires_at, now):
                active[r.account_id].append(r)  # type: ignore[attr-defined]
        approved.update(
            await Cet6Review.filter(
                account_id__in=chunk, session_id=session.id, status=ReviewStatus.APPROVED
            ).values_list("account_id", flat=True)  # type: ignore[arg-type]
        )
    return [
        Situation(
            account=account,
            session=session,
            now=now,
            qualification=None,
            offerings=offerings,
            active=list(active.get(account.id, [])) if account is not None else [],
            cet6_approved=account is not None and account.id in approved,
            fees=fees,
            open_kinds=open_kinds,
            province_id=province_id,
            record=record,
        )
        for record, account in students
    ]


def allowed_by_school(situation: Situation, code: str) -> bool:
    """The roster lists the subject, or CET6 was granted by review; an oral subject follows
    its written subject."""
    offering = situation.offerings.get(code)
    if offering is None:
        return False
    subject = offering.subject
    if subject.kind == SubjectKind.ORAL:
        written = subject.written_prerequisite
        return code in situation.roster_subjects or (
            written is not None and allowed_by_school(situation, written)
        )
    if code == "CET6" and situation.cet6_approved:
        return True
    return code in situation.roster_subjects


def reasons(
    situation: Situation,
    code: str,
    *,
    chosen_slots: set[str] | None = None,
    check_seats: bool = True,
) -> list[ErrorCode]:
    """Why the candidate may not choose this subject now; empty when they may."""
    if code not in situation.offerings:
        return [ErrorCode.SUBJECT_NOT_OFFERED]
    if situation.qualification is None:
        return [ErrorCode.NOT_QUALIFIED]
    if situation.qualification.confirmed_at is None:
        return [ErrorCode.NOT_CONFIRMED]
    return subject_reasons(situation, code, chosen_slots=chosen_slots, check_seats=check_seats)


def subject_reasons(
    situation: Situation,
    code: str,
    *,
    chosen_slots: set[str] | None = None,
    check_seats: bool = True,
) -> list[ErrorCode]:
    """The rules of the subject itself, whoever acts: the candidate once qualified and
    confirmed (:func:`reasons`), or their school registering them (S11)."""
    offering = situation.offerings.get(code)
    if offering is None:
        return [ErrorCode.SUBJECT_NOT_OFFERED]
    subject = offering.subject
    found: list[ErrorCode] = []
    if code in situation.active_codes():
        return [ErrorCode.ALREADY_REGISTERED]
    if code not in situation.fees:
        found.append(ErrorCode.SUBJECT_NOT_OFFERED)
    if not allowed_by_school(situation, code):
        found.append(
            ErrorCode.CET6_REQUIRES_CET4 if code == "CET6" else ErrorCode.SUBJECT_NOT_IN_ROSTER
        )
    if subject.kind == SubjectKind.ORAL and subject.written_prerequisite not in (
        situation.paid_codes()
    ):
        found.append(ErrorCode.WRITTEN_NOT_PAID)
    if offering.slot in situation.taken_slots() | (chosen_slots or set()):
        found.append(ErrorCode.SLOT_TAKEN)
    if subject.kind not in situation.open_kinds:
        found.append(ErrorCode.WINDOW_CLOSED)
    if (
        check_seats
        and subject.kind == SubjectKind.ORAL
        and not any(situation.remaining(c) > 0 for c in situation.centers_for(code))
    ):
        found.append(ErrorCode.SEATS_FULL)
    return found


async def session_by_id(session_id: int) -> ExamSession:
    return await ExamSession.get(id=session_id)


async def session_by_code(code: str) -> ExamSession:
    session = await _SESSION_BY_CODE(code.strip().upper()[:8])
    if session is None:
        raise DomainError.of(ErrorCode.SESSION_NOT_FOUND, "sessionCode")
    return session
