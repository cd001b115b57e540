"""The module the ``cetgql`` entry point names: it hands cetgql the BOC provider."""

from __future__ import annotations

from cetgql.payments import PaymentProvider, hookimpl
from cetgql_boc.provider import BocProvider


@hookimpl
def cetgql_payment_providers() -> list[PaymentProvider]:
    """One provider object; its methods are coroutines cetgql awaits itself."""
    return [BocProvider()]
