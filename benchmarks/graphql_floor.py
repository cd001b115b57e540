"""What executing the overview costs Strawberry and graphql-core alone, with no database.

    .venv/bin/python benchmarks/graphql_floor.py [--requests 3000]

A small schema of the overview's shape (an account with 2 registrations, 2 orders of 2
payments each, 1 ticket; the same fields and nesting as ``benchmarks/load.py:OVERVIEW``, with
``orders`` a Relay connection and the same async resolvers), its objects already in memory,
executed with ``schema.execute`` and the parser and validation caches on: no HTTP, no
middleware, no SQL. Prints the CPU per execution beside ``orjson`` building the same answer
by hand. This is the floor any overview request of cetgql pays on top of its statements;
``benchmarks/overview_parts.py`` measures what the real request pays.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import strawberry
import uvloop
from strawberry import relay
from strawberry.extensions import ParserCache, ValidationCache

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import load

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


@strawberry.type
class Money:
    fen: int
    yuan: str
    currency: str = "CNY"


@strawberry.type
class Subject:
    code: str
    name: str
    kind: str


@strawberry.type
class OralCenter:
    name: str


@strawberry.type
class Payment(relay.Node):
    id: relay.NodeID[int]
    provider: str
    out_trade_no: str
    status: str
    amount: Money
    paid_at: datetime | None
    refund_reason: str | None


@strawberry.type
class Order(relay.Node):
    id: relay.NodeID[int]
    number: str
    kind: str
    status: str
    amount: Money
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None
    rows: strawberry.Private[list[Payment]]

    @strawberry.field
    async def payments(self) -> list[Payment]:  # a DataLoader in cetgql
        return self.rows


@strawberry.type
class Registration(relay.Node):
    id: relay.NodeID[int]
    status: str
    expires_at: datetime | None
    subject: Subject
    oral_center: OralCenter | None
    order: Order | None


@strawberry.type
class Ticket(relay.Node):
    id: relay.NodeID[int]
    number: str
    subject: Subject
    exam_start: datetime
    exam_end: datetime
    center_name: str
    room: str | None
    seat: str | None
    printable_from: datetime | None
    printable_until: datetime | None


def _payment(n: int) -> Payment:
    return Payment(
        id=n,
        provider="alipay",
        out_trade_no=f"2026{n:016d}",
        status="SUCCEEDED",
        amount=Money(fen=3000, yuan="30.00"),
        paid_at=NOW,
        refund_reason=None,
    )


def _order(n: int) -> Order:
    return Order(
        id=n,
        number=f"2026120300000000{n:04d}",
        kind="WRITTEN",
        status="PAID",
        amount=Money(fen=3000, yuan="30.00"),
        created_at=NOW,
        expires_at=NOW,
        paid_at=NOW,
        rows=[_payment(2 * n), _payment(2 * n + 1)],
    )


ORDERS = [_order(1), _order(2)]
REGISTRATIONS = [
    Registration(
        id=n,
        status="PAID",
        expires_at=None,
        subject=Subject(code="CET4", name="英语四级", kind="WRITTEN"),
        oral_center=OralCenter(name="广州口试考点1") if n == 2 else None,
        order=ORDERS[n - 1],
    )
    for n in (1, 2)
]
TICKETS = [
    Ticket(
        id=1,
        number="105581262100101",
        subject=Subject(code="CET4", name="英语四级", kind="WRITTEN"),
        exam_start=NOW,
        exam_end=NOW,
        center_name="中山大学（南校园）",
        room="001",
        seat="01",
        printable_from=NOW,
        printable_until=NOW,
    )
]


@strawberry.type
class Account:
    @strawberry.field
    async def registrations(self) -> list[Registration]:
        return REGISTRATIONS

    @relay.connection(relay.ListConnection[Order])
    async def orders(self) -> Iterable[Order]:
        return ORDERS

    @strawberry.field
    async def tickets(self) -> list[Ticket]:
        return TICKETS


@strawberry.type
class Query:
    @strawberry.field
    async def viewer(self) -> Account:
        return Account()


def _by_hand() -> bytes:
    """The same answer as plain dicts, as the bare reference builds it."""
    at = NOW.isoformat()
    return orjson.dumps(
        {
            "data": {
                "viewer": {
                    "registrations": [
                        {
                            "id": r.id,
                            "status": r.status,
                            "expiresAt": None,
                            "subject": {"code": "CET4", "name": "英语四级", "kind": "WRITTEN"},
                            "oralCenter": {"name": r.oral_center.name} if r.oral_center else None,
                            "order": {"number": r.order.number} if r.order else None,
                        }
                        for r in REGISTRATIONS
                    ],
                    "orders": {
                        "edges": [
                            {
                                "node": {
                                    "id": o.id,
                                    "number": o.number,
                                    "kind": o.kind,
                                    "status": o.status,
                                    "amount": {"fen": 3000, "yuan": "30.00"},
                                    "createdAt": at,
                                    "expiresAt": at,
                                    "paidAt": at,
                                    "payments": [
                                        {
                                            "id": p.id,
                                            "provider": p.provider,
                                            "outTradeNo": p.out_trade_no,
                                            "status": p.status,
                                            "amount": {"yuan": "30.00"},
                                            "paidAt": at,
                                            "refundReason": None,
                                        }
                                        for p in o.rows
                                    ],
                                }
                            }
                            for o in ORDERS
                        ]
                    },
                    "tickets": [{"id": t.id, "number": t.number} for t in TICKETS],
                }
            }
        }
    )


async def _measure(requests: int) -> tuple[float, float]:
    schema = strawberry.Schema(
        Query,
        extensions=[lambda: ParserCache(maxsize=16), lambda: ValidationCache(maxsize=16)],
    )
    query = load.overview_query(True)
    result = await schema.execute(query)
    if result.errors:
        raise SystemExit(str(result.errors))
    for _ in range(100):
        await schema.execute(query)
    started = time.process_time()
    for _ in range(requests):
        orjson.dumps({"data": (await schema.execute(query)).data})
    graphql = (time.process_time() - started) / requests
    started = time.process_time()
    for _ in range(requests):
        _by_hand()
    return graphql, (time.process_time() - started) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    graphql, by_hand = uvloop.run(_measure(args.requests))
    print(f"the overview executed by Strawberry, in memory: {graphql * 1000:.2f} ms CPU")
    print(f"the same answer built by hand with orjson:      {by_hand * 1000:.3f} ms CPU")


if __name__ == "__main__":
    main()
