"""Oral test centres of a province and their seats (S3)."""

from __future__ import annotations

from tortoise.expressions import Q

from cetgql.models import Account, OralCenter, Province, Qualification
from cetgql.services import eligibility


async def province_of_candidate(account: Account, session_id: int) -> Province | None:
    qualification = (
        await Qualification.filter(account_id=account.id, session_id=session_id)
        .select_related("roster_record__school__province")
        .first()
    )
    return qualification.roster_record.school.province if qualification else None


async def list_for_subject(
    session_code: str,
    subject_code: str,
    *,
    province: str | None = None,
    viewer: Account | None = None,
) -> list[OralCenter]:
    """Centres examining the subject, in the given province (code or name), else in the
    viewer's own province when known, else everywhere."""
    session = await eligibility.session_by_code(session_code)
    query = OralCenter.filter(session_id=session.id).select_related("province")
    if province:
        wanted = province.strip()[:32]
        query = query.filter(Q(province__code=wanted) | Q(province__name=wanted))
    elif viewer is not None:
        own = await province_of_candidate(viewer, session.id)
        if own is not None:
            query = query.filter(province_id=own.id)
    code = subject_code.strip().upper()
    return [
        c for c in await query.order_by("code") if not c.subject_codes or code in c.subject_codes
    ]
