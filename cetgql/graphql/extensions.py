"""Schema extensions: caches that make repeated operations cheap, limits, error masking."""

from __future__ import annotations

import logging
from collections.abc import Callable

from graphql import GraphQLError
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

logger = logging.getLogger("cetgql.graphql")

MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 4000


def _should_mask(error: GraphQLError) -> bool:
    """Mask what the client cannot act on: anything that is not a GraphQL or permission error."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return False
    if type(original).__name__ in {"PermissionDenied", "GlobalIDValueError"}:
        return False
    if isinstance(original, ValueError) and type(original).__module__.startswith("strawberry"):
        return False
    logger.error("unexpected error in %s", error.path, exc_info=original)
    return True


def default_extensions() -> list[Callable[[], SchemaExtension]]:
    """Factories, so each request gets fresh extension state (the parse and validation caches
    are process-wide inside Strawberry, keyed by their size)."""
    return [
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: MaskErrors(should_mask_error=_should_mask, error_message="Unexpected error."),
    ]
