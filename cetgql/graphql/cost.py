"""Query cost: an upper bound of the fields an operation can resolve, checked before it runs.

Depth, alias and token limits bound the *text* of a query, not its work: ``examSessions(first:
100) { edges { node { subjects { ... } } } }`` is short and shallow but resolves thousands of
fields, and graphql-core spends about 3 µs on each (DESIGN.md §6). The cost counts what the
resolvers may have to do:

- every field costs 1 (``__typename`` costs nothing: no resolver runs);
- a connection multiplies the cost of what is selected under it by its page size, ``first`` or
  ``last`` (a literal, a variable, or the variable's default), and by the largest page
  (``relay_max_results``, 100) when neither is given, since that is what it may return;
- ``edges``/``nodes`` of a connection are not multiplied again;
- any other list multiplies by :data:`DEFAULT_LIST_SIZE`;
- fragments on different types of an abstract field count the most expensive one, since an
  object has one type; fragments on the field's own type add up;
- introspection (``__schema``, ``__type``) costs 1: it is bounded by the schema's size, is
  what GraphiQL and code generators need, and is switched off in production
  (``CETGQL_INTROSPECTION=0``).

An operation over :data:`MAX_COST` is refused before any resolver runs, with the code
``QUERY_TOO_COSTLY``; every response carries ``extensions.cost`` so clients can see what
their queries cost.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    Visitor,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    visit,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension

from cetgql.graphql.recent import RecentlyUsed

MAX_COST = 10_000
CONNECTION_DEFAULT_SIZE = 100  # StrawberryConfig(relay_max_results=100) in schema.py
DEFAULT_LIST_SIZE = 10
_INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})
_PAGE_ARGUMENTS = ("first", "last")


def _is_connection(named: GraphQLNamedType) -> bool:
    return (
        isinstance(named, GraphQLObjectType)
        and named.name.endswith("Connection")
        and "edges" in named.fields
        and "pageInfo" in named.fields
    )


class _Costing:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.variables = dict(variables)
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name not in self.variables and isinstance(definition.default_value, IntValueNode):
                self.variables[name] = int(definition.default_value.value)

    def _page_size(self, node: FieldNode) -> int | None:
        sizes: list[int] = []
        for argument in node.arguments or ():
            if argument.name.value not in _PAGE_ARGUMENTS:
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                sizes.append(int(value.value))
            elif isinstance(value, VariableNode):
                given = self.variables.get(value.name.value)
                if isinstance(given, int) and not isinstance(given, bool):
                    sizes.append(given)
        return max(0, max(sizes)) if sizes else None

    def _multiplier(self, parent: GraphQLNamedType, node: FieldNode, field_type: Any) -> int:
        named = get_named_type(field_type)
        if _is_connection(parent) and node.name.value in ("edges", "nodes"):
            return 1
        is_list = isinstance(get_nullable_type(field_type), GraphQLList)
        if not (is_list or _is_connection(named)):
            return 1
        explicit = self._page_size(node)
        if explicit is not None:
            return explicit
        return CONNECTION_DEFAULT_SIZE if _is_connection(named) else DEFAULT_LIST_SIZE

    def _type_of_fragment(self, name: str | None, parent: GraphQLNamedType) -> GraphQLNamedType:
        found = self.schema.get_type(name) if name else None
        return found if found is not None else parent

    def _selections(
        self, parent: GraphQLNamedType, selection_set: SelectionSetNode, seen: frozenset[str]
    ) -> Iterator[tuple[str | None, int]]:
        """(type condition or None for the parent's own type, cost) of each selection."""
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield None, self.field(parent, selection, seen)
            elif isinstance(selection, InlineFragmentNode):
                condition = (
                    selection.type_condition.name.value if selection.type_condition else None
                )
                target = self._type_of_fragment(condition, parent)
                key = None if target is parent else target.name
                yield key, self.selection_set(target, selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:  # validation refuses both; stay finite
                    continue
                target = self._type_of_fragment(fragment.type_condition.name.value, parent)
                key = None if target is parent else target.name
                yield key, self.selection_set(target, fragment.selection_set, seen | {name})

    def selection_set(
        self, parent: GraphQLNamedType, selection_set: SelectionSetNode, seen: frozenset[str]
    ) -> int:
        own = 0
        by_type: dict[str, int] = {}
        for key, cost in self._selections(parent, selection_set, seen):
            if key is None:
                own += cost
            else:
                by_type[key] = by_type.get(key, 0) + cost
        return own + max(by_type.values(), default=0)

    def field(self, parent: GraphQLNamedType, node: FieldNode, seen: frozenset[str]) -> int:
        name = node.name.value
        if name == "__typename":
            return 0
        if name in _INTROSPECTION_ROOTS:
            return 1
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 1
        definition = parent.fields.get(name)
        if definition is None:
            return 1
        children = 0
        if node.selection_set is not None:
            children = self.selection_set(get_named_type(definition.type), node.selection_set, seen)
        return 1 + self._multiplier(parent, node, definition.type) * children


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
) -> int:
    """The cost of the operation ``operation_name`` of a validated document (see the module)."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    costing = _Costing(schema, document, operation, variables or {})
    return costing.selection_set(root, operation.selection_set, frozenset())


def _page_variables(document: DocumentNode) -> tuple[str, ...]:
    """The variables a cost can depend on: those given as ``first``/``last``."""
    names: set[str] = set()

    class Collect(Visitor):
        def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
            if node.name.value in _PAGE_ARGUMENTS and isinstance(node.value, VariableNode):
                names.add(node.value.name.value)

    visit(document, Collect())
    return tuple(sorted(names))


@dataclass
class _Known:
    names: tuple[str, ...]  # the page-size variables of the document
    costs: dict[tuple[Any, ...], int] = field(default_factory=dict)


# Costs already worked out, per query text and operation: a partner's handful of operations is
# costed once per page size, not on every request. Keyed by the text, not the parsed document:
# graphql-core's AST nodes hash their whole subtree, so a lookup by document walked the tree
# on every request, about what computing the cost itself takes.
_COSTS: RecentlyUsed[tuple[int, str, str | None], _Known] = RecentlyUsed(512)
_COSTS_PER_DOCUMENT = 64


def cached_operation_cost(
    schema: GraphQLSchema,
    query: str,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> int:
    """:func:`operation_cost` of ``document`` (parsed from ``query``), remembered per query
    text, operation and page-size variables."""
    known = _COSTS.get_or_make(
        (id(schema), query, operation_name), lambda: _Known(_page_variables(document))
    )
    given = variables or {}
    page = tuple(repr(given.get(n)) for n in known.names)
    cost = known.costs.get(page)
    if cost is None:
        cost = operation_cost(schema, document, operation_name, given)
        if len(known.costs) < _COSTS_PER_DOCUMENT:
            known.costs[page] = cost
    return cost


class QueryCostLimiter(SchemaExtension):
    """Computes the cost after validation and refuses a too costly operation before it runs;
    reports ``{"requested": n, "maximum": MAX_COST}`` as ``extensions.cost``."""

    def __init__(self, maximum: int = MAX_COST) -> None:
        self.maximum = maximum
        self.cost: int | None = None

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and not context.result:
            self.cost = (
                cached_operation_cost(
                    context.schema._schema,
                    context.query,
                    document,
                    context.operation_name,
                    context.variables,
                )
                if context.query is not None
                else operation_cost(
                    context.schema._schema, document, context.operation_name, context.variables
                )
            )
            if self.cost > self.maximum:
                # Setting the result makes Strawberry skip execution.
                context.result = GraphQLExecutionResult(
                    data=None,
                    errors=[
                        GraphQLError(
                            f"The query costs {self.cost}, more than the maximum of "
                            f"{self.maximum}: ask for smaller pages (first/last) or fewer "
                            "fields.",
                            extensions={
                                "code": "QUERY_TOO_COSTLY",
                                "cost": self.cost,
                                "maximumCost": self.maximum,
                            },
                        )
                    ],
                )
        yield

    def get_results(self) -> dict[str, Any]:
        if self.cost is None:
            return {}
        return {"cost": {"requested": self.cost, "maximum": self.maximum}}
