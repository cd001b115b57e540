"""Score operations: the candidate's paper-report requests, score checks and certificates, and
the national office's import, release, calendar, check answers and the centres' collections.

Every rule is in the services; this module checks who is asking and shapes the answer.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.file_uploads import Upload
from strawberry.types import Info

from cetgql import models
from cetgql.graphql.errors import UserError, attempt
from cetgql.graphql.permissions import IsAuthenticated, IsNationalAdmin, IsSchoolAdmin
from cetgql.graphql.types.scores import (
    PaperReportEntry,
    PaperReportStatusEnum,
    Score,
    ScoreCertificate,
    ScoreFileProblem,
    ScoreRelease,
    ScoreVerification,
    VerificationOutcome,
    VerificationStatus,
    WorkingCalendar,
)
from cetgql.services import (
    clock,
    eligibility,
    identity,
    score_import,
    score_release,
    score_reports,
    scores,
    work_calendar,
)
from cetgql.services.errors import DomainError, ErrorCode, message_for


def _pk(global_id: relay.GlobalID | None, type_name: str, field: str) -> int:
    if global_id is None or global_id.type_name != type_name or not global_id.node_id.isdigit():
        raise DomainError.of(ErrorCode.NOT_FOUND, field)
    return int(global_id.node_id)


async def _viewer(info: Info) -> models.Account:
    viewer = await info.context.viewer()
    assert viewer is not None  # the permission class let the request through
    return viewer


async def _score(info: Info, record_id: int) -> Score | None:
    found = await scores.visible_scores(await info.context.viewer(), [record_id])
    view = found.get(record_id)
    return Score(id=record_id, view=view) if view else None


# --- candidate ------------------------------------------------------------------------------


@strawberry.input(
    description="Either a released score (within the period after release) or, before the "
    "release, one of your registrations (the choice made when registering)."
)
class RequestPaperReportInput:
    score_id: relay.GlobalID | None = None
    registration_id: relay.GlobalID | None = None
    wanted: bool = strawberry.field(
        default=True, description="With registrationId: false withdraws the choice."
    )


@strawberry.type
class RequestPaperReportPayload:
    score: Score | None = None
    paper_report_requested: bool | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class RequestScoreVerificationInput:
    score_id: relay.GlobalID
    reason: str = strawberry.field(description="What seems wrong; at most 500 characters.")


@strawberry.type
class RequestScoreVerificationPayload:
    verification: ScoreVerification | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class IssueScoreCertificateInput:
    score_id: relay.GlobalID


@strawberry.type
class IssueScoreCertificatePayload:
    certificate: ScoreCertificate | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ScoreMutations:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Ask for a paper score report (R6): when registering (registrationId, "
        "until the release) or after the release (scoreId, within the set period). It is "
        "collected at the test centre within six months, or forfeited.",
    )
    async def request_paper_report(
        self, info: Info, input: RequestPaperReportInput
    ) -> RequestPaperReportPayload:
        viewer = await _viewer(info)

        async def run() -> RequestPaperReportPayload:
            if (input.score_id is None) == (input.registration_id is None):
                raise DomainError.of(ErrorCode.REQUIRED, "scoreId")
            if input.registration_id is not None:
                registration = await scores.choose_paper_at_registration(
                    viewer,
                    _pk(input.registration_id, "Registration", "registrationId"),
                    wanted=input.wanted,
                )
                return RequestPaperReportPayload(paper_report_requested=registration.paper_report)
            record_id = _pk(input.score_id, "Score", "scoreId")
            await scores.request_paper(viewer, record_id)
            return RequestPaperReportPayload(
                score=await _score(info, record_id), paper_report_requested=True
            )

        payload, errors = await attempt(info, run())
        return payload or RequestPaperReportPayload(user_errors=errors)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Ask for a check of a written score (分数核查, R7) within the period after "
        "release; the outcome shows on the score.",
    )
    async def request_score_verification(
        self, info: Info, input: RequestScoreVerificationInput
    ) -> RequestScoreVerificationPayload:
        viewer = await _viewer(info)

        async def run() -> models.ScoreVerification:
            return await scores.request_verification(
                viewer,
                _pk(input.score_id, "Score", "scoreId"),
                input.reason,
                client_address=info.context.client_address,
            )

        verification, errors = await attempt(info, run())
        return RequestScoreVerificationPayload(
            verification=ScoreVerification.from_model(verification) if verification else None,
            user_errors=errors,
        )

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Issue yourself a score certificate (成绩证明, R8) for a score with a "
        "report, any session since June 2005: a PDF with a verifiable QR code.",
    )
    async def issue_score_certificate(
        self, info: Info, input: IssueScoreCertificateInput
    ) -> IssueScoreCertificatePayload:
        viewer = await _viewer(info)

        async def run() -> models.ScoreCertificate:
            return await scores.issue_certificate(
                viewer,
                _pk(input.score_id, "Score", "scoreId"),
                client_address=info.context.client_address,
            )

        certificate, errors = await attempt(info, run())
        return IssueScoreCertificatePayload(
            certificate=ScoreCertificate.from_model(certificate) if certificate else None,
            user_errors=errors,
        )


# --- national office and centres ------------------------------------------------------------


@strawberry.input(description="A score file: CSV (UTF-8 or GB18030) or XLSX, any size.")
class ImportScoresInput:
    session_code: str
    file: Upload


@strawberry.type
class ImportScoresPayload:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    reports_issued: int = 0
    reports_reissued: int = 0
    reports_withdrawn: int = 0
    problem_count: int = strawberry.field(
        default=0, description="Every problem found; when there is any, nothing was applied."
    )
    problems: list[ScoreFileProblem] = strawberry.field(
        default_factory=list,
        description=f"The first {score_import.MAX_RETURNED_PROBLEMS} problems by line "
        "(`cetgql import-scores` prints them all).",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class SetScoreReleaseInput:
    session_code: str
    release_at: datetime | None = strawberry.field(
        default=None,
        description="The exact release time. Left out while none is set: 10:00 Beijing time "
        "on the 60th working day after the exam.",
    )
    verification_working_days: int | None = strawberry.field(
        default=None, description="Score checks are taken for this many working days (1–60)."
    )
    paper_request_working_days: int | None = strawberry.field(
        default=None, description="Paper reports can be asked for this many working days."
    )


@strawberry.type
class SetScoreReleasePayload:
    release: ScoreRelease | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class CalendarDayInput:
    date: date
    workday: bool = strawberry.field(description="true: a make-up working day; false: a holiday.")
    name: str = ""


@strawberry.input(description="A whole year of holidays and make-up working days; replaces it.")
class SetWorkingCalendarInput:
    year: int
    days: list[CalendarDayInput]


@strawberry.type
class SetWorkingCalendarPayload:
    calendar: WorkingCalendar | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ResolveScoreVerificationInput:
    verification_id: relay.GlobalID
    outcome: VerificationOutcome  # type: ignore[valid-type]
    listening: str | None = strawberry.field(
        default=None, description="With CORRECTED: the corrected sections, in half points."
    )
    reading: str | None = None
    writing_translation: str | None = None
    note: str | None = strawberry.field(default=None, description="Shown to the candidate.")


@strawberry.type
class ResolveScoreVerificationPayload:
    verification: ScoreVerification | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class RecordPaperReportCollectionInput:
    report_number: str


@strawberry.type
class RecordPaperReportCollectionPayload:
    report_number: str | None = None
    collected_at: datetime | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


async def _release(session_code: str) -> ScoreRelease:
    session = await eligibility.session_by_code(session_code)
    found = await score_release.info(session.id)
    return ScoreRelease.of(found, await score_release.default_release(session), clock.now())


def _upload_file(upload: Any) -> tuple[Any, int]:
    """The upload's file object (spooled to disk by the multipart parser) and its size."""
    if isinstance(upload, bytes):
        import io

        return io.BytesIO(upload), len(upload)
    size = getattr(upload, "size", None) or 0
    if size > score_import.MAX_UPLOAD_BYTES:
        raise DomainError.of(ErrorCode.FILE_TOO_LARGE, "file")
    return upload.file, size


@strawberry.type
class ScoreAdminMutations:
    @strawberry.mutation(
        permission_classes=[IsNationalAdmin],
        description="Import a score file (R1–R4): every bad row is reported with its line and "
        "nothing is applied; a clean file is applied at once. Re-importing corrects, never "
        "duplicates; reports follow.",
    )
    async def import_scores(self, info: Info, input: ImportScoresInput) -> ImportScoresPayload:
        viewer = await _viewer(info)

        async def run() -> score_import.ScoreImportResult:
            binary, size = _upload_file(input.file)
            return await score_import.import_scores(
                actor=viewer,
                session_code=input.session_code,
                binary=binary,
                size=size,
                filename=getattr(input.file, "filename", "") or "",
                client_address=info.context.client_address,
            )

        result, errors = await attempt(info, run())
        if result is None:
            return ImportScoresPayload(user_errors=errors)
        language = info.context.language
        if not result.ok:
            errors = [
                UserError(
                    field=["file"],
                    code=ErrorCode.SCORES_INVALID,
                    message=message_for(ErrorCode.SCORES_INVALID, language),
                )
            ]
        return ImportScoresPayload(
            rows=result.rows,
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
            reports_issued=result.reports_issued,
            reports_reissued=result.reports_reissued,
            reports_withdrawn=result.reports_withdrawn,
            problem_count=result.problem_count,
            problems=[ScoreFileProblem.of(p, language) for p in result.problems],
            user_errors=errors,
        )

    @strawberry.mutation(
        permission_classes=[IsNationalAdmin],
        description="Set a session's score release time (R1) and the lengths of the periods "
        "after it; the time cannot move once passed. Audited.",
    )
    async def set_score_release(
        self, info: Info, input: SetScoreReleaseInput
    ) -> SetScoreReleasePayload:
        viewer = await _viewer(info)

        async def run() -> ScoreRelease:
            await score_release.set_release(
                viewer,
                input.session_code,
                release_at=input.release_at,
                verification_working_days=input.verification_working_days,
                paper_request_working_days=input.paper_request_working_days,
                client_address=info.context.client_address,
            )
            return await _release(input.session_code)

        release, errors = await attempt(info, run())
        return SetScoreReleasePayload(release=release, user_errors=errors)

    @strawberry.mutation(
        permission_classes=[IsNationalAdmin],
        description="Enter or correct a year of the working-day calendar: its holidays and "
        "make-up working days (调休); other days follow their weekday. Audited.",
    )
    async def set_working_calendar(
        self, info: Info, input: SetWorkingCalendarInput
    ) -> SetWorkingCalendarPayload:
        viewer = await _viewer(info)
        days = [work_calendar.DaySpec(d.date, d.workday, d.name) for d in input.days]
        year, errors = await attempt(
            info,
            work_calendar.set_year(
                viewer, input.year, days, client_address=info.context.client_address
            ),
        )
        return SetWorkingCalendarPayload(
            calendar=WorkingCalendar.of(year) if year else None, user_errors=errors
        )

    @strawberry.mutation(
        permission_classes=[IsNationalAdmin],
        description="Answer a score check (R7): UNCHANGED, or CORRECTED with the corrected "
        "sections, which re-issues the report as a new version. Audited.",
    )
    async def resolve_score_verification(
        self, info: Info, input: ResolveScoreVerificationInput
    ) -> ResolveScoreVerificationPayload:
        viewer = await _viewer(info)

        async def run() -> models.ScoreVerification:
            outcome = models.VerificationOutcome(input.outcome)
            correction = None
            if outcome == models.VerificationOutcome.CORRECTED:
                correction = scores.Correction(
                    listening=input.listening or "",
                    reading=input.reading or "",
                    writing_translation=input.writing_translation or "",
                )
            return await scores.resolve_verification(
                viewer,
                _pk(input.verification_id, "ScoreVerification", "verificationId"),
                outcome=outcome,
                correction=correction,
                note=input.note,
                client_address=info.context.client_address,
            )

        verification, errors = await attempt(info, run())
        return ResolveScoreVerificationPayload(
            verification=ScoreVerification.from_model(verification) if verification else None,
            user_errors=errors,
        )

    @strawberry.mutation(
        permission_classes=[IsSchoolAdmin],
        description="Record that a paper report was handed over at its test centre (R6); "
        "refused once forfeited. Audited.",
    )
    async def record_paper_report_collection(
        self, info: Info, input: RecordPaperReportCollectionInput
    ) -> RecordPaperReportCollectionPayload:
        viewer = await _viewer(info)
        report, errors = await attempt(
            info,
            score_reports.record_collection(
                viewer, input.report_number, client_address=info.context.client_address
            ),
        )
        return RecordPaperReportCollectionPayload(
            report_number=report.number if report else None,
            collected_at=report.paper_collected_at if report else None,
            user_errors=errors,
        )


@strawberry.type
class ScoreQueries:
    @strawberry.field(
        description="Public: when the session's scores come out (as announced) and the "
        "periods after; null for an unknown session."
    )
    async def score_release(self, session_code: str) -> ScoreRelease | None:
        try:
            return await _release(session_code)
        except DomainError:
            return None

    @strawberry.field(description="Public: a year of the working-day calendar.")
    async def working_calendar(self, year: int) -> WorkingCalendar | None:
        try:
            return WorkingCalendar.of(await work_calendar.calendar_year(year))
        except DomainError:
            return None

    @relay.connection(
        relay.ListConnection[ScoreVerification],
        permission_classes=[IsNationalAdmin],
        description="Score checks of a session, oldest first; PENDING is the queue.",
    )
    async def score_verifications(
        self,
        info: Info,
        session_code: str,
        status: VerificationStatus | None = None,  # type: ignore[valid-type]
    ) -> list[ScoreVerification]:
        try:
            found = await scores.list_verifications(
                await _viewer(info),
                session_code,
                models.VerificationStatus(status) if status else None,
            )
        except DomainError:
            return []
        return [ScoreVerification.from_model(v) for v in found]

    @strawberry.field(
        permission_classes=[IsSchoolAdmin],
        description="Paper reports a test centre hands out: of a released session, at a "
        "school you administer (national admins may leave schoolCode out).",
    )
    async def paper_reports(
        self, info: Info, session_code: str, school_code: str | None = None
    ) -> list[PaperReportEntry]:
        try:
            found = await score_reports.paper_reports(
                await _viewer(info), session_code, school_code=school_code
            )
        except DomainError:
            return []
        return [
            PaperReportEntry(
                report_number=r.number,
                name=r.name,
                id_number_masked=identity.mask_id_number(r.id_number),
                subject_name=r.content.get("subjectName", ""),
                status=PaperReportStatusEnum(status),
                requested_at=r.paper_requested_at,  # type: ignore[arg-type]
                collected_at=r.paper_collected_at,
            )
            for r, status in found
        ]
