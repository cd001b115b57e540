"""Strawberry permission classes: who may reach a field at all. Finer scope checks
(which school, which province) are made by the services with the viewer passed in."""

from __future__ import annotations

from typing import Any

from strawberry.exceptions import StrawberryGraphQLError
from strawberry.permission import BasePermission
from strawberry.types import Info

from cetgql.models import Role
from cetgql.services import access


def _password_change_required() -> StrawberryGraphQLError:
    return StrawberryGraphQLError(
        "The initial password must be changed first (changePassword).",
        extensions={"code": "PASSWORD_CHANGE_REQUIRED"},
    )


def _unauthenticated() -> StrawberryGraphQLError:
    return StrawberryGraphQLError(
        IsAuthenticated.message, extensions=dict(IsAuthenticated.error_extensions)
    )


class IsAuthenticated(BasePermission):
    """Signed in, and not holding an initial password that must be changed first (S11).

    Strawberry makes one instance of a permission class per field and shares it between
    requests, so a check never changes its own ``message``: the other reason is raised as its
    own error instead (changing the instance made every later anonymous caller of the field
    hear PASSWORD_CHANGE_REQUIRED)."""

    message = "Authentication required: send 'Authorization: Bearer <token>' from signIn."
    error_extensions = {"code": "UNAUTHENTICATED"}  # noqa: RUF012

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = await info.context.viewer()
        if viewer is None:
            return False
        if viewer.must_change_password:
            raise _password_change_required()
        return True


class IsSignedIn(BasePermission):
    """Signed in, even with a password still to change: for changePassword and signOut."""

    message = IsAuthenticated.message
    error_extensions = {"code": "UNAUTHENTICATED"}  # noqa: RUF012

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return await info.context.viewer() is not None


def _has_any_role(roles: tuple[Role, ...]) -> type[BasePermission]:
    class HasRole(BasePermission):
        message = "Permission denied: this needs the role " + " or ".join(r.value for r in roles)
        error_extensions = {"code": "FORBIDDEN"}  # noqa: RUF012

        async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
            viewer = await info.context.viewer()
            if viewer is None:  # not signed in: say so, rather than FORBIDDEN
                raise _unauthenticated()
            if viewer.must_change_password:
                raise _password_change_required()
            held = await access.roles_of(viewer)
            return any(role in held for role in roles)

    return HasRole


IsSchoolAdmin = _has_any_role((Role.SCHOOL_ADMIN, Role.PROVINCE_ADMIN, Role.NATIONAL_ADMIN))
IsProvinceAdmin = _has_any_role((Role.PROVINCE_ADMIN, Role.NATIONAL_ADMIN))
IsNationalAdmin = _has_any_role((Role.NATIONAL_ADMIN,))
IsAnyAdmin = IsSchoolAdmin
