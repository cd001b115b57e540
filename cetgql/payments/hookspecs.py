"""pluggy hook specifications of the project ``cetgql``.

A plugin distribution registers a module under the entry point group ``cetgql``; that module
implements :func:`cetgql_payment_providers` with ``@hookimpl``.
"""

from __future__ import annotations

import pluggy

from cetgql.payments.provider import PaymentProvider

PROJECT = "cetgql"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def cetgql_payment_providers() -> list[PaymentProvider]:  # type: ignore[empty-body]
    """Return the provider objects this plugin offers (synchronously: no coroutines here)."""
