"""Payments of orders, every event about them, and each province's provider settings (P1–P6)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from cetgql.models.geography import Province
    from cetgql.models.registration import Order


class PaymentStatus(StrEnum):
    CREATED = "CREATED"  # our record exists, the provider was not reached yet
    PENDING = "PENDING"  # handed to the provider, waiting for the buyer or for news
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CLOSED = "CLOSED"  # closed unpaid (provider switched, order cancelled or lapsed)
    REFUNDED = "REFUNDED"


class ProviderSetting(Model):
    """Whether a provider is on in a province, with that province's merchant settings.
    Secret values are write-only: the API never returns them."""

    id = fields.BigIntField(primary_key=True)
    province: fields.ForeignKeyRelation[Province] = fields.ForeignKeyField(
        "cetgql.Province", related_name=False, on_delete=fields.CASCADE
    )
    provider = fields.CharField(max_length=32)
    enabled = fields.BooleanField(default=False)
    values: fields.JSONField[dict[str, str]] = fields.JSONField(default=dict)
    secrets: fields.JSONField[dict[str, str]] = fields.JSONField(default=dict)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "provider_setting"
        unique_together = (("province", "provider"),)


class Payment(Model):
    """One attempt to pay an order with one provider, under our trade number."""

    id = fields.BigIntField(primary_key=True)
    order: fields.ForeignKeyRelation[Order] = fields.ForeignKeyField(
        "cetgql.Order", related_name="payments", on_delete=fields.CASCADE
    )
    provider = fields.CharField(max_length=32)
    out_trade_no = fields.CharField(max_length=32, unique=True)
    amount_fen = fields.IntField()
    status = fields.CharEnumField(PaymentStatus, max_length=10, default=PaymentStatus.CREATED)
    provider_trade_no = fields.CharField(max_length=64, null=True)
    redirect: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    qr_code = fields.TextField(null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    paid_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)
    refund_no = fields.CharField(max_length=32, null=True, unique=True)
    refund_reason = fields.CharField(max_length=32, null=True)  # DOUBLE_PAYMENT | LATE_PAYMENT
    refunded_at = fields.DatetimeField(null=True)

    class Meta:
        table = "payment"
        indexes = (("order_id", "status"), ("status", "updated_at"))


class PaymentEvent(Model):
    """Everything that happened to a payment, verified or not: the payment audit trail."""

    id = fields.BigIntField(primary_key=True)
    payment: fields.ForeignKeyNullableRelation[Payment] = fields.ForeignKeyField(
        "cetgql.Payment", related_name="events", null=True, on_delete=fields.CASCADE
    )
    provider = fields.CharField(max_length=32)
    kind = fields.CharField(max_length=16)  # CHARGE | NOTIFY | QUERY | CLOSE | REFUND
    out_trade_no = fields.CharField(max_length=64, default="")
    outcome = fields.CharField(max_length=32)  # e.g. APPLIED, DUPLICATE, REJECTED_SIGNATURE
    detail: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "payment_event"
        indexes = (("payment_id",),)  # a payment's history (audit), and its cascade
