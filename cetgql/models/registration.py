"""Registration: windows, fees, oral centres, orders and the choices in them (S1–S12)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from cetgql.models.exams import SubjectKind

if TYPE_CHECKING:
    from cetgql.models.accounts import Account
    from cetgql.models.exams import ExamSession, SessionSubject, Subject
    from cetgql.models.geography import Campus, Province, School


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    LAPSED = "LAPSED"
    CANCELLED = "CANCELLED"


class RegistrationStatus(StrEnum):
    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    LAPSED = "LAPSED"
    CANCELLED = "CANCELLED"


class ReviewStatus(StrEnum):
    APPROVED = "APPROVED"
    PENDING = "PENDING"
    REJECTED = "REJECTED"


class RegistrationWindow(Model):
    """When a province (or one of its schools, which then wins) lets candidates register."""

    id = fields.BigIntField(primary_key=True)
    session: fields.ForeignKeyRelation[ExamSession] = fields.ForeignKeyField(
        "cetgql.ExamSession", related_name="windows", on_delete=fields.CASCADE
    )
    province: fields.ForeignKeyRelation[Province] = fields.ForeignKeyField(
        "cetgql.Province", related_name=False, on_delete=fields.CASCADE
    )
    school: fields.ForeignKeyNullableRelation[School] = fields.ForeignKeyField(
        "cetgql.School", related_name=False, null=True, on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(SubjectKind, max_length=8)
    opens_at = fields.DatetimeField()
    closes_at = fields.DatetimeField()

    class Meta:
        table = "registration_window"
        unique_together = (("session", "province", "school", "kind"),)


class Fee(Model):
    """The fee of a subject in a province (P5), in fen."""

    id = fields.BigIntField(primary_key=True)
    session: fields.ForeignKeyRelation[ExamSession] = fields.ForeignKeyField(
        "cetgql.ExamSession", related_name=False, on_delete=fields.CASCADE
    )
    province: fields.ForeignKeyRelation[Province] = fields.ForeignKeyField(
        "cetgql.Province", related_name=False, on_delete=fields.CASCADE
    )
    subject: fields.ForeignKeyRelation[Subject] = fields.ForeignKeyField(
        "cetgql.Subject", related_name=False, on_delete=fields.CASCADE
    )
    amount_fen = fields.IntField()

    class Meta:
        table = "fee"
        unique_together = (("session", "province", "subject"),)


class OralCenter(Model):
    """An oral test centre of a province with a fixed number of seats (S3)."""

    id = fields.BigIntField(primary_key=True)
    session: fields.ForeignKeyRelation[ExamSession] = fields.ForeignKeyField(
        "cetgql.ExamSession", related_name="oral_centers", on_delete=fields.CASCADE
    )
    province: fields.ForeignKeyRelation[Province] = fields.ForeignKeyField(
        "cetgql.Province", related_name="oral_centers", on_delete=fields.CASCADE
    )
    code = fields.CharField(max_length=6)  # the centre code used in oral ticket numbers
    name = fields.CharField(max_length=128)
    address = fields.CharField(max_length=255, default="")
    capacity = fields.IntField()
    # Oral subjects this centre examines; empty means all of them.
    subject_codes: fields.JSONField[list[str]] = fields.JSONField(default=list)

    class Meta:
        table = "oral_center"
        unique_together = (("session", "code"),)


class Order(Model):
    """What a candidate pays in one go: the written or the oral choices of one selection (S7)."""

    id = fields.BigIntField(primary_key=True)
    number = fields.CharField(max_length=32, unique=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name="orders", on_delete=fields.CASCADE
    )
    session: fields.ForeignKeyRelation[ExamSession] = fields.ForeignKeyField(
        "cetgql.ExamSession", related_name="orders", on_delete=fields.RESTRICT
    )
    province: fields.ForeignKeyRelation[Province] = fields.ForeignKeyField(
        "cetgql.Province", related_name=False, on_delete=fields.RESTRICT
    )
    kind = fields.CharEnumField(SubjectKind, max_length=8)
    status = fields.CharEnumField(OrderStatus, max_length=16, default=OrderStatus.PENDING_PAYMENT)
    amount_fen = fields.IntField()
    group_paid_by: fields.ForeignKeyNullableRelation[School] = fields.ForeignKeyField(
        "cetgql.School", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(db_index=True)
    paid_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)  # lapsed or cancelled

    registrations: fields.ReverseRelation[Registration]

    class Meta:
        table = "registration_order"
        indexes = (("account_id", "session_id"), ("status", "expires_at"))


class Registration(Model):
    """One chosen subject. ``active_key`` is set while the choice holds its place, so a
    database unique constraint forbids two live choices of one subject by one candidate."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name="registrations", on_delete=fields.CASCADE
    )
    session: fields.ForeignKeyRelation[ExamSession] = fields.ForeignKeyField(
        "cetgql.ExamSession", related_name="registrations", on_delete=fields.RESTRICT
    )
    offering: fields.ForeignKeyRelation[SessionSubject] = fields.ForeignKeyField(
        "cetgql.SessionSubject", related_name="registrations", on_delete=fields.RESTRICT
    )
    order: fields.ForeignKeyRelation[Order] = fields.ForeignKeyField(
        "cetgql.Order", related_name="registrations", on_delete=fields.CASCADE
    )
    status = fields.CharEnumField(
        RegistrationStatus, max_length=16, default=RegistrationStatus.PENDING_PAYMENT
    )
    school: fields.ForeignKeyRelation[School] = fields.ForeignKeyField(
        "cetgql.School", related_name=False, on_delete=fields.RESTRICT
    )
    campus: fields.ForeignKeyRelation[Campus] = fields.ForeignKeyField(
        "cetgql.Campus", related_name=False, on_delete=fields.RESTRICT
    )
    oral_center: fields.ForeignKeyNullableRelation[OralCenter] = fields.ForeignKeyField(
        "cetgql.OralCenter", related_name="registrations", null=True, on_delete=fields.RESTRICT
    )
    active_key = fields.CharField(max_length=64, null=True, unique=True)
    # The candidate opted in to a paper score report when registering (R6).
    paper_report = fields.BooleanField(default=False)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    paid_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "registration"
        indexes = (
            ("account_id", "session_id"),
            ("oral_center_id", "status", "expires_at"),
            ("order_id",),  # the choices of an order: payment, overview, lapse
        )


class Cet6Review(Model):
    """A candidate's request to sit CET6 on the strength of an earlier CET4 score (S4)."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name="cet6_reviews", on_delete=fields.CASCADE
    )
    session: fields.ForeignKeyRelation[ExamSession] = fields.ForeignKeyField(
        "cetgql.ExamSession", related_name=False, on_delete=fields.CASCADE
    )
    school: fields.ForeignKeyRelation[School] = fields.ForeignKeyField(
        "cetgql.School", related_name=False, on_delete=fields.CASCADE
    )
    cet4_ticket_number = fields.CharField(max_length=15)
    status = fields.CharEnumField(ReviewStatus, max_length=10)
    reason = fields.CharField(max_length=32)  # what the automatic check found
    reviewer: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    note = fields.TextField(null=True)
    created_at = fields.DatetimeField()
    decided_at = fields.DatetimeField(null=True)

    class Meta:
        table = "cet6_review"
        indexes = (("account_id", "session_id"),)  # asked by every availableSubjects
