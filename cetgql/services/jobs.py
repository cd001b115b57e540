"""The periodic work of the system: which service function runs on which schedule.

A job is an ordinary service function that takes no arguments, does its work in its own
transactions and returns something worth logging (usually a count). The engines in
:mod:`cetgql.jobs` run every registered job once per tick of its cron schedule across all
processes; they know nothing about what the jobs do.

Every job must be housekeeping: safe to run late, twice, or not at all for a while. Reads never
wait for a job (an unpaid choice counts as lapsed from its deadline, S8), so a job only makes
the stored state catch up with what readers already see.

A later module adds its job with one :func:`register` call below, next to the others, so this
file lists all periodic work in one place.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from croniter import croniter

from cetgql.services import payments, rate_limits, registration, score_import, score_reports

_NAME = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


@dataclass(frozen=True)
class PeriodicJob:
    """``run`` is called once per tick of ``cron`` (five fields, UTC; a sixth for seconds)."""

    name: str
    cron: str
    run: Callable[[], Awaitable[object]]
    description: str = ""


_registry: dict[str, PeriodicJob] = {}


def register(
    name: str, cron: str, run: Callable[[], Awaitable[object]], description: str = ""
) -> PeriodicJob:
    """Add a periodic job. The name is stored with every run, so never rename a job."""
    if not _NAME.match(name):
        raise ValueError(f"job name {name!r}: use lower-case letters, digits and '-'")
    if not croniter.is_valid(cron):
        raise ValueError(f"job {name!r}: invalid cron expression {cron!r}")
    if name in _registry:
        raise ValueError(f"job {name!r} is already registered")
    job = PeriodicJob(name=name, cron=cron, run=run, description=description)
    _registry[name] = job
    return job


def registered() -> tuple[PeriodicJob, ...]:
    """Every registered job, in registration order."""
    return tuple(_registry.values())


register(
    "lapse-overdue-orders",
    "* * * * *",
    registration.lapse_overdue_orders,
    "Mark unpaid choices past their 24-hour deadline lapsed (S8).",
)
register(
    "prune-rate-limits",
    "0 * * * *",
    rate_limits.prune,
    "Delete rate-limit hits older than the longest window.",
)
register(
    "reconcile-payments",
    "*/5 * * * *",
    payments.reconcile,
    "Ask providers about open payments and retry unconfirmed refunds (P3, P4).",
)
register(
    "forfeit-paper-reports",
    "20 16 * * *",
    score_reports.forfeit_uncollected,
    "Mark paper score reports not collected within six months of release forfeited (R6).",
)
register(
    "prune-score-imports",
    "40 16 * * *",
    score_import.prune,
    "Forget the problem lists and leftovers of score imports older than 30 days.",
)
