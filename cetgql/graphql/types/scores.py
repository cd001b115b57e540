"""Scores (R1–R9): ``Score`` per API.md, paper reports, score checks, certificates, the
release of a session and the working-day calendar.

What a score shows and to whom is decided in ``services/scores``; these types only shape it.
A score of a session not yet released does not exist here for anybody: ``node`` answers null,
the history leaves it out.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import strawberry
from strawberry import relay
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from cetgql import models
from cetgql.graphql.errors import UserErrorCode
from cetgql.graphql.types.exams import ExamSession, Subject
from cetgql.services import score_documents, score_reports, score_rules, scores, work_calendar
from cetgql.services.roster_import import RowProblem
from cetgql.services.score_release import ReleaseInfo

VerificationStatus = strawberry.enum(
    models.VerificationStatus, name="ScoreVerificationStatus", description="Where a check stands."
)
VerificationOutcome = strawberry.enum(
    models.VerificationOutcome,
    name="ScoreVerificationOutcome",
    description="UNCHANGED: the score was right. CORRECTED: it was changed and the report "
    "re-issued.",
)


class PaperReportStatusEnum(StrEnum):
    AWAITING_COLLECTION = score_reports.PaperStatus.AWAITING_COLLECTION
    COLLECTED = score_reports.PaperStatus.COLLECTED
    FORFEITED = score_reports.PaperStatus.FORFEITED


PaperReportStatus = strawberry.enum(
    PaperReportStatusEnum,
    name="PaperReportStatus",
    description="A requested paper report: waiting at the test centre, collected, or "
    "forfeited (not collected within six months of the release, R6).",
)


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _ids(node_ids: Iterable[str]) -> list[int]:
    return [int(i) for i in node_ids if i.isdigit()]


async def _load_offerings(
    keys: list[tuple[int, int]],
) -> list[models.SessionSubject | None]:
    sessions = sorted({k[0] for k in keys})
    subjects = sorted({k[1] for k in keys})
    found = {
        (o.session_id, o.subject_id): o  # type: ignore[attr-defined]
        for o in await models.SessionSubject.filter(
            session_id__in=sessions, subject_id__in=subjects
        ).select_related("subject")
    }
    return [found.get(k) for k in keys]


def _offerings(info: Info) -> DataLoader[tuple[int, int], models.SessionSubject | None]:
    """Per-request loader of (session, subject) offerings, kept on the request's loaders."""
    loaders = info.context.loaders
    loader = getattr(loaders, "score_offerings", None)
    if loader is None:
        loader = DataLoader(_load_offerings)
        loaders.score_offerings = loader
    return loader


@strawberry.type(description="A paper score report the candidate asked for (R6).")
class PaperReport:
    status: PaperReportStatus  # type: ignore[valid-type]
    requested_at: datetime
    collect_until: datetime | None = strawberry.field(
        description="Collect it at the test centre before this; then it is forfeited."
    )
    collected_at: datetime | None
    center_code: str = strawberry.field(description="The test centre that hands it out.")


@strawberry.type(description="Section scores as a score check saw them.")
class ScoreSections:
    listening: float | None
    reading: float | None
    writing_translation: float | None
    total: float | None = strawberry.field(description="As reported (R2).")

    @classmethod
    def of(cls, values: dict[str, Any] | None) -> ScoreSections | None:
        if not values:
            return None

        def number(key: str) -> float | None:
            value = values.get(key)
            return None if value is None else float(value)

        return cls(
            listening=number("listening"),
            reading=number("reading"),
            writing_translation=number("writingTranslation"),
            total=number("reportedTotal"),
        )


@strawberry.type(description="A score check (分数核查) and its outcome (R7).")
class ScoreVerification(relay.Node):
    id: relay.NodeID[int]
    reason: str
    status: VerificationStatus  # type: ignore[valid-type]
    outcome: VerificationOutcome | None  # type: ignore[valid-type]
    note: str | None = strawberry.field(description="The national office's explanation.")
    requested_at: datetime
    resolved_at: datetime | None
    model: strawberry.Private[models.ScoreVerification]

    @classmethod
    def from_model(cls, verification: models.ScoreVerification) -> ScoreVerification:
        return cls(
            id=verification.id,
            reason=verification.reason,
            status=verification.status,
            outcome=verification.outcome,
            note=verification.note,
            requested_at=verification.requested_at,
            resolved_at=verification.resolved_at,
            model=verification,
        )

    @strawberry.field(description="The scores when the check was asked for.")
    def before(self) -> ScoreSections | None:
        return ScoreSections.of(self.model.before)

    @strawberry.field(description="The corrected scores; null unless CORRECTED.")
    def after(self) -> ScoreSections | None:
        return ScoreSections.of(self.model.after)

    @strawberry.field(description="The score checked.")
    async def score(self, info: Info) -> Score | None:
        found = await scores.visible_scores(await info.context.viewer(), [self.model.record_id])
        view = found.get(self.model.record_id)
        return Score(id=view.record.id, view=view) if view else None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        node_ids = list(node_ids)
        found = await scores.visible_verifications(await info.context.viewer(), _ids(node_ids))
        return [
            cls.from_model(found[int(i)]) if i.isdigit() and int(i) in found else None
            for i in node_ids
        ]


@strawberry.type(
    description="A score of one subject in one session (R1–R5): written sections with the "
    "total as reported, or an oral grade. Shown only from the session's release on."
)
class Score(relay.Node):
    id: relay.NodeID[int]
    view: strawberry.Private[scores.ScoreView]

    @strawberry.field
    def session(self) -> ExamSession:
        return ExamSession.from_model(self.view.record.session)

    @strawberry.field
    async def subject(self, info: Info) -> Subject:
        record = self.view.record
        offering = await _offerings(info).load((record.session_id, record.subject_id))
        if offering is not None:
            return Subject.from_offering(offering)
        subject = record.subject
        return Subject(
            code=subject.code, name=subject.name, kind=subject.kind, level=subject.level, slot=""
        )

    @strawberry.field
    def ticket_number(self) -> str:
        return self.view.record.ticket_number

    @strawberry.field(
        description="Written total as reported: 0 when absent, for a violation or under 220 "
        "(R2); null for an oral test."
    )
    def total(self) -> float | None:
        return _float(self.view.total)

    @strawberry.field(description="Null when the total is reported as 0.")
    def listening(self) -> float | None:
        return _float(self.view.listening)

    @strawberry.field(description="Null when the total is reported as 0.")
    def reading(self) -> float | None:
        return _float(self.view.reading)

    @strawberry.field(description="Null when the total is reported as 0.")
    def writing_translation(self) -> float | None:
        return _float(self.view.writing_translation)

    @strawberry.field(
        description="A/B/C/D before 2023H1, 优秀/良好/合格/不合格 from it (R3). A fail shows "
        "only until the next session's release; null for a written test or a missed one."
    )
    def oral_grade(self) -> str | None:
        return self.view.oral_grade

    @strawberry.field(description="When the session's scores were released.")
    def released_at(self) -> datetime | None:
        return self.view.info.release_at

    @strawberry.field(
        description="15 digits (year, half, level, centre, serial) when a report was issued "
        "(R4): one report carries the written score and the oral grade of the level."
    )
    def report_number(self) -> str | None:
        return self.view.report.number if self.view.report else None

    @strawberry.field(description="The report's version: above 1 after a correction.")
    def report_version(self) -> int | None:
        return self.view.report.version if self.view.report else None

    @strawberry.field(
        description="The code under the report's QR code (verifyDocument); owner only."
    )
    async def report_verification_code(self, info: Info) -> str | None:
        if self.view.report is None or not await self._owner(info):
            return None
        return score_document_code(self.view.report)

    @strawberry.field(
        description="From when the electronic report (for other languages the electronic "
        "certificate) can be downloaded: 10 working days after release, sessions from 2021H1."
    )
    def electronic_report_from(self) -> datetime | None:
        info = self.view.info
        if self.view.report is None or not score_rules.electronic_reports(info.year, info.half):
            return None
        return self.view.info.electronic_from

    @strawberry.field(
        description="A signed link (15 minutes) to the electronic report PDF, for its owner, "
        "once available (R5); null otherwise."
    )
    async def electronic_report_url(self, info: Info) -> str | None:
        if not self.view.electronic_report or not await self._owner(info):
            return None
        assert self.view.report is not None
        return score_documents.report_url(self.view.report.id)

    @strawberry.field(description="The paper report, if asked for (R6).")
    def paper_report(self) -> PaperReport | None:
        report, status = self.view.report, self.view.paper_status
        if report is None or status is None or report.paper_requested_at is None:
            return None
        return PaperReport(
            status=PaperReportStatusEnum(status),
            requested_at=report.paper_requested_at,
            collect_until=self.view.info.paper_collect_until,
            collected_at=report.paper_collected_at,
            center_code=report.centre_code,
        )

    @strawberry.field(description="Until when a paper report can still be asked for.")
    def paper_request_until(self) -> datetime | None:
        return self.view.info.paper_request_until if self.view.report else None

    @strawberry.field(description="Until when a score check can be asked for (written only).")
    def verification_open_until(self) -> datetime | None:
        return None if self.view.oral else self.view.info.verification_until

    @strawberry.field(description="The score check asked for, with its outcome.")
    async def verification(self, info: Info) -> ScoreVerification | None:
        found = await scores.verifications_of([self.view.record.id])
        verification = found.get(self.view.record.id)
        return ScoreVerification.from_model(verification) if verification else None

    async def _owner(self, info: Info) -> bool:
        viewer = await info.context.viewer()
        return viewer is not None and scores.owns(viewer, self.view.record)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        node_ids = list(node_ids)
        found = await scores.visible_scores(await info.context.viewer(), _ids(node_ids))
        return [
            cls(id=int(i), view=found[int(i)]) if i.isdigit() and int(i) in found else None
            for i in node_ids
        ]


def score_document_code(report: models.ScoreReport) -> str:
    return score_documents.report_code(report)


@strawberry.type(description="A self-issued score certificate (成绩证明, R8).")
class ScoreCertificate(relay.Node):
    id: relay.NodeID[int]
    number: str
    issued_at: datetime
    model: strawberry.Private[models.ScoreCertificate]

    @classmethod
    def from_model(cls, certificate: models.ScoreCertificate) -> ScoreCertificate:
        return cls(
            id=certificate.id,
            number=certificate.number,
            issued_at=certificate.issued_at,
            model=certificate,
        )

    @strawberry.field(description="The code under its QR code (verifyDocument).")
    def verification_code(self) -> str:
        return score_documents.certificate_code(self.model)

    @strawberry.field(description="A signed link (15 minutes) to the PDF.")
    def pdf_url(self) -> str:
        return score_documents.certificate_url(self.model.id)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        node_ids = list(node_ids)
        viewer = await info.context.viewer()
        found = {}
        if viewer is not None and not viewer.must_change_password:
            found = {
                c.id: c
                for c in await models.ScoreCertificate.filter(
                    id__in=_ids(node_ids), account_id=viewer.id
                )
            }
        return [
            cls.from_model(found[int(i)]) if i.isdigit() and int(i) in found else None
            for i in node_ids
        ]


@strawberry.type(description="When a session's scores come out, and the periods after (R1).")
class ScoreRelease:
    session_code: str
    release_at: datetime | None = strawberry.field(
        description="Set by the national office; nothing of the session shows before it."
    )
    released: bool
    default_release_date: date | None = strawberry.field(
        description="The 60th working day after the exam: the default release date."
    )
    electronic_reports_from: datetime | None = strawberry.field(
        description="00:00 of the 10th working day after the release day (R5)."
    )
    verification_working_days: int
    verification_until: datetime | None = strawberry.field(
        description="Score checks are taken until this instant (R7)."
    )
    paper_request_working_days: int
    paper_request_until: datetime | None
    paper_collect_until: datetime | None = strawberry.field(
        description="Six months after release: uncollected paper reports are forfeited (R6)."
    )
    provisional: bool = strawberry.field(
        description="A date was counted through a year the working-day calendar lacks "
        "(Monday to Friday assumed) and may move once the year is entered."
    )

    @classmethod
    def of(
        cls, info: ReleaseInfo, default: work_calendar.CountedDay | None, now: datetime
    ) -> ScoreRelease:
        return cls(
            session_code=info.session_code,
            release_at=info.release_at,
            released=info.released(now),
            default_release_date=default.day if default else None,
            electronic_reports_from=info.electronic_from,
            verification_working_days=info.verification_working_days,
            verification_until=info.verification_until,
            paper_request_working_days=info.paper_request_working_days,
            paper_request_until=info.paper_request_until,
            paper_collect_until=info.paper_collect_until,
            provisional=info.provisional or bool(default and default.provisional),
        )


@strawberry.type(description="A day that is not what its weekday says.")
class CalendarDay:
    date: date
    workday: bool = strawberry.field(
        description="true: a weekend day worked in exchange (调休); false: a holiday."
    )
    name: str


@strawberry.type(description="A year of the working-day calendar.")
class WorkingCalendar:
    year: int
    known: bool = strawberry.field(
        description="false: nobody entered this year; Monday to Friday are assumed."
    )
    source: str | None = strawberry.field(description='"chinesecalendar" or "admin".')
    days: list[CalendarDay]

    @classmethod
    def of(cls, year: work_calendar.CalendarYear) -> WorkingCalendar:
        return cls(
            year=year.year,
            known=year.known,
            source=year.source,
            days=[CalendarDay(date=d.day, workday=d.workday, name=d.name) for d in year.days],
        )


@strawberry.type(description="One problem in a score file, where the office will look for it.")
class ScoreFileProblem:
    line: int = strawberry.field(description="Line as a spreadsheet shows it; 1 is the header.")
    column: str = strawberry.field(description="The column's header as written in the file.")
    code: UserErrorCode  # type: ignore[valid-type]
    message: str
    value: str | None = strawberry.field(description="The offending cell, shortened.")
    other_line: int | None = strawberry.field(description="For duplicates: the first line.")

    @classmethod
    def of(cls, problem: RowProblem, language: str) -> ScoreFileProblem:
        return cls(
            line=problem.line,
            column=problem.column,
            code=problem.code,
            message=problem.message(language),
            value=problem.value,
            other_line=problem.other_line,
        )


@strawberry.type(description="A requested paper report, as its test centre lists it.")
class PaperReportEntry:
    report_number: str
    name: str
    id_number_masked: str
    subject_name: str
    status: PaperReportStatus  # type: ignore[valid-type]
    requested_at: datetime
    collected_at: datetime | None


async def history(info: Info, account_id: int) -> list[Score]:
    """``Account.scores``: the owner's history (national admins see it too)."""
    viewer = await info.context.viewer()
    if viewer is None or viewer.must_change_password:
        return []
    if viewer.id == account_id:
        account = viewer
    else:
        from cetgql.services import access

        if not (await access.scope_of(viewer)).national:
            return []
        found = await models.Account.get_or_none(id=account_id)
        if found is None:
            return []
        account = found
    return [Score(id=view.record.id, view=view) for view in await scores.history(account)]
