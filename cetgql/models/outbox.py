"""Messages the notifier sent (or, in demo mode, only recorded) for admins to read."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class OutboxMessage(Model):
    id = fields.BigIntField(primary_key=True)
    channel = fields.CharField(max_length=8)  # "SMS" | "EMAIL"
    destination = fields.CharField(max_length=254, db_index=True)
    subject = fields.CharField(max_length=255, default="")
    body = fields.TextField()
    delivered = fields.BooleanField(default=False)
    error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "outbox_message"
