"""Schema extensions: caches that make repeated operations cheap, limits, error masking.

The limits, checked before any resolver runs (each refusal is a GraphQL request error):

- depth 12: a deep real query (a registration's order's payments' amounts) needs about 6
  levels; GraphiQL's introspection query is deeper but does not count (Strawberry's limiter
  skips introspection fields);
- 30 aliases: enough for a form that asks the same field with several arguments;
- 4000 tokens: the example operations have 9 to 63, GraphiQL's introspection query about 180;
- cost 10000 (``graphql/cost.py``): an upper bound of the fields resolved, at about 3 µs each.

Introspection is refused when ``CETGQL_INTROSPECTION`` is off. The setting is read per request
(the factory below), so the same schema object serves both; Strawberry's validation cache keys
its entries by the validation rules, so a cached "valid" never outlives the switch.
"""

from __future__ import annotations

import contextlib
import logging
import sysconfig
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import strawberry.relay
from graphql import (
    ASTValidationRule,
    GraphQLError,
    OperationDefinitionNode,
    StringValueNode,
    ValidationRule,
)
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext, validate_document

from cetgql.graphql.cost import QueryCostLimiter
from cetgql.observability import current_request_id
from cetgql.settings import get_settings

logger = logging.getLogger("cetgql.graphql")

MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 4000
MASKED_MESSAGE = "Unexpected error."


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


_STDLIB = sysconfig.get_paths()["stdlib"]
_RELAY = str(Path(strawberry.relay.__file__).parent)


def _is_pagination_error(error: GraphQLError) -> bool:
    """A ValueError of Strawberry's relay code: a negative or too large ``first``/``last``, a
    cursor that does not decode. These are the client's input, not our fault, though they
    arrive as plain ValueErrors; they are told apart by where they were raised (the deepest
    frame outside the standard library, which the cursor's base64 decoding runs in)."""
    original = error.original_error
    if not isinstance(original, ValueError):
        return False
    deepest = None
    trace = original.__traceback__
    while trace is not None:
        filename = trace.tb_frame.f_code.co_filename
        if not filename.startswith(_STDLIB):
            deepest = filename
        trace = trace.tb_next
    return deepest is not None and deepest.startswith(_RELAY)


class MaskUnexpectedErrors(MaskErrors):
    """Strawberry's masking, plus a code and the request id, so the client can quote the id
    and an operator finds the logged traceback (every log line carries the same id).
    Pagination mistakes are the client's and get the code ``BAD_USER_INPUT`` instead."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = []
        for error in errors:
            if _is_pagination_error(error):
                processed.append(
                    GraphQLError(
                        f"Invalid pagination argument: {error.original_error}",
                        nodes=error.nodes,
                        path=error.path,
                        extensions={"code": "BAD_USER_INPUT"},
                    )
                )
            elif self.should_mask_error(error):
                processed.append(self.anonymise_error(error))
            else:
                processed.append(error)
        return processed

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        extensions: dict[str, Any] = {"code": "INTERNAL_SERVER_ERROR"}
        request_id = current_request_id()
        if request_id:
            extensions["requestId"] = request_id
        return GraphQLError(
            message=self.error_message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions=extensions,
        )


class OperationSelection(SchemaExtension):
    """Which operation of the document runs, as the GraphQL specification says: the one named
    by ``operationName``, or the only one. Strawberry would run the first of several unnamed
    ones; an ambiguous request is a request error here. Also notes the operation's type on
    the request context for the HTTP view's metrics."""

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        if document is not None and execution._provided_operation_name is None:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if len(operations) > 1:
                execution.pre_execution_errors = [
                    *(execution.pre_execution_errors or []),
                    GraphQLError(
                        "The document has several operations: say which one to run with "
                        "`operationName`.",
                        extensions={"code": "OPERATION_NAME_REQUIRED"},
                    ),
                ]
        context = execution.context
        if hasattr(context, "operation_type"):
            # RuntimeError: no such operation; a request error follows.
            with contextlib.suppress(RuntimeError):
                context.operation_type = execution.operation_type.value
        yield


class TrackedExecutor(StrawberryGraphQLCoreExecutionContext):
    """Records on the request context that execution has begun: graphql-core builds the
    executor only after the variables coerced, so an error without it is a request error
    (400 under ``application/graphql-response+json``), one with it a field error (200)."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        built = super().build(*args, **kwargs)
        if not isinstance(built, list):
            context = built.context_value
            if hasattr(context, "executing"):
                context.executing = True
        return built


# The limits' validation rules, made once. Strawberry's QueryDepthLimiter and MaxAliasesLimiter
# build a new rule class per instance, and the validation cache is keyed by the rule classes:
# with a fresh limiter per request no request ever hit the cache and every one was validated
# from scratch (a third of the time of a small query). The rules hold no per-request state.
_LIMIT_RULES = (
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
)


class NoNulCharacters(ValidationRule):
    """Refuses string literals with NUL characters (``"\\u0000"``): no field of this service
    takes one and PostgreSQL cannot store or even compare one, so it would end as an
    unexpected database error. Variables are checked by the HTTP view (graphql/http.py)."""

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if "\x00" in node.value:
            self.report_error(
                GraphQLError(
                    "Strings may not contain NUL characters (\\u0000).",
                    node,
                    extensions={"code": "BAD_USER_INPUT"},
                )
            )


def _validation_rules() -> SchemaExtension:
    """Every rule of ours in one extension: each extension costs its hooks on every request."""
    rules: list[type[ASTValidationRule]] = [NoNulCharacters, *_LIMIT_RULES]
    if not get_settings().introspection:
        rules.extend(DisableIntrospection().validation_rules)
    return AddValidationRules(rules)


_ValidationKey = tuple[int, str, tuple[type[ASTValidationRule], ...]]
_VALIDATED: OrderedDict[_ValidationKey, list[GraphQLError]] = OrderedDict()
_VALIDATED_KEPT = 512


class TextValidationCache(SchemaExtension):
    """Strawberry's ValidationCache, keyed by the query text instead of the parsed document.

    graphql-core's AST nodes are frozen dataclasses whose hash walks the whole tree, uncached,
    so a cache keyed by the document hashed every node of it on every request (about a tenth
    of a small query's time). The text says the same: the document is parsed from it."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if context.query is not None and document is not None:
            schema = context.schema._schema
            key = (id(schema), context.query, context.validation_rules)
            errors = _VALIDATED.get(key)
            if errors is None:
                errors = _VALIDATED[key] = validate_document(
                    schema, document, context.validation_rules
                )
                if len(_VALIDATED) > _VALIDATED_KEPT:
                    _VALIDATED.popitem(last=False)
            else:
                _VALIDATED.move_to_end(key)
            context.pre_execution_errors = errors
        yield


def default_extensions() -> list[Callable[[], SchemaExtension]]:
    """Factories, so each request gets fresh extension state (the parse and validation caches
    are process-wide inside Strawberry, keyed by their size)."""
    return [
        _validation_rules,
        lambda: ParserCache(maxsize=512),
        TextValidationCache,
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        OperationSelection,
        QueryCostLimiter,
        lambda: MaskUnexpectedErrors(should_mask_error=_should_mask, error_message=MASKED_MESSAGE),
    ]
