"""An append-only trail of admin actions and security-relevant events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from cetgql.models.accounts import Account


class AuditEvent(Model):
    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(auto_now_add=True, db_index=True)
    actor: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    action = fields.CharField(max_length=64, db_index=True)
    subject = fields.CharField(max_length=128, default="")  # e.g. "Account:42"
    client_address = fields.CharField(max_length=64, null=True)
    details: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)

    class Meta:
        table = "audit_event"
