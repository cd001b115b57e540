"""Sliding-window rate limits kept in the database, so all server processes share the counts.

A limit is a bucket name, a number of hits and a window. ``hit`` records an attempt and raises
``RATE_LIMITED`` with the seconds until the oldest counted hit leaves the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from cetgql.models import RateLimitHit
from cetgql.models.prepared import PreparedQuery
from cetgql.services import clock
from cetgql.services.errors import DomainError, ErrorCode


@dataclass(frozen=True)
class Limit:
    name: str
    hits: int
    window: timedelta


QUALIFICATION_PER_ACCOUNT = Limit("qualification:account", 10, timedelta(hours=1))
QUALIFICATION_PER_ADDRESS = Limit("qualification:address", 60, timedelta(hours=1))
SIGN_IN_PER_ADDRESS = Limit("sign-in:address", 50, timedelta(minutes=15))
CODE_PER_DESTINATION = Limit("code:destination", 5, timedelta(hours=1))
CODE_PER_ADDRESS = Limit("code:address", 30, timedelta(hours=1))
CODE_RESEND_GAP = Limit("code:resend", 1, timedelta(seconds=60))
APPEAL_PER_ADDRESS = Limit("appeal:address", 5, timedelta(hours=1))
# A CET6 review looks a ticket number up (S4): few tries, so tickets cannot be enumerated.
CET6_REVIEW_PER_ACCOUNT = Limit("cet6-review:account", 10, timedelta(hours=1))
CET6_REVIEW_PER_ADDRESS = Limit("cet6-review:address", 30, timedelta(hours=1))
# Starting a payment signs a request for the provider and may close an earlier trade there;
# pressing "pay" again returns the open trade, so a person never needs more than a few a
# minute, while a script could otherwise make us hammer the providers.
START_PAYMENT_PER_ACCOUNT = Limit("payment-start:account", 10, timedelta(minutes=1))
# "Refresh" asks the provider each time (P3).
REFRESH_PAYMENT_PER_ACCOUNT = Limit("payment-refresh:account", 20, timedelta(minutes=1))


def _bucket(limit: Limit, key: str) -> str:
    return f"{limit.name}:{key}"[:160]


# Asked before every sign-in and many other attempts: prepared (models/prepared.py).
_RECENT_HITS: PreparedQuery[list[datetime]] = PreparedQuery(
    lambda bucket, since, hits: (
        RateLimitHit.filter(bucket=bucket, at__gt=since)
        .order_by("-at")
        .limit(hits)
        .values_list("at", flat=True)
    )
)


async def retry_after(limit: Limit, key: str) -> int | None:
    """Seconds until one more hit is allowed, or None when it is allowed now."""
    since = clock.now() - limit.window
    hits = await _RECENT_HITS(_bucket(limit, key), since, limit.hits)
    if len(hits) < limit.hits:
        return None
    oldest_counted = cast(datetime, min(hits))
    return max(1, math.ceil((oldest_counted + limit.window - clock.now()).total_seconds()))


async def check(limit: Limit, key: str, *, field: str | None = None) -> None:
    """Raise RATE_LIMITED if the bucket is full; does not count a hit."""
    wait = await retry_after(limit, key)
    if wait is not None:
        raise DomainError.of(
            ErrorCode.RATE_LIMITED,
            *((field,) if field else ()),
            retry_after=wait,
        )


async def record(limit: Limit, key: str) -> None:
    await RateLimitHit.create(bucket=_bucket(limit, key), at=clock.now())


async def hit(limit: Limit, key: str, *, field: str | None = None) -> None:
    """Check the bucket, then count this attempt."""
    await check(limit, key, field=field)
    await record(limit, key)


async def prune() -> int:
    """Delete hits older than the longest window (periodic housekeeping)."""
    return await RateLimitHit.filter(at__lt=clock.now() - timedelta(days=1)).delete()
