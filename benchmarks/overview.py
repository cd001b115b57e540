"""The candidate's overview read: registrations, orders with their payments, tickets.

    .venv/bin/python benchmarks/overview.py [--candidates 200] [--concurrency 32]
        [--duration 20] [--workers 1]

Exits with status 1 when any request failed (the errors are printed): such a run is no figure.

Seeds one fresh PostgreSQL database with ``--candidates`` candidates who each went the whole
way (written CET4 and oral CET-SET4 chosen and paid through the services, so two orders, two
payments, two registrations each), with published written tickets (seats allocated by the
school through the GraphQL admin mutations, print window open) when the schema has tickets.
Then the same load, ``--concurrency`` simulated candidates asking for their overview in a
loop for ``--duration`` seconds after a warm-up, is driven against ``cetgql serve`` (the query
``benchmarks/load.py:OVERVIEW``) and against the bare reference (``GET /bare/overview``, the
same fields from plain asyncpg) on that same database. Prints requests/s, p50/p99 and the
ratio GraphQL / bare, with the CPU each side used per request.

The admin database comes from ``CETGQL_BENCH_DATABASE_URL`` (default
postgres://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common, load

ROOM_SEATS = 30


async def _history(url: str, candidates: int, oral_center_ids: list[int]) -> None:
    """Every candidate chooses and pays CET4, then CET-SET4, through the services (the
    provider's confirmation applied as a verified notification would be)."""
    from cetgql import db, models
    from cetgql.payments import TradeState
    from cetgql.services import payments, registration
    from cetgql.settings import Settings, configure

    configure(Settings(database_url=url, secret_key=common.SECRET_KEY))
    await db.connect(url)
    try:
        accounts = await models.Account.all().order_by("id")
        for n, account in enumerate(accounts[:candidates]):
            choices = (
                registration.Choice("CET4"),
                registration.Choice("CET-SET4", oral_center_ids[n % len(oral_center_ids)]),
            )
            for choice in choices:
                (order,) = await registration.select_subjects(
                    account, common.SESSION_CODE, [choice]
                )
                payment = await payments.start_payment(account, order.id, "alipay")
                await payments.apply_report(
                    payment.id,
                    payments.Report(
                        TradeState.SUCCEEDED,
                        payment.amount_fen,
                        f"2026{payment.id:024d}",
                        "NOTIFY",
                        {},
                    ),
                )
    finally:
        await db.disconnect()
        configure(None)


async def _tickets(url: str, candidates: int) -> str:
    """The school allocates seats and publishes the written tickets, print window open, as
    its admin would through GraphQL (in-process). Returns what was done, for the report."""
    import httpx

    from cetgql import db, models
    from cetgql.app import create_app
    from cetgql.models import Role
    from cetgql.services import accounts, clock, sessions
    from cetgql.settings import Settings, configure

    settings = Settings(database_url=url, secret_key=common.SECRET_KEY)
    configure(settings)
    await db.connect(url)
    try:
        admin = await accounts.create_admin(
            name="学校管理员",
            email="school-admin@bench.example.cn",
            password="Admin@2026x",
            role=Role.SCHOOL_ADMIN,
            school_code=common.SCHOOL_CODE,
        )
        token = await sessions.open_session(admin, client_address="127.0.0.1", user_agent="b")
        await models.RegistrationWindow.all().update(closes_at=clock.now() - timedelta(minutes=1))
        unit = {"sessionCode": common.SESSION_CODE, "kind": "WRITTEN"}
        unit["schoolCode"] = common.SCHOOL_CODE
        rooms = [
            {"number": n + 1, "capacity": ROOM_SEATS, "name": f"第一教学楼 A{101 + n}"}
            for n in range(math.ceil(candidates / ROOM_SEATS))
        ]
        now = clock.now()
        steps = (
            (
                "setExamRooms",
                "mutation($input: SetExamRoomsInput!) { setExamRooms(input: $input) "
                "{ userErrors { code message } } }",
                {
                    "sessionCode": common.SESSION_CODE,
                    "schoolCode": common.SCHOOL_CODE,
                    "campusCode": "1",
                    "rooms": rooms,
                },
            ),
            (
                "allocateSeats",
                "mutation($input: AllocateSeatsInput!) { allocateSeats(input: $input) "
                "{ userErrors { code message } } }",
                {**unit, "seed": "benchmark"},
            ),
            (
                "publishTickets",
                "mutation($input: PublishTicketsInput!) { publishTickets(input: $input) "
                "{ userErrors { code message } } }",
                unit,
            ),
            (
                "setTicketPrintWindow",
                "mutation($input: SetTicketPrintWindowInput!) { setTicketPrintWindow("
                "input: $input) { userErrors { code message } } }",
                {
                    **unit,
                    "opensAt": (now - timedelta(hours=1)).isoformat(),
                    "closesAt": (now + timedelta(days=3)).isoformat(),
                },
            ),
        )
        app = create_app(settings, manage_database=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            for name, query, variables in steps:
                answer = (
                    await http.post(
                        "/graphql",
                        json={"query": query, "variables": {"input": variables}},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                ).json()
                problems = answer.get("errors") or (answer.get("data") or {})[name]["userErrors"]
                if problems:
                    return f"no tickets ({name} refused: {str(problems)[:200]})"
        published = await models.Ticket.filter(published_at__isnull=False).count()
        return f"{published} written tickets published, print window open"
    finally:
        await db.disconnect()
        configure(None)


def seed_overview(url: str, candidates: int, *, with_tickets: bool) -> tuple[list[str], str]:
    """Seed ``url`` with candidates who went the whole way; their session tokens, and what was
    done about tickets (for the report)."""
    print("seeding ...", flush=True)
    seeded = common.run(
        common.seed(url, candidates, server_url="http://127.0.0.1", with_sessions=True)
    )
    common.run(_history(url, candidates, seeded.oral_center_ids))
    tickets = common.run(_tickets(url, candidates)) if with_tickets else "no tickets in the schema"
    common.run(common.analyze(url))
    return seeded.tokens, tickets


def run_target(
    target: str,
    database: common.BenchDatabase,
    tokens: list[str],
    query: str,
    args: argparse.Namespace,
    pool: ProcessPoolExecutor,
) -> dict[str, Any]:
    port = common.free_port()
    url = f"http://127.0.0.1:{port}"
    start = common.graphql_server if target == "graphql" else common.bare_server
    with start(database.url, port, args.workers) as server:
        meter = common.CpuMeter(server, database.name)
        common.run(meter.start())
        before = common.load_average()
        result: dict[str, Any] = pool.submit(
            load.run_overview,
            target,
            url,
            tokens,
            query,
            args.concurrency,
            args.duration,
            args.warmup,
        ).result()
        result["server_cpu"], result["db_cpu"] = common.run(meter.stop())
        result["kernel_cpu"] = meter.kernel
        # The meter ran through the warm-up too: scale it to the measured window.
        share = args.duration / (args.duration + args.warmup)
        result["server_cpu"] *= share
        result["kernel_cpu"] *= share
        result["db_cpu"] *= share
        result["client_cpu"] *= share
        result["load_before"], result["load_after"] = before, common.load_average()
    return result


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace, tickets: str) -> None:
    print()
    print(
        f"overview: {args.candidates} candidates (2 registrations, 2 orders, 2 payments each; "
        f"{tickets}), concurrency {args.concurrency}, {args.duration:.0f} s after "
        f"{args.warmup:.0f} s warm-up, {args.workers} worker(s) per server"
    )
    print(
        f"{'':>8} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        f" {'server CPU/req':>15} {'PG CPU/req':>11} {'loadgen CPU/req':>16}  load average"
    )
    for target, r in results.items():
        n = max(r["requests"], 1)
        print(
            f"{target:>8} {r['requests'] / r['elapsed']:>11.0f}"
            f" {common.ms(common.percentile(r['latencies'], 0.5)):>8}"
            f" {common.ms(common.percentile(r['latencies'], 0.99)):>8} {r['errors']:>7}"
            f" {common.ms(r['server_cpu'] / n) + ' ms':>9}"
            f" ({common.ms(r['kernel_cpu'] / n)} sys)"
            f" {common.ms(r['db_cpu'] / n) + ' ms':>11}"
            f" {common.ms(r['client_cpu'] / n) + ' ms':>16}"
            f"  {r['load_before']} -> {r['load_after']}"
        )
        for sample in r["samples"]:
            print(f"          error: {sample}")
    if "graphql" in results and "bare" in results:
        g = results["graphql"]["requests"] / results["graphql"]["elapsed"]
        b = results["bare"]["requests"] / results["bare"]["elapsed"]
        print(f"\nratio GraphQL / bare: {g / b:.2f} ({g:.0f} / {b:.0f} requests/s; target 0.50)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers per server")
    parser.add_argument("--targets", default="graphql,bare", help="comma-separated")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    for line in common.machine_report(common.run(common.postgres_version(common.admin_url()))):
        print(line)
    with_tickets = common.has_tickets_field()
    query = load.overview_query(with_tickets)
    database = common.run(common.create_database("overview"))
    try:
        tokens, tickets = seed_overview(database.url, args.candidates, with_tickets=with_tickets)
        context = multiprocessing.get_context("spawn")
        results: dict[str, dict[str, Any]] = {}
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            for target in args.targets.split(","):
                print(f"running {target} ...", flush=True)
                results[target.strip()] = run_target(
                    target.strip(), database, tokens, query, args, pool
                )
        report(results, args, tickets)
        failed = {t: r["errors"] for t, r in results.items() if r["errors"] or not r["requests"]}
        if failed:
            # A figure with failed requests measures a broken path: not a result.
            sys.exit(f"failed requests: {failed}")
    finally:
        if not args.keep:
            common.run(common.drop_database(database))


if __name__ == "__main__":
    main()
