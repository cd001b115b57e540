"""The GraphiQL playground works in a real browser with no internet access.

Drives Debian's Chromium (``/usr/bin/chromium``, installed by ``scripts/bootstrap
--with-browser``) through Playwright against the live server; Playwright's own browser
download is never used.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EXAMPLE_TABS = [
    "ExamSessions",
    "SignUp",
    "SignIn",
    "Viewer",
    "VerifyQualification",
    "ConfirmQualification",
    "AvailableSubjects",
    "OralCenters",
    "SelectSubjects",
    "PaymentProviders",
    "StartPayment",
    "RefreshPayment",
    "MyRegistrations",
    "RequestVerificationCode",
    "ResetPassword",
    "SignOut",
]
TIMEOUT_MS = 30_000


async def launch(playwright: Any) -> Any:
    return await playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )


def require_chromium() -> None:
    if os.access(CHROMIUM, os.X_OK):
        return
    message = f"{CHROMIUM} not found: run scripts/bootstrap --with-browser (package chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def is_local_resource(url: str, server_origin: str) -> bool:
    scheme = urlsplit(url).scheme
    if scheme in {"data", "blob", "about"}:
        return True
    if scheme in {"ws", "wss"}:
        return origin(url).replace("ws", "http", 1) == server_origin
    return origin(url) == server_origin


async def test_graphiql_runs_the_first_example_offline(live_server: str) -> None:
    require_chromium()
    from playwright.async_api import async_playwright, expect

    server_origin = origin(live_server)
    requested: list[str] = []
    page_errors: list[str] = []

    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            context = await browser.new_context(locale="zh-CN")
            context.on("request", lambda request: requested.append(request.url))
            page = await context.new_page()
            page.on("websocket", lambda socket: requested.append(socket.url))
            page.on("pageerror", lambda error: page_errors.append(str(error)))

            response = await page.goto(f"{live_server}/graphql", timeout=TIMEOUT_MS)
            assert response is not None
            assert response.status == 200
            assert "text/html" in response.headers.get("content-type", "")

            editor = page.locator(".graphiql-query-editor .CodeMirror")
            await expect(editor).to_be_visible(timeout=TIMEOUT_MS)

            # One tab per example operation, the anonymous ExamSessions first and active.
            tabs = page.locator(".graphiql-tab .graphiql-tab-button")
            await expect(tabs).to_have_count(len(EXAMPLE_TABS), timeout=TIMEOUT_MS)
            await expect(tabs).to_have_text(EXAMPLE_TABS)
            await expect(page.locator(".graphiql-tab").first).to_have_class(
                re.compile(r"\bgraphiql-tab-active\b")
            )
            await expect(editor).to_contain_text("examSessions")
            await expect(editor).to_contain_text("Authorization: Bearer")
            variables = page.locator(".graphiql-editor-tool .CodeMirror").first
            await expect(variables).to_contain_text('"first": 10')

            def is_example_run(resp: Any) -> bool:
                request = resp.request
                return (
                    request.method == "POST"
                    and urlsplit(resp.url).path == "/graphql"
                    and "ExamSessions" in (request.post_data or "")
                )

            async with page.expect_response(is_example_run, timeout=TIMEOUT_MS) as run:
                await page.locator(".graphiql-execute-button").click()
            result = await (await run.value).json()
            assert "errors" not in result, result
            assert isinstance(result["data"]["examSessions"]["edges"], list), result

            result_pane = page.locator(".graphiql-response")
            await expect(result_pane).to_contain_text('"examSessions"', timeout=TIMEOUT_MS)
            await expect(result_pane).to_contain_text('"edges"')
            await expect(result_pane).not_to_contain_text('"errors"')
        finally:
            await browser.close()

    assert page_errors == []
    assert requested, "the page made no requests at all"
    foreign = [url for url in requested if not is_local_resource(url, server_origin)]
    assert foreign == [], f"requests to hosts other than {server_origin}: {foreign}"


async def run_tab(page: Any, operation: str) -> tuple[dict[str, Any], str | None]:
    """Open the tab of ``operation``, run it; the JSON result and the Authorization sent."""
    await page.locator(".graphiql-tab-button", has_text=operation).first.click()
    await page.locator(".graphiql-tab-active", has_text=operation).wait_for()

    defines = re.compile(rf"\b(query|mutation)\s+{operation}\b")

    def is_run(response: Any) -> bool:
        request = response.request
        if request.method != "POST" or urlsplit(response.url).path != "/graphql":
            return False
        body = json.loads(request.post_data or "{}")
        return bool(defines.search(body.get("query") or ""))

    async with page.expect_response(is_run, timeout=TIMEOUT_MS) as run:
        await page.locator(".graphiql-execute-button").click()
    response = await run.value
    authorization = await response.request.header_value("authorization")
    return await response.json(), authorization


async def test_graphiql_keeps_the_token_from_sign_in_until_sign_out(live_server: str) -> None:
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            page = await (await browser.new_context(locale="zh-CN")).new_page()
            await page.goto(f"{live_server}/graphql", timeout=TIMEOUT_MS)
            await page.locator(".graphiql-query-editor .CodeMirror").wait_for(timeout=TIMEOUT_MS)

            result, _ = await run_tab(page, "SignUp")
            assert result["data"]["signUp"]["userErrors"] == [], result
            result, authorization = await run_tab(page, "SignIn")
            assert authorization is None
            token = result["data"]["signIn"]["token"]
            assert token, result

            result, authorization = await run_tab(page, "Viewer")
            assert authorization == f"Bearer {token}"
            assert result["data"]["viewer"]["name"] == "张三", result

            result, authorization = await run_tab(page, "SignOut")
            assert authorization == f"Bearer {token}"
            assert result["data"]["signOut"]["userErrors"] == [], result

            result, authorization = await run_tab(page, "Viewer")
            assert authorization is None
            assert result["data"] == {"viewer": None} and "errors" not in result, result
        finally:
            await browser.close()
