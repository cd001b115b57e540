"""Security headers, the GraphiQL page's Content-Security-Policy, CORS for configured partner
origins (HTTP and WebSocket), tokens revoked on password change, and sessions that expire."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from cetgql.graphql.ide import content_security_policy, render_graphiql_page
from cetgql.services import clock
from cetgql.settings import get_settings
from tests.accounts_support import (
    CANDIDATE,
    CHANGE_PASSWORD,
    NEW_PASSWORD,
    PASSWORD,
    VIEWER,
    sign_in,
    signed_up_and_in,
)
from tests.conftest import ServerProcess

PARTNER = "https://portal.example.cn"
STRANGER = "https://evil.example.com"
BASELINE = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def assert_baseline(response: httpx.Response) -> None:
    for name, value in BASELINE.items():
        assert response.headers.get(name) == value, (name, response.headers)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers.get("x-request-id")


async def test_every_response_has_the_security_headers(client):
    responses = [
        await client.post("/graphql", json={"query": "{ __typename }"}),
        await client.get("/graphql", params={"query": "{ __typename }"}),
        await client.post("/graphql", content=b"{", headers={"content-type": "application/json"}),
        await client.get("/healthz"),
        await client.get("/no/such/page"),
        await client.get("/payments/alipay/return", params={"trade": "0"}),
        await client.get("/graphql", headers={"accept": "text/html"}),
    ]
    for response in responses:
        assert_baseline(response)
    assert "strict-transport-security" not in responses[0].headers  # served over plain HTTP


async def test_graphiql_page_allows_only_its_own_origin(client):
    page = await client.get("/graphql", headers={"accept": "text/html"})
    policy = page.headers["content-security-policy"]
    assert policy == content_security_policy()
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "http" not in policy  # no other host anywhere
    # the inline script the page runs is the one the policy admits by hash
    html = render_graphiql_page()
    inline = [
        m["body"]
        for m in re.finditer(r"<script(?P<a>[^>]*)>(?P<body>.*?)</script>", html, re.S)
        if "src=" not in m["a"] and "application/json" not in m["a"]
    ]
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in directives["script-src"]


@pytest.mark.browser
async def test_graphiql_runs_under_its_policy_without_violations(live_server: str) -> None:
    from tests.test_browser_graphiql import TIMEOUT_MS, launch, require_chromium

    require_chromium()
    from playwright.async_api import async_playwright, expect

    messages: list[str] = []
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            page = await (await browser.new_context()).new_page()
            page.on("console", lambda message: messages.append(message.text))
            response = await page.goto(f"{live_server}/graphql", timeout=TIMEOUT_MS)
            assert response is not None
            assert "script-src" in (await response.all_headers())["content-security-policy"]
            editor = page.locator(".graphiql-query-editor .CodeMirror")
            await expect(editor).to_be_visible(timeout=TIMEOUT_MS)
            async with page.expect_response(lambda r: r.request.method == "POST") as run:
                await page.locator(".graphiql-execute-button").click()
            assert (await run.value).status == 200
            await expect(page.locator(".graphiql-response")).to_contain_text('"examSessions"')
        finally:
            await browser.close()
    violations = [m for m in messages if "Content Security Policy" in m or "Refused to" in m]
    assert violations == []


async def test_https_deployments_get_hsts(client, settings):
    from cetgql.security import baseline_headers

    headers = baseline_headers(settings.with_overrides(public_url="https://cet.example.cn"))
    assert headers["Strict-Transport-Security"].startswith("max-age=")


# --------------------------------------------------------------------------------------- CORS


async def test_without_configured_origins_there_is_no_cors(client):
    assert get_settings().cors_origins == ()
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"origin": PARTNER}
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


@pytest.fixture(scope="module")
def partner_server(database: str, settings) -> Iterator[ServerProcess]:
    server = ServerProcess(
        database, settings, {"CETGQL_CORS_ORIGINS": f"{PARTNER}, https://b.example.cn/"}
    )
    yield server
    server.stop()


async def test_cors_admits_configured_partner_origins(partner_server):
    preflight_headers = {
        "origin": PARTNER,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    async with httpx.AsyncClient(base_url=partner_server.url) as http:
        preflight = await http.options("/graphql", headers=preflight_headers)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == PARTNER
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed
        assert "access-control-allow-credentials" not in preflight.headers
        response = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"origin": PARTNER}
        )
        assert response.headers["access-control-allow-origin"] == PARTNER
        assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
        second = await http.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"origin": "https://b.example.cn"},
        )
        assert second.headers["access-control-allow-origin"] == "https://b.example.cn"

        refused = await http.options("/graphql", headers={**preflight_headers, "origin": STRANGER})
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        foreign = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"origin": STRANGER}
        )
        assert "access-control-allow-origin" not in foreign.headers


async def test_websockets_admit_the_same_origins(partner_server):
    url = partner_server.url.replace("http://", "ws://") + "/graphql"
    async with connect(
        url,
        subprotocols=["graphql-transport-ws"],
        origin=PARTNER,  # type: ignore[list-item,arg-type]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
    with pytest.raises(InvalidStatus):
        async with connect(
            url,
            subprotocols=["graphql-transport-ws"],
            origin=STRANGER,  # type: ignore[list-item,arg-type]
        ):
            pass


# ----------------------------------------------------------------------------------- sessions


async def test_changing_the_password_revokes_the_other_tokens(gql):
    kept = await signed_up_and_in(gql)
    other = (await sign_in(gql, CANDIDATE["email"]))["token"]
    third = (await sign_in(gql, CANDIDATE["phone"]))["token"]
    for token in (kept, other, third):
        assert (await gql.data(VIEWER, token=token))["viewer"]["name"] == CANDIDATE["name"]
    changed = await gql.data(
        CHANGE_PASSWORD,
        {"input": {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}},
        token=kept,
    )
    assert changed["changePassword"]["userErrors"] == []
    assert (await gql.data(VIEWER, token=kept))["viewer"] is not None
    for token in (other, third):
        assert (await gql.data(VIEWER, token=token))["viewer"] is None
        refused = await gql.execute(
            '{ availableSubjects(sessionCode: "2026H1") { eligible } }', token=token
        )
        assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # and the old password no longer signs in
    again = await sign_in(gql, CANDIDATE["email"])
    assert again["token"] is None


async def test_sessions_expire_after_the_configured_hours(gql):
    token = await signed_up_and_in(gql)
    ttl = timedelta(hours=get_settings().session_ttl_hours)
    clock.advance(ttl - timedelta(minutes=1))
    assert (await gql.data(VIEWER, token=token))["viewer"] is not None
    clock.advance(timedelta(minutes=2))
    assert (await gql.data(VIEWER, token=token))["viewer"] is None
    result = await gql.execute(
        '{ availableSubjects(sessionCode: "2026H1") { eligible } }', token=token
    )
    assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
