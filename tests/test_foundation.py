"""The service answers: health, examSessions with connections, node ids, Money, masking."""

from __future__ import annotations

from cetgql.graphql.scalars import Money
from cetgql.services import catalog


async def test_healthz_checks_the_database(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "up"}


async def test_exam_sessions_page_and_fetch_by_code_and_node(gql):
    for code in ("2025H1", "2025H2", "2026H1"):
        await catalog.ensure_session(code)
    page = await gql.data(
        "query($after: String) { examSessions(first: 2, after: $after) {"
        " edges { cursor node { id code } } pageInfo { hasNextPage endCursor } } }"
    )
    codes = [e["node"]["code"] for e in page["examSessions"]["edges"]]
    assert codes == ["2026H1", "2025H2"]
    assert page["examSessions"]["pageInfo"]["hasNextPage"] is True
    rest = await gql.data(
        "query($after: String) { examSessions(first: 2, after: $after) { edges { node { code } } "
        "pageInfo { hasNextPage } } }",
        {"after": page["examSessions"]["pageInfo"]["endCursor"]},
    )
    assert [e["node"]["code"] for e in rest["examSessions"]["edges"]] == ["2025H1"]
    assert rest["examSessions"]["pageInfo"]["hasNextPage"] is False

    one = await gql.data(
        '{ examSession(code: "2026H1") { id name subjects { code kind slot level } } }'
    )
    session = one["examSession"]
    subjects = {s["code"]: s for s in session["subjects"]}
    assert set(subjects) == {
        "CET4", "CET6", "CJT4", "CJT6", "CGT4", "CGT6", "CRT4", "CRT6", "CFT4",
        "CET-SET4", "CET-SET6",
    }  # fmt: skip
    assert subjects["CET4"]["slot"] == subjects["CJT4"]["slot"] != subjects["CET6"]["slot"]
    node = await gql.data(
        "query($id: ID!) { node(id: $id) { ... on ExamSession { code } } }", {"id": session["id"]}
    )
    assert node["node"] == {"code": "2026H1"}


async def test_december_session_offers_english_only(gql):
    await catalog.ensure_session("2026H2")
    data = await gql.data('{ examSession(code: "2026H2") { subjects { code } } }')
    assert {s["code"] for s in data["examSession"]["subjects"]} == {
        "CET4", "CET6", "CET-SET4", "CET-SET6",
    }  # fmt: skip


async def test_more_than_one_hundred_per_page_is_refused(gql):
    result = await gql.execute("{ examSessions(first: 101) { edges { cursor } } }")
    assert result["errors"]


async def test_unknown_session_and_bad_node_id(gql):
    assert (await gql.data('{ examSession(code: "1999H1") { code } }'))["examSession"] is None
    result = await gql.execute('{ node(id: "not-a-global-id") { id } }')
    assert result.get("data") is None or result["data"]["node"] is None


def test_money_renders_yuan_with_two_places():
    assert Money(fen=3000).yuan == "30.00"
    assert Money(fen=5).yuan == "0.05"
    assert Money(fen=-150).yuan == "-1.50"
