"""End-to-end payment plumbing for tests: a server whose public address is a recording proxy
(so a test can see, replay, tamper with or lose the providers' notifications), sandbox
merchant settings, and a client that pays through a sandbox cashier like a browser would."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cetgql import models
from cetgql.payments.manager import registry
from cetgql.settings import Settings
from tests.conftest import ServerProcess

PROVIDERS = ("alipay", "boc", "cmb")


@dataclass
class RecordedNotification:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Proxy:
    """Forwards everything to the server; records provider notifications on the way."""

    target: str = ""
    drop_notifications: bool = False
    notifications: list[RecordedNotification] = field(default_factory=list)
    url: str = ""

    async def forward(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        headers = {k: v for k, v in request.headers.items() if k not in ("host", "content-length")}
        if path.endswith("/notify"):
            self.notifications.append(RecordedNotification(path, headers, body))
            if self.drop_notifications:
                return Response("unreachable", status_code=502)
        async with httpx.AsyncClient(base_url=self.target, timeout=30) as client:
            answer = await client.request(
                request.method, path, params=request.query_params, content=body, headers=headers
            )
        return Response(
            answer.content,
            status_code=answer.status_code,
            headers={k: v for k, v in answer.headers.items() if k in ("content-type", "location")},
        )


@contextmanager
def running_proxy() -> Iterator[Proxy]:
    proxy = Proxy()
    app = Starlette(routes=[Route("/{path:path}", proxy.forward, methods=["GET", "POST"])])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    proxy.url = f"http://127.0.0.1:{port}"
    try:
        yield proxy
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def payment_server(database: str, settings: Settings) -> Iterator[tuple[ServerProcess, Proxy]]:
    with running_proxy() as proxy:
        server = ServerProcess(database, settings, {"CETGQL_PUBLIC_URL": proxy.url})
        proxy.target = server.url
        try:
            yield server, proxy
        finally:
            server.stop()


async def enable_sandbox(province: models.Province, provider_name: str, server_url: str) -> None:
    """Turn a provider on for a province with the settings of the server's sandbox."""
    provider = registry().get(provider_name)
    assert provider is not None, f"plugin {provider_name} is not installed"
    values = provider.sandbox_merchant(f"{server_url}/sandbox/{provider_name}")
    secret = {f.name for f in provider.settings_fields if f.secret}
    await models.ProviderSetting.update_or_create(
        province=province,
        provider=provider_name,
        defaults={
            "enabled": True,
            "values": {k: v for k, v in values.items() if k not in secret},
            "secrets": {k: v for k, v in values.items() if k in secret},
        },
    )


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}, "buttons": []})
        elif not self.forms:
            return
        elif tag == "input" and a.get("name") and a.get("type", "text") != "submit":
            self.forms[-1]["fields"].setdefault(a["name"], a.get("value", ""))
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select:
            self.forms[-1]["fields"].setdefault(self._select, a.get("value", ""))
        elif tag == "button" or (tag == "input" and a.get("type") == "submit"):
            self.forms[-1]["buttons"].append(
                {"name": a.get("name"), "value": a.get("value", ""), "text": ""}
            )

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self.forms and self.forms[-1]["buttons"]:
            self.forms[-1]["buttons"][-1]["text"] += data


async def open_cashier(http: httpx.AsyncClient, redirect: dict[str, Any]) -> httpx.Response:
    """Do what the browser does with startPayment's redirect: follow it or post its form."""
    fields = {f["name"]: f["value"] for f in redirect["fields"]}
    if redirect["method"] == "GET":
        return await http.get(redirect["url"], params=fields, follow_redirects=True)
    return await http.post(redirect["url"], data=fields, follow_redirects=True)


async def press_pay(http: httpx.AsyncClient, cashier: httpx.Response) -> httpx.Response:
    """Press the cashier's pay button; returns the response before any redirect is followed."""
    parser = _Forms()
    parser.feed(cashier.text)
    for form in parser.forms:
        for button in form["buttons"]:
            text = button["text"]
            if ("付款" in text or "支付" in text) and "取消" not in text:
                data = dict(form["fields"])
                if button["name"]:
                    data[button["name"]] = button["value"]
                action = urljoin(str(cashier.url), form["action"] or str(cashier.url))
                return await http.post(action, data=data)
    raise AssertionError(f"no pay button on the cashier page:\n{cashier.text[:2000]}")


async def wait_for(predicate: Any, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)
