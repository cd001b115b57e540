"""HTTP hardening: security headers on every response and CORS for configured partner origins.

- ``X-Content-Type-Options: nosniff``: a JSON answer is never run as script or HTML.
- ``Referrer-Policy: no-referrer``: URLs with trade numbers or signed download links do not
  leak to other sites.
- ``X-Frame-Options: DENY`` and ``Content-Security-Policy: frame-ancestors 'none'`` unless the
  response brings its own policy: no page of ours can be framed (click-jacking on the
  payment return page or the playground).
- ``Strict-Transport-Security`` when the service is public over HTTPS (``CETGQL_PUBLIC_URL``).

The GraphiQL page brings its own policy (``graphql/ide.py``): scripts and styles from this
origin only (its one inline script and style by hash), requests to this origin only.

CORS (``CETGQL_CORS_ORIGINS``): partner front ends on the listed origins may call the API from
a browser with ``Authorization`` and ``Content-Type`` headers; nothing is allowed when the list
is empty. Tokens travel in the ``Authorization`` header, never in cookies, so credentials mode
is off and a forged cross-site request carries no session. The same list admits cross-origin
WebSocket handshakes (``app.py``).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cetgql.settings import Settings

CORS_METHODS = ("GET", "POST")
CORS_HEADERS = ("Authorization", "Content-Type", "Accept", "Accept-Language", "X-Request-Id")
CORS_EXPOSED = ("X-Request-Id",)
CORS_MAX_AGE = 600


def baseline_headers(settings: Settings) -> dict[str, str]:
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }
    if settings.public_url.startswith("https://"):
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


class SecurityHeadersMiddleware:
    """Adds :func:`baseline_headers` (and ``frame-ancestors 'none'`` when the response has no
    Content-Security-Policy of its own) to every HTTP response."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.headers = baseline_headers(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def cors(settings: Settings) -> list[Middleware]:
    """The CORS middleware for the configured partner origins; none when there are none."""
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=list(CORS_METHODS),
            allow_headers=list(CORS_HEADERS),
            expose_headers=list(CORS_EXPOSED),
            allow_credentials=False,
            max_age=CORS_MAX_AGE,
        )
    ]
