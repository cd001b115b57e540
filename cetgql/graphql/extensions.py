"""Schema extensions: caches that make repeated operations cheap, limits, error masking.

The limits, checked before any resolver runs (each refusal is a GraphQL request error):

- depth 12: a deep real query (a registration's order's payments' amounts) needs about 6
  levels; GraphiQL's introspection query is deeper but does not count (Strawberry's limiter
  skips introspection fields);
- 30 aliases: enough for a form that asks the same field with several arguments;
- 4000 tokens: the example operations have 9 to 63, GraphiQL's introspection query about 180;
- cost 10000 (``graphql/cost.py``): an upper bound of the fields resolved, at about 3 µs each.

Introspection is refused when ``CETGQL_INTROSPECTION`` is off. The setting is read per request,
so the same schema object serves both; the validation cache keys its entries by the validation
rules too, so a cached "valid" never outlives the switch.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import strawberry.relay
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    StringValueNode,
    ValidationRule,
    parse,
)
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext, validate_document

from cetgql.graphql.cost import QueryCostLimiter
from cetgql.graphql.recent import RecentlyUsed
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

    def _process_result(self, result: object) -> None:
        # Strawberry's checks the result against a runtime Protocol first, an isinstance that
        # costs more than the rest of the extension; most results have no errors at all.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

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


_RULES: tuple[type[ASTValidationRule], ...] = (NoNulCharacters, *_LIMIT_RULES)
_RULES_WITHOUT_INTROSPECTION = (*_RULES, NoSchemaIntrospectionCustomRule)


@functools.lru_cache(maxsize=512)
def _parse(query: str) -> DocumentNode:
    """Parsed once per text; a text over the token limit is refused while it is parsed."""
    return parse(query, max_tokens=MAX_TOKENS)


_ValidationKey = tuple[int, str, tuple[type[ASTValidationRule], ...]]
_VALIDATED: RecentlyUsed[_ValidationKey, list[GraphQLError]] = RecentlyUsed(512)


def _validated(
    schema: GraphQLSchema,
    query: str,
    document: DocumentNode,
    rules: tuple[type[ASTValidationRule], ...],
) -> list[GraphQLError]:
    """The validation errors of ``document``, worked out once per text and set of rules.

    Keyed by the text, not the document (Strawberry's ValidationCache keys by the document):
    graphql-core's AST nodes are frozen dataclasses whose hash walks the whole tree, uncached,
    so a lookup by document hashed every node of the query on every request."""
    return _VALIDATED.get_or_make(
        (id(schema), query, rules), lambda: validate_document(schema, document, rules)
    )


class PreparedDocuments(SchemaExtension):
    """Everything done to a document before it runs, done once per query text: parsing with
    the token limit, validation with our rules (NUL characters, depth, aliases, introspection
    when it is off), and the choice of the operation.

    One extension rather than one per concern (Strawberry's ParserCache, ValidationCache,
    MaxTokensLimiter, AddValidationRules): every extension costs its hooks on every request,
    about as much as a cached parse and validation together.

    The operation that runs is the one named by ``operationName``, or the only one, as the
    GraphQL specification says; Strawberry would run the first of several unnamed ones, so an
    ambiguous request is a request error here. The operation's type goes on the request
    context for the HTTP view's metrics."""

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        rules = _RULES if get_settings().introspection else _RULES_WITHOUT_INTROSPECTION
        execution.validation_rules = execution.validation_rules + rules
        execution.parse_options["max_tokens"] = MAX_TOKENS
        if execution.graphql_document is None and execution.query:
            execution.graphql_document = _parse(execution.query)
        yield

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        if document is None:
            yield
            return
        errors = (
            _validated(
                execution.schema._schema, execution.query, document, execution.validation_rules
            )
            if execution.query
            else None
        )
        if execution._provided_operation_name is None:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if len(operations) > 1:
                if errors is None:
                    errors = validate_document(
                        execution.schema._schema, document, execution.validation_rules
                    )
                errors = [
                    *errors,
                    GraphQLError(
                        "The document has several operations: say which one to run with "
                        "`operationName`.",
                        extensions={"code": "OPERATION_NAME_REQUIRED"},
                    ),
                ]
        if errors is not None:
            execution.pre_execution_errors = errors
        context = execution.context
        if hasattr(context, "operation_type"):
            # RuntimeError: no such operation; a request error follows.
            with contextlib.suppress(RuntimeError):
                context.operation_type = execution.operation_type.value
        yield


def default_extensions() -> list[Callable[[], SchemaExtension]]:
    """Factories, so each request gets fresh extension state (the parse and validation caches
    are process-wide, keyed by the query text)."""
    return [
        PreparedDocuments,
        QueryCostLimiter,
        lambda: MaskUnexpectedErrors(should_mask_error=_should_mask, error_message=MASKED_MESSAGE),
    ]
