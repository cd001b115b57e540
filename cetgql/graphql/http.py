"""GraphQL over HTTP, as the GraphQL-over-HTTP specification describes it.

Strawberry's view executes operations well but speaks only part of the specification: it
ignores ``Accept`` and always answers ``application/json`` with 200, refuses a mutation over
GET with 400, and answers malformed requests in plain text. :class:`GraphQLOverHTTP` takes
over the HTTP half of the view (WebSockets stay Strawberry's) and decides:

- **Media type** from ``Accept``: ``application/graphql-response+json`` when the client accepts
  it (preferred when both are equally acceptable), else ``application/json``, which is also
  the answer to ``*/*`` and to a request without ``Accept``. A client accepting neither gets
  406. Both are sent with ``charset=utf-8``.
- **Status codes.** A request that is not well-formed (a body that is not JSON, not an object,
  no ``query`` string, ``variables``/``extensions`` not objects, ``operationName`` not a string)
  is 400 in both media types. A document that does not parse or validate, variables that do
  not coerce, an unknown operation name and a refused limit (depth, aliases, tokens, cost) are
  GraphQL *request errors*: no ``data`` entry, 400 with ``application/graphql-response+json``
  and 200 with ``application/json`` (the specification's rule for legacy clients). Once
  execution has begun the answer is 200 with ``data`` whatever went wrong inside it:
  missing authentication or permission are errors on their fields, and unexpected faults are
  masked errors (code ``INTERNAL_SERVER_ERROR`` with the request id).
- **Methods.** GET runs queries only; a mutation over GET is 405 with ``Allow: POST`` and is
  never executed. Methods other than GET and POST are 405 with ``Allow: GET, POST``.
  Subscriptions are served over WebSocket (``graphql-transport-ws``) only.
- **Bodies.** POST takes ``application/json`` in UTF-8 (another charset, or another content
  type, is 415) of at most :data:`MAX_BODY_BYTES` (413), or ``multipart/form-data`` following
  the GraphQL multipart request specification for file uploads. Text that is not valid
  Unicode (undecodable bytes, lone surrogates escaped in JSON) is refused with 400, before it
  can reach a database that cannot store it.
- **Batches** (a JSON array of operations) are refused with 400: each operation of a batch
  would pass the per-operation limits while the batch multiplies the work behind one
  request, and the specification does not define them; clients send operations one by one
  (HTTP/2 multiplexes them).

Every refusal is a GraphQL-shaped JSON body, ``{"errors": [{"message", "extensions": {"code"}}]}``,
so clients parse one format. The independent ``graphql-http`` audit runs against this view in
``tests/test_http_conformance.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from cetgql import metrics

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
MAX_BODY_BYTES = 4 * 1024 * 1024  # a group registration of a few thousand students fits
_JSON_RANGES = frozenset({JSON, "application/*", "*/*"})


@dataclass
class Refusal(Exception):
    """A request refused before execution, answered with ``status`` and a GraphQL-shaped body."""

    status: int
    message: str
    code: str = "BAD_REQUEST"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Params:
    """The GraphQL-over-HTTP request parameters, checked."""

    query: str
    operation_name: str | None
    variables: dict[str, Any] | None
    extensions: dict[str, Any] | None


def negotiate(accept: str | None) -> str | None:
    """The response media type for an ``Accept`` header, or None when neither is acceptable.

    ``application/graphql-response+json`` wins a tie with ``application/json``; ``*/*`` and
    ``application/*`` mean ``application/json``; a missing or empty header means
    ``application/json`` (the specification's rule for clients that predate it)."""
    if accept is None or not accept.strip():
        return JSON
    best: str | None = None
    best_q = 0.0
    for item in accept.split(","):
        media, _, parameters = item.partition(";")
        media = media.strip().lower()
        q = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if q <= 0.0:
            continue
        if media == GRAPHQL_RESPONSE:
            candidate = GRAPHQL_RESPONSE
        elif media in _JSON_RANGES:
            candidate = JSON
        else:
            continue
        if q > best_q or (q == best_q and candidate == GRAPHQL_RESPONSE):
            best, best_q = candidate, q
    return best


def _accepts_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "").lower()


def _check_text(value: Any, depth: int = 0) -> None:
    """Refuse strings that are not valid Unicode (lone surrogates from JSON escapes) or hold
    NUL characters (literals in the document are checked by a validation rule)."""
    if depth > 64:
        raise Refusal(400, "The request parameters are nested too deeply.")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise Refusal(400, "The request contains text that is not valid Unicode.") from error
        if "\x00" in value:  # no field takes one, and PostgreSQL cannot store one
            raise Refusal(400, "Strings may not contain NUL characters (\\u0000).")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_text(key, depth + 1)
            _check_text(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_text(item, depth + 1)


def _json(text: str | bytes, what: str) -> Any:
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text)
    except UnicodeDecodeError as error:
        raise Refusal(400, f"The {what} is not valid UTF-8.") from error
    except (ValueError, RecursionError) as error:
        raise Refusal(400, f"The {what} is not valid JSON.") from error


def _params(data: Any) -> Params:
    if isinstance(data, list):
        raise Refusal(
            400,
            "Batched operations are not supported: send one operation per request.",
            "BATCH_NOT_SUPPORTED",
        )
    if not isinstance(data, dict):
        raise Refusal(400, "The request body must be a JSON object with a `query`.")
    query = data.get("query")
    if query is None or query == "":
        raise Refusal(400, "The request has no GraphQL `query`.", "MISSING_QUERY")
    if not isinstance(query, str):
        raise Refusal(400, "The `query` parameter must be a string.")
    name = data.get("operationName")
    if name is not None and not isinstance(name, str):
        raise Refusal(400, "The `operationName` parameter must be a string or null.")
    variables = data.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise Refusal(400, "The `variables` parameter must be an object or null.")
    extensions = data.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise Refusal(400, "The `extensions` parameter must be an object or null.")
    _check_text(data)
    return Params(query=query, operation_name=name, variables=variables, extensions=extensions)


def _content_type(request: Request) -> tuple[str, dict[str, str]]:
    raw = request.headers.get("content-type", "")
    media, _, rest = raw.partition(";")
    parameters: dict[str, str] = {}
    for item in rest.split(";"):
        name, _, value = item.partition("=")
        if name.strip():
            parameters[name.strip().lower()] = value.strip().strip('"').lower()
    return media.strip().lower(), parameters


def _error_codes(errors: list[dict[str, Any]]) -> list[str]:
    codes = []
    for error in errors:
        extensions = error.get("extensions") or {}
        code = extensions.get("code") if isinstance(extensions, dict) else None
        codes.append(code if isinstance(code, str) else "GRAPHQL_ERROR")
    return codes


class GraphQLOverHTTP(GraphQL[Any, Any]):
    """Strawberry's ASGI view with its HTTP half replaced as the module describes."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        response = await self.handle_http(request)
        await response(scope, receive, send)

    async def handle_http(self, request: Request) -> Response:
        started = time.perf_counter()
        media = negotiate(request.headers.get("accept"))
        operation_type: str | None = None
        try:
            if request.method not in ("GET", "POST"):
                raise Refusal(
                    405,
                    "GraphQL is served over GET (queries) and POST.",
                    "METHOD_NOT_ALLOWED",
                    {"Allow": "GET, POST"},
                )
            if (
                request.method == "GET"
                and self.graphql_ide
                and "query" not in request.query_params
                and _accepts_html(request)
            ):
                return await self.render_graphql_ide(request)
            if media is None:
                raise Refusal(
                    406,
                    f"Accept {GRAPHQL_RESPONSE} or {JSON}.",
                    "NOT_ACCEPTABLE",
                )
            params = await self._read(request)
            response, operation_type, errors = await self._execute(request, params, media)
        except Refusal as refusal:
            response = self._refusal(refusal, media or JSON)
            errors = [{"extensions": {"code": refusal.code}}]
            if refusal.code == "METHOD_NOT_ALLOWED" and request.method == "GET":
                operation_type = "mutation"
        metrics.observe_graphql(
            operation_type,
            response.status_code,
            time.perf_counter() - started,
            _error_codes(errors),
        )
        return response

    async def _read(self, request: Request) -> Params:
        if request.method == "GET":
            query = request.query_params
            for name in ("query", "operationName", "variables", "extensions"):
                if len(query.getlist(name)) > 1:
                    raise Refusal(400, f"The `{name}` parameter is given more than once.")
            data: dict[str, Any] = {
                "query": query.get("query"),
                "operationName": query.get("operationName") or None,
            }
            for name in ("variables", "extensions"):
                text = query.get(name)
                data[name] = _json(text, f"`{name}` parameter") if text else None
            return _params(data)
        media, parameters = _content_type(request)
        if media == JSON:
            charset = parameters.get("charset", "utf-8")
            if charset not in ("utf-8", "utf8"):
                raise Refusal(415, "JSON request bodies must be UTF-8.", "UNSUPPORTED_MEDIA_TYPE")
            return _params(_json(await self._body(request), "request body"))
        if media == "multipart/form-data" and self.multipart_uploads_enabled:
            adapter = self.request_adapter_class(request)
            try:
                data = await self.parse_multipart(adapter)
            except Exception as error:  # Strawberry raises its own HTTP exceptions here
                raise Refusal(
                    400, getattr(error, "reason", "Invalid multipart request.")
                ) from error
            return _params(data)
        raise Refusal(
            415,
            f"Send the operation as {JSON} (or multipart/form-data for file uploads).",
            "UNSUPPORTED_MEDIA_TYPE",
        )

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise Refusal(413, "The request body is too large.", "PAYLOAD_TOO_LARGE")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise Refusal(413, "The request body is too large.", "PAYLOAD_TOO_LARGE")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _execute(
        self, request: Request, params: Params, media: str
    ) -> tuple[Response, str | None, list[dict[str, Any]]]:
        sub_response = await self.get_sub_response(request)
        context = await self.get_context(request, sub_response)
        allowed = (
            {OperationType.QUERY}
            if request.method == "GET"
            else {OperationType.QUERY, OperationType.MUTATION}
        )
        try:
            result = await self.schema.execute(
                params.query,
                variable_values=params.variables,
                context_value=context,
                operation_name=params.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=params.extensions,
            )
        except InvalidOperationTypeError as error:
            if request.method == "GET" and error.operation_type == OperationType.MUTATION:
                raise Refusal(
                    405,
                    "Mutations are not allowed over GET; send them with POST.",
                    "METHOD_NOT_ALLOWED",
                    {"Allow": "POST"},
                ) from error
            result = ExecutionResult(
                data=None,
                errors=[
                    GraphQLError(
                        "Subscriptions are served over WebSocket (graphql-transport-ws) at "
                        "this same path.",
                        extensions={"code": "SUBSCRIPTION_OVER_HTTP"},
                    )
                ],
            )
        except CannotGetOperationTypeError as error:
            result = ExecutionResult(
                data=None,
                errors=[
                    GraphQLError(
                        error.as_http_error_reason(), extensions={"code": "UNKNOWN_OPERATION"}
                    )
                ],
            )
        operation_type = getattr(context, "operation_type", None)
        body: dict[str, Any]
        if result.errors and not getattr(context, "executing", False):
            # A request error: the operation never ran.
            body = {"errors": [error.formatted for error in result.errors]}
            unexpected = any(
                (error.extensions or {}).get("code") == "INTERNAL_SERVER_ERROR"
                for error in result.errors
            )
            # Legacy clients get 200 for every well-formed request (the specification's rule).
            status = (500 if unexpected else 400) if media == GRAPHQL_RESPONSE else 200
        else:
            body = {"data": result.data}
            if result.errors:
                body["errors"] = [error.formatted for error in result.errors]
            status = 200
        if result.extensions:
            body["extensions"] = result.extensions
        response = self._json_response(body, status, media)
        for name, value in sub_response.headers.items():
            if name.lower() not in ("content-type", "content-length"):
                response.headers.append(name, value)
        return response, operation_type, body.get("errors") or []

    def _json_response(
        self,
        body: dict[str, Any],
        status: int,
        media: str,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        # Answers may hold personal data: no cache, shared or private, keeps them.
        return Response(
            self.encode_json(body),
            status_code=status,
            headers={"Cache-Control": "no-store", **(headers or {})},
            media_type=f"{media}; charset=utf-8",
        )

    def _refusal(self, refusal: Refusal, media: str) -> Response:
        body = {"errors": [{"message": refusal.message, "extensions": {"code": refusal.code}}]}
        return self._json_response(body, refusal.status, media, refusal.headers)
