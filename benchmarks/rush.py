"""The registration rush: N candidates arrive at once and each goes the whole way.

    .venv/bin/python benchmarks/rush.py [--candidates 200] [--concurrency 50] [--workers 1]

Exits with status 1 when any journey failed (the errors are printed): such a run is no figure.

Each simulated candidate signs in (Argon2 verification included), lists the subjects open to
them, chooses the written CET4, pays it through the Alipay sandbox (startPayment, the
sandbox's gateway and cashier, pressing pay, the sandbox's signed notification to our notify
endpoint) and sees the order paid, then lists the oral centres, chooses CET-SET4 at one of
them, pays that the same way, and finally looks at their tickets (``viewer.tickets`` when the
schema has it, else ``viewer.registrations``).

The same load runs against ``cetgql serve`` (GraphQL, Strawberry, Tortoise) and against the
bare reference ``benchmarks/bare.py`` (plain Starlette and asyncpg doing the same database
work), each on a fresh PostgreSQL database seeded identically, with the same number of
uvicorn workers. The load generator runs in a separate process (``benchmarks/load.py``).
Prints completed journeys per second, p50/p99 latency per operation, the CPU the servers,
PostgreSQL and the load generator used, and the ratio GraphQL / bare.

The admin database comes from ``CETGQL_BENCH_DATABASE_URL`` (default
postgres://postgres@127.0.0.1:5432/test); the benchmark creates and drops its own databases.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common, load

OPERATIONS = (
    "signIn",
    "availableSubjects",
    "selectSubjects",
    "startPayment",
    "cashier",
    "pay",
    "orderPaid",
    "oralCenters",
    "lastLook",
)


def run_target(target: str, args: argparse.Namespace, pool: ProcessPoolExecutor) -> dict[str, Any]:
    database = common.run(common.create_database(f"rush_{target}"))
    try:
        port = common.free_port()
        url = f"http://127.0.0.1:{port}"
        seeded = common.run(
            common.seed(database.url, args.candidates + args.warmup, server_url=url)
        )
        start = common.graphql_server if target == "graphql" else common.bare_server
        with start(database.url, port, args.workers) as server:
            tickets = common.has_tickets_field()
            warm, measured = seeded.logins[: args.warmup], seeded.logins[args.warmup :]
            if warm:
                pool.submit(
                    load.run_rush,
                    target,
                    url,
                    warm,
                    common.PASSWORD,
                    min(args.concurrency, len(warm)),
                    tickets,
                ).result()
            meter = common.CpuMeter(server, database.name)
            common.run(meter.start())
            load_before = common.load_average()
            result: dict[str, Any] = pool.submit(
                load.run_rush, target, url, measured, common.PASSWORD, args.concurrency, tickets
            ).result()
            result["server_cpu"], result["db_cpu"] = common.run(meter.stop())
            result["kernel_cpu"] = meter.kernel
            result["load_before"] = load_before
            result["load_after"] = common.load_average()
            result["tickets"] = tickets
        return result
    finally:
        if not args.keep:
            common.run(common.drop_database(database))


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print()
    print(
        f"rush: {args.candidates} candidates, concurrency {args.concurrency}, "
        f"{args.workers} worker(s) per server, {args.warmup} warm-up journeys not counted"
    )
    last_look = (
        "viewer.tickets"
        if results.get("graphql", {}).get("tickets")
        else ("viewer.registrations (no tickets field yet)")
    )
    print(f"last step: {last_look}")
    for target, r in results.items():
        rate = r["completed"] / r["elapsed"] if r["elapsed"] else 0.0
        done = max(r["completed"], 1)
        print(
            f"{target:>8}: {r['completed']} journeys in {r['elapsed']:.1f} s = "
            f"{rate:.1f} journeys/s, {r['failed']} failed; CPU per journey: server "
            f"{common.ms(r['server_cpu'] / done)} ms ({common.ms(r['kernel_cpu'] / done)} in the "
            f"kernel), PostgreSQL {common.ms(r['db_cpu'] / done)} "
            f"ms, load generator {common.ms(r['client_cpu'] / done)} ms; "
            f"load average {r['load_before']} -> {r['load_after']}"
        )
        for sample in r["samples"]:
            print(f"          error: {sample}")
    print()
    targets = list(results)
    header = f"{'operation (ms)':<18}" + "".join(
        f"{t + ' p50':>13}{t + ' p99':>13}" for t in targets
    )
    print(header + f"{'count':>8}")
    for op in OPERATIONS:
        row = f"{op:<18}"
        count = 0
        for t in targets:
            values = results[t]["latencies"].get(op, [])
            count = max(count, len(values))
            row += f"{common.ms(common.percentile(values, 0.5)):>13}"
            row += f"{common.ms(common.percentile(values, 0.99)):>13}"
        print(row + f"{count:>8}")
    if "graphql" in results and "bare" in results:
        g, b = results["graphql"], results["bare"]
        g_rate = g["completed"] / g["elapsed"]
        b_rate = b["completed"] / b["elapsed"]
        print()
        print(
            f"ratio GraphQL / bare: {g_rate / b_rate:.2f} "
            f"({g_rate:.1f} / {b_rate:.1f} journeys/s; target 0.50 or better)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers per server")
    parser.add_argument("--warmup", type=int, default=10, help="journeys before measuring")
    parser.add_argument("--targets", default="graphql,bare", help="comma-separated: graphql, bare")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()

    for line in common.machine_report(common.run(common.postgres_version(common.admin_url()))):
        print(line)
    context = multiprocessing.get_context("spawn")
    results: dict[str, dict[str, Any]] = {}
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        for target in args.targets.split(","):
            print(f"running {target} ...", flush=True)
            results[target] = run_target(target.strip(), args, pool)
    report(results, args)
    failed = {t: r["failed"] for t, r in results.items() if r["failed"] or not r["completed"]}
    if failed:
        # A figure with failed journeys measures a broken path: not a result.
        sys.exit(f"failed journeys: {failed}")


if __name__ == "__main__":
    main()
