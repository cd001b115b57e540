"""``UserError`` and the ``UserErrorCode`` enum, made from the services' coded errors."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import strawberry
from strawberry.types import Info

from cetgql.services.errors import DomainError, ErrorCode, message_for

UserErrorCode = strawberry.enum(
    ErrorCode, name="UserErrorCode", description="Stable codes of business failures."
)

T = TypeVar("T")


@strawberry.type(description="A business failure: a stable code, the input path, a message.")
class UserError:
    """``field`` is the path of the offending field inside the mutation's ``input`` object,
    in the schema's camelCase names and without the ``input`` prefix: ``["idNumber"]``,
    ``["newPassword"]``, and for a list item ``["items", "2", "subjectCode"]``. It is null when
    the failure concerns the request as a whole (wrong credentials, a lock, a rate limit)."""

    field: list[str] | None
    code: UserErrorCode  # type: ignore[valid-type]
    message: str
    retry_after: int | None = strawberry.field(
        default=None, description="Seconds to wait before trying again, for throttled codes."
    )


def user_errors(error: DomainError, language: str) -> list[UserError]:
    result = []
    for problem in error.problems:
        message = message_for(problem.code, language)
        if problem.detail:
            message = f"{message} {problem.detail}"
        result.append(
            UserError(
                field=list(problem.field) if problem.field else None,
                code=problem.code,
                message=message,
                retry_after=problem.retry_after,
            )
        )
    return result


async def attempt(info: Info, call: Awaitable[T]) -> tuple[T | None, list[UserError]]:
    """Await a service call; a :class:`DomainError` becomes ``userErrors`` in the payload."""
    try:
        return await call, []
    except DomainError as error:
        return None, user_errors(error, info.context.language)
