"""The audit trail: admin actions and security events, written in the same transaction as the
change they describe."""

from __future__ import annotations

from typing import Any

from cetgql.models import Account, AuditEvent


async def record(
    action: str,
    *,
    actor: Account | None = None,
    subject: str = "",
    client_address: str | None = None,
    **details: Any,
) -> None:
    await AuditEvent.create(
        action=action,
        actor=actor,
        subject=subject[:128],
        client_address=(client_address or "")[:64] or None,
        details=details,
    )
