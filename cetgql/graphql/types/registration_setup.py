"""What registration is set up with: sittings of a session, registration windows and fees."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from cetgql import models
from cetgql.graphql.scalars import Money
from cetgql.graphql.types.exams import Subject, SubjectKind
from cetgql.graphql.types.geography import School
from cetgql.services import clock, registration_setup


@strawberry.type(description="A subject offered in a session (开考科目) and when it sits.")
class SessionSubject:
    subject: Subject
    starts_at: datetime
    ends_at: datetime
    slot: str = strawberry.field(
        description="Subjects with the same slot sit at the same time: only one can be taken."
    )

    @classmethod
    def from_model(cls, offering: models.SessionSubject) -> SessionSubject:
        return cls(
            subject=Subject.from_offering(offering),
            starts_at=offering.starts_at,
            ends_at=offering.ends_at,
            slot=offering.slot,
        )


@strawberry.type(
    description="When candidates may register (报名时间, S6): a province's window, or a "
    "school's own written window, which wins over the province's for its students."
)
class RegistrationWindow(relay.Node):
    id: relay.NodeID[int]
    kind: SubjectKind  # type: ignore[valid-type]
    opens_at: datetime
    closes_at: datetime
    session_code: str
    province_code: str
    school: School | None = strawberry.field(
        description="The school whose own window this is; null for the province's window."
    )

    @classmethod
    def from_model(cls, window: models.RegistrationWindow) -> RegistrationWindow:
        """``window`` with its session, province and school loaded."""
        return cls(
            id=window.id,
            kind=window.kind,
            opens_at=window.opens_at,
            closes_at=window.closes_at,
            session_code=window.session.code,
            province_code=window.province.code,
            school=School.from_model(window.school) if window.school else None,
        )

    @strawberry.field(description="Whether the window is open now.")
    def is_open(self) -> bool:
        return self.opens_at <= clock.now() < self.closes_at

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        node_ids = list(node_ids)
        viewer = await info.context.viewer()
        found: dict[int, models.RegistrationWindow] = {}
        if viewer is not None and not viewer.must_change_password:
            windows = await models.RegistrationWindow.filter(
                id__in=[int(i) for i in node_ids if i.isdigit()]
            ).select_related("session", "province", "school")
            found = {w.id: w for w in await registration_setup.visible_windows(viewer, windows)}
        return [
            cls.from_model(found[int(i)]) if i.isdigit() and int(i) in found else None
            for i in node_ids
        ]


@strawberry.type(description="The fee of a subject in a province (P5).")
class ProvinceFee:
    subject: Subject
    fee: Money


async def province_fees(fees: list[models.Fee], session_id: int) -> list[ProvinceFee]:
    """``fees`` (with their subjects) of one session, as GraphQL objects."""
    offerings = {
        o.subject_id: o  # type: ignore[attr-defined]
        for o in await models.SessionSubject.filter(session_id=session_id).select_related("subject")
    }
    return [
        ProvinceFee(
            subject=Subject.from_offering(offerings[f.subject_id]),  # type: ignore[attr-defined]
            fee=Money(fen=f.amount_fen),
        )
        for f in fees
        if f.subject_id in offerings  # type: ignore[attr-defined]
    ]
