"""S3: however many candidates press at once, an oral centre is never oversold.

Two hundred qualified candidates, each with CET4 paid, send ``selectSubjects`` for the same
20-seat centre at the same moment, over real HTTP to a running server."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from strawberry.relay import GlobalID

from cetgql import models
from cetgql.services import clock, registration
from tests.registration_setup import build_world, qualified_candidate

CANDIDATES = 200
SEATS = 20
SELECT = """
mutation($input: SelectSubjectsInput!) { selectSubjects(input: $input) {
  order { id } userErrors { code } } }
"""


async def test_two_hundred_candidates_race_for_twenty_seats(live_server):
    world = await build_world(center_capacity=SEATS, centers=1)
    centre = world.centers[0]
    candidates = []
    for _ in range(CANDIDATES):
        candidate = await qualified_candidate(world, subjects=("CET4", "CET-SET4"))
        order = (
            await registration.select_subjects(
                candidate.account, "2026H1", [registration.Choice("CET4")]
            )
        )[0]
        await registration.mark_order_paid(order.id, clock.now())
        candidates.append(candidate)

    variables = {
        "input": {
            "sessionCode": "2026H1",
            "items": [
                {
                    "subjectCode": "CET-SET4",
                    "oralCenterId": str(GlobalID("OralCenter", str(centre.id))),
                }
            ],
        }
    }
    start = asyncio.Event()
    limits = httpx.Limits(max_connections=CANDIDATES, max_keepalive_connections=CANDIDATES)
    async with httpx.AsyncClient(base_url=live_server, timeout=120, limits=limits) as http:

        async def press(token: str) -> str:
            await start.wait()
            response = await http.post(
                "/graphql",
                json={"query": SELECT, "variables": variables},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert "errors" not in body, body
            errors = body["data"]["selectSubjects"]["userErrors"]
            return errors[0]["code"] if errors else "WON"

        tasks = [asyncio.create_task(press(c.token)) for c in candidates]
        await asyncio.sleep(0.1)
        start.set()
        outcomes = Counter(await asyncio.gather(*tasks))

    assert outcomes == {"WON": SEATS, "SEATS_FULL": CANDIDATES - SEATS}
    held = await models.Registration.filter(oral_center_id=centre.id).count()
    assert held == SEATS
    assert await models.Order.filter(kind="ORAL").count() == SEATS
