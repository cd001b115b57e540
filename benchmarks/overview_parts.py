"""Where an overview request's CPU goes: each part of the overview query alone, in-process.

    .venv/bin/python benchmarks/overview_parts.py [--candidates 40] [--requests 1500]

Seeds a fresh PostgreSQL database the way ``benchmarks/overview.py`` does (two paid
registrations, two orders, two payments and a published written ticket per candidate), then
sends each query below ``--requests`` times through the real ASGI application in this process,
one after the other (no HTTP server, no load generator: nothing else competes for the CPU),
and prints the process CPU time per request and the SQL statements each request sends. The
parts overlap: each includes the session lookup and the fixed cost of a request.

The admin database comes from ``CETGQL_BENCH_DATABASE_URL`` (default
postgres://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common, load
from benchmarks.overview import seed_overview

PARTS = (
    ("{ __typename }: middleware, HTTP view, cached parse and validation", "{ __typename }"),
    ("viewer { id }: the bearer token's session and account", "{ viewer { id } }"),
    (
        "viewer { registrations }",
        "{ viewer { registrations { id status expiresAt subject { code name kind } "
        "oralCenter { name } order { number } } } }",
    ),
    (
        "viewer { orders { payments } }",
        "{ viewer { orders(first: 10) { edges { node { id number kind status "
        "amount { fen yuan } createdAt expiresAt paidAt payments { id provider outTradeNo "
        "status amount { yuan } paidAt refundReason } } } } } }",
    ),
    ("viewer { tickets }", "{ viewer { " + load.OVERVIEW_TICKETS + " } }"),
    ("the whole overview (benchmarks/load.py)", load.overview_query(True)),
)


def _scope(body: bytes, token: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"accept", b"application/graphql-response+json"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _measure(url: str, tokens: list[str], requests: int) -> list[tuple[str, float, int]]:
    from cetgql import db
    from cetgql.app import create_app
    from cetgql.settings import Settings, configure
    from tests.sql_counter import recording

    settings = Settings(database_url=url, secret_key=common.SECRET_KEY, run_jobs=False)
    configure(settings)
    await db.connect(url)
    try:
        app = create_app(settings, manage_database=False)

        async def call(body: bytes, token: str) -> bytes:
            sent = False
            answer: list[bytes] = []

            async def receive() -> dict[str, Any]:
                nonlocal sent
                assert not sent, "the request body is read once"
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.body":
                    answer.append(message.get("body", b""))

            await app(_scope(body, token), receive, send)
            return b"".join(answer)

        results = []
        for label, query in PARTS:
            body = orjson.dumps({"query": query})
            first = orjson.loads(await call(body, tokens[0]))
            if first.get("errors") or not first.get("data"):
                raise SystemExit(f"{label}: {first}")
            with recording() as log:
                await call(body, tokens[0])
            for n in range(50):  # warm: caches, prepared statements, the pool
                await call(body, tokens[n % len(tokens)])
            started = time.process_time()
            for n in range(requests):
                await call(body, tokens[n % len(tokens)])
            results.append((label, (time.process_time() - started) / requests, log.count))
        return results
    finally:
        await db.disconnect()
        configure(None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=40)
    parser.add_argument("--requests", type=int, default=1500, help="per part")
    args = parser.parse_args()

    for line in common.machine_report(common.run(common.postgres_version(common.admin_url()))):
        print(line)
    database = common.run(common.create_database("parts"))
    try:
        tokens, tickets = seed_overview(database.url, args.candidates, with_tickets=True)
        print(tickets, flush=True)
        results = uvloop.run(_measure(database.url, tokens, args.requests))
    finally:
        common.run(common.drop_database(database))
    print()
    print(f"{'the overview asked for':<68} {'CPU/request':>12} {'statements':>11}")
    for label, cpu, statements in results:
        print(f"{label:<68} {cpu * 1000:>9.2f} ms {statements:>11}")


if __name__ == "__main__":
    main()
