"""Rate-limit counters kept in the database so every server process sees the same counts."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class RateLimitHit(Model):
    id = fields.BigIntField(primary_key=True)
    bucket = fields.CharField(max_length=160)  # e.g. "qualification:addr:10.0.0.1"
    at = fields.DatetimeField()

    class Meta:
        table = "rate_limit_hit"
        indexes = (("bucket", "at"),)
