"""The module cetgql loads through the ``cetgql`` entry point ``cmb``."""

from __future__ import annotations

from cetgql.payments import PaymentProvider, hookimpl
from cetgql_cmb.provider import CmbProvider


@hookimpl
def cetgql_payment_providers() -> list[PaymentProvider]:
    return [CmbProvider()]
