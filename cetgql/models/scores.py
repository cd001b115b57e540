"""Scores: what the national centre imports after each exam, when it is released, and the
reports, paper copies, score checks and certificates that follow (R1–R9)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from cetgql.models.accounts import IdType

if TYPE_CHECKING:
    from cetgql.models.accounts import Account
    from cetgql.models.exams import ExamSession, Subject


class ScoreRecord(Model):
    """The score of one ticket: written section scores or an oral grade, with the name and ID
    the candidate sat under (kept for the history since June 2005, R9)."""

    id = fields.BigIntField(primary_key=True)
    ticket_number = fields.CharField(max_length=15, unique=True)
    session: fields.ForeignKeyRelation[ExamSession] = fields.ForeignKeyField(
        "cetgql.ExamSession", related_name=False, on_delete=fields.RESTRICT
    )
    subject: fields.ForeignKeyRelation[Subject] = fields.ForeignKeyField(
        "cetgql.Subject", related_name=False, on_delete=fields.RESTRICT
    )
    # The account that holds the ticket, when the system knows it (tickets, or ID and name).
    account: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name=False, null=True, on_delete=fields.SET_NULL
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
    # Written subject code, ID type and number: the written and oral records of one report
    # share it (R4: one report carries both).
    report_key = fields.CharField(max_length=80, default="")
    centre_code = fields.CharField(max_length=6, default="")  # the first six digits of the ticket
    imported_at = fields.DatetimeField(auto_now=True)

    session_id: int
    subject_id: int
    account_id: int | None

    class Meta:
        table = "score_record"
        indexes = (("session_id", "report_key"), ("account_id",))


class ScoreRelease(Model):
    """When the national office publishes a session's scores, and the periods counted from
    then in working days (R1, R6, R7). No row or no time: nothing of the session shows."""

    id = fields.BigIntField(primary_key=True)
    session: fields.OneToOneRelation[ExamSession] = fields.OneToOneField(
        "cetgql.ExamSession", related_name="score_release", on_delete=fields.CASCADE
    )
    release_at = fields.DatetimeField(null=True)
    verification_working_days = fields.IntField(default=10)
    paper_request_working_days = fields.IntField(default=10)
    updated_at = fields.DatetimeField()

    session_id: int

    class Meta:
        table = "score_release"


class ScoreReport(Model):
    """One version of a score report (成绩报告单), for the other languages their certificate
    (证书): the written score and the oral grade of one candidate, session and level (R4).
    A correction after release adds a version with the same number and supersedes this one."""

    id = fields.BigIntField(primary_key=True)
    session: fields.ForeignKeyRelation[ExamSession] = fields.ForeignKeyField(
        "cetgql.ExamSession", related_name=False, on_delete=fields.RESTRICT
    )
    report_key = fields.CharField(max_length=80)
    number = fields.CharField(max_length=15)
    version = fields.IntField(default=1)
    written_record: fields.ForeignKeyNullableRelation[ScoreRecord] = fields.ForeignKeyField(
        "cetgql.ScoreRecord", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    oral_record: fields.ForeignKeyNullableRelation[ScoreRecord] = fields.ForeignKeyField(
        "cetgql.ScoreRecord", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    name = fields.CharField(max_length=64)
    id_type = fields.CharEnumField(IdType, max_length=24)
    id_number = fields.CharField(max_length=32)
    language = fields.CharField(max_length=16, default="ENGLISH")
    centre_code = fields.CharField(max_length=6)
    # What this version says, frozen: the PDF and verifyDocument show exactly this.
    content: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    issued_at = fields.DatetimeField()
    superseded_at = fields.DatetimeField(null=True)
    # Paper report (R6): requested, then collected at the centre or forfeited after 6 months.
    paper_requested_at = fields.DatetimeField(null=True)
    paper_collected_at = fields.DatetimeField(null=True)
    paper_collected_by: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    paper_forfeited_at = fields.DatetimeField(null=True)

    session_id: int
    written_record_id: int | None
    oral_record_id: int | None

    class Meta:
        table = "score_report"
        unique_together = (("number", "version"),)
        indexes = (("session_id", "report_key"), ("centre_code", "session_id"))


class VerificationStatus(StrEnum):
    PENDING = "PENDING"
    RESOLVED = "RESOLVED"


class VerificationOutcome(StrEnum):
    UNCHANGED = "UNCHANGED"
    CORRECTED = "CORRECTED"


class ScoreVerification(Model):
    """A score check (分数核查) a candidate asked for, and the national office's answer (R7).
    One per score record."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name=False, on_delete=fields.CASCADE
    )
    record: fields.OneToOneRelation[ScoreRecord] = fields.OneToOneField(
        "cetgql.ScoreRecord", related_name="verification", on_delete=fields.CASCADE
    )
    session: fields.ForeignKeyRelation[ExamSession] = fields.ForeignKeyField(
        "cetgql.ExamSession", related_name=False, on_delete=fields.CASCADE
    )
    reason = fields.TextField()
    status = fields.CharEnumField(
        VerificationStatus, max_length=10, default=VerificationStatus.PENDING
    )
    outcome = fields.CharEnumField(VerificationOutcome, max_length=10, null=True)
    note = fields.TextField(null=True)
    # The section scores when asked, and after a correction.
    before: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    after: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    requested_at = fields.DatetimeField()
    resolved_at = fields.DatetimeField(null=True)
    resolver: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name=False, null=True, on_delete=fields.SET_NULL
    )

    account_id: int
    record_id: int
    session_id: int

    class Meta:
        table = "score_verification"
        indexes = (("session_id", "status"),)


class ScoreCertificate(Model):
    """A score certificate (成绩证明) the candidate issued for one report version (R8)."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name=False, on_delete=fields.CASCADE
    )
    report: fields.ForeignKeyRelation[ScoreReport] = fields.ForeignKeyField(
        "cetgql.ScoreReport", related_name="certificates", on_delete=fields.RESTRICT
    )
    number = fields.CharField(max_length=20, unique=True)
    issued_at = fields.DatetimeField()

    account_id: int
    report_id: int

    class Meta:
        table = "score_certificate"
        unique_together = (("account", "report"),)


class ScoreImportStatus(StrEnum):
    LOADING = "LOADING"
    FAILED = "FAILED"
    APPLIED = "APPLIED"


class ScoreImport(Model):
    """One score file: its rows are staged, checked, then applied all at once or not at all."""

    id = fields.BigIntField(primary_key=True)
    session: fields.ForeignKeyRelation[ExamSession] = fields.ForeignKeyField(
        "cetgql.ExamSession", related_name=False, on_delete=fields.CASCADE
    )
    actor: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    filename = fields.CharField(max_length=128, default="")
    status = fields.CharEnumField(
        ScoreImportStatus, max_length=10, default=ScoreImportStatus.LOADING
    )
    rows = fields.IntField(default=0)
    problem_count = fields.IntField(default=0)
    created = fields.IntField(default=0)
    updated = fields.IntField(default=0)
    unchanged = fields.IntField(default=0)
    reports_issued = fields.IntField(default=0)
    reports_reissued = fields.IntField(default=0)
    reports_withdrawn = fields.IntField(default=0)
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)

    session_id: int

    class Meta:
        table = "score_import"


class ScoreImportRow(Model):
    """A checked row of a score file waiting to be applied (a staging table, emptied when the
    import ends)."""

    id = fields.BigIntField(primary_key=True)
    import_id = fields.BigIntField()
    line = fields.IntField()
    ticket_number = fields.CharField(max_length=15)
    subject_id = fields.BigIntField()
    account_id = fields.BigIntField(null=True)
    name = fields.CharField(max_length=64)
    name_key = fields.CharField(max_length=64)
    id_type = fields.CharField(max_length=24)
    id_number = fields.CharField(max_length=32)
    total = fields.DecimalField(max_digits=5, decimal_places=1, null=True)
    listening = fields.DecimalField(max_digits=5, decimal_places=1, null=True)
    reading = fields.DecimalField(max_digits=5, decimal_places=1, null=True)
    writing_translation = fields.DecimalField(max_digits=5, decimal_places=1, null=True)
    oral_grade = fields.CharField(max_length=4, null=True)
    absent = fields.BooleanField(default=False)
    violation = fields.BooleanField(default=False)
    oral = fields.BooleanField(default=False)
    report_key = fields.CharField(max_length=80)
    centre_code = fields.CharField(max_length=6)
    changed = fields.BooleanField(default=True)  # differs from the record on file, if any
    old_report_key = fields.CharField(max_length=80, null=True)  # the record's key before

    class Meta:
        table = "score_import_row"
        indexes = (
            ("import_id", "ticket_number"),
            ("import_id", "report_key"),
            ("import_id", "old_report_key"),
        )


class ScoreImportProblem(Model):
    """A problem of a score file, with its line, kept so that every one can be listed."""

    id = fields.BigIntField(primary_key=True)
    import_id = fields.BigIntField()
    line = fields.IntField()
    column_label = fields.CharField(max_length=64)  # the header as the file names it
    code = fields.CharField(max_length=40)
    value = fields.CharField(max_length=64, null=True)
    other_line = fields.IntField(null=True)

    class Meta:
        table = "score_import_problem"
        indexes = (("import_id", "line"),)
