"""CET6 qualification review (六级资格审核, S4; FAQ 五.2).

CET6 needs a CET4 score of 425 or more. When a candidate's roster record does not list CET6,
the candidate may enter the written ticket number (T4) of any CET4 sitting since June 2005 where
they scored 425 or more:

- ticket and ID number match a score record → approved at once, and eligibility lets CET6 (and
  CET-SET6) be chosen (``eligibility.allowed_by_school`` reads approved reviews);
- ticket and name match but not the ID (an ID re-issued, an old 15-digit ID card, a new
  passport) → pending, and the candidate's school decides;
- a ticket of a sitting before June 2005 → pending as well, for the school to decide: no score
  records exist before then (R9) and the FAQ sends these candidates to their school, so the
  request is put in that school's queue (with the ticket number to check against the paper
  report) rather than refused, and the candidate is told so by the review's reason;
- a matching record below 425 → refused with ``CET4_SCORE_TOO_LOW``;
- anything else (unknown ticket, another person's ticket, not a CET4 ticket) → one answer,
  ``CET4_SCORE_NOT_FOUND``, which does not say whether the ticket exists or whose it is.

Every lookup counts against per-account and per-address limits, so the request cannot be used
to enumerate tickets. Hits are recorded outside any transaction, so a refused attempt still
counts. One review at a time: a pending or approved review must be decided or stands before
another request is taken.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from cetgql.models import (
    Account,
    Cet6Review,
    ExamSession,
    Qualification,
    ReviewStatus,
    School,
    ScoreRecord,
    SessionSubject,
)
from cetgql.services import access, audit, clock, eligibility, rate_limits, score_release
from cetgql.services.errors import DomainError, ErrorCode

PASS_MARK = Decimal(425)
FIRST_RECORDED_SITTING = (2005, 1)  # June 2005: score records (and tickets of T4) start here
CET4_TICKET_LEVEL = 1  # the level digit of a CET4 written ticket (T4)
FIRST_CET_YEAR = 1987  # two-digit years from 87 on are 19xx
MAX_NOTE_LENGTH = 500
_TICKET = re.compile(r"^\d{15}$")
_FIELD = "cet4TicketNumber"


class Reason(StrEnum):
    """What the automatic check found, kept on the review for the candidate and the school."""

    TICKET_AND_ID_MATCH = "TICKET_AND_ID_MATCH"
    NAME_MATCH_ONLY = "NAME_MATCH_ONLY"
    EARLIER_THAN_2005 = "EARLIER_THAN_2005"


@dataclass(frozen=True)
class Cet4Ticket:
    """A written ticket number read by its T4 layout."""

    number: str
    centre: str
    year: int
    half: int
    level: int
    room: str
    seat: str

    @property
    def sitting(self) -> tuple[int, int]:
        return (self.year, self.half)


def parse_cet4_ticket(value: str) -> Cet4Ticket:
    """Read a CET4 written ticket number: 15 digits = centre (6), year (2), half (1), level (1,
    which must be 1 for CET4), room (3), seat (2); the sitting may not lie in the future."""
    number = re.sub(r"\s+", "", unicodedata.normalize("NFKC", value))
    if not number:
        raise DomainError.of(ErrorCode.REQUIRED, _FIELD)
    if not _TICKET.match(number):
        raise DomainError.of(ErrorCode.CET4_TICKET_INVALID, _FIELD)
    two_digit = int(number[6:8])
    year = 1900 + two_digit if two_digit >= FIRST_CET_YEAR % 100 else 2000 + two_digit
    half = int(number[8])
    level = int(number[9])
    if half not in (1, 2) or level != CET4_TICKET_LEVEL or year > clock.now().year:
        raise DomainError.of(ErrorCode.CET4_TICKET_INVALID, _FIELD)
    return Cet4Ticket(
        number=number,
        centre=number[:6],
        year=year,
        half=half,
        level=level,
        room=number[10:13],
        seat=number[13:],
    )


def reported_total(record: ScoreRecord) -> Decimal:
    """The total as reported (R2): absent, a violation or no total counts as 0."""
    if record.absent or record.violation or record.total is None:
        return Decimal(0)
    return Decimal(record.total)


async def _confirmed_qualification(account: Account, session: ExamSession) -> Qualification:
    qualification = (
        await Qualification.filter(account_id=account.id, session_id=session.id)
        .select_related("roster_record")
        .first()
    )
    if qualification is None:
        raise DomainError.of(ErrorCode.NOT_QUALIFIED)
    if qualification.confirmed_at is None:
        raise DomainError.of(ErrorCode.NOT_CONFIRMED)
    return qualification


async def _refuse_if_standing(account_id: int, session_id: int) -> None:
    """An approved review already allows CET6; a pending one is with the school."""
    statuses = set(
        await Cet6Review.filter(
            account_id=account_id,
            session_id=session_id,
            status__in=[ReviewStatus.APPROVED, ReviewStatus.PENDING],
        ).values_list("status", flat=True)
    )
    if ReviewStatus.APPROVED in statuses:
        raise DomainError.of(ErrorCode.CET6_ALREADY_ALLOWED)
    if ReviewStatus.PENDING in statuses:
        raise DomainError.of(ErrorCode.CET6_REVIEW_PENDING)


async def _check_score(account: Account, ticket: Cet4Ticket) -> Reason:
    """Approve or send to the school by the score record of the ticket; refuse otherwise."""
    if ticket.sitting < FIRST_RECORDED_SITTING:
        return Reason.EARLIER_THAN_2005
    record = await ScoreRecord.filter(ticket_number=ticket.number).select_related("subject").first()
    if record is None or record.subject.ticket_code != CET4_TICKET_LEVEL:
        raise DomainError.of(ErrorCode.CET4_SCORE_NOT_FOUND, _FIELD)
    # A score counts only once its session's scores are out (R1): before that it must not
    # approve anything, nor be told apart from no score at all.
    if not (await score_release.info(record.session_id)).released(clock.now()):  # type: ignore[attr-defined]
        raise DomainError.of(ErrorCode.CET4_SCORE_NOT_FOUND, _FIELD)
    id_match = record.id_type == account.id_type and record.id_number == account.id_number
    name_match = record.name_key == account.name_key
    if not (id_match or name_match):
        # The same answer as an unknown ticket: whose ticket it is stays unknown.
        raise DomainError.of(ErrorCode.CET4_SCORE_NOT_FOUND, _FIELD)
    if reported_total(record) < PASS_MARK:
        raise DomainError.of(ErrorCode.CET4_SCORE_TOO_LOW, _FIELD)
    return Reason.TICKET_AND_ID_MATCH if id_match else Reason.NAME_MATCH_ONLY


async def request_review(
    account: Account, *, session_code: str, cet4_ticket_number: str, client_address: str
) -> Cet6Review:
    """The candidate's request (S4): approved at once, pending with the school, or refused."""
    ticket = parse_cet4_ticket(cet4_ticket_number)
    session = await eligibility.session_by_code(session_code)
    qualification = await _confirmed_qualification(account, session)
    if "CET6" in (qualification.roster_record.eligible_subjects or []):
        raise DomainError.of(ErrorCode.CET6_ALREADY_ALLOWED)
    if not await SessionSubject.exists(session_id=session.id, subject__code="CET6"):
        raise DomainError.of(ErrorCode.SUBJECT_NOT_OFFERED)
    await _refuse_if_standing(account.id, session.id)

    # Count the attempt before looking anything up, and outside the transaction below.
    await rate_limits.check(rate_limits.CET6_REVIEW_PER_ACCOUNT, str(account.id))
    await rate_limits.check(rate_limits.CET6_REVIEW_PER_ADDRESS, client_address)
    await rate_limits.record(rate_limits.CET6_REVIEW_PER_ACCOUNT, str(account.id))
    await rate_limits.record(rate_limits.CET6_REVIEW_PER_ADDRESS, client_address)

    reason = await _check_score(account, ticket)
    status = ReviewStatus.APPROVED if reason == Reason.TICKET_AND_ID_MATCH else ReviewStatus.PENDING
    now = clock.now()
    async with in_transaction():
        # The account row serialises one candidate's requests: never two standing reviews.
        await Account.select_for_update().filter(id=account.id).first()
        await _refuse_if_standing(account.id, session.id)
        review = await Cet6Review.create(
            account_id=account.id,
            session_id=session.id,
            school_id=qualification.roster_record.school_id,  # type: ignore[attr-defined]
            cet4_ticket_number=ticket.number,
            status=status,
            reason=reason.value,
            created_at=now,
            decided_at=now if status == ReviewStatus.APPROVED else None,
        )
        await audit.record(
            "cet6_review.requested",
            actor=account,
            subject=f"Cet6Review:{review.id}",
            client_address=client_address,
            status=status.value,
            reason=reason.value,
            ticket=ticket.number,
        )
    return review


async def latest_for(account_id: int, session_code: str) -> Cet6Review | None:
    """The candidate's most recent review of the session, whatever its state."""
    return (
        await Cet6Review.filter(
            account_id=account_id, session__code=session_code.strip().upper()[:8]
        )
        .order_by("-created_at", "-id")
        .first()
    )


def _scope_filter(scope: access.Scope) -> Q:
    if scope.national:
        return Q()
    return Q(school_id__in=list(scope.school_ids)) | Q(
        school__province_id__in=list(scope.province_ids)
    )


async def list_reviews(
    actor: Account,
    *,
    session_code: str,
    status: ReviewStatus | None = None,
    school_code: str | None = None,
) -> list[Cet6Review]:
    """Reviews of the session at the schools the admin administers, oldest first (the order
    in which they are worked through)."""
    scope = await access.scope_of(actor)
    if not scope.is_admin:
        raise DomainError.of(ErrorCode.FORBIDDEN)
    session = await eligibility.session_by_code(session_code)
    query = Cet6Review.filter(_scope_filter(scope), session_id=session.id)
    if school_code:
        school = await School.get_or_none(code=school_code.strip())
        if school is None:
            raise DomainError.of(ErrorCode.UNKNOWN_SCHOOL, "schoolCode")
        if not scope.covers_school(school):
            raise DomainError.of(ErrorCode.OUT_OF_SCOPE, "schoolCode")
        query = query.filter(school_id=school.id)
    if status is not None:
        query = query.filter(status=status)
    return await query.order_by("created_at", "id")


async def can_administer(actor: Account | None, review: Cet6Review) -> bool:
    """Whether the account is an admin whose scope covers the review's school."""
    if actor is None or actor.must_change_password:
        return False
    scope = await access.scope_of(actor)
    if scope.national or review.school_id in scope.school_ids:  # type: ignore[attr-defined]
        return True
    if not scope.province_ids:
        return False
    school = await School.get(id=review.school_id)  # type: ignore[attr-defined]
    return scope.covers_school(school)


async def visible(actor: Account | None, review_ids: list[int]) -> list[Cet6Review]:
    """The reviews the account may see: its own, or those of schools it administers."""
    if actor is None or actor.must_change_password or not review_ids:
        return []
    found = await Cet6Review.filter(id__in=review_ids)
    return [r for r in found if r.account_id == actor.id or await can_administer(actor, r)]  # type: ignore[attr-defined]


async def decide(
    actor: Account,
    review_id: int,
    *,
    approve: bool,
    note: str | None,
    client_address: str | None = None,
) -> Cet6Review:
    """The school's decision on a pending review; audited. Out-of-scope reviews are not found."""
    text = unicodedata.normalize("NFC", note or "").strip() or None
    if text is not None and len(text) > MAX_NOTE_LENGTH:
        raise DomainError.of(ErrorCode.TOO_LONG, "note")
    async with in_transaction():
        review = await Cet6Review.select_for_update().filter(id=review_id).first()
        if review is None or not await can_administer(actor, review):
            raise DomainError.of(ErrorCode.NOT_FOUND, "reviewId")
        if review.status != ReviewStatus.PENDING:
            raise DomainError.of(ErrorCode.REVIEW_ALREADY_DECIDED, "reviewId")
        review.status = ReviewStatus.APPROVED if approve else ReviewStatus.REJECTED
        review.reviewer = actor
        review.note = text  # type: ignore[assignment]
        review.decided_at = clock.now()
        await review.save(update_fields=["status", "reviewer_id", "note", "decided_at"])
        await audit.record(
            "cet6_review.approved" if approve else "cet6_review.rejected",
            actor=actor,
            subject=f"Cet6Review:{review.id}",
            client_address=client_address,
            account=review.account_id,  # type: ignore[attr-defined]
            ticket=review.cet4_ticket_number,
            reason=review.reason,
        )
    return review


async def score_record_of(review: Cet6Review) -> ScoreRecord | None:
    """The score record the ticket names, for the deciding school (None before 2005)."""
    return (
        await ScoreRecord.filter(ticket_number=review.cet4_ticket_number)
        .select_related("session")
        .first()
    )


async def roster_record_id_of(review: Cet6Review) -> int | None:
    """The candidate's roster record for the session, through their qualification."""
    qualification = await Qualification.get_or_none(
        account_id=review.account_id,  # type: ignore[attr-defined]
        session_id=review.session_id,  # type: ignore[attr-defined]
    )
    return qualification.roster_record_id if qualification is not None else None
