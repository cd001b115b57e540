"""The school roster (学籍) and each candidate's qualification against it (Q1–Q2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from cetgql.models.accounts import IdType

if TYPE_CHECKING:
    from cetgql.models.accounts import Account
    from cetgql.models.exams import ExamSession
    from cetgql.models.geography import Campus, School


class RosterRecord(Model):
    """One student as their school uploaded them for one exam session."""

    id = fields.BigIntField(primary_key=True)
    session: fields.ForeignKeyRelation[ExamSession] = fields.ForeignKeyField(
        "cetgql.ExamSession", related_name="roster", on_delete=fields.CASCADE
    )
    school: fields.ForeignKeyRelation[School] = fields.ForeignKeyField(
        "cetgql.School", related_name="roster", on_delete=fields.CASCADE
    )
    campus: fields.ForeignKeyRelation[Campus] = fields.ForeignKeyField(
        "cetgql.Campus", related_name="roster", on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=64)
    name_key = fields.CharField(max_length=64)
    id_type = fields.CharEnumField(IdType, max_length=24)
    id_number = fields.CharField(max_length=32)
    gender = fields.CharField(max_length=1, default="")  # "M" | "F" | ""
    student_number = fields.CharField(max_length=32, default="")
    department = fields.CharField(max_length=128, default="")
    major = fields.CharField(max_length=128, default="")
    enrollment_year = fields.IntField(null=True)
    education_level = fields.CharField(max_length=16, default="")  # 本科, 专科, 研究生
    photo = fields.BinaryField(null=True)
    photo_type = fields.CharField(max_length=32, default="")
    # SHA-256 of the photo: a re-import with the same picture is recognised as unchanged.
    photo_digest = fields.CharField(max_length=64, default="")
    # The subject codes the school allows this student.
    eligible_subjects: fields.JSONField[list[str]] = fields.JSONField(default=list)
    restrictions = fields.CharField(max_length=255, default="")  # free text shown to the student
    # Set by the services from clock.now() (not auto_now), so it compares with confirmations.
    updated_at = fields.DatetimeField()

    session_id: int
    school_id: int
    campus_id: int

    class Meta:
        table = "roster_record"
        unique_together = (("session", "id_type", "id_number"),)
        indexes = (("session_id", "school_id"),)


class Qualification(Model):
    """A candidate's successful roster match for a session, and whether they confirmed it."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name="qualifications", on_delete=fields.CASCADE
    )
    session: fields.ForeignKeyRelation[ExamSession] = fields.ForeignKeyField(
        "cetgql.ExamSession", related_name="qualifications", on_delete=fields.CASCADE
    )
    roster_record: fields.ForeignKeyRelation[RosterRecord] = fields.ForeignKeyField(
        "cetgql.RosterRecord", related_name="qualifications", on_delete=fields.CASCADE
    )
    verified_at = fields.DatetimeField()
    confirmed_at = fields.DatetimeField(null=True)

    account_id: int
    session_id: int
    roster_record_id: int

    class Meta:
        table = "qualification"
        unique_together = (("account", "session"),)
