"""A schema-driven fuzzer against the running service: hypothesis-graphql writes queries and
mutations from our own schema, valid ones and ones with one violation each, and they are sent
to a live server over HTTP as an anonymous caller, a candidate and a national admin (who may
reach every mutation). No answer may be a 5xx, every answer is a GraphQL JSON body with
``data`` or ``errors``, and no valid operation may end in a masked unexpected error: bad input
is a coded error, never a crash."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema

from cetgql.graphql.schema import schema
from cetgql.models import Role
from cetgql.services import accounts, sessions
from tests.registration_setup import build_world, qualified_candidate

EXAMPLES = 120  # per mode: about 20 s in all on this machine

SCALARS = {
    "DateTime": st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
    ).map(lambda moment: graphql.StringValueNode(value=moment.isoformat())),
    "Date": st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 1, 1)).map(
        lambda day: graphql.StringValueNode(value=day.isoformat())
    ),
    # Files cannot travel in a JSON body; multipart uploads are tested with the roster import.
    "Upload": st.just(graphql.NullValueNode()),
}


def _needs_a_file(gql_type: Any, seen: frozenset[str] = frozenset()) -> bool:
    """Whether a value of this type must hold a file somewhere (a non-null Upload)."""
    if isinstance(gql_type, graphql.GraphQLNonNull):
        inner = gql_type.of_type
        if isinstance(inner, graphql.GraphQLScalarType) and inner.name == "Upload":
            return True
        return _needs_a_file(inner, seen)
    if isinstance(gql_type, graphql.GraphQLList):
        return False  # an empty list holds no file
    if isinstance(gql_type, graphql.GraphQLInputObjectType) and gql_type.name not in seen:
        return any(_needs_a_file(f.type, seen | {gql_type.name}) for f in gql_type.fields.values())
    return False


def _fuzzable_fields() -> list[str]:
    """Root fields that can be called without a file (files cannot travel in JSON)."""
    names = []
    for root in (schema._schema.query_type, schema._schema.mutation_type):
        assert root is not None
        names += [
            name
            for name, field in root.fields.items()
            if not any(_needs_a_file(arg.type) for arg in field.args.values())
        ]
    return names


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same operations every run: a failure reproduces
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
async def callers() -> dict[str, str | None]:
    world = await build_world()
    candidate = await qualified_candidate(world)
    admin = await accounts.create_admin(
        name="考试中心", email="fuzz@neea.example.cn", password="Fuzz@2026admin",
        role=Role.NATIONAL_ADMIN,
    )  # fmt: skip
    admin_token = await sessions.open_session(admin, client_address="127.0.0.1", user_agent="fuzz")
    return {"anonymous": None, "candidate": candidate.token, "admin": admin_token}


@pytest.fixture
def http(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=30) as client:
        yield client


def check(http: httpx.Client, query: str, callers: dict[str, str | None], *, valid: bool) -> None:
    for who, token in callers.items():
        headers = {"accept": "application/graphql-response+json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        response = http.post("/graphql", json={"query": query}, headers=headers)
        context = f"{who}: {query}\n{response.status_code} {response.text[:1000]}"
        assert response.status_code < 500, context
        body: dict[str, Any] = response.json()
        assert isinstance(body, dict) and ("data" in body or body.get("errors")), context
        codes = [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]
        if valid:
            assert "INTERNAL_SERVER_ERROR" not in codes, context
            assert response.status_code in (200, 400), context
            if response.status_code == 400:  # only our limits and the NUL rule may refuse
                assert set(codes) <= {"QUERY_TOO_COSTLY", "BAD_USER_INPUT"}, context


@FUZZ
@given(operation=from_schema(schema._schema, fields=_fuzzable_fields(), custom_scalars=SCALARS))
def test_valid_operations_never_crash(http, callers, operation):
    check(http, str(operation), callers, valid=True)


@FUZZ
@given(operation=from_schema(schema._schema, custom_scalars=SCALARS, mode=Mode.NEGATIVE))
def test_invalid_operations_are_refused_cleanly(http, callers, operation):
    check(http, str(operation), callers, valid=False)


PARAMETER_NAMES = st.sampled_from(["query", "variables", "operationName", "extensions", "x"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(PARAMETER_NAMES, inner, max_size=4),
    max_leaves=10,
)
BODIES = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=BODIES)
def test_arbitrary_bodies_are_4xx_not_5xx(http, body):
    response = http.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code < 500, (body, response.text)
    assert response.json().get("errors") or "data" in response.json()
