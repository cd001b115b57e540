"""Exam sessions (考次) and the subject catalogue (S1)."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class SubjectKind(StrEnum):
    WRITTEN = "WRITTEN"
    ORAL = "ORAL"


class Subject(Model):
    id = fields.BigIntField(primary_key=True)
    code = fields.CharField(max_length=16, unique=True)  # CET4, CET6, CET-SET4, ...
    name = fields.CharField(max_length=64)
    kind = fields.CharEnumField(SubjectKind, max_length=8)
    level = fields.IntField()  # 4 or 6
    ticket_code = fields.IntField(null=True)  # the level digit of a written ticket number (T4)
    language = fields.CharField(max_length=16, default="ENGLISH")
    written_prerequisite = fields.CharField(max_length=16, null=True)  # oral → its written code

    class Meta:
        table = "subject"


class ExamSession(Model):
    """A half year of exams, coded like ``2026H1``."""

    id = fields.BigIntField(primary_key=True)
    code = fields.CharField(max_length=8, unique=True)
    year = fields.IntField()
    half = fields.IntField()  # 1 = first half (May/June), 2 = second half (Nov/Dec)
    name = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)

    offerings: fields.ReverseRelation[SessionSubject]

    class Meta:
        table = "exam_session"
        ordering = ("-year", "-half")


class SessionSubject(Model):
    """A subject offered in a session, with its sitting time and slot (S1)."""

    id = fields.BigIntField(primary_key=True)
    session: fields.ForeignKeyRelation[ExamSession] = fields.ForeignKeyField(
        "cetgql.ExamSession", related_name="offerings", on_delete=fields.CASCADE
    )
    subject: fields.ForeignKeyRelation[Subject] = fields.ForeignKeyField(
        "cetgql.Subject", related_name="offerings", on_delete=fields.RESTRICT
    )
    # Two subjects with the same slot sit at the same time and cannot both be taken.
    slot = fields.CharField(max_length=32)
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()

    class Meta:
        table = "session_subject"
        unique_together = (("session", "subject"),)
