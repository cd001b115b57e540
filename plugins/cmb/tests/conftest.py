"""Fixtures for the CMB plugin tests; the pieces live in :mod:`cmb_testkit`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from cetgql_cmb.provider import CmbProvider
from cetgql_cmb.sandbox import CmbSandbox
from cmb_testkit import BANK, NOTIFY_URL, SANDBOX_URL, Clock, Env, Receiver, mounted

from cetgql.payments import MerchantConfig


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def env(clock: Clock) -> AsyncIterator[Env]:
    receiver = Receiver()
    sandbox = CmbSandbox(
        NOTIFY_URL,
        transport=httpx.ASGITransport(app=receiver.app),
        clock=clock,
        retry_delay=0,
    )
    host = mounted(sandbox)
    provider = CmbProvider(transport=httpx.ASGITransport(app=host), clock=clock)
    receiver.provider = provider
    merchant = MerchantConfig("cmb", provider.sandbox_merchant(SANDBOX_URL))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=host), base_url=BANK) as browser:
        yield Env(clock, provider, sandbox, receiver, merchant, browser)
