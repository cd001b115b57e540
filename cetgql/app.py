"""The Starlette application: ``/graphql`` over HTTP and WebSocket, ``/healthz``, static assets."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UNSET, UnsetType
from tortoise.contrib.starlette import RegisterTortoise

from cetgql import (
    db,
    files,
    health,
    jobs,
    metrics,
    payment_pages,
    score_pages,
    security,
    ticket_pages,
)
from cetgql.graphql.context import Context
from cetgql.graphql.http import GraphQLOverHTTP
from cetgql.graphql.schema import schema
from cetgql.observability import RequestIdMiddleware
from cetgql.services import order_events
from cetgql.settings import Settings, configure, get_settings

STATIC_DIR = Path(__file__).parent / "static"
logger = logging.getLogger("cetgql")


class CetGraphQL(GraphQLOverHTTP):
    """The GraphQL-over-HTTP view (graphql/http.py) with our context and the offline GraphiQL
    page."""

    def encode_json(self, data: object) -> str:
        """orjson: 5-10 times faster than ``json.dumps`` on a response of a few kilobytes.
        Text, not bytes: WebSocket messages (graphql-transport-ws) must go as text frames."""
        return orjson.dumps(data).decode()

    async def get_context(self, request: Any, response: Any) -> Context:  # type: ignore[override]
        return Context.from_connection(
            request, response if isinstance(response, Response) else None
        )

    async def on_ws_connect(  # type: ignore[override]
        self, context: Context
    ) -> UnsetType | dict[str, object] | None:
        """Refuse ``connection_init`` with a token that is no open session (close 4403), so
        the client learns at once to sign in again; without a token the socket is accepted
        and operations that need a viewer answer UNAUTHENTICATED."""
        if context.token is not None and await context.viewer() is None:
            raise ConnectionRejectionError({"code": "UNAUTHENTICATED"})
        return UNSET  # a plain connection_ack

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        from cetgql.graphql.ide import content_security_policy, render_graphiql_page

        return HTMLResponse(
            render_graphiql_page(),
            headers={"Content-Security-Policy": content_security_policy()},
        )


async def healthz(request: Request) -> JSONResponse:
    if not await health.database_ok():
        return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "up"})


def _middleware(settings: Settings) -> list[Middleware]:
    """Outermost first: the request id must cover everything, metrics see every answer."""
    return [
        Middleware(RequestIdMiddleware),
        Middleware(metrics.MetricsMiddleware),
        Middleware(security.SecurityHeadersMiddleware, settings=settings),
        *security.cors(settings),
    ]


def create_app(settings: Settings | None = None, *, manage_database: bool = True) -> Starlette:
    """Build the app. ``manage_database=False`` when the caller already opened Tortoise."""
    if settings is not None:
        configure(settings)
    settings = get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Periodic jobs (CETGQL_RUN_JOBS) run in a background task once the ORM is up; the
        # order events' listening connection (opened by the first subscriber) closes last.
        if not manage_database:
            async with order_events.lifespan(), jobs.background(settings) as app.state.jobs:
                yield
            return
        # Requests run outside the lifespan task's context: Tortoise's Starlette integration
        # makes the ORM context reachable from them.
        async with (
            RegisterTortoise(app, config=db.tortoise_config(settings.database_url)),
            order_events.lifespan(),
            jobs.background(settings) as app.state.jobs,
        ):
            yield

    graphql_app = CetGraphQL(
        schema,
        graphql_ide="graphiql" if settings.graphiql else None,
        multipart_uploads_enabled=True,
        allowed_origins=settings.cors_origins,  # cross-origin WebSocket handshakes
    )
    routes: list[Any] = [
        Route("/graphql", graphql_app, methods=None),  # the view answers 405 itself
        WebSocketRoute("/graphql", graphql_app),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/files/roster-photos/{record_id:int}", files.roster_photo, methods=["GET"]),
        *payment_pages.routes(sandboxes=settings.sandboxes or settings.demo),
        *ticket_pages.routes(),
        *score_pages.routes(),
    ]
    if settings.metrics:
        routes.append(Route("/metrics", metrics.endpoint, methods=["GET"]))
    if STATIC_DIR.is_dir():
        routes.append(Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"))
    return Starlette(routes=routes, lifespan=lifespan, middleware=_middleware(settings))
