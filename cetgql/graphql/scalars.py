"""Scalars of the contract: ``DateTime`` shown in Asia/Shanghai, ``Money`` in fen and yuan."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from cetgql.services.clock import SHANGHAI


def _serialise_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(SHANGHAI).isoformat()


def _parse_datetime(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("DateTime needs an offset, e.g. 2026-06-13T09:00:00+08:00")
    return parsed.astimezone(UTC)


DateTime = strawberry.scalar(
    name="DateTime",
    description="ISO 8601 date and time with offset; shown in Asia/Shanghai (+08:00).",
    serialize=_serialise_datetime,
    parse_value=_parse_datetime,
)


@strawberry.type(description="An amount of money, kept as integer fen.")
class Money:
    """Built with ``Money(fen=...)``; ``yuan`` follows from it. Plain fields, not resolvers: a
    resolver costs Strawberry several times what reading an attribute does, and amounts are
    in every order and payment of the candidate's overview."""

    fen: int
    currency: str = "CNY"
    yuan: str = strawberry.field(description='Decimal yuan with two places, e.g. "30.00".')

    def __init__(self, fen: int, currency: str = "CNY") -> None:
        sign = "-" if fen < 0 else ""
        whole, cents = divmod(abs(fen), 100)
        self.fen, self.currency, self.yuan = fen, currency, f"{sign}{whole}.{cents:02d}"
