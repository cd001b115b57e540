"""Exam sessions and subjects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from cetgql import models
from cetgql.services import registration_setup

if TYPE_CHECKING:
    from cetgql.graphql.types.registration_setup import RegistrationWindow

SubjectKind = strawberry.enum(models.SubjectKind, name="SubjectKind")


@strawberry.type
class Subject:
    code: str
    name: str
    kind: SubjectKind  # type: ignore[valid-type]
    level: int
    slot: str

    @classmethod
    def from_offering(cls, offering: models.SessionSubject) -> Subject:
        subject = offering.subject
        return cls(
            code=subject.code,
            name=subject.name,
            kind=subject.kind,
            level=subject.level,
            slot=offering.slot,
        )


@strawberry.type
class ExamSession(relay.Node):
    id: relay.NodeID[int]
    code: str = strawberry.field(description='The half year, e.g. "2026H1".')
    name: str
    year: int
    half: int

    @classmethod
    def from_model(cls, session: models.ExamSession) -> ExamSession:
        return cls(
            id=session.id,
            code=session.code,
            name=session.name,
            year=session.year,
            half=session.half,
        )

    @strawberry.field(description="The subjects offered in this session and when they sit.")
    async def subjects(self) -> list[Subject]:
        offerings = (
            await models.SessionSubject.filter(session_id=self.id)
            .select_related("subject")
            .order_by("starts_at", "subject__code")
        )
        return [Subject.from_offering(o) for o in offerings]

    @strawberry.field(
        description="The registration window of this kind that governs the signed-in, "
        "qualified viewer (their school's own, else their province's); null otherwise."
    )
    async def registration_window(
        self,
        info: Info,
        kind: SubjectKind,  # type: ignore[valid-type]
    ) -> (
        Annotated[RegistrationWindow, strawberry.lazy("cetgql.graphql.types.registration_setup")]
        | None
    ):
        from cetgql.graphql.types.registration_setup import RegistrationWindow

        viewer = await info.context.viewer()
        if viewer is None or viewer.must_change_password:
            return None
        window = await registration_setup.window_for_candidate(
            viewer, self.id, models.SubjectKind(kind)
        )
        if window is None:
            return None
        await window.fetch_related("session", "province", "school")
        return RegistrationWindow.from_model(window)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        ids = [int(i) for i in node_ids if i.isdigit()]
        found = {s.id: s for s in await models.ExamSession.filter(id__in=ids)}
        return [
            cls.from_model(found[int(i)]) if i.isdigit() and int(i) in found else None
            for i in node_ids
        ]


@strawberry.type
class ExamSessionQueries:
    @relay.connection(relay.ListConnection[ExamSession])
    async def exam_sessions(self) -> list[ExamSession]:
        sessions = await models.ExamSession.all().order_by("-year", "-half")
        return [ExamSession.from_model(s) for s in sessions]

    @strawberry.field
    async def exam_session(self, code: str) -> ExamSession | None:
        session = await models.ExamSession.get_or_none(code=code[:8])
        return ExamSession.from_model(session) if session else None
