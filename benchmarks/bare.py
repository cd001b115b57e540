"""The bare reference: the candidate's rush journey and overview as plain Starlette handlers
over asyncpg, with no GraphQL and no ORM.

It is what the benchmarks compare cetgql with: the same tables (cetgql's migrations), the same
statements in the same transactions with the same row locks, the same Argon2 parameters
(:mod:`cetgql.services.passwords`), the same rules for what may be chosen, the same Alipay
plugin and sandbox for the payment step, and JSON answers with the same fields as the GraphQL
operations the load generator sends. What it leaves out is exactly what the comparison
measures: GraphQL parsing, validation and execution, Strawberry's types and permission
classes, DataLoaders, and Tortoise's query building and model instances.

It implements the journey's happy path and the checks on it, not every branch of the
services (no provider switch, no late or double payment handling: the journey never takes
them). Run it as ``python -m benchmarks.bare --port 8001 [--workers N]`` with
``CETGQL_DATABASE_URL`` (PostgreSQL) and ``CETGQL_PUBLIC_URL`` set; ``benchmarks/rush.py`` and
``benchmarks/overview.py`` start it themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from cetgql.db import PooledConnection
from cetgql.payments import (
    ChargeRequest,
    InvalidNotification,
    MerchantConfig,
    NotifyRequest,
    PaymentError,
    TradeState,
)
from cetgql.payments.manager import registry
from cetgql.services import passwords as password_policy

PAYMENT_PERIOD = timedelta(hours=24)
SESSION_TTL = timedelta(hours=12)
SIGN_IN_BUCKET_HITS = 50
SIGN_IN_BUCKET_WINDOW = timedelta(minutes=15)
START_PAYMENT_HITS = 10
START_PAYMENT_WINDOW = timedelta(minutes=1)
OPEN_PAYMENT = ("CREATED", "PENDING")

_hasher = PasswordHasher(
    time_cost=password_policy.TIME_COST,
    memory_cost=password_policy.MEMORY_COST_KIB,
    parallelism=password_policy.PARALLELISM,
)


def now() -> datetime:
    return datetime.now(UTC)


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


_SHANGHAI = timezone(timedelta(hours=8))


def iso(value: datetime | None) -> str | None:
    """Beijing time with its offset, as cetgql's DateTime scalar writes it."""
    return value.astimezone(_SHANGHAI).isoformat() if value is not None else None


def answer(payload: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code, media_type="application/json")


def user_error(code: str, *field: str) -> dict[str, Any]:
    return {"field": list(field) or None, "code": code, "message": code}


class Refused(Exception):
    """A business failure: answered as ``userErrors``, the transaction rolled back."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors


# --- set-up --------------------------------------------------------------------------------


async def _init_connection(connection: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    url = os.environ["CETGQL_DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    size = int(os.environ.get("CETGQL_DB_POOL_SIZE") or 10)
    # The same pooled connection class as cetgql's (no reset round trip on release).
    app.state.pool = await asyncpg.create_pool(
        url.split("?")[0],
        min_size=1,
        max_size=size,
        init=_init_connection,
        connection_class=PooledConnection,
    )
    try:
        yield
    finally:
        await app.state.pool.close()


def pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool  # type: ignore[no-any-return]


def public_url() -> str:
    return os.environ.get("CETGQL_PUBLIC_URL", "http://127.0.0.1:8001").rstrip("/")


def notify_url() -> str:
    return f"{public_url()}/payments/alipay/notify"


# --- sign-in and sessions ------------------------------------------------------------------


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def sign_in(request: Request) -> Response:
    body = orjson.loads(await request.body())
    login, password = str(body.get("login", "")).strip(), str(body.get("password", ""))
    client = request.client.host if request.client else "unknown"
    at = now()
    async with pool(request).acquire() as db:
        hits = await db.fetch(
            'SELECT "at" FROM "rate_limit_hit" WHERE "bucket"=$1 AND "at">$2 '
            'ORDER BY "at" DESC LIMIT $3',
            f"sign-in:address:{client}",
            at - SIGN_IN_BUCKET_WINDOW,
            SIGN_IN_BUCKET_HITS,
        )
        if len(hits) >= SIGN_IN_BUCKET_HITS:
            return answer({"token": None, "userErrors": [user_error("RATE_LIMITED")]})
        account = await db.fetchrow(
            'SELECT "id","name","must_change_password","password_hash","failed_sign_ins",'
            '"locked_until" FROM "account" WHERE "id_number"=$1 ORDER BY "id" LIMIT 1',
            login.upper(),
        )
        if account is None:
            return answer({"token": None, "userErrors": [user_error("INVALID_CREDENTIALS")]})
        failures = account["failed_sign_ins"]
        await db.execute(
            'UPDATE "account" SET "failed_sign_ins"=$1,"last_failed_sign_in_at"=$2 '
            'WHERE "id"=$3 AND "failed_sign_ins"=$4',
            failures + 1,
            at,
            account["id"],
            failures,
        )
    # The connection goes back to the pool during the hash, as in cetgql.
    if not await asyncio.to_thread(_verify, account["password_hash"], password):
        return answer({"token": None, "userErrors": [user_error("INVALID_CREDENTIALS")]})
    token = secrets.token_urlsafe(32)
    async with pool(request).acquire() as db:
        await db.execute(
            'UPDATE "account" SET "failed_sign_ins"=0,"last_failed_sign_in_at"=NULL,'
            '"locked_until"=NULL WHERE "id"=$1',
            account["id"],
        )
        await db.fetchval(
            'INSERT INTO "auth_session" ("token_hash","client_address","user_agent","created_at",'
            '"expires_at","account_id") VALUES ($1,$2,$3,$4,$5,$6) RETURNING "id"',
            hashlib.sha256(token.encode()).hexdigest(),
            client[:64],
            (request.headers.get("user-agent") or "")[:255],
            at,
            at + SESSION_TTL,
            account["id"],
        )
    return answer(
        {
            "token": token,
            "account": {
                "id": account["id"],
                "name": account["name"],
                "mustChangePassword": account["must_change_password"],
            },
            "userErrors": [],
        }
    )


async def viewer(request: Request, db: asyncpg.Connection) -> asyncpg.Record | None:
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return await db.fetchrow(
        'SELECT a."id",a."must_change_password" FROM "auth_session" s '
        'JOIN "account" a ON a."id"=s."account_id" '
        'WHERE s."token_hash"=$1 AND s."revoked_at" IS NULL AND s."expires_at">$2 LIMIT 1',
        hashlib.sha256(token.strip().encode()).hexdigest(),
        now(),
    )


def unauthenticated() -> Response:
    return answer({"errors": [{"message": "Authentication required"}]}, 401)


# --- the rules of what may be chosen (cetgql.services.eligibility) -------------------------


@dataclass
class Offering:
    id: int
    code: str
    name: str
    kind: str
    level: int
    slot: str
    written_prerequisite: str | None


@dataclass
class Situation:
    account_id: int
    session_id: int
    at: datetime
    qualification: asyncpg.Record | None
    offerings: dict[str, Offering]
    active: list[asyncpg.Record]
    cet6_approved: bool
    fees: dict[str, int] = field(default_factory=dict)
    open_kinds: set[str] = field(default_factory=set)
    province_id: int | None = None
    centers: list[asyncpg.Record] = field(default_factory=list)
    taken: dict[int, int] = field(default_factory=dict)

    def active_codes(self) -> set[str]:
        return {r["code"] for r in self.active}

    def paid_codes(self) -> set[str]:
        return {r["code"] for r in self.active if r["status"] == "PAID"}

    def taken_slots(self) -> set[str]:
        return {r["slot"] for r in self.active}

    def centers_for(self, code: str) -> list[asyncpg.Record]:
        return [c for c in self.centers if not c["subject_codes"] or code in c["subject_codes"]]

    def remaining(self, center: asyncpg.Record) -> int:
        return max(center["capacity"] - self.taken.get(center["id"], 0), 0)

    def allowed_by_school(self, code: str) -> bool:
        offering = self.offerings.get(code)
        if offering is None or self.qualification is None:
            return False
        roster = set(self.qualification["eligible_subjects"] or [])
        if offering.kind == "ORAL":
            written = offering.written_prerequisite
            return code in roster or (written is not None and self.allowed_by_school(written))
        if code == "CET6" and self.cet6_approved:
            return True
        return code in roster

    def reasons(
        self, code: str, chosen_slots: set[str] | None = None, check_seats: bool = True
    ) -> list[str]:
        offering = self.offerings.get(code)
        if offering is None:
            return ["SUBJECT_NOT_OFFERED"]
        if self.qualification is None:
            return ["NOT_QUALIFIED"]
        if self.qualification["confirmed_at"] is None:
            return ["NOT_CONFIRMED"]
        if code in self.active_codes():
            return ["ALREADY_REGISTERED"]
        found = []
        if code not in self.fees:
            found.append("SUBJECT_NOT_OFFERED")
        if not self.allowed_by_school(code):
            found.append("CET6_REQUIRES_CET4" if code == "CET6" else "SUBJECT_NOT_IN_ROSTER")
        if offering.kind == "ORAL" and offering.written_prerequisite not in self.paid_codes():
            found.append("WRITTEN_NOT_PAID")
        if offering.slot in self.taken_slots() | (chosen_slots or set()):
            found.append("SLOT_TAKEN")
        if offering.kind not in self.open_kinds:
            found.append("WINDOW_CLOSED")
        if (
            check_seats
            and offering.kind == "ORAL"
            and not any(self.remaining(c) > 0 for c in self.centers_for(code))
        ):
            found.append("SEATS_FULL")
        return found


async def session_id_of(db: asyncpg.Connection, code: str) -> int | None:
    return await db.fetchval(  # type: ignore[no-any-return]
        'SELECT "id" FROM "exam_session" WHERE "code"=$1 LIMIT 2', code.strip().upper()[:8]
    )


async def load_situation(
    db: asyncpg.Connection, account_id: int, session_id: int, *, with_centers: bool
) -> Situation:
    at = now()
    qualification = await db.fetchrow(
        'SELECT q."confirmed_at",r."eligible_subjects",r."school_id",r."campus_id",'
        's."province_id" FROM "qualification" q '
        'JOIN "roster_record" r ON r."id"=q."roster_record_id" '
        'JOIN "school" s ON s."id"=r."school_id" '
        'WHERE q."account_id"=$1 AND q."session_id"=$2 LIMIT 1',
        account_id,
        session_id,
    )
    offerings = {
        row["code"]: Offering(
            row["id"],
            row["code"],
            row["name"],
            row["kind"],
            row["level"],
            row["slot"],
            row["written_prerequisite"],
        )
        for row in await db.fetch(
            'SELECT o."id",o."slot",s."code",s."name",s."kind",s."level",'
            's."written_prerequisite" FROM "session_subject" o '
            'JOIN "subject" s ON s."id"=o."subject_id" WHERE o."session_id"=$1',
            session_id,
        )
    }
    active = [
        row
        for row in await db.fetch(
            'SELECT r."status",r."expires_at",o."slot",s."code" FROM "registration" r '
            'JOIN "session_subject" o ON o."id"=r."offering_id" '
            'JOIN "subject" s ON s."id"=o."subject_id" '
            'WHERE r."account_id"=$1 AND r."session_id"=$2 AND r."status" IN ($3,$4)',
            account_id,
            session_id,
            "PAID",
            "PENDING_PAYMENT",
        )
        if row["status"] == "PAID" or row["expires_at"] > at
    ]
    situation = Situation(account_id, session_id, at, qualification, offerings, active, False)
    if qualification is not None:
        province_id = qualification["province_id"]
        situation.province_id = province_id
        situation.fees = {
            row["code"]: row["amount_fen"]
            for row in await db.fetch(
                'SELECT s."code",f."amount_fen" FROM "fee" f JOIN "subject" s '
                'ON s."id"=f."subject_id" WHERE f."session_id"=$1 AND f."province_id"=$2',
                session_id,
                province_id,
            )
        }
        chosen: dict[str, asyncpg.Record] = {}
        for window in await db.fetch(
            'SELECT "kind","school_id","opens_at","closes_at" FROM "registration_window" '
            'WHERE ("school_id"=$1 OR "school_id" IS NULL) AND "session_id"=$2 '
            'AND "province_id"=$3',
            qualification["school_id"],
            session_id,
            province_id,
        ):
            current = chosen.get(window["kind"])
            if current is None or (current["school_id"] is None and window["school_id"]):
                chosen[window["kind"]] = window
        situation.open_kinds = {
            kind for kind, w in chosen.items() if w["opens_at"] <= at < w["closes_at"]
        }
        if with_centers:
            situation.centers = await db.fetch(
                'SELECT "id","name","address","capacity","subject_codes" FROM "oral_center" '
                'WHERE "session_id"=$1 AND "province_id"=$2 ORDER BY "code"',
                session_id,
                province_id,
            )
    situation.cet6_approved = bool(
        await db.fetchval(
            'SELECT 1 FROM "cet6_review" WHERE "account_id"=$1 AND "session_id"=$2 '
            'AND "status"=$3 LIMIT 1',
            account_id,
            session_id,
            "APPROVED",
        )
    )
    if situation.centers:
        situation.taken = await seats_taken(db, [c["id"] for c in situation.centers], at)
    return situation


async def seats_taken(
    db: asyncpg.Connection, center_ids: list[int], at: datetime
) -> dict[int, int]:
    rows = await db.fetch(
        'SELECT "oral_center_id",COUNT("id") "taken" FROM "registration" '
        'WHERE ("status"=$1 OR ("status"=$2 AND "expires_at">$3)) '
        'AND "oral_center_id"=ANY($4::bigint[]) GROUP BY "oral_center_id"',
        "PAID",
        "PENDING_PAYMENT",
        at,
        center_ids,
    )
    return {row["oral_center_id"]: row["taken"] for row in rows}


# --- registration --------------------------------------------------------------------------


async def available_subjects(request: Request) -> Response:
    async with pool(request).acquire() as db:
        account = await viewer(request, db)
        if account is None:
            return unauthenticated()
        session_id = await session_id_of(db, request.query_params.get("sessionCode", ""))
        if session_id is None:
            return answer([])
        situation = await load_situation(db, account["id"], session_id, with_centers=True)
    options = []
    for code, offering in sorted(
        situation.offerings.items(), key=lambda item: (item[1].kind, item[1].level, item[0])
    ):
        why = situation.reasons(code)
        fee = situation.fees.get(code)
        options.append(
            {
                "subject": {
                    "code": code,
                    "name": offering.name,
                    "kind": offering.kind,
                    "slot": offering.slot,
                },
                "eligible": not why,
                "reasons": why,
                "fee": {"yuan": yuan(fee)} if fee is not None else None,
            }
        )
    return answer(options)


async def oral_centers(request: Request) -> Response:
    code = request.query_params.get("subjectCode", "").strip().upper()
    async with pool(request).acquire() as db:
        account = await viewer(request, db)
        session_id = await session_id_of(db, request.query_params.get("sessionCode", ""))
        if session_id is None:
            return answer([])
        province_id = None
        if account is not None:
            province_id = await db.fetchval(
                'SELECT s."province_id" FROM "qualification" q '
                'JOIN "roster_record" r ON r."id"=q."roster_record_id" '
                'JOIN "school" s ON s."id"=r."school_id" '
                'WHERE q."account_id"=$1 AND q."session_id"=$2 LIMIT 1',
                account["id"],
                session_id,
            )
        centers = await db.fetch(
            'SELECT "id","name","address","capacity","subject_codes" FROM "oral_center" '
            'WHERE "session_id"=$1 AND ($2::bigint IS NULL OR "province_id"=$2) ORDER BY "code"',
            session_id,
            province_id,
        )
        centers = [c for c in centers if not c["subject_codes"] or code in c["subject_codes"]]
        taken = await seats_taken(db, [c["id"] for c in centers], now()) if centers else {}
    return answer(
        [
            {
                "id": c["id"],
                "name": c["name"],
                "address": c["address"],
                "remainingSeats": max(c["capacity"] - taken.get(c["id"], 0), 0),
            }
            for c in centers
        ]
    )


async def select_subjects(request: Request) -> Response:
    body = orjson.loads(await request.body())
    items = body.get("items") or []
    if not items or len(items) > 10:
        return answer({"orders": [], "userErrors": [user_error("REQUIRED", "items")]})
    wanted = [
        (str(i.get("subjectCode", "")).strip().upper()[:16], i.get("oralCenterId")) for i in items
    ]
    if len({code for code, _ in wanted}) != len(wanted):
        return answer({"orders": [], "userErrors": [user_error("DUPLICATE_SUBJECT", "items")]})
    async with pool(request).acquire() as db:
        account = await viewer(request, db)
        if account is None or account["must_change_password"]:
            return unauthenticated()
        session_id = await session_id_of(db, str(body.get("sessionCode", "")))
        if session_id is None:
            return answer({"orders": [], "userErrors": [user_error("SESSION_NOT_FOUND")]})
        try:
            async with db.transaction():
                orders = await _select_locked(db, account["id"], session_id, wanted)
        except Refused as refused:
            return answer({"orders": [], "userErrors": refused.errors})
    return answer({"orders": orders, "userErrors": []})


async def _select_locked(
    db: asyncpg.Connection, account_id: int, session_id: int, wanted: list[tuple[str, Any]]
) -> list[dict[str, Any]]:
    await db.fetchrow('SELECT "id" FROM "account" WHERE "id"=$1 LIMIT 1 FOR UPDATE', account_id)
    at = now()
    overdue = await db.fetch(
        'SELECT "id" FROM "registration_order" WHERE "account_id"=$1 AND "status"=$2 '
        'AND "expires_at"<=$3',
        account_id,
        "PENDING_PAYMENT",
        at,
    )
    if overdue:
        ids = [row["id"] for row in overdue]
        await db.execute(
            'UPDATE "registration_order" SET "status"=$1,"closed_at"=$2 '
            'WHERE "id"=ANY($3::bigint[]) AND "status"=$4',
            "LAPSED",
            at,
            ids,
            "PENDING_PAYMENT",
        )
        await db.execute(
            'UPDATE "registration" SET "status"=$1,"active_key"=NULL,"closed_at"=$2 '
            'WHERE "order_id"=ANY($3::bigint[]) AND "status"=$4',
            "LAPSED",
            at,
            ids,
            "PENDING_PAYMENT",
        )
    situation = await load_situation(db, account_id, session_id, with_centers=False)
    errors: list[dict[str, Any]] = []
    chosen_slots: set[str] = set()
    centers: dict[int, asyncpg.Record] = {}
    for index, (code, center_id) in enumerate(wanted):
        path = ("items", str(index))
        why = situation.reasons(code, chosen_slots, check_seats=False)
        errors += [user_error(c, *path, "subjectCode") for c in why]
        offering = situation.offerings.get(code)
        if offering is None:
            continue
        chosen_slots.add(offering.slot)
        if offering.kind == "ORAL":
            center = (
                await db.fetchrow(
                    'SELECT "id","session_id","province_id","subject_codes","capacity" '
                    'FROM "oral_center" WHERE "id"=$1 LIMIT 1',
                    int(center_id),
                )
                if center_id is not None
                else None
            )
            if (
                center is None
                or center["session_id"] != session_id
                or center["province_id"] != situation.province_id
                or (center["subject_codes"] and code not in center["subject_codes"])
            ):
                errors.append(user_error("ORAL_CENTER_NOT_ALLOWED", *path, "oralCenterId"))
            else:
                centers[index] = center
        elif center_id is not None:
            errors.append(user_error("ORAL_CENTER_NOT_ALLOWED", *path, "oralCenterId"))
    if errors:
        raise Refused(errors)
    for index, center in sorted(centers.items(), key=lambda item: item[1]["id"]):
        locked = await db.fetchrow(
            'SELECT "id","capacity" FROM "oral_center" WHERE "id"=$1 LIMIT 1 FOR UPDATE',
            center["id"],
        )
        taken = await db.fetchval(
            'SELECT COUNT(*) FROM "registration" WHERE ("status"=$1 OR ("status"=$2 AND '
            '"expires_at">$3)) AND "oral_center_id"=$4',
            "PAID",
            "PENDING_PAYMENT",
            at,
            locked["id"],
        )
        if taken >= locked["capacity"]:
            errors.append(user_error("SEATS_FULL", "items", str(index), "oralCenterId"))
    if errors:
        raise Refused(errors)
    qualification = situation.qualification
    assert qualification is not None
    orders = []
    for kind in ("WRITTEN", "ORAL"):
        indexed = [
            (i, code)
            for i, (code, _) in enumerate(wanted)
            if situation.offerings[code].kind == kind
        ]
        if not indexed:
            continue
        number = f"{at:%Y%m%d}{secrets.randbelow(10**12):012d}"
        amount = sum(situation.fees[code] for _, code in indexed)
        expires = at + PAYMENT_PERIOD
        order_id = await db.fetchval(
            'INSERT INTO "registration_order" ("number","kind","status","amount_fen",'
            '"created_at","expires_at","account_id","province_id","session_id") '
            'VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) RETURNING "id"',
            number,
            kind,
            "PENDING_PAYMENT",
            amount,
            at,
            expires,
            account_id,
            situation.province_id,
            session_id,
        )
        registrations = []
        for index, code in indexed:
            offering = situation.offerings[code]
            center = centers.get(index)
            try:
                await db.fetchval(
                    'INSERT INTO "registration" ("status","active_key","paper_report",'
                    '"created_at","expires_at","account_id","campus_id","offering_id",'
                    '"oral_center_id","order_id","school_id","session_id") '
                    'VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) RETURNING "id"',
                    "PENDING_PAYMENT",
                    f"{account_id}:{offering.id}",
                    False,
                    at,
                    expires,
                    account_id,
                    qualification["campus_id"],
                    offering.id,
                    center["id"] if center is not None else None,
                    order_id,
                    qualification["school_id"],
                    session_id,
                )
            except asyncpg.UniqueViolationError as error:
                raise Refused(
                    [user_error("ALREADY_REGISTERED", "items", str(index), "subjectCode")]
                ) from error
            registrations.append({"subject": {"code": code}, "status": "PENDING_PAYMENT"})
        orders.append(
            {
                "id": order_id,
                "number": number,
                "kind": kind,
                "status": "PENDING_PAYMENT",
                "amount": {"yuan": yuan(amount)},
                "expiresAt": iso(expires),
                "registrations": registrations,
            }
        )
    return orders


async def order_status(request: Request) -> Response:
    async with pool(request).acquire() as db:
        account = await viewer(request, db)
        if account is None:
            return unauthenticated()
        row = await db.fetchrow(
            'SELECT "status","expires_at" FROM "registration_order" WHERE "id"=$1 '
            'AND "account_id"=$2',
            int(request.path_params["order_id"]),
            account["id"],
        )
    if row is None:
        return answer(None)
    status = row["status"]
    if status == "PENDING_PAYMENT" and row["expires_at"] <= now():
        status = "LAPSED"
    return answer({"status": status})


# --- payments ------------------------------------------------------------------------------


def _provider() -> Any:
    provider = registry().get("alipay")
    if provider is None:
        raise RuntimeError("the Alipay plugin is not installed")
    return provider


async def start_payment(request: Request) -> Response:
    body = orjson.loads(await request.body())
    provider = _provider()
    async with pool(request).acquire() as db:
        account = await viewer(request, db)
        if account is None or account["must_change_password"]:
            return unauthenticated()
        # The same per-account limit as cetgql's (services/rate_limits.py).
        bucket = f"payment-start:account:{account['id']}"
        at = now()
        hits = await db.fetch(
            'SELECT "at" FROM "rate_limit_hit" WHERE "bucket"=$1 AND "at">$2 '
            'ORDER BY "at" DESC LIMIT $3',
            bucket,
            at - START_PAYMENT_WINDOW,
            START_PAYMENT_HITS,
        )
        if len(hits) >= START_PAYMENT_HITS:
            return answer({"payment": None, "userErrors": [user_error("RATE_LIMITED")]})
        await db.fetchval(
            'INSERT INTO "rate_limit_hit" ("bucket","at") VALUES ($1,$2) RETURNING "id"', bucket, at
        )
        try:
            async with db.transaction():
                payment = await _start_locked(db, account["id"], int(body["orderId"]), provider)
        except Refused as refused:
            return answer({"payment": None, "userErrors": refused.errors})
        await db.execute("SELECT pg_notify($1, $2)", "cetgql_order_events", str(body["orderId"]))
    return answer({"payment": payment, "userErrors": []})


async def _start_locked(
    db: asyncpg.Connection, account_id: int, order_id: int, provider: Any
) -> dict[str, Any]:
    order = await db.fetchrow(
        'SELECT "id","number","kind","status","amount_fen","expires_at","province_id",'
        '"session_id" FROM "registration_order" WHERE "id"=$1 AND "account_id"=$2 LIMIT 1 '
        "FOR UPDATE",
        order_id,
        account_id,
    )
    at = now()
    if order is None:
        raise Refused([user_error("NOT_FOUND", "orderId")])
    if order["status"] == "PAID":
        raise Refused([user_error("ORDER_ALREADY_PAID", "orderId")])
    if order["status"] != "PENDING_PAYMENT" or order["expires_at"] <= at:
        raise Refused([user_error("ORDER_LAPSED", "orderId")])
    if order["kind"] == "ORAL":
        needed = {
            row["written_prerequisite"]
            for row in await db.fetch(
                'SELECT s."written_prerequisite" FROM "registration" r '
                'JOIN "session_subject" o ON o."id"=r."offering_id" '
                'JOIN "subject" s ON s."id"=o."subject_id" WHERE r."order_id"=$1',
                order_id,
            )
        }
        paid = {
            row["code"]
            for row in await db.fetch(
                'SELECT s."code" FROM "registration" r '
                'JOIN "session_subject" o ON o."id"=r."offering_id" '
                'JOIN "subject" s ON s."id"=o."subject_id" '
                'WHERE r."account_id"=$1 AND r."session_id"=$2 AND r."status"=$3',
                account_id,
                order["session_id"],
                "PAID",
            )
        }
        if not needed <= paid:
            raise Refused([user_error("WRITTEN_NOT_PAID", "orderId")])
    setting = await db.fetchrow(
        'SELECT "enabled","values","secrets" FROM "provider_setting" '
        'WHERE "province_id"=$1 AND "provider"=$2 LIMIT 2',
        order["province_id"],
        provider.name,
    )
    if setting is None or not setting["enabled"]:
        raise Refused([user_error("PROVIDER_NOT_AVAILABLE", "provider")])
    merchant = MerchantConfig(provider.name, {**setting["values"], **setting["secrets"]})
    for previous in await db.fetch(
        'SELECT "id","provider","out_trade_no","amount_fen","status","redirect" FROM "payment" '
        'WHERE "order_id"=$1 AND "status" IN ($2,$3)',
        order_id,
        *OPEN_PAYMENT,
    ):
        if previous["provider"] == provider.name and previous["amount_fen"] == order["amount_fen"]:
            return _payment_json(previous)
        raise Refused([user_error("PROVIDER_SWITCH_NOT_IN_THE_REFERENCE", "provider")])
    out_trade_no = f"{at:%y%m%d%H%M%S}{secrets.randbelow(10**8):08d}"
    payment_id = await db.fetchval(
        'INSERT INTO "payment" ("provider","out_trade_no","amount_fen","status","created_at",'
        '"updated_at","order_id") VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING "id"',
        provider.name,
        out_trade_no,
        order["amount_fen"],
        "CREATED",
        at,
        at,
        order_id,
    )
    try:
        result = await provider.charge(
            merchant,
            ChargeRequest(
                out_trade_no=out_trade_no,
                amount_fen=order["amount_fen"],
                subject=f"CET 报名费 {order['number']}",
                created_at=at,
                expires_at=order["expires_at"],
                notify_url=notify_url(),
                return_url=f"{public_url()}/payments/alipay/return?trade={out_trade_no}",
            ),
        )
    except PaymentError as error:
        raise Refused([user_error("PROVIDER_UNREACHABLE", "provider")]) from error
    redirect = (
        {
            "method": result.redirect.method,
            "url": result.redirect.url,
            "fields": [list(pair) for pair in result.redirect.fields],
        }
        if result.redirect
        else None
    )
    await db.execute(
        'UPDATE "payment" SET "status"=$1,"provider_trade_no"=$2,"qr_code"=$3,"redirect"=$4,'
        '"updated_at"=$5 WHERE "id"=$6',
        "PENDING",
        result.provider_trade_no,
        result.qr_code,
        redirect,
        now(),
        payment_id,
    )
    await db.fetchval(
        'INSERT INTO "payment_event" ("provider","kind","out_trade_no","outcome","detail","at",'
        '"payment_id") VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING "id"',
        provider.name,
        "CHARGE",
        out_trade_no,
        "STARTED",
        {"amount_fen": order["amount_fen"]},
        now(),
        payment_id,
    )
    return _payment_json(
        {
            "id": payment_id,
            "out_trade_no": out_trade_no,
            "status": "PENDING",
            "amount_fen": order["amount_fen"],
            "redirect": redirect,
        }
    )


def _payment_json(row: Any) -> dict[str, Any]:
    redirect = row["redirect"] or {}
    return {
        "id": row["id"],
        "outTradeNo": row["out_trade_no"],
        "status": row["status"],
        "amount": {"yuan": yuan(row["amount_fen"])},
        "redirect": {
            "method": redirect["method"],
            "url": redirect["url"],
            "fields": [{"name": n, "value": v} for n, v in redirect.get("fields", [])],
        }
        if "url" in redirect
        else None,
    }


async def notify(request: Request) -> Response:
    """Alipay's notification: verified by the plugin, applied under the payment's row lock."""
    provider = _provider()
    body = await request.body()
    form = {k: str(v) for k, v in (await request.form()).items()}
    async with pool(request).acquire() as db:

        async def lookup(out_trade_no: str) -> MerchantConfig | None:
            payment = await db.fetchrow(
                'SELECT "id","order_id" FROM "payment" WHERE "out_trade_no"=$1 AND "provider"=$2',
                out_trade_no[:32],
                provider.name,
            )
            if payment is None:
                return None
            province_id = await db.fetchval(
                'SELECT "province_id" FROM "registration_order" WHERE "id"=$1',
                payment["order_id"],
            )
            setting = await db.fetchrow(
                'SELECT "values","secrets" FROM "provider_setting" '
                'WHERE "province_id"=$1 AND "provider"=$2',
                province_id,
                provider.name,
            )
            return MerchantConfig(provider.name, {**setting["values"], **setting["secrets"]})

        try:
            note = await provider.callback(
                NotifyRequest(
                    method=request.method,
                    headers=dict(request.headers),
                    query=dict(request.query_params),
                    body=body,
                    form=form,
                ),
                lookup,
            )
        except InvalidNotification:
            reply = provider.reply(False)
            return Response(reply.body, reply.status_code, media_type=reply.content_type)
        async with db.transaction():
            payment = await db.fetchrow(
                'SELECT "id","order_id","status","amount_fen","provider_trade_no" FROM "payment" '
                'WHERE "out_trade_no"=$1 AND "provider"=$2 FOR UPDATE',
                note.out_trade_no,
                provider.name,
            )
            at = now()
            outcome = "NO_CHANGE"
            if note.state == TradeState.SUCCEEDED and note.amount_fen == payment["amount_fen"]:
                outcome = "DUPLICATE"
                if payment["status"] in OPEN_PAYMENT:
                    outcome = "APPLIED"
                    await db.execute(
                        'UPDATE "payment" SET "status"=$1,"paid_at"=$2,"updated_at"=$3,'
                        '"provider_trade_no"=$4,"closed_at"=NULL WHERE "id"=$5',
                        "SUCCEEDED",
                        at,
                        at,
                        note.provider_trade_no or payment["provider_trade_no"],
                        payment["id"],
                    )
                    order = await db.fetchrow(
                        'SELECT "id","status","expires_at" FROM "registration_order" '
                        'WHERE "id"=$1 FOR UPDATE',
                        payment["order_id"],
                    )
                    if order["status"] == "PENDING_PAYMENT" and order["expires_at"] > at:
                        await db.execute(
                            'UPDATE "registration_order" SET "status"=$1,"paid_at"=$2 '
                            'WHERE "id"=$3',
                            "PAID",
                            at,
                            order["id"],
                        )
                        await db.execute(
                            'UPDATE "registration" SET "status"=$1,"paid_at"=$2 '
                            'WHERE "order_id"=$3',
                            "PAID",
                            at,
                            order["id"],
                        )
                    else:
                        outcome = "LATE_NOT_IN_THE_REFERENCE"
            await db.fetchval(
                'INSERT INTO "payment_event" ("provider","kind","out_trade_no","outcome",'
                '"detail","at","payment_id") VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING "id"',
                provider.name,
                "NOTIFY",
                note.out_trade_no,
                outcome,
                {"state": note.state.value, "amount_fen": note.amount_fen},
                at,
                payment["id"],
            )
        await db.execute(
            "SELECT pg_notify($1, $2)", "cetgql_order_events", str(payment["order_id"])
        )
    reply = provider.reply(True)
    return Response(reply.body, reply.status_code, media_type=reply.content_type)


# --- reads ---------------------------------------------------------------------------------


def _effective(status: str, expires_at: datetime, at: datetime) -> str:
    return "LAPSED" if status == "PENDING_PAYMENT" and expires_at <= at else status


async def registrations(request: Request) -> Response:
    """The journey's last step when there are no tickets yet: the viewer's registrations."""
    async with pool(request).acquire() as db:
        account = await viewer(request, db)
        if account is None or account["must_change_password"]:
            return unauthenticated()
        rows = await _registration_rows(db, account["id"])
    at = now()
    return answer(
        [
            {
                "id": r["id"],
                "subject": {"code": r["code"]},
                "status": _effective(r["status"], r["expires_at"], at),
            }
            for r in rows
        ]
    )


async def tickets(request: Request) -> Response:
    """The journey's last step: the viewer's published tickets (none before allocation)."""
    async with pool(request).acquire() as db:
        account = await viewer(request, db)
        if account is None or account["must_change_password"]:
            return unauthenticated()
        rows = await _ticket_rows(db, account["id"])
    return answer(
        [{"id": t["id"], "number": t["number"], "subject": {"code": t["code"]}} for t in rows]
    )


async def _ticket_rows(db: asyncpg.Connection, account_id: int) -> list[asyncpg.Record]:
    """Published tickets with what a candidate sees of them: subject, times, centre, room,
    seat and the print window of the ticket's unit."""
    return await db.fetch(  # type: ignore[no-any-return]
        'SELECT t."id",t."number",t."kind",t."seat",s."code",s."name",o."starts_at",'
        'o."ends_at",r."number" "room",c."name" "campus",sc."name" "school",'
        'oc."name" "oral_center",w."opens_at",w."closes_at" '
        'FROM "ticket" t JOIN "session_subject" o ON o."id"=t."offering_id" '
        'JOIN "subject" s ON s."id"=o."subject_id" JOIN "exam_room" r ON r."id"=t."room_id" '
        'LEFT JOIN "campus" c ON c."id"=r."campus_id" '
        'LEFT JOIN "school" sc ON sc."id"=c."school_id" '
        'LEFT JOIN "oral_center" oc ON oc."id"=r."oral_center_id" '
        'LEFT JOIN "ticket_print_window" w ON w."session_id"=t."session_id" '
        'AND w."unit_key"=t."unit_key" '
        'WHERE t."account_id"=$1 AND t."published_at" IS NOT NULL ORDER BY o."starts_at",t."id"',
        account_id,
    )


def _ticket_json(t: asyncpg.Record) -> dict[str, Any]:
    written = t["kind"] == "WRITTEN"
    centre = t["oral_center"] or (
        f"{t['school']}（{t['campus']}）" if t["campus"] else t["school"] or ""
    )
    return {
        "id": t["id"],
        "number": t["number"],
        "subject": {"code": t["code"], "name": t["name"]},
        "examStart": iso(t["starts_at"]),
        "examEnd": iso(t["ends_at"]),
        "centerName": centre,
        "room": f"{t['room']:0{3 if written else 2}d}",
        "seat": f"{t['seat']:02d}",
        "printableFrom": iso(t["opens_at"]),
        "printableUntil": iso(t["closes_at"]),
    }


async def _registration_rows(db: asyncpg.Connection, account_id: int) -> list[asyncpg.Record]:
    return await db.fetch(  # type: ignore[no-any-return]
        'SELECT r."id",r."status",r."expires_at",r."order_id",s."code",s."name",s."kind",'
        'c."name" "center_name" FROM "registration" r '
        'JOIN "session_subject" o ON o."id"=r."offering_id" '
        'JOIN "subject" s ON s."id"=o."subject_id" '
        'LEFT JOIN "oral_center" c ON c."id"=r."oral_center_id" '
        'WHERE r."account_id"=$1 ORDER BY r."created_at" DESC,r."id" DESC',
        account_id,
    )


async def overview(request: Request) -> Response:
    """The candidate's overview: the same fields as ``benchmarks/overview.py``'s query."""
    async with pool(request).acquire() as db:
        account = await viewer(request, db)
        if account is None or account["must_change_password"]:
            return unauthenticated()
        regs = await _registration_rows(db, account["id"])
        orders = await db.fetch(
            'SELECT "id","number","kind","status","amount_fen","created_at","expires_at",'
            '"paid_at" FROM "registration_order" WHERE "account_id"=$1 '
            'ORDER BY "created_at" DESC,"id" DESC LIMIT 11',
            account["id"],
        )
        payments = await db.fetch(
            'SELECT "id","order_id","provider","out_trade_no","status","amount_fen","paid_at",'
            '"refund_reason" FROM "payment" WHERE "order_id"=ANY($1::bigint[]) '
            'ORDER BY "id" DESC',
            [o["id"] for o in orders[:10]],
        )
        ticket_rows = await _ticket_rows(db, account["id"])
    at = now()
    by_order: dict[int, list[dict[str, Any]]] = {}
    for p in payments:
        by_order.setdefault(p["order_id"], []).append(
            {
                "id": p["id"],
                "provider": p["provider"],
                "outTradeNo": p["out_trade_no"],
                "status": p["status"],
                "amount": {"yuan": yuan(p["amount_fen"])},
                "paidAt": iso(p["paid_at"]),
                "refundReason": p["refund_reason"],
            }
        )
    numbers = {o["id"]: o for o in orders}
    return answer(
        {
            "registrations": [
                {
                    "id": r["id"],
                    "status": (status := _effective(r["status"], r["expires_at"], at)),
                    "expiresAt": iso(r["expires_at"])
                    if status in ("PENDING_PAYMENT", "LAPSED")
                    else None,
                    "subject": {"code": r["code"], "name": r["name"], "kind": r["kind"]},
                    "oralCenter": {"name": r["center_name"]} if r["center_name"] else None,
                    "order": {"number": numbers[r["order_id"]]["number"]}
                    if r["order_id"] in numbers
                    else None,
                }
                for r in regs
            ],
            "orders": [
                {
                    "id": o["id"],
                    "number": o["number"],
                    "kind": o["kind"],
                    "status": _effective(o["status"], o["expires_at"], at),
                    "amount": {"fen": o["amount_fen"], "yuan": yuan(o["amount_fen"])},
                    "createdAt": iso(o["created_at"]),
                    "expiresAt": iso(o["expires_at"]),
                    "paidAt": iso(o["paid_at"]),
                    "payments": by_order.get(o["id"], []),
                }
                for o in orders[:10]
            ],
            "tickets": [_ticket_json(t) for t in ticket_rows],
        }
    )


async def healthz(request: Request) -> Response:
    async with pool(request).acquire() as db:
        await db.fetchval("SELECT 1")
    return answer({"status": "ok"})


def create_app() -> Starlette:
    sandbox = _provider().sandbox(notify_url())
    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/bare/sign-in", sign_in, methods=["POST"]),
            Route("/bare/available-subjects", available_subjects),
            Route("/bare/oral-centers", oral_centers),
            Route("/bare/select-subjects", select_subjects, methods=["POST"]),
            Route("/bare/start-payment", start_payment, methods=["POST"]),
            Route("/bare/orders/{order_id:int}", order_status),
            Route("/bare/registrations", registrations),
            Route("/bare/tickets", tickets),
            Route("/bare/overview", overview),
            Route("/payments/alipay/notify", notify, methods=["POST"]),
            Mount("/sandbox/alipay", sandbox),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        "benchmarks.bare:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
