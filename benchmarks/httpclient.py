"""A small HTTP/1.1 keep-alive client for the load generator.

Why not httpx: on a 2-core machine the load generator shares the CPU with the server under
test, and httpx spends several hundred microseconds of Python per request, enough to steal a
good part of a core at a few thousand requests a second and to blur the comparison. This
client writes the request bytes itself and parses the answer with ``httptools`` (the C parser
uvicorn uses), so a request costs a few tens of microseconds. Like a browser tab, one
simulated user holds one connection and reuses it; it reconnects when the server closes it.
Only what the benchmarks need: no TLS, no proxies, no cookies, no compression.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httptools


class HttpError(Exception):
    """The connection failed or the server answered something we cannot read."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class _Parsed:
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    done: bool = False
    keep_alive: bool = False
    parser: Any = None

    def on_headers_complete(self) -> None:
        # Asked here: once the message is complete the parser has reset and always says no.
        self.keep_alive = bool(self.parser.should_keep_alive())

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class Connection:
    """One keep-alive connection to ``base_url`` (``http://host:port``)."""

    def __init__(self, base_url: str, *, timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        self.base_url = base_url.rstrip("/")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self._host_header = f"{self.host}:{self.port}".encode("latin-1")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Send one request and read the whole answer; retried once on a stale connection."""
        for attempt in (1, 2):
            if self._writer is None:
                await self._connect()
            try:
                return await asyncio.wait_for(
                    self._exchange(method, path, body, headers or {}), self.timeout
                )
            except (ConnectionError, asyncio.IncompleteReadError, HttpError) as error:
                await self.close()
                if attempt == 2:
                    raise HttpError(f"{method} {path}: {error!r}") from error
        raise AssertionError("unreachable")

    async def _exchange(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> Response:
        assert self._reader is not None and self._writer is not None
        lines = [f"{method} {path} HTTP/1.1".encode("latin-1"), b"Host: " + self._host_header]
        lines += [f"{k}: {v}".encode() for k, v in headers.items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(b"Content-Length: " + str(len(body)).encode())
        self._writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        parsed = _Parsed()
        parser = parsed.parser = httptools.HttpResponseParser(parsed)
        while not parsed.done:
            data = await self._reader.read(65536)
            if not data:
                raise HttpError("connection closed before the answer was complete")
            parser.feed_data(data)
        if not parsed.keep_alive:
            await self.close()
        return Response(
            parser.get_status_code(), parsed.headers, b"".join(parsed.chunks), self.base_url + path
        )

    async def get(
        self,
        path: str,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        if params:
            path = f"{path}{'&' if '?' in path else '?'}{urlencode(params)}"
        return await self.request("GET", path, headers=headers)

    async def post_json(
        self, path: str, payload: Any, *, headers: dict[str, str] | None = None
    ) -> Response:
        sent = {"Content-Type": "application/json", **(headers or {})}
        return await self.request("POST", path, body=json.dumps(payload).encode(), headers=sent)

    async def post_form(
        self, path: str, fields: dict[str, str], *, headers: dict[str, str] | None = None
    ) -> Response:
        sent = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        return await self.request("POST", path, body=urlencode(fields).encode(), headers=sent)

    def path_of(self, url: str, current: str = "/") -> str:
        """The path (and query) of an absolute or relative URL on this server."""
        absolute = urljoin(self.base_url + current, url)
        if not absolute.startswith(self.base_url):
            raise HttpError(f"{url} is not on {self.base_url}")
        return absolute[len(self.base_url) :] or "/"
