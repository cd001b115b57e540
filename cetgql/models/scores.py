"""Score records by ticket number: what the national centre imports after each exam (R1–R9)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from cetgql.models.accounts import IdType

if TYPE_CHECKING:
    from cetgql.models.exams import ExamSession, Subject


class ScoreRecord(Model):
    id = fields.BigIntField(primary_key=True)
    ticket_number = fields.CharField(max_length=15, unique=True)
    session: fields.ForeignKeyRelation[ExamSession] = fields.ForeignKeyField(
        "cetgql.ExamSession", related_name=False, on_delete=fields.RESTRICT
    )
    subject: fields.ForeignKeyRelation[Subject] = fields.ForeignKeyField(
        "cetgql.Subject", related_name=False, on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=64)
    name_key = fields.CharField(max_length=64)
    id_type = fields.CharEnumField(IdType, max_length=24)
    id_number = fields.CharField(max_length=32, db_index=True)
    total = fields.DecimalField(max_digits=5, decimal_places=1, null=True)
    listening = fields.DecimalField(max_digits=5, decimal_places=1, null=True)
    reading = fields.DecimalField(max_digits=5, decimal_places=1, null=True)
    writing_translation = fields.DecimalField(max_digits=5, decimal_places=1, null=True)
    oral_grade = fields.CharField(max_length=4, null=True)
    absent = fields.BooleanField(default=False)
    violation = fields.BooleanField(default=False)
    imported_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "score_record"
