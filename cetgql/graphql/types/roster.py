"""``RosterRecord``: one student on a school's roster, as admins in scope see it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from cetgql import models
from cetgql.graphql.errors import UserErrorCode
from cetgql.graphql.types.accounts import IdType
from cetgql.graphql.types.exams import ExamSession, Subject
from cetgql.graphql.types.geography import Campus, School
from cetgql.graphql.types.qualification import Gender, gender_of, photo_url, session_subjects
from cetgql.services import identity, roster


@strawberry.type(description="A student on a school's roster (学籍) for one session.")
class RosterRecord(relay.Node):
    id: relay.NodeID[int]
    name: str
    id_type: IdType  # type: ignore[valid-type]
    id_number: str = strawberry.field(description="Shown in full: only admins reach a record.")
    student_number: str
    department: str
    major: str
    enrollment_year: int | None
    education_level: str
    eligible_subject_codes: list[str]
    restrictions: str
    updated_at: datetime
    matched: bool = strawberry.field(
        description="A candidate's account has passed the qualification check against it."
    )
    model: strawberry.Private[models.RosterRecord]

    @classmethod
    def from_model(cls, record: models.RosterRecord, *, matched: bool) -> RosterRecord:
        return cls(
            id=record.id,
            name=record.name,
            id_type=record.id_type,
            id_number=record.id_number,
            student_number=record.student_number,
            department=record.department,
            major=record.major,
            enrollment_year=record.enrollment_year,
            education_level=record.education_level,
            eligible_subject_codes=list(record.eligible_subjects or []),
            restrictions=record.restrictions,
            updated_at=record.updated_at,
            matched=matched,
            model=record,
        )

    @classmethod
    async def many(cls, records: list[models.RosterRecord]) -> list[RosterRecord]:
        """Types for a page of records, with ``matched`` found in one query."""
        ids = [r.id for r in records]
        matched = set(
            await models.Qualification.filter(roster_record_id__in=ids).values_list(
                "roster_record_id", flat=True
            )
        )
        return [cls.from_model(r, matched=r.id in matched) for r in records]

    @strawberry.field
    def id_number_masked(self) -> str:
        return identity.mask_id_number(self.model.id_number)

    @strawberry.field
    def session(self) -> ExamSession:
        return ExamSession.from_model(self.model.session)

    @strawberry.field
    def gender(self) -> Gender | None:
        return gender_of(self.model.gender)

    @strawberry.field
    def school(self) -> School:
        return School.from_model(self.model.school)

    @strawberry.field
    def campus(self) -> Campus:
        return Campus.from_model(self.model.campus)

    @strawberry.field
    async def eligible_subjects(self, info: Info) -> list[Subject]:
        return await session_subjects(
            info,
            self.model.session_id,  # type: ignore[attr-defined]
            self.eligible_subject_codes,
        )

    @strawberry.field(description="Signed URL of the photo, valid for 15 minutes.")
    def photo_url(self) -> str | None:
        return photo_url(self.model)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        viewer = await info.context.viewer()
        found: dict[str, models.RosterRecord] = {}
        if viewer is not None and not viewer.must_change_password:
            for node_id in node_ids:
                record = (
                    await roster.visible_record(viewer, int(node_id)) if node_id.isdigit() else None
                )
                if record is not None:
                    found[node_id] = record
        typed = {t.model.id: t for t in await cls.many(list(found.values()))}
        return [typed[found[i].id] if i in found else None for i in node_ids]


@strawberry.type
class RosterRecordEdge:
    cursor: str
    node: RosterRecord


@strawberry.type
class RosterRecordConnection:
    edges: list[RosterRecordEdge]
    page_info: relay.PageInfo

    @strawberry.field
    def nodes(self) -> list[RosterRecord]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="One problem in a roster file, where the school will look for it.")
class RosterProblem:
    line: int = strawberry.field(
        description="Line in the file as a spreadsheet shows it; 1 is the header."
    )
    column: str = strawberry.field(description="The column's header as written in the file.")
    code: UserErrorCode  # type: ignore[valid-type]
    message: str
