"""A candidate's scores: the history since June 2005 (R9), what each score shows (R1–R3),
paper-report requests (R6), score checks (R7) and self-issued certificates (R8).

Whose score it is: a record belongs to an account when the account holds its ticket (linked
at import) or when the record's ID type, ID number *and* name are the account's (records of
old sittings, tickets this system never issued). The name is part of the match so that an ID
number typed into someone else's sign-up does not open a stranger's history.

What shows, and when, is decided by :func:`visible` alone:

- nothing of a session before its release instant (``score_release``), for anybody;
- a written score with its reported total (0 when absent, for a violation or under 220) and
  its sections unless that total is 0 (``score_rules``);
- an oral grade that passed, always; a failed or missed oral test only from its session's
  release until the next session's release, and never on a report.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from cetgql.models import (
    Account,
    Registration,
    RegistrationStatus,
    ScoreCertificate,
    ScoreRecord,
    ScoreReport,
    ScoreVerification,
    SubjectKind,
    VerificationOutcome,
    VerificationStatus,
)
from cetgql.services import (
    access,
    audit,
    clock,
    eligibility,
    score_release,
    score_reports,
    score_rules,
)
from cetgql.services.errors import DomainError, ErrorCode, Problem
from cetgql.services.score_release import ReleaseInfo

MAX_REASON = 500
MAX_NOTE = 500


def owns(account: Account, record: ScoreRecord) -> bool:
    return record.account_id == account.id or (
        record.id_type == account.id_type
        and record.id_number == account.id_number
        and record.name_key == account.name_key
    )


def _owner_filter(account: Account) -> Q:
    return Q(account_id=account.id) | Q(
        id_type=account.id_type, id_number=account.id_number, name_key=account.name_key
    )


def visible(record: ScoreRecord, info: ReleaseInfo, now: datetime) -> bool:
    """Whether the record shows at all at ``now`` (R1, R3)."""
    if not info.released(now):
        return False
    if record.subject.kind == SubjectKind.ORAL and not score_rules.oral_passed(
        record.oral_grade, record.absent, record.violation
    ):
        return info.fail_visible(now)
    return True


@dataclass
class ScoreView:
    """A record as its owner sees it at one instant."""

    record: ScoreRecord
    info: ReleaseInfo
    report: ScoreReport | None
    now: datetime

    @property
    def oral(self) -> bool:
        return self.record.subject.kind == SubjectKind.ORAL

    @property
    def total(self) -> Decimal | None:
        if self.oral:
            return None
        return score_rules.reported_total(
            self.record.total, self.record.absent, self.record.violation
        )

    def _section(self, value: Decimal | None) -> Decimal | None:
        total = self.total
        return value if total is not None and total >= score_rules.PASS_LINE else None

    @property
    def listening(self) -> Decimal | None:
        return self._section(self.record.listening)

    @property
    def reading(self) -> Decimal | None:
        return self._section(self.record.reading)

    @property
    def writing_translation(self) -> Decimal | None:
        return self._section(self.record.writing_translation)

    @property
    def oral_grade(self) -> str | None:
        if not self.oral or self.record.absent or self.record.violation:
            return None
        return self.record.oral_grade

    @property
    def electronic_report(self) -> bool:
        """R5: sessions from 2021 H1, from 10 working days after release."""
        return (
            self.report is not None
            and score_rules.electronic_reports(self.info.year, self.info.half)
            and self.info.electronic_available(self.now)
        )

    @property
    def paper_status(self) -> str | None:
        if self.report is None:
            return None
        return score_reports.paper_status(self.report, self.info, self.now)


async def _views(records: Sequence[ScoreRecord], now: datetime) -> list[ScoreView]:
    infos = await score_release.infos(sorted({r.session_id for r in records}))
    shown = [r for r in records if r.session_id in infos and visible(r, infos[r.session_id], now)]
    reports = await score_reports.current_reports([(r.session_id, r.report_key) for r in shown])
    return [
        ScoreView(r, infos[r.session_id], reports.get((r.session_id, r.report_key)), now)
        for r in shown
    ]


async def history(account: Account) -> list[ScoreView]:
    """Every score of the candidate since June 2005 that shows now: newest session first,
    written before oral."""
    now = clock.now()
    released = await score_release.released_session_ids(now)
    if not released:
        return []
    records = await ScoreRecord.filter(
        _owner_filter(account), session_id__in=released
    ).select_related("session", "subject")
    records.sort(
        key=lambda r: (
            -r.session.year,
            -r.session.half,
            r.subject.kind != SubjectKind.WRITTEN,
            r.subject.code,
        )
    )
    return await _views(records, now)


async def visible_scores(viewer: Account | None, record_ids: Sequence[int]) -> dict[int, ScoreView]:
    """The records the viewer may see (``node``): their own, or any released one for the
    national office (which answers score checks)."""
    if viewer is None or viewer.must_change_password or not record_ids:
        return {}
    national = (await access.scope_of(viewer)).national
    records = await ScoreRecord.filter(id__in=list(record_ids)).select_related("session", "subject")
    mine = [r for r in records if national or owns(viewer, r)]
    return {view.record.id: view for view in await _views(mine, clock.now())}


async def own_score(account: Account, record_id: int, field: str = "scoreId") -> ScoreView:
    """The candidate's own score as it shows now; NOT_FOUND for anything else, including a
    score of a session not yet released (which must not be told apart from none)."""
    record = await ScoreRecord.filter(id=record_id).select_related("session", "subject").first()
    if record is None or not owns(account, record):
        raise DomainError.of(ErrorCode.NOT_FOUND, field)
    views = await _views([record], clock.now())
    if not views:
        raise DomainError.of(ErrorCode.NOT_FOUND, field)
    return views[0]


# --- paper reports (R6) ---------------------------------------------------------------------


async def choose_paper_at_registration(
    account: Account, registration_id: int, *, wanted: bool = True
) -> Registration:
    """Opt in to (or out of) a paper report while registering, up to the release (R6)."""
    registration = (
        await Registration.filter(id=registration_id, account_id=account.id)
        .select_related("offering__subject", "session")
        .first()
    )
    now = clock.now()
    if registration is None or eligibility.effective_status(
        registration.status, registration.expires_at, now
    ) not in (RegistrationStatus.PAID, RegistrationStatus.PENDING_PAYMENT):
        raise DomainError.of(ErrorCode.NOT_FOUND, "registrationId")
    info = await score_release.info(registration.session.id)
    if info.released(now):
        raise DomainError.of(ErrorCode.PAPER_CHOICE_CLOSED, "registrationId")
    subject = registration.offering.subject
    written = (
        (subject.written_prerequisite or subject.code)
        if subject.kind == SubjectKind.ORAL
        else subject.code
    )
    key = f"{written}|{account.id_type}|{account.id_number}"
    async with in_transaction():
        registration.paper_report = wanted
        await registration.save(update_fields=["paper_report"])
        # A report imported but not released yet follows the choice.
        await ScoreReport.filter(
            session_id=registration.session.id, report_key=key, superseded_at__isnull=True
        ).update(paper_requested_at=now if wanted else None)
    return registration


async def request_paper(account: Account, record_id: int) -> ScoreView:
    """Ask for the paper report of a released score within the period after release (R6)."""
    view = await own_score(account, record_id)
    if view.report is None:
        raise DomainError.of(ErrorCode.NO_SCORE_REPORT, "scoreId")
    if view.report.paper_requested_at is not None:
        return view  # asked already (at registration or before): nothing to do
    if not view.info.paper_request_open(view.now):
        raise DomainError.of(ErrorCode.PAPER_REQUEST_CLOSED, "scoreId")
    async with in_transaction():
        updated = await ScoreReport.filter(
            id=view.report.id, superseded_at__isnull=True, paper_requested_at__isnull=True
        ).update(paper_requested_at=view.now)
        if updated:
            await audit.record(
                "scores.paper_requested",
                actor=account,
                subject=f"ScoreReport:{view.report.id}",
                number=view.report.number,
            )
    return await own_score(account, record_id)


# --- score checks (R7) ----------------------------------------------------------------------


def _sections(record: ScoreRecord) -> dict[str, Any]:
    def text(value: Decimal | None) -> str | None:
        return None if value is None else f"{Decimal(value):.1f}"

    return {
        "listening": text(record.listening),
        "reading": text(record.reading),
        "writingTranslation": text(record.writing_translation),
        "total": text(record.total),
        "reportedTotal": text(
            score_rules.reported_total(record.total, record.absent, record.violation)
        ),
    }


async def request_verification(
    account: Account, record_id: int, reason: str, *, client_address: str | None = None
) -> ScoreVerification:
    """A score check (分数核查) of a written score, within the period after release."""
    text = unicodedata.normalize("NFC", reason or "").strip()
    if not text:
        raise DomainError.of(ErrorCode.REQUIRED, "reason")
    if len(text) > MAX_REASON:
        raise DomainError.of(ErrorCode.TOO_LONG, "reason")
    view = await own_score(account, record_id)
    if view.oral:
        raise DomainError.of(ErrorCode.VERIFICATION_WRITTEN_ONLY, "scoreId")
    if not view.info.verification_open(view.now):
        raise DomainError.of(ErrorCode.VERIFICATION_CLOSED, "scoreId")
    try:
        async with in_transaction():
            verification = await ScoreVerification.create(
                account_id=account.id,
                record_id=view.record.id,
                session_id=view.record.session_id,
                reason=text,
                before=_sections(view.record),
                requested_at=view.now,
            )
            await audit.record(
                "scores.verification_requested",
                actor=account,
                subject=f"ScoreVerification:{verification.id}",
                client_address=client_address,
                ticket=view.record.ticket_number,
            )
    except IntegrityError as error:  # one check per score, however often asked
        raise DomainError.of(ErrorCode.VERIFICATION_EXISTS, "scoreId") from error
    return verification


@dataclass(frozen=True)
class Correction:
    listening: str
    reading: str
    writing_translation: str


def _corrected(correction: Correction | None) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    if correction is None:
        raise DomainError.of(ErrorCode.CORRECTION_REQUIRED, "listening")
    problems: list[Problem] = []
    values: list[Decimal] = []
    for field, text, maximum in (
        ("listening", correction.listening, score_rules.MAX_LISTENING),
        ("reading", correction.reading, score_rules.MAX_READING),
        ("writingTranslation", correction.writing_translation, score_rules.MAX_WRITING_TRANSLATION),
    ):
        try:
            values.append(score_rules.score_value(text or "", maximum, field))
        except DomainError as error:
            problems.extend(error.problems)
    if problems:
        raise DomainError(problems)
    listening, reading, writing = values
    return listening, reading, writing, score_rules.check_total(listening, reading, writing, "")


async def resolve_verification(
    actor: Account,
    verification_id: int,
    *,
    outcome: VerificationOutcome,
    correction: Correction | None = None,
    note: str | None = None,
    client_address: str | None = None,
) -> ScoreVerification:
    """The national office's answer to a score check. A correction changes the score and
    re-issues the report (a new version; the old one's code answers "superseded")."""
    await access.require_national(actor)
    text = unicodedata.normalize("NFC", note or "").strip() or None
    if text is not None and len(text) > MAX_NOTE:
        raise DomainError.of(ErrorCode.TOO_LONG, "note")
    found = (
        await ScoreVerification.filter(id=verification_id).select_related("record__session").first()
    )
    if found is None:
        raise DomainError.of(ErrorCode.NOT_FOUND, "verificationId")
    session = found.record.session
    values = _corrected(correction) if outcome == VerificationOutcome.CORRECTED else None
    await score_release.ensure_row(session.id)
    async with in_transaction() as connection:
        await score_release.lock(session.id)
        verification = await ScoreVerification.select_for_update().get(id=verification_id)
        if verification.status != VerificationStatus.PENDING:
            raise DomainError.of(ErrorCode.VERIFICATION_ALREADY_RESOLVED, "verificationId")
        record = await ScoreRecord.get(id=verification.record_id)
        if values is not None:
            listening, reading, writing, total = values
            if (listening, reading, writing) == (
                record.listening,
                record.reading,
                record.writing_translation,
            ):
                raise DomainError.of(ErrorCode.CORRECTION_REQUIRED, "listening")
            record.listening, record.reading, record.writing_translation = (
                listening,
                reading,
                writing,
            )
            record.total = total
            await record.save(
                update_fields=[
                    "listening",
                    "reading",
                    "writing_translation",
                    "total",
                    "imported_at",
                ]
            )
            verification.after = _sections(record)
            sync = await score_reports.ReportSync.start(session, connection)
            await sync.sync([record.report_key])
        verification.status = VerificationStatus.RESOLVED
        verification.outcome = outcome
        verification.note = text  # type: ignore[assignment]
        verification.resolved_at = clock.now()
        verification.resolver = actor
        await verification.save()
        await audit.record(
            "scores.verification_resolved",
            actor=actor,
            subject=f"ScoreVerification:{verification.id}",
            client_address=client_address,
            outcome=outcome.value,
            before=verification.before,
            after=verification.after,
        )
    return verification


async def verifications_of(record_ids: Sequence[int]) -> dict[int, ScoreVerification]:
    return {v.record_id: v for v in await ScoreVerification.filter(record_id__in=list(record_ids))}


async def list_verifications(
    actor: Account, session_code: str, status: VerificationStatus | None = None
) -> list[ScoreVerification]:
    """The national office's queue, oldest first."""
    await access.require_national(actor)
    session = await eligibility.session_by_code(session_code)
    query = ScoreVerification.filter(session_id=session.id)
    if status is not None:
        query = query.filter(status=status)
    return await query.order_by("requested_at", "id")


async def visible_verifications(
    viewer: Account | None, ids: Sequence[int]
) -> dict[int, ScoreVerification]:
    """A check is seen by the candidate who asked and by the national office."""
    if viewer is None or viewer.must_change_password or not ids:
        return {}
    national = (await access.scope_of(viewer)).national
    return {
        v.id: v
        for v in await ScoreVerification.filter(id__in=list(ids))
        if national or v.account_id == viewer.id
    }


# --- certificates (R8) ----------------------------------------------------------------------


def _certificate_number(now: datetime) -> str:
    return f"{now.astimezone(clock.SHANGHAI):%Y%m%d}{secrets.randbelow(10**10):010d}"


async def issue_certificate(
    account: Account, record_id: int, *, client_address: str | None = None
) -> ScoreCertificate:
    """A score certificate (成绩证明) of the score's current report: as valid as the report,
    for any session since June 2005. Issuing again for the same report version gives the same
    certificate."""
    view = await own_score(account, record_id)
    if view.report is None or (view.info.year, view.info.half) < score_rules.FIRST_SESSION:
        raise DomainError.of(ErrorCode.NO_SCORE_REPORT, "scoreId")
    existing = await ScoreCertificate.get_or_none(account_id=account.id, report_id=view.report.id)
    if existing is not None:
        return existing
    for _ in range(5):
        try:
            async with in_transaction():
                certificate = await ScoreCertificate.create(
                    account_id=account.id,
                    report_id=view.report.id,
                    number=_certificate_number(view.now),
                    issued_at=view.now,
                )
                await audit.record(
                    "scores.certificate_issued",
                    actor=account,
                    subject=f"ScoreCertificate:{certificate.id}",
                    client_address=client_address,
                    report=view.report.number,
                    version=view.report.version,
                )
            return certificate
        except IntegrityError:
            existing = await ScoreCertificate.get_or_none(
                account_id=account.id, report_id=view.report.id
            )
            if existing is not None:  # a concurrent request issued it
                return existing
    raise RuntimeError("could not draw a unique certificate number")


async def certificates_of(account: Account) -> list[ScoreCertificate]:
    return await ScoreCertificate.filter(account_id=account.id).order_by("-issued_at", "-id")
