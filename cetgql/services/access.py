"""Roles and scopes: who administers what. Every scope decision in the code base asks here."""

from __future__ import annotations

from dataclasses import dataclass, field

from cetgql.models import Account, IdType, Role, RoleGrant, School
from cetgql.services.errors import DomainError, ErrorCode


@dataclass(frozen=True)
class Scope:
    """What an account may administer; a candidate-only account has an empty scope."""

    roles: frozenset[Role]
    national: bool = False
    province_ids: frozenset[int] = field(default_factory=frozenset)
    school_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return self.national or bool(self.province_ids) or bool(self.school_ids)

    def covers_school(self, school: School) -> bool:
        return (
            self.national or school.id in self.school_ids or school.province_id in self.province_ids  # type: ignore[attr-defined]
        )

    def covers_province(self, province_id: int) -> bool:
        return self.national or province_id in self.province_ids


_CACHE_ATTRIBUTE = "_cetgql_scope"


async def scope_of(account: Account) -> Scope:
    """The account's scope, loaded once per account object (that is, once per request)."""
    cached = getattr(account, _CACHE_ATTRIBUTE, None)
    if cached is not None:
        return cached
    grants = await RoleGrant.filter(account_id=account.id).all()
    roles = {grant.role for grant in grants}
    if account.id_type != IdType.STAFF:
        roles.add(Role.CANDIDATE)
    scope = Scope(
        roles=frozenset(roles),
        national=any(g.role == Role.NATIONAL_ADMIN for g in grants),
        province_ids=frozenset(
            g.province_id  # type: ignore[attr-defined]
            for g in grants
            if g.role == Role.PROVINCE_ADMIN and g.province_id  # type: ignore[attr-defined]
        ),
        school_ids=frozenset(
            g.school_id  # type: ignore[attr-defined]
            for g in grants
            if g.role == Role.SCHOOL_ADMIN and g.school_id  # type: ignore[attr-defined]
        ),
    )
    setattr(account, _CACHE_ATTRIBUTE, scope)
    return scope


async def roles_of(account: Account) -> frozenset[Role]:
    return (await scope_of(account)).roles


async def require_school(account: Account, school: School) -> None:
    if not (await scope_of(account)).covers_school(school):
        raise DomainError.of(ErrorCode.OUT_OF_SCOPE)


async def require_national(account: Account) -> None:
    if not (await scope_of(account)).national:
        raise DomainError.of(ErrorCode.FORBIDDEN)
