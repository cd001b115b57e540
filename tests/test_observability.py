"""Request ids, masked errors logged in full, structured logs and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

from cetgql import jobs, models
from cetgql.observability import (
    AccessLogFilter,
    JsonFormatter,
    RequestIdFilter,
    current_request_id,
    request_id_from,
)
from cetgql.services import clock, sessions
from cetgql.services import jobs as job_registry
from tests.accounts_support import VIEWER, signed_up_and_in
from tests.conftest import ROOT, ServerProcess, _free_port
from tests.registration_setup import build_world, qualified_candidate

HEX_ID = re.compile(r"^[0-9a-f]{32}$")


async def test_request_ids_are_echoed_when_sane_and_made_otherwise(client):
    given = await client.get("/healthz", headers={"x-request-id": "lb-7f3a.2:9_x-1"})
    assert given.headers["x-request-id"] == "lb-7f3a.2:9_x-1"
    made = await client.get("/healthz")
    assert HEX_ID.match(made.headers["x-request-id"])
    for insane in ("two words", "x" * 129, "-leading-dash", "a;b", "ünïcode".encode()):
        replaced = await client.get("/healthz", headers={"x-request-id": insane})
        assert HEX_ID.match(replaced.headers["x-request-id"]), insane
    assert request_id_from("évil\r\nSet-Cookie: a=b") != "évil\r\nSet-Cookie: a=b"


async def test_unexpected_errors_are_masked_and_logged_with_the_request_id(
    gql, client, monkeypatch, caplog
):
    token = await signed_up_and_in(gql)

    async def broken(token: str) -> None:
        raise RuntimeError("connection to 10.0.0.5 refused: secret detail")

    monkeypatch.setattr(sessions, "account_for_token", broken)
    caplog.handler.addFilter(RequestIdFilter())
    caplog.set_level(logging.ERROR, logger="cetgql")
    response = await client.post(
        "/graphql",
        json={"query": VIEWER},
        headers={"authorization": f"Bearer {token}", "x-request-id": "support-case-42"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "support-case-42"
    assert "secret detail" not in response.text and "10.0.0.5" not in response.text
    [error] = response.json()["errors"]
    assert error["message"] == "Unexpected error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "support-case-42"}
    logged = [r for r in caplog.records if r.exc_info and r.request_id == "support-case-42"]
    assert logged, [(r.getMessage(), getattr(r, "request_id", None)) for r in caplog.records]
    assert "secret detail" in logging.Formatter().formatException(logged[0].exc_info)


async def test_an_exception_escaping_the_app_is_a_json_500_with_the_request_id(
    client, monkeypatch, caplog
):
    from cetgql import app as app_module

    async def broken() -> bool:
        raise RuntimeError("escaped")

    monkeypatch.setattr(app_module.health, "database_ok", broken)
    caplog.handler.addFilter(RequestIdFilter())
    response = await client.get("/healthz", headers={"x-request-id": "escape-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "escape-1"
    assert response.json()["errors"][0]["extensions"]["requestId"] == "escape-1"
    assert any(r.exc_info and r.request_id == "escape-1" for r in caplog.records)


def test_json_log_lines():
    formatter = JsonFormatter()
    try:
        raise ValueError("bad thing")
    except ValueError:
        import sys as _sys

        record = logging.LogRecord(
            "cetgql.x", logging.ERROR, __file__, 1, "failed %s", ("here",), _sys.exc_info()
        )
    record.request_id = "r-1"
    record.order = 17  # an `extra` field
    entry = json.loads(formatter.format(record))
    assert entry["level"] == "ERROR" and entry["logger"] == "cetgql.x"
    assert entry["message"] == "failed here" and entry["request_id"] == "r-1"
    assert "ValueError: bad thing" in entry["exception"] and entry["order"] == 17
    assert entry["time"].endswith("+00:00")
    assert current_request_id() is None  # outside a request


def test_access_lines_drop_the_query_string():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", '/graphql?query={x}&variables={"id":"110105"}', "1.1", 200),
        None,
    )
    AccessLogFilter().filter(record)
    assert record.getMessage() == '1.2.3.4:5 - "GET /graphql HTTP/1.1" 200'


def test_live_server_logs_json_lines_with_request_ids(database, settings):
    server = ServerProcess(database, settings, {"CETGQL_LOG_FORMAT": "json"})
    try:
        response = httpx.get(
            f"{server.url}/graphql",
            params={
                "query": "query($x: String) { __typename }",
                "variables": '{"x": "110105200401010011"}',
            },
            headers={"x-request-id": "trace-json-1", "accept": "application/json"},
        )
        assert response.status_code == 200
        time.sleep(0.3)
        lines = [line for line in server.output().splitlines() if line.startswith("{")]
    finally:
        server.stop()
    entries = [json.loads(line) for line in lines]  # every log line is one JSON object
    assert any(e["message"].startswith("Application startup complete") for e in entries)
    [access] = [e for e in entries if e.get("request_id") == "trace-json-1"]
    assert access["logger"] == "uvicorn.access"
    assert access["path"] == "/graphql" and access["status"] == 200
    assert "110105200401010011" not in "\n".join(lines)  # no variables in the log


# ------------------------------------------------------------------------------------ metrics


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text ``text``."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not in metrics")


async def test_metrics_count_requests_errors_payments_and_jobs(client, gql):
    before = (await client.get("/metrics")).text
    base_query = sample_or_zero(
        before, "cetgql_graphql_requests_total", operation_type="query", status="200"
    )
    base_unauth = sample_or_zero(before, "cetgql_graphql_errors_total", code="UNAUTHENTICATED")

    await client.post("/graphql", json={"query": "{ __typename }"})
    await client.post("/graphql", json={"query": "{ phoneAppeals(first: 1) { edges { cursor } } }"})
    await client.post(
        "/graphql", json={"query": "{"}, headers={"accept": "application/graphql-response+json"}
    )
    world = await build_world()
    me = await qualified_candidate(world)
    order = await models.Order.create(
        account=me.account, session=world.session, province=world.province, number="N1",
        kind="WRITTEN", amount_fen=3000, created_at=clock.now(),
        expires_at=clock.now() + timedelta(hours=24),
    )  # fmt: skip
    for n, status in enumerate(("PENDING", "PENDING", "SUCCEEDED")):
        await models.Payment.create(
            order=order, provider="alipay", out_trade_no=f"T{n}", amount_fen=3000,
            status=status, created_at=clock.now(), updated_at=clock.now() - timedelta(minutes=5),
        )  # fmt: skip
    [job] = [j for j in job_registry.registered() if j.name == "prune-rate-limits"]
    await jobs.run_job(job, 0)

    from cetgql import metrics

    metrics._figures = None  # the database figures are cached for a few seconds
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert sample(text, "cetgql_graphql_requests_total", operation_type="query", status="200") >= (
        base_query + 2
    )
    assert (
        sample(text, "cetgql_graphql_requests_total", operation_type="unknown", status="400") >= 1
    )
    assert sample(text, "cetgql_graphql_errors_total", code="UNAUTHENTICATED") == base_unauth + 1
    assert (
        sample(text, "cetgql_graphql_request_duration_seconds_count", operation_type="query") >= 2
    )
    assert (
        sample(text, "cetgql_http_requests_total", route="/graphql", method="POST", status="200")
        >= 2
    )
    assert (
        sample(text, "cetgql_http_requests_total", route="/metrics", method="GET", status="200")
        >= 1
    )
    assert sample(text, "cetgql_payments", status="PENDING", provider="alipay") == 2
    assert sample(text, "cetgql_payments", status="SUCCEEDED", provider="alipay") == 1
    assert sample(text, "cetgql_payments", status="REFUNDED", provider="alipay") == 0
    assert sample(text, "cetgql_payments_open_oldest_age_seconds") >= 290
    assert sample(text, "cetgql_metrics_database_up") == 1
    assert sample(text, "cetgql_job_runs_total", job="prune-rate-limits", outcome="ok") >= 1


def sample_or_zero(text: str, name: str, **labels: str) -> float:
    try:
        return sample(text, name, **labels)
    except AssertionError:
        return 0.0


def test_metrics_add_up_across_worker_processes(database, settings):
    """`cetgql serve --workers 2`: whichever worker answers a scrape reports both workers'
    requests (prometheus_client's multiprocess mode)."""
    server = ServerProcess(database, settings, {"CETGQL_LOG_FORMAT": "json"}, workers=2)
    try:

        def graphql_pids() -> set[int]:
            entries = [
                json.loads(line) for line in server.output().splitlines() if line.startswith("{")
            ]
            return {
                e["pid"]
                for e in entries
                if e.get("path") == "/graphql" and e.get("method") == "POST"
            }

        sent = 0
        while len(graphql_pids()) < 2:  # until both workers have answered some
            assert sent < 400, "one worker took every connection"
            for _ in range(20):  # a new connection each time
                httpx.post(f"{server.url}/graphql", json={"query": "{ __typename }"})
                sent += 1
            time.sleep(0.2)
        for _ in range(10):
            text = httpx.get(f"{server.url}/metrics").text
            counted = sample(
                text, "cetgql_graphql_requests_total", operation_type="query", status="200"
            )
            assert counted == sent, text[:2000]
    finally:
        server.stop()


def test_a_separate_worker_serves_its_job_runs(database, settings):
    port = _free_port()
    env = {**os.environ, "CETGQL_DATABASE_URL": database, "CETGQL_SECRET_KEY": settings.secret_key}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with tempfile.NamedTemporaryFile(prefix="cetgql-worker-", suffix=".log") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cetgql.cli", "worker", "--metrics-port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:  # the every-minute job runs at start (its tick is recent)
                try:
                    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
                    ran = sample_or_zero(
                        text, "cetgql_job_runs_total", job="lapse-overdue-orders", outcome="ok"
                    )
                    if ran >= 1:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, Path(log.name).read_text()
                time.sleep(0.3)
        finally:
            process.terminate()
            process.wait(timeout=30)
