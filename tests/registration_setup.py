"""Builds the world a registration test starts from: a session with its catalogue, a province
with a school, a window, fees, oral centres, and qualified candidates with bearer tokens.

Setting up goes straight to the models; the behaviour under test goes through GraphQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from itertools import count

from cetgql import models
from cetgql.models import IdType, SubjectKind
from cetgql.services import catalog, clock, identity, sessions

SESSION = "2026H1"
WRITTEN_FEE = 3000
ORAL_FEE = 5000
_serial = count(1)


def resident_id(serial: int, born: str = "20040101") -> str:
    first17 = f"440106{born}{serial % 1000:03d}"
    return first17 + identity.resident_id_check_char(first17)


@dataclass
class World:
    session: models.ExamSession
    province: models.Province
    school: models.School
    campus: models.Campus
    centers: list[models.OralCenter] = field(default_factory=list)


async def build_world(*, center_capacity: int = 20, centers: int = 2) -> World:
    session = await catalog.ensure_session(SESSION)
    province = await models.Province.create(code="44", name="广东省")
    school = await models.School.create(code="10558", name="中山大学", province=province)
    campus = await models.Campus.create(school=school, code="1", name="南校园")
    now = clock.now()
    for kind in (SubjectKind.WRITTEN, SubjectKind.ORAL):
        await models.RegistrationWindow.create(
            session=session,
            province=province,
            kind=kind,
            opens_at=now - timedelta(days=1),
            closes_at=now + timedelta(days=10),
        )
    for subject in await models.Subject.all():
        await models.Fee.create(
            session=session,
            province=province,
            subject=subject,
            amount_fen=ORAL_FEE if subject.kind == SubjectKind.ORAL else WRITTEN_FEE,
        )
    world = World(session=session, province=province, school=school, campus=campus)
    for n in range(centers):
        world.centers.append(
            await models.OralCenter.create(
                session=session,
                province=province,
                code=f"44{n + 1:04d}",
                name=f"广州口试考点{n + 1}",
                capacity=center_capacity,
            )
        )
    return world


@dataclass
class Candidate:
    account: models.Account
    token: str


async def qualified_candidate(
    world: World,
    *,
    subjects: tuple[str, ...] = ("CET4", "CET6", "CJT4", "CET-SET4", "CET-SET6"),
    confirmed: bool = True,
    name: str = "李雷",
) -> Candidate:
    serial = next(_serial)
    id_number = resident_id(serial)
    account = await models.Account.create(
        name=name,
        name_key=identity.name_key(name),
        id_type=IdType.RESIDENT_ID,
        id_number=id_number,
        password_hash="!unusable",
    )
    record = await models.RosterRecord.create(
        session=world.session,
        school=world.school,
        campus=world.campus,
        name=name,
        name_key=identity.name_key(name),
        id_type=IdType.RESIDENT_ID,
        id_number=id_number,
        eligible_subjects=list(subjects),
        updated_at=clock.now(),
    )
    await models.Qualification.create(
        account=account,
        session=world.session,
        roster_record=record,
        verified_at=clock.now(),
        confirmed_at=clock.now() if confirmed else None,
    )
    token = await sessions.open_session(account, client_address="127.0.0.1", user_agent="tests")
    return Candidate(account=account, token=token)


async def sign_in_again(candidate: Candidate) -> str:
    """A fresh token for a candidate whose session expired while the test moved the clock."""
    candidate.token = await sessions.open_session(
        candidate.account, client_address="127.0.0.1", user_agent="tests"
    )
    return candidate.token
