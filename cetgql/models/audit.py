"""An append-only trail of admin actions and security-relevant events."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class AuditEvent(Model):
    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(auto_now_add=True, db_index=True)
    actor = fields.ForeignKeyField(
        "cetgql.Account", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    action = fields.CharField(max_length=64, db_index=True)
    subject = fields.CharField(max_length=128, default="")  # e.g. "Account:42"
    client_address = fields.CharField(max_length=64, null=True)
    details = fields.JSONField(default=dict)

    class Meta:
        table = "audit_event"
