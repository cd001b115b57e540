"""A person pays in each provider's sandbox cashier with a real browser and lands on our
return page, which shows the order paid."""

from __future__ import annotations

import html
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.payment_support import PROVIDERS, Proxy, enable_sandbox, payment_server
from tests.registration_setup import build_world, qualified_candidate
from tests.test_browser_graphiql import launch, require_chromium

pytestmark = pytest.mark.browser

START = """mutation($i: StartPaymentInput!) { startPayment(input: $i) {
  payment { redirect { method url fields { name value } } } userErrors { code } } }"""


@pytest.fixture(scope="module")
def server(database: str, settings) -> Iterator[tuple[ServerProcess, Proxy]]:
    with payment_server(database, settings) as pair:
        yield pair


def handover_page(redirect: dict) -> str:
    """What a partner front end renders with startPayment's redirect: a form it submits."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(f["name"])}" value="{html.escape(f["value"])}">'
        for f in redirect["fields"]
    )
    return (
        f'<form id="go" method="{redirect["method"]}" action="{html.escape(redirect["url"])}">'
        f'{inputs}<button type="submit">去支付</button></form>'
    )


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_person_pays_in_the_sandbox_cashier(server, provider):
    require_chromium()
    from playwright.async_api import async_playwright, expect

    process, _ = server
    world = await build_world()
    await enable_sandbox(world.province, provider, process.url)
    me = await qualified_candidate(world)
    async with httpx.AsyncClient(base_url=process.url, timeout=30) as http:

        async def gql(query: str, variables: dict) -> dict:
            response = await http.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {me.token}"},
            )
            return response.json()["data"]

        chosen = await gql(
            "mutation($i: SelectSubjectsInput!) { selectSubjects(input: $i) { order { id } } }",
            {"i": {"sessionCode": "2026H1", "items": [{"subjectCode": "CET4"}]}},
        )
        order_id = chosen["selectSubjects"]["order"]["id"]
        started = await gql(START, {"i": {"orderId": order_id, "provider": provider}})
        redirect = started["startPayment"]["payment"]["redirect"]

    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            page = await browser.new_page()
            await page.goto(f"{process.url}/healthz")  # a page of our origin to start from
            await page.set_content(handover_page(redirect))
            await page.click("#go button")
            pay = page.locator("button", has_text="确认").first
            await expect(pay).to_be_visible(timeout=15_000)
            await pay.click()
            await page.wait_for_url(f"**/payments/{provider}/return**", timeout=15_000)
            status = page.locator("#status")
            await expect(status).to_have_attribute("data-status", "PAID", timeout=15_000)
            await expect(status).to_contain_text("缴费成功")
        finally:
            await browser.close()
