"""Which plan PostgreSQL picks for every statement of a candidate's journey, on tables of
national size: a check that every hot lookup has its index.

    .venv/bin/python benchmarks/explain.py [--candidates 20000]

Seeds a fresh database with ``--candidates`` qualified candidates, gives every one but the
first a paid order, registration, payment, payment event and open session (bulk SQL), and
ANALYZEs. Then the first candidate goes the rush's way in-process (sign-in, availableSubjects,
selectSubjects written, startPayment, the provider's confirmation, oralCenters, selectSubjects
oral, startPayment, the overview), each statement is recorded with its parameters
(``tests/sql_counter.py``) and EXPLAINed with them. Prints each distinct statement's plan and
fails (exit 1) when a plan reads a table of more than ``--big`` rows sequentially.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common, load
from tests.sql_counter import SqlLog, recording

HISTORY_SQL = (
    """INSERT INTO "registration_order" ("number","kind","status","amount_fen","created_at",
    "expires_at","paid_at","account_id","province_id","session_id")
    SELECT 'H' || a."id", 'WRITTEN', 'PAID', 3000, now(), now() + interval '1 day', now(),
    a."id", $1, $2 FROM "account" a WHERE a."id" > $3""",
    """INSERT INTO "registration" ("status","active_key","paper_report","created_at",
    "expires_at","paid_at","account_id","campus_id","offering_id","order_id","school_id",
    "session_id")
    SELECT 'PAID', o."account_id" || ':' || $1::bigint, false, now(), o."expires_at", now(),
    o."account_id", $2, $1::bigint, o."id", $3, o."session_id" FROM "registration_order" o""",
    """INSERT INTO "payment" ("provider","out_trade_no","amount_fen","status","created_at",
    "updated_at","paid_at","order_id")
    SELECT 'alipay', 'H' || o."id", 3000, 'SUCCEEDED', now(), now(), now(), o."id"
    FROM "registration_order" o""",
    """INSERT INTO "payment_event" ("provider","kind","out_trade_no","outcome","detail","at",
    "payment_id")
    SELECT 'alipay', 'NOTIFY', p."out_trade_no", 'APPLIED', '{}', now(), p."id" FROM "payment" p""",
    """INSERT INTO "auth_session" ("token_hash","client_address","user_agent","created_at",
    "expires_at","account_id")
    SELECT md5(a."id"::text || random()::text) || md5(random()::text), '127.0.0.1', 'seed',
    now(), now() + interval '12 hours', a."id" FROM "account" a WHERE a."id" > $1""",
)


async def _history(url: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        first = await connection.fetchval('SELECT min("id") FROM "account"')
        session = await connection.fetchval('SELECT "id" FROM "exam_session" LIMIT 1')
        province = await connection.fetchval('SELECT "id" FROM "province" LIMIT 1')
        campus, school = await connection.fetchrow('SELECT "id","school_id" FROM "campus"')
        cet6 = await connection.fetchval(
            'SELECT o."id" FROM "session_subject" o JOIN "subject" s ON s."id"=o."subject_id" '
            "WHERE s.\"code\"='CET6'"
        )
        await connection.execute(HISTORY_SQL[0], province, session, first)
        await connection.execute(HISTORY_SQL[1], cet6, campus, school)
        await connection.execute(HISTORY_SQL[2])
        await connection.execute(HISTORY_SQL[3])
        await connection.execute(HISTORY_SQL[4], first)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def _journey(url: str, login: str, oral_center_id: int) -> SqlLog:
    """The first candidate's way, in-process, every statement recorded."""
    import httpx
    from strawberry.relay import GlobalID

    from cetgql import db
    from cetgql.app import create_app
    from cetgql.payments import TradeState
    from cetgql.services import payments
    from cetgql.settings import Settings, configure

    settings = Settings(database_url=url, secret_key=common.SECRET_KEY, public_url="http://e")
    configure(settings)
    await db.connect(url)
    app = create_app(settings, manage_database=False)
    transport = httpx.ASGITransport(app=app)
    try:
        with recording() as log:
            async with httpx.AsyncClient(transport=transport, base_url="http://e") as http:

                async def gql(query: str, variables: dict[str, Any], token: str = "") -> Any:
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    answer = await http.post(
                        "/graphql", json={"query": query, "variables": variables}, headers=headers
                    )
                    data = answer.json()
                    assert not data.get("errors"), data
                    return data["data"]

                signed = await gql(
                    load.SIGN_IN, {"input": {"login": login, "password": common.PASSWORD}}
                )
                token = signed["signIn"]["token"]
                await gql(load.AVAILABLE_SUBJECTS, {"sessionCode": common.SESSION_CODE}, token)
                center = str(GlobalID("OralCenter", str(oral_center_id)))
                for item in (
                    {"subjectCode": "CET4"},
                    {"subjectCode": "CET-SET4", "oralCenterId": center},
                ):
                    if "oralCenterId" in item:
                        await gql(
                            load.ORAL_CENTERS,
                            {"sessionCode": common.SESSION_CODE, "subjectCode": "CET-SET4"},
                            token,
                        )
                    chosen = await gql(
                        load.SELECT_SUBJECTS,
                        {"input": {"sessionCode": common.SESSION_CODE, "items": [item]}},
                        token,
                    )
                    order = chosen["selectSubjects"]["orders"][0]["id"]
                    started = await gql(
                        load.START_PAYMENT,
                        {"input": {"orderId": order, "provider": "alipay"}},
                        token,
                    )
                    trade = started["startPayment"]["payment"]["outTradeNo"]
                    payment = await payments.payment_by_trade(trade)
                    assert payment is not None
                    await payments.apply_report(
                        payment.id,
                        payments.Report(
                            TradeState.SUCCEEDED, payment.amount_fen, "T1", "NOTIFY", {}
                        ),
                    )
                    await gql(load.ORDER_STATUS, {"id": order}, token)
                await gql(load.overview_query(common.has_tickets_field()), {}, token)
        return log
    finally:
        await db.disconnect()
        configure(None)


def _seq_scans(plan: dict[str, Any]) -> list[str]:
    found = []
    if plan.get("Node Type") == "Seq Scan":
        found.append(plan.get("Relation Name", "?"))
    for child in plan.get("Plans", []):
        found += _seq_scans(child)
    return found


def _summary(plan: dict[str, Any], depth: int = 0) -> list[str]:
    what = plan.get("Node Type", "?")
    if plan.get("Index Name"):
        what += f" using {plan['Index Name']}"
    if plan.get("Relation Name"):
        what += f" on {plan['Relation Name']}"
    lines = ["  " * depth + what]
    for child in plan.get("Plans", []):
        lines += _summary(child, depth + 1)
    return lines


async def _explain(url: str, log: SqlLog, big: int) -> int:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    sizes = {
        r["relname"]: r["n_live_tup"]
        for r in await connection.fetch("SELECT relname, n_live_tup FROM pg_stat_user_tables")
    }
    seen: set[str] = set()
    problems = 0
    try:
        for sql, values in zip(log.statements, log.values, strict=True):
            shape = re.sub(r"\$\d+", "$", sql)
            if (
                shape in seen
                or not re.match(r"(SELECT|UPDATE|DELETE)\b", sql)
                or "pg_notify" in sql
            ):
                continue
            seen.add(shape)
            async with connection.transaction():  # EXPLAIN only; nothing is changed
                text = await connection.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *values)
            plan = json.loads(text)[0]["Plan"]
            scans = [t for t in _seq_scans(plan) if sizes.get(t, 0) > big]
            mark = "SEQ SCAN of a big table: " + ", ".join(scans) if scans else "ok"
            problems += bool(scans)
            print(f"\n{sql[:160]}{'...' if len(sql) > 160 else ''}\n  -> {mark}")
            for line in _summary(plan):
                print(f"     {line}")
    finally:
        await connection.close()
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=20000)
    parser.add_argument("--big", type=int, default=5000, help="rows that make a table big")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    database = common.run(common.create_database("explain"))
    try:
        print(f"seeding {args.candidates} candidates and their history ...", flush=True)
        seeded = common.run(
            common.seed(database.url, args.candidates, server_url="http://127.0.0.1")
        )
        common.run(_history(database.url))
        log = common.run(_journey(database.url, seeded.logins[0], seeded.oral_center_ids[0]))
        print(f"{log.count} statements in the journey and the overview")
        problems = common.run(_explain(database.url, log, args.big))
    finally:
        if not args.keep:
            common.run(common.drop_database(database))
    print(f"\n{problems} statement(s) read a big table sequentially")
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
