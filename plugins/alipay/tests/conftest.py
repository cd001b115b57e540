"""Fixtures for the Alipay plugin tests (helpers live in alipay_testing.py, a name no other
plugin's tests will share)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from alipay_testing import NOTIFY_URL, SANDBOX, FakeClock, HostRouter, Receiver, World
from cetgql_alipay import AlipayProvider
from cetgql_alipay.sandbox import AlipaySandbox
from starlette.applications import Starlette
from starlette.routing import Route

from cetgql.payments import MerchantConfig


@pytest.fixture
async def world() -> AsyncIterator[World]:
    """Provider ⇄ sandbox ⇄ cetgql's notify endpoint, in process over httpx."""
    clock = FakeClock()
    provider = AlipayProvider(timeout=5.0)
    sandbox = AlipaySandbox(NOTIFY_URL, clock=clock, retry_delays=(0.01, 0.01, 0.01))
    merchant = MerchantConfig("alipay", provider.sandbox_merchant(SANDBOX))
    world = World(provider=provider, sandbox=sandbox, merchant=merchant, clock=clock)
    receiver = Receiver(world)
    cetgql = Starlette(routes=[Route("/payments/alipay/notify", receiver.notify, methods=["POST"])])
    transport = HostRouter({"sandbox.test": sandbox, "cetgql.test": cetgql})
    sandbox.transport = transport
    world.transport, world.receiver = transport, receiver
    world.provider = AlipayProvider(timeout=5.0, transport=transport)
    yield world
    await sandbox.drain()
