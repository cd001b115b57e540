"""Fixtures of the plugin's tests; the helpers they use are in boc_testing.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from boc_testing import Cetgql, Clock, LiveServer, World
from cetgql_boc import BocProvider
from cetgql_boc.sandbox import BocSandbox
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from cetgql.payments import MerchantConfig


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    with LiveServer() as server:
        yield server


@pytest.fixture
def world_factory(clock: Clock, live_server: LiveServer) -> Iterator[Callable[..., World]]:
    """Builds a fresh World on the live server; keyword arguments go to the BocSandbox."""

    def make(**sandbox_options: object) -> World:
        provider = BocProvider(timeout=5.0)
        cetgql = Cetgql(provider)
        base = live_server.url
        sandbox_options.setdefault("retry_delays", (0.01, 0.01))
        sandbox = BocSandbox(f"{base}/payments/boc/notify", now=clock, **sandbox_options)  # type: ignore[arg-type]
        live_server.switch.app = Starlette(
            routes=[
                Route("/payments/boc/notify", cetgql.notify, methods=["POST"]),
                Route("/payments/boc/return", cetgql.returned, methods=["GET"]),
                Mount("/sandbox/boc", app=sandbox),
            ]
        )
        merchant = MerchantConfig("boc", provider.sandbox_merchant(f"{base}/sandbox/boc"))
        return World(base, provider, sandbox, cetgql, merchant, clock)

    yield make
    live_server.switch.app = None


@pytest.fixture
def world(world_factory: Callable[..., World]) -> World:
    return world_factory()
