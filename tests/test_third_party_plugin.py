"""A provincial agency's own provider plugin: installed as a distribution, found through its
``cetgql`` entry point, and used to pay an order end to end over HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from strawberry.relay import GlobalID

from cetgql import models
from tests.conftest import ServerProcess
from tests.registration_setup import build_world, qualified_candidate

PLUGIN = Path(__file__).parent / "fixtures" / "cetgql-examplepay"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("examplepay")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(PLUGIN),
        ],
        check=True,
    )
    return target


def test_the_plugin_is_found_through_its_entry_point(plugin_path):
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "from cetgql.payments.manager import load; r = load(); "
            "print([(p.provider, p.distribution, p.version) for p in r.loaded])",
        ],
        env={"PYTHONPATH": str(plugin_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "('examplepay', 'cetgql-examplepay', '0.1.0')" in probe.stdout


async def test_paying_an_order_with_the_plugin(plugin_path, database, settings):
    world = await build_world()
    me = await qualified_candidate(world)
    await models.ProviderSetting.create(
        province=world.province,
        provider="examplepay",
        enabled=True,
        values={"merchant": "M-100"},
        secrets={"key": "examplepay-sandbox-key"},
    )
    server = ServerProcess(database, settings, {"PYTHONPATH": str(plugin_path)})
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            gateway = f"{server.url}/sandbox/examplepay"
            await models.ProviderSetting.filter(provider="examplepay").update(
                values={"merchant": "M-100", "gateway": gateway}
            )

            async def gql(query: str, variables: dict) -> dict:
                response = await http.post(
                    "/graphql",
                    json={"query": query, "variables": variables},
                    headers={"Authorization": f"Bearer {me.token}"},
                )
                body = response.json()
                assert "errors" not in body, body
                return body["data"]

            chosen = await gql(
                """mutation($i: SelectSubjectsInput!) { selectSubjects(input: $i) {
                   order { id } userErrors { code } } }""",
                {"i": {"sessionCode": "2026H1", "items": [{"subjectCode": "CET4"}]}},
            )
            order_id = chosen["selectSubjects"]["order"]["id"]
            started = await gql(
                """mutation($i: StartPaymentInput!) { startPayment(input: $i) {
                   payment { outTradeNo status redirect { method url fields { name value } } }
                   userErrors { code } } }""",
                {"i": {"orderId": order_id, "provider": "examplepay"}},
            )
            payment = started["startPayment"]["payment"]
            assert started["startPayment"]["userErrors"] == []
            assert payment["status"] == "PENDING"
            redirect = payment["redirect"]
            fields = {f["name"]: f["value"] for f in redirect["fields"]}
            cashier = await http.post(redirect["url"], data=fields)
            assert "确认付款" in cashier.text
            paid = await http.post(
                redirect["url"], data={"trade": payment["outTradeNo"], "pay": "1"}
            )
            assert paid.status_code == 303
            back = await http.get(paid.headers["location"])
            assert 'data-status="PAID"' in back.text

            status = await gql(
                "query($id: ID!) { node(id: $id) { ... on Order { status payments { status } } } }",
                {"id": order_id},
            )
            assert status["node"] == {"status": "PAID", "payments": [{"status": "SUCCEEDED"}]}
        order = await models.Order.get(id=int(GlobalID.from_id(order_id).node_id))
        assert order.status == "PAID"
    finally:
        server.stop()
