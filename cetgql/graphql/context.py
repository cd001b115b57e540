"""Per-request context: who is asking, in which language, from where."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import Response

from cetgql.graphql.loaders import Loaders
from cetgql.models import Account
from cetgql.services import sessions

_UNSET: Any = object()


def bearer_token(headers: Any) -> str | None:
    value = headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def preferred_language(headers: Any) -> str:
    """English when the client asks for it first; Chinese otherwise (API.md conventions)."""
    accept = (headers.get("accept-language") or "").strip().lower()
    return "en" if accept.startswith("en") else "zh"


def client_address(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else "unknown"


@dataclass
class Context:
    request: HTTPConnection
    response: Response | None
    token: str | None
    language: str
    client_address: str
    user_agent: str
    loaders: Loaders = field(default_factory=Loaders, repr=False)
    _viewer: Any = field(default=_UNSET, repr=False)

    async def viewer(self) -> Account | None:
        """The signed-in account for this request's bearer token, looked up once."""
        if self._viewer is _UNSET:
            self._viewer = await sessions.account_for_token(self.token) if self.token else None
        return self._viewer

    def forget_viewer(self) -> None:
        self._viewer = _UNSET

    @classmethod
    def from_connection(cls, connection: HTTPConnection, response: Response | None) -> Context:
        headers = connection.headers
        token = bearer_token(headers)
        if token is None and connection.scope.get("type") == "websocket":
            token = None  # set from connection_init payload by the WebSocket handler
        return cls(
            request=connection,
            response=response,
            token=token,
            language=preferred_language(headers),
            client_address=client_address(connection),
            user_agent=(headers.get("user-agent") or "")[:255],
        )
