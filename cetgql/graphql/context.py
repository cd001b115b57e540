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
    # Set while an operation runs (graphql/extensions.py), read by the HTTP view: whether
    # execution began (request error or not) and the operation's type (for metrics).
    executing: bool = field(default=False, repr=False)
    operation_type: str | None = field(default=None, repr=False)
    _viewer: Any = field(default=_UNSET, repr=False)
    _connection_params: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def connection_params(self) -> dict[str, Any]:
        """The ``connection_init`` payload of a WebSocket; empty over HTTP."""
        return self._connection_params

    @connection_params.setter
    def connection_params(self, payload: dict[str, Any]) -> None:
        """Strawberry sets this on ``connection_init``. Browsers cannot put headers on a
        WebSocket handshake, so clients send ``{"Authorization": "Bearer <token>"}`` (any
        case, ``Accept-Language`` likewise) here; it wins over the handshake's headers."""
        self._connection_params = payload
        params = {str(k).lower(): v for k, v in payload.items() if isinstance(v, str)}
        token = bearer_token(params)
        if token is not None:
            self.token = token
            self.forget_viewer()
        if "accept-language" in params:
            self.language = preferred_language(params)

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
