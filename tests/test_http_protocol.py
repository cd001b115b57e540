"""GraphQL over HTTP beyond the audit (graphql/http.py): media types, status codes, methods,
bodies, batches, request errors versus field errors, limits and the cost in every response."""

from __future__ import annotations

import json
import logging

import pytest
from graphql import parse

from cetgql import models
from cetgql.app import create_app
from cetgql.graphql.cost import CONNECTION_DEFAULT_SIZE, MAX_COST, operation_cost
from cetgql.graphql.schema import schema
from cetgql.services import catalog
from cetgql.settings import configure
from tests.accounts_support import CANDIDATE

GQL = "application/graphql-response+json"
JSON = "application/json"
SESSIONS = "{ examSessions(first: 2) { edges { node { code } } } }"
SIGN_UP = """mutation($input: SignUpInput!) { signUp(input: $input) {
  account { id } userErrors { code } } }"""


async def post(client, body, *, accept: str | None = GQL, content_type: str = JSON, **headers):
    sent = {"content-type": content_type, **headers}
    if accept is not None:
        sent["accept"] = accept
    content = body if isinstance(body, bytes | str) else json.dumps(body)
    return await client.post("/graphql", content=content, headers=sent)


def media(response) -> str:
    return response.headers["content-type"]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (GQL, GQL),
        (JSON, JSON),
        (None, JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (f"{JSON}, {GQL}", GQL),  # equally acceptable: the specification's own type
        (f"{GQL};q=0.5, {JSON}", JSON),  # the client prefers JSON
        (f"{JSON};q=0.9, {GQL};q=0.2", JSON),
        (f"text/html, {GQL};q=0.8", GQL),
    ],
)
async def test_media_type_follows_accept(client, accept, expected):
    response = await post(client, {"query": "{ __typename }"}, accept=accept)
    assert response.status_code == 200
    assert media(response) == f"{expected}; charset=utf-8"
    assert response.json()["data"] == {"__typename": "Query"}


async def test_unacceptable_accept_is_406(client):
    response = await post(client, {"query": "{ __typename }"}, accept="text/plain, image/png")
    assert response.status_code == 406
    assert media(response).startswith(JSON)
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_ACCEPTABLE"
    zero = await post(client, {"query": "{ __typename }"}, accept=f"{GQL};q=0, {JSON};q=0")
    assert zero.status_code == 406


@pytest.mark.parametrize(
    ("query", "variables", "operation_name"),
    [
        ("{ examSessions(first: 1) { edges { node { code } }", None, None),  # does not parse
        ("{ noSuchField }", None, None),  # does not validate
        ("query($n: Int!) { examSessions(first: $n) { edges { cursor } } }", {"n": "x"}, None),
        ("query($n: Int!) { examSessions(first: $n) { edges { cursor } } }", {}, None),
        ("query A { __typename } query B { __typename }", None, None),  # which one?
        ("query A { __typename }", None, "B"),  # no such operation
    ],
)
async def test_request_errors_have_no_data(client, query, variables, operation_name):
    body = {"query": query, "variables": variables, "operationName": operation_name}
    modern = await post(client, body, accept=GQL)
    assert modern.status_code == 400, modern.text
    assert media(modern).startswith(GQL)
    assert "data" not in modern.json() and modern.json()["errors"]
    legacy = await post(client, body, accept=JSON)
    assert legacy.status_code == 200, legacy.text
    assert "data" not in legacy.json() and legacy.json()["errors"]


async def test_errors_inside_execution_are_200_with_data(client):
    """Missing authentication is a field error of a running operation, not a request error."""
    body = {"query": "{ viewer { name } phoneAppeals(first: 1) { edges { cursor } } }"}
    response = await post(client, body, accept=GQL)
    assert response.status_code == 200
    result = response.json()
    assert "data" in result and result["data"] is None  # phoneAppeals is non-null
    assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    partial = await post(client, {"query": "{ viewer { name } }"}, accept=GQL)
    assert partial.status_code == 200 and partial.json()["data"] == {"viewer": None}


async def test_get_runs_queries(client):
    await catalog.ensure_session("2026H1")
    response = await client.get(
        "/graphql",
        params={
            "query": "query($n: Int) { examSessions(first: $n) { edges { node { code } } } }",
            "variables": json.dumps({"n": 1}),
        },
        headers={"accept": GQL},
    )
    assert response.status_code == 200
    assert response.json()["data"]["examSessions"]["edges"] == [{"node": {"code": "2026H1"}}]
    assert response.headers["cache-control"] == "no-store"


async def test_a_mutation_over_get_is_405_and_never_runs(client):
    variables = {
        "input": {**CANDIDATE, "email": "get@example.cn", "phone": "13900000001"},
    }
    for accept in (GQL, JSON):
        response = await client.get(
            "/graphql",
            params={"query": SIGN_UP, "variables": json.dumps(variables)},
            headers={"accept": accept},
        )
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    assert not await models.Account.filter(email="get@example.cn").exists()
    # the same over POST works
    done = await post(client, {"query": SIGN_UP, "variables": variables})
    assert done.json()["data"]["signUp"]["userErrors"] == []


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
async def test_other_methods_are_405(client, method):
    response = await client.request(method, "/graphql", headers={"accept": GQL})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/graphql",
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
    ],
)
async def test_unsupported_bodies_are_415(client, content_type):
    response = await post(client, {"query": "{ __typename }"}, content_type=content_type)
    assert response.status_code == 415
    assert response.json()["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_content_type_parameters_are_tolerated(client):
    for content_type in ("application/json; charset=utf-8", "Application/JSON;Charset=UTF-8"):
        response = await post(client, {"query": "{ __typename }"}, content_type=content_type)
        assert response.status_code == 200


async def test_post_without_content_type_is_4xx(client):
    response = await client.post(
        "/graphql", content=json.dumps({"query": "{ __typename }"}), headers={"accept": GQL}
    )
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "BAD_REQUEST"),
        (b"{ not json", "BAD_REQUEST"),
        (b"\xff\xfe{}", "BAD_REQUEST"),  # not UTF-8
        (b"[" * 100_000, "BAD_REQUEST"),  # nested too deeply for any parser
        (b'"just a string"', "BAD_REQUEST"),
        (b"{}", "MISSING_QUERY"),
        (b'{"query": ""}', "MISSING_QUERY"),
        (b'{"query": null}', "MISSING_QUERY"),
        (b'{"query": "{ __typename }", "variables": "{}"}', "BAD_REQUEST"),
        (b'{"query": "{ __typename }", "extensions": []}', "BAD_REQUEST"),
        (b'{"query": "{ __typename }", "operationName": 3}', "BAD_REQUEST"),
        (b'[{"query": "{ __typename }"}, {"query": "{ __typename }"}]', "BATCH_NOT_SUPPORTED"),
        (b'{"query": "{ __typename }", "variables": {"x": "\\ud800"}}', "BAD_REQUEST"),
    ],
)
async def test_malformed_requests_are_400_in_both_media_types(client, body, code):
    for accept in (GQL, JSON):
        response = await post(client, body, accept=accept)
        assert response.status_code == 400, response.text
        assert media(response).startswith(accept)
        assert response.json()["errors"][0]["extensions"]["code"] == code


async def test_oversized_bodies_are_413(client):
    huge = {"query": "{ __typename }", "variables": {"pad": "x" * (5 * 1024 * 1024)}}
    response = await post(client, huge)
    assert response.status_code == 413


async def test_repeated_get_parameters_are_refused(client):
    response = await client.get(
        "/graphql?query={__typename}&query={__typename}", headers={"accept": GQL}
    )
    assert response.status_code == 400


async def test_subscriptions_are_not_served_over_http(client):
    body = {"query": 'subscription { orderUpdated(orderId: "T3JkZXI6MQ==") { status } }'}
    modern = await post(client, body, accept=GQL)
    assert modern.status_code == 400
    assert modern.json()["errors"][0]["extensions"]["code"] == "SUBSCRIPTION_OVER_HTTP"
    assert (await post(client, body, accept=JSON)).status_code == 200


async def test_graphiql_only_for_browsers_and_only_when_enabled(client, settings):
    page = await client.get("/graphql", headers={"accept": "text/html,*/*;q=0.8"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    api = await client.get("/graphql", headers={"accept": "*/*"})
    assert api.status_code == 400 and api.json()["errors"][0]["extensions"]["code"] == (
        "MISSING_QUERY"
    )

    import httpx

    off = create_app(settings.with_overrides(graphiql=False), manage_database=False)
    try:
        transport = httpx.ASGITransport(app=off)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
            page = await other.get("/graphql", headers={"accept": "text/html,*/*;q=0.8"})
            assert not page.headers["content-type"].startswith("text/html")
            assert page.status_code == 400
    finally:
        configure(settings)


async def test_introspection_can_be_switched_off(client, settings):
    query = {"query": "{ __schema { queryType { name } } }"}
    assert (await post(client, query)).json()["data"]["__schema"]["queryType"]["name"] == "Query"
    configure(settings.with_overrides(introspection=False))
    try:
        refused = await post(client, query)
        assert refused.status_code == 400
        assert "introspection" in refused.json()["errors"][0]["message"].lower()
        typename = await post(client, {"query": "{ __typename }"})
        assert typename.status_code == 200  # __typename is not introspection of the schema
    finally:
        configure(settings)
    assert (await post(client, query)).status_code == 200


# ----------------------------------------------------------------------------------- limits


async def test_every_response_carries_its_cost(client):
    response = await post(client, {"query": SESSIONS})
    assert response.json()["extensions"]["cost"] == {
        "requested": 1 + 2 * (1 + 1 + 1),  # examSessions + 2 × (edges, node, code)
        "maximum": MAX_COST,
    }


async def test_a_too_costly_operation_is_refused_before_it_runs(client):
    variables = {"input": {**CANDIDATE, "email": "costly@example.cn", "phone": "13900000002"}}
    costly = """mutation($input: SignUpInput!) { signUp(input: $input) {
      account { orders(first: 100) { edges { node { number
        registrations { id status subject { code name kind level slot } }
        payments { id status outTradeNo provider amount { fen yuan currency } } } } } }
      userErrors { code } } }"""
    response = await post(client, {"query": costly, "variables": variables})
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert error["extensions"]["cost"] > MAX_COST
    assert response.json()["extensions"]["cost"]["requested"] == error["extensions"]["cost"]
    assert not await models.Account.filter(email="costly@example.cn").exists()
    legacy = await post(client, {"query": costly, "variables": variables}, accept=JSON)
    assert legacy.status_code == 200 and "data" not in legacy.json()


@pytest.mark.parametrize(
    ("query", "limit"),
    [
        ("{ viewer { " + " ".join(f"a{i}: name" for i in range(31)) + " } }", "alias"),
        (
            "{ viewer { orders(first: 1) { edges { node { registrations { order { registrations {"
            " order { registrations { order { registrations { order { registrations { id } } } }"
            " } } } } } } } } } }",
            "depth",
        ),
        ("{ __typename " + "__typename " * 4000 + "}", "token"),
    ],
)
async def test_depth_alias_and_token_limits(client, query, limit):
    response = await post(client, {"query": query})
    assert response.status_code == 400
    assert limit in response.json()["errors"][0]["message"].lower()


def _cost(query: str, variables: dict | None = None, name: str | None = None) -> int:
    return operation_cost(schema._schema, parse(query), name, variables)


def test_cost_counts_connection_sizes():
    # first multiplies what is under the connection; edges/node are not multiplied again
    assert _cost("{ examSessions(first: 10) { edges { node { code } } } }") == 1 + 10 * 3
    # last counts like first; a variable and a variable's default are read
    assert _cost("{ examSessions(last: 5) { edges { node { code } } } }") == 1 + 5 * 3
    query = "query($n: Int = 7) { examSessions(first: $n) { edges { node { code } } } }"
    assert _cost(query) == 1 + 7 * 3
    assert _cost(query, {"n": 3}) == 1 + 3 * 3
    # no page size: the largest page the connection can return
    assert _cost("{ examSessions { edges { node { code } } } }") == 1 + CONNECTION_DEFAULT_SIZE * 3
    # a plain list counts the default size; nested sizes multiply
    nested = "{ examSessions(first: 2) { edges { node { subjects { code name } } } } }"
    assert _cost(nested) == 1 + 2 * (1 + 1 + (1 + 10 * 2))
    # __typename is free, introspection costs 1
    assert _cost("{ __typename __schema { types { fields { name } } } }") == 1


def test_cost_of_fragments():
    one = '{ node(id: "x") { ... on Order { number status } ... on Payment { status } } }'
    assert _cost(one) == 1 + 2  # an object has one type: the dearer fragment counts
    same = """query { viewer { ...A ...B } } fragment A on Account { name }
      fragment B on Account { phoneMasked emailMasked }"""
    assert _cost(same) == 1 + 3  # fragments on the field's own type add up
    named = "query Q { examSessions(first: 1) { edges { cursor } } } query R { viewer { name } }"
    assert _cost(named, name="R") == 2
    aliases = (
        "{ a: examSessions(first: 3) { edges { cursor } } "
        "b: examSessions(first: 4) { edges { cursor } } }"
    )
    assert _cost(aliases) == (1 + 3 * 2) + (1 + 4 * 2)


@pytest.mark.parametrize(
    "arguments",
    ["(first: -1)", "(last: -2)", "(first: 101)", '(after: "garbage")', '(before: "x")'],
)
async def test_pagination_mistakes_are_the_clients_not_masked(client, caplog, arguments):
    """Found by the fuzzer: Strawberry's relay raises plain ValueErrors for these, which were
    masked and logged as if the server had failed."""
    caplog.set_level(logging.ERROR, logger="cetgql")
    query = f"{{ examSessions{arguments} {{ edges {{ cursor }} }} }}"
    response = await post(client, {"query": query})
    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert error["message"].startswith("Invalid pagination argument")
    assert not [r for r in caplog.records if r.name.startswith("cetgql")]


async def test_nul_characters_are_refused(client):
    """Found by the fuzzer on PostgreSQL, which can neither store nor compare NUL."""
    literal = await post(client, {"query": '{ examSession(code: "20\\u000026H1") { code } }'})
    assert literal.status_code == 400
    assert literal.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    variable = await post(
        client,
        {
            "query": "query($c: String!) { examSession(code: $c) { code } }",
            "variables": {"c": "20\x0026H1"},
        },
    )
    assert variable.status_code == 400
    sign_in = await post(
        client,
        {
            "query": "mutation($i: SignInInput!) { signIn(input: $i) { token } }",
            "variables": {"i": {"login": "a\x00b", "password": "x"}},
        },
    )
    assert sign_in.status_code == 400


async def test_several_operations_need_an_operation_name(client):
    both = "query A { __typename } query B { viewer { name } }"
    refused = await post(client, {"query": both})
    assert refused.json()["errors"][0]["extensions"]["code"] == "OPERATION_NAME_REQUIRED"
    chosen = await post(client, {"query": both, "operationName": "B"})
    assert chosen.status_code == 200 and chosen.json()["data"] == {"viewer": None}
