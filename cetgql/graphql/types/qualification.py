"""``Qualification``: a candidate's roster match for a session, with the data they confirm (Q2).

Only the candidate and national admins reach it (like the account it belongs to). The enrolment
data is read from the roster record as it is now, so a school's correction shows at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from cetgql import models
from cetgql.graphql.types.accounts import IdType, can_see_account
from cetgql.graphql.types.exams import ExamSession, Subject
from cetgql.graphql.types.geography import Campus, School
from cetgql.services import identity, qualification, roster, signed_urls


@strawberry.enum(description="As the roster records it.")
class Gender(Enum):
    MALE = "M"
    FEMALE = "F"


def gender_of(value: str) -> Gender | None:
    return {"M": Gender.MALE, "F": Gender.FEMALE}.get(value)


_OFFERINGS_CACHE = "_cetgql_session_offerings"


async def session_subjects(info: Info, session_id: int, codes: list[str]) -> list[Subject]:
    """The subjects among ``codes`` with their slot in the session, in timetable order.

    The session's offerings are loaded once per request, however many records ask.
    """
    cache: dict[int, list[models.SessionSubject]] = info.context.__dict__.setdefault(
        _OFFERINGS_CACHE, {}
    )
    if session_id not in cache:
        cache[session_id] = list(
            await models.SessionSubject.filter(session_id=session_id)
            .select_related("subject")
            .order_by("starts_at", "subject__code")
        )
    wanted = set(codes)
    return [Subject.from_offering(o) for o in cache[session_id] if o.subject.code in wanted]


def photo_url(record: models.RosterRecord) -> str | None:
    """A signed, short-lived URL: ``<img>`` tags cannot send our bearer token."""
    if not record.photo_digest:
        return None
    return signed_urls.sign(roster.photo_path(record.id))


@strawberry.type(
    description="The candidate's roster match for a session (Q1), confirmed or not (Q2). "
    "Personal, enrolment and eligible-subject data come from the school's roster as it is "
    "now; wrong data is corrected by the school."
)
class Qualification(relay.Node):
    id: relay.NodeID[int]
    confirmed: bool = strawberry.field(description="The candidate confirmed the data (Q2).")
    verified_at: datetime
    confirmed_at: datetime | None
    model: strawberry.Private[models.Qualification]
    record: strawberry.Private[models.RosterRecord]

    @classmethod
    def from_model(cls, match: models.Qualification) -> Qualification:
        return cls(
            id=match.id,
            confirmed=match.confirmed_at is not None,
            verified_at=match.verified_at,
            confirmed_at=match.confirmed_at,
            model=match,
            record=match.roster_record,
        )

    @strawberry.field
    def session(self) -> ExamSession:
        return ExamSession.from_model(self.model.session)

    @strawberry.field
    def name(self) -> str:
        return self.record.name

    @strawberry.field
    def id_type(self) -> IdType:  # type: ignore[valid-type]
        return self.record.id_type

    @strawberry.field
    def id_number_masked(self) -> str:
        return identity.mask_id_number(self.record.id_number)

    @strawberry.field
    def gender(self) -> Gender | None:
        return gender_of(self.record.gender)

    @strawberry.field
    def school(self) -> School:
        return School.from_model(self.record.school)

    @strawberry.field
    def campus(self) -> Campus:
        return Campus.from_model(self.record.campus)

    @strawberry.field
    def department(self) -> str:
        return self.record.department

    @strawberry.field
    def major(self) -> str:
        return self.record.major

    @strawberry.field
    def student_number(self) -> str:
        return self.record.student_number

    @strawberry.field
    def enrollment_year(self) -> int | None:
        return self.record.enrollment_year

    @strawberry.field(description="本科, 专科, 研究生 ... as the school wrote it.")
    def education_level(self) -> str:
        return self.record.education_level

    @strawberry.field(description="Signed URL of the roster photo, valid for 15 minutes.")
    def photo_url(self) -> str | None:
        return photo_url(self.record)

    @strawberry.field(description="The subjects the school allows this candidate (S1, S4).")
    async def eligible_subjects(self, info: Info) -> list[Subject]:
        return await session_subjects(
            info,
            self.model.session_id,  # type: ignore[attr-defined]
            list(self.record.eligible_subjects or []),
        )

    @strawberry.field(description="The school's notes on what this candidate may not take.")
    def restrictions(self) -> str:
        return self.record.restrictions

    @strawberry.field(description="When the school last changed the roster record.")
    def roster_updated_at(self) -> datetime:
        return self.record.updated_at

    @strawberry.field(
        description="The school corrected the record after the candidate confirmed it; the "
        "confirmation stands and the data shown is the corrected one."
    )
    def changed_since_confirmation(self) -> bool:
        return qualification.roster_updated_after_confirmation(
            self.model.confirmed_at, self.record.updated_at
        )

    @classmethod
    async def for_account(
        cls, info: Info, account_id: int, session_code: str
    ) -> Qualification | None:
        if not await can_see_account(info, account_id):
            return None
        match = await qualification.find(account_id, session_code)
        return cls.from_model(match) if match else None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        result: list[Any] = []
        for node_id in node_ids:
            match = await qualification.get(int(node_id)) if node_id.isdigit() else None
            visible = match is not None and await can_see_account(
                info,
                match.account_id,  # type: ignore[attr-defined]
            )
            result.append(cls.from_model(match) if match and visible else None)
        return result
