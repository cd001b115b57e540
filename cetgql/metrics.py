"""Prometheus metrics, served at ``/metrics`` (see docs/operations.md).

What is measured, and where:

- every HTTP request by route template, method and status, with its latency
  (:class:`MetricsMiddleware`);
- GraphQL requests by operation type and HTTP status, their latency, and the errors in their
  responses by code (:func:`observe_graphql`, called by the GraphQL view);
- periodic job runs by job and outcome, and their duration (:func:`observe_job`);
- payments by status and provider, refunds not yet confirmed, and the age of the oldest open
  payment: read from the database when scraped (one grouped query, cached for
  :data:`DB_CACHE_SECONDS`), because they describe the shared database, not this process.

Several worker processes (``cetgql serve --workers N``) each count their own requests; a
scrape reaches one of them. With ``PROMETHEUS_MULTIPROC_DIR`` set (``cetgql serve`` sets it to
a fresh directory when it starts more than one worker) the workers write their values to files
there and any of them answers for all, using prometheus_client's multiprocess mode. Separate
hosts are scraped one by one, as usual.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tortoise.functions import Count

from cetgql.models import Payment, PaymentStatus
from cetgql.services import clock

logger = logging.getLogger("cetgql.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS = (0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0)
DB_CACHE_SECONDS = 15.0
OPEN_PAYMENTS = (PaymentStatus.CREATED, PaymentStatus.PENDING)

HTTP_REQUESTS = Counter(
    "cetgql_http_requests",
    "HTTP requests by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "cetgql_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
GRAPHQL_REQUESTS = Counter(
    "cetgql_graphql_requests",
    "GraphQL requests over HTTP by operation type (query, mutation, unknown) and status code.",
    ["operation_type", "status"],
)
GRAPHQL_DURATION = Histogram(
    "cetgql_graphql_request_duration_seconds",
    "Time to answer a GraphQL request over HTTP, by operation type.",
    ["operation_type"],
    buckets=LATENCY_BUCKETS,
)
GRAPHQL_ERRORS = Counter(
    "cetgql_graphql_errors",
    "Errors in GraphQL responses by extensions.code (GRAPHQL_ERROR when there is none).",
    ["code"],
)
JOB_RUNS = Counter(
    "cetgql_job_runs",
    "Runs of periodic jobs by job and outcome (ok, failed).",
    ["job", "outcome"],
)
JOB_DURATION = Histogram(
    "cetgql_job_duration_seconds",
    "Duration of periodic job runs, by job.",
    ["job"],
    buckets=JOB_BUCKETS,
)


def observe_graphql(
    operation_type: str | None, status: int, seconds: float, error_codes: Iterable[str]
) -> None:
    kind = operation_type or "unknown"
    GRAPHQL_REQUESTS.labels(kind, str(status)).inc()
    GRAPHQL_DURATION.labels(kind).observe(seconds)
    for code in error_codes:
        GRAPHQL_ERRORS.labels(code).inc()


def observe_job(job: str, ok: bool, seconds: float) -> None:
    JOB_RUNS.labels(job, "ok" if ok else "failed").inc()
    JOB_DURATION.labels(job).observe(seconds)


def _route_of(scope: Scope) -> str:
    """The matched route's template (``/payments/{provider}/notify``), so labels stay few."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


class MetricsMiddleware:
    """Counts and times every HTTP request (pure ASGI, no per-request objects)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = _route_of(scope)
            HTTP_REQUESTS.labels(route, scope.get("method", ""), str(status)).inc()
            HTTP_DURATION.labels(route).observe(time.perf_counter() - started)


@dataclass
class _PaymentFigures:
    by_status: dict[tuple[str, str], int] = field(default_factory=dict)
    refunds_pending: int = 0
    oldest_open_age: float = 0.0
    read_at: float = 0.0


_figures: _PaymentFigures | None = None


async def _read_payment_figures() -> _PaymentFigures:
    global _figures
    now = time.monotonic()
    if _figures is not None and now - _figures.read_at < DB_CACHE_SECONDS:
        return _figures
    rows = (
        await Payment.annotate(count=Count("id"))
        .group_by("status", "provider")
        .values("status", "provider", "count")
    )
    refunds = await Payment.filter(refund_no__isnull=False, refunded_at__isnull=True).count()
    oldest_at = cast(
        datetime | None,
        await Payment.filter(status__in=OPEN_PAYMENTS)
        .order_by("updated_at")
        .first()
        .values_list("updated_at", flat=True),
    )
    figures = _PaymentFigures(
        by_status={(str(r["status"]), str(r["provider"])): int(r["count"]) for r in rows},
        refunds_pending=refunds,
        oldest_open_age=(clock.now() - oldest_at).total_seconds() if oldest_at else 0.0,
        read_at=now,
    )
    _figures = figures
    return figures


class _PaymentCollector(Collector):
    def __init__(self, figures: _PaymentFigures | None) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "cetgql_metrics_database_up", "1 when the database answered this scrape, else 0."
        )
        up.add_metric([], 1.0 if self.figures is not None else 0.0)
        yield up
        if self.figures is None:
            return
        payments = GaugeMetricFamily(
            "cetgql_payments",
            "Payments in the database by status and provider.",
            labels=["status", "provider"],
        )
        providers = sorted({provider for _, provider in self.figures.by_status})
        for provider in providers:  # every status of a provider appears, zeros included
            for status in PaymentStatus:
                count = self.figures.by_status.get((status.value, provider), 0)
                payments.add_metric([status.value, provider], float(count))
        yield payments
        refunds = GaugeMetricFamily(
            "cetgql_payment_refunds_pending",
            "Automatic refunds decided but not yet confirmed by the provider.",
        )
        refunds.add_metric([], float(self.figures.refunds_pending))
        yield refunds
        oldest = GaugeMetricFamily(
            "cetgql_payments_open_oldest_age_seconds",
            "Seconds since the oldest open (CREATED or PENDING) payment last changed; "
            "reconciliation should keep this low.",
        )
        oldest.add_metric([], self.figures.oldest_open_age)
        yield oldest


def _process_registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


async def endpoint(request: Request) -> Response:
    """``GET /metrics`` in Prometheus' text format."""
    figures: _PaymentFigures | None
    try:
        figures = await _read_payment_figures()
    except Exception:
        logger.exception("metrics: could not read payment figures from the database")
        figures = None
    database = CollectorRegistry()
    database.register(_PaymentCollector(figures))
    body = generate_latest(_process_registry()) + generate_latest(database)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
