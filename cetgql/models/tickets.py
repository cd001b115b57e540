"""Admission tickets (T1–T5): rooms of the test centres, seat allocation runs, the tickets
with their numbers, rooms and seats, when they may be printed, and their rendered PDFs.

A test centre is a campus of a school for written subjects (S2) or an oral centre (S3). An
allocation unit is what is allocated, published and given a print window as one: a school's
written tickets (all its campuses) or a province's oral tickets (all its oral centres). Units
and centres are also kept as short text keys (``S12``, ``P3``, ``C7``, ``O5``) because a
unique constraint over a nullable foreign key does not stop duplicates: NULLs never collide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from cetgql.models.exams import SubjectKind

if TYPE_CHECKING:
    from cetgql.models.accounts import Account
    from cetgql.models.exams import ExamSession, SessionSubject
    from cetgql.models.geography import Campus, Province, School
    from cetgql.models.registration import OralCenter, Registration


class ExamRoom(Model):
    """A room of a test centre in a session. Its number goes into ticket numbers and its
    capacity bounds its seats, numbered 1 to capacity."""

    id = fields.BigIntField(primary_key=True)
    session: fields.ForeignKeyRelation[ExamSession] = fields.ForeignKeyField(
        "cetgql.ExamSession", related_name=False, on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(SubjectKind, max_length=8)
    province: fields.ForeignKeyRelation[Province] = fields.ForeignKeyField(
        "cetgql.Province", related_name=False, on_delete=fields.CASCADE
    )
    school: fields.ForeignKeyNullableRelation[School] = fields.ForeignKeyField(
        "cetgql.School", related_name=False, null=True, on_delete=fields.CASCADE
    )
    campus: fields.ForeignKeyNullableRelation[Campus] = fields.ForeignKeyField(
        "cetgql.Campus", related_name=False, null=True, on_delete=fields.CASCADE
    )
    oral_center: fields.ForeignKeyNullableRelation[OralCenter] = fields.ForeignKeyField(
        "cetgql.OralCenter", related_name=False, null=True, on_delete=fields.CASCADE
    )
    centre_key = fields.CharField(max_length=24)  # C<campus id> or O<oral centre id>
    number = fields.IntField()
    name = fields.CharField(max_length=64, default="")  # e.g. 第一教学楼 A101
    capacity = fields.IntField()

    session_id: int
    province_id: int
    school_id: int | None
    campus_id: int | None
    oral_center_id: int | None

    class Meta:
        table = "exam_room"
        unique_together = (("session", "centre_key", "number"),)
        indexes = (("session_id", "school_id"), ("session_id", "province_id", "kind"))


class AllocationRun(Model):
    """One allocation of seats in a unit, with the seed that reproduces its shuffle. A full
    run replaces the unit's tickets (only before they are published), a top-up run seats the
    candidates paid since, around the published tickets."""

    id = fields.BigIntField(primary_key=True)
    session: fields.ForeignKeyRelation[ExamSession] = fields.ForeignKeyField(
        "cetgql.ExamSession", related_name=False, on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(SubjectKind, max_length=8)
    province: fields.ForeignKeyRelation[Province] = fields.ForeignKeyField(
        "cetgql.Province", related_name=False, on_delete=fields.CASCADE
    )
    school: fields.ForeignKeyNullableRelation[School] = fields.ForeignKeyField(
        "cetgql.School", related_name=False, null=True, on_delete=fields.CASCADE
    )
    unit_key = fields.CharField(max_length=24)  # S<school id> or P<province id>
    seed = fields.CharField(max_length=64)
    top_up = fields.BooleanField(default=False)
    tickets = fields.IntField(default=0)  # tickets this run created
    rooms_used = fields.IntField(default=0)
    actor: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField()
    published_at = fields.DatetimeField(null=True)

    session_id: int
    province_id: int
    school_id: int | None

    class Meta:
        table = "allocation_run"
        indexes = (("session_id", "unit_key"),)


class Ticket(Model):
    """An admission ticket: one per paid registration (T1), with its number, room and seat.

    Candidates see it once published. The unique key over room, time slot and seat means two
    candidates can never share a seat at one time, whatever the allocating code does."""

    id = fields.BigIntField(primary_key=True)
    number = fields.CharField(max_length=15, unique=True)
    registration: fields.OneToOneRelation[Registration] = fields.OneToOneField(
        "cetgql.Registration", related_name="ticket", on_delete=fields.CASCADE
    )
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name="tickets", on_delete=fields.CASCADE
    )
    session: fields.ForeignKeyRelation[ExamSession] = fields.ForeignKeyField(
        "cetgql.ExamSession", related_name=False, on_delete=fields.CASCADE
    )
    offering: fields.ForeignKeyRelation[SessionSubject] = fields.ForeignKeyField(
        "cetgql.SessionSubject", related_name=False, on_delete=fields.RESTRICT
    )
    kind = fields.CharEnumField(SubjectKind, max_length=8)
    unit_key = fields.CharField(max_length=24)
    run: fields.ForeignKeyRelation[AllocationRun] = fields.ForeignKeyField(
        "cetgql.AllocationRun", related_name="issued", on_delete=fields.RESTRICT
    )
    room: fields.ForeignKeyRelation[ExamRoom] = fields.ForeignKeyField(
        "cetgql.ExamRoom", related_name="tickets", on_delete=fields.RESTRICT
    )
    slot = fields.CharField(max_length=32)  # the offering's slot when allocated
    seat = fields.IntField()
    created_at = fields.DatetimeField()
    published_at = fields.DatetimeField(null=True)

    registration_id: int
    account_id: int
    session_id: int
    offering_id: int
    run_id: int
    room_id: int

    class Meta:
        table = "ticket"
        unique_together = (("room", "slot", "seat"),)
        indexes = (("session_id", "unit_key"), ("account_id", "session_id"))


class TicketPdf(Model):
    """The rendered PDF of a ticket, served again while the ticket's fingerprint (a hash of
    everything printed on it) is unchanged."""

    id = fields.BigIntField(primary_key=True)
    ticket: fields.OneToOneRelation[Ticket] = fields.OneToOneField(
        "cetgql.Ticket", related_name="pdf", on_delete=fields.CASCADE
    )
    fingerprint = fields.CharField(max_length=64)
    content = fields.BinaryField()
    rendered_at = fields.DatetimeField()

    ticket_id: int

    class Meta:
        table = "ticket_pdf"


class TicketPrintWindow(Model):
    """When candidates print their own tickets: a province's oral window (T2), a school's
    written window (T3), or the school's choice to hand written tickets out itself."""

    id = fields.BigIntField(primary_key=True)
    session: fields.ForeignKeyRelation[ExamSession] = fields.ForeignKeyField(
        "cetgql.ExamSession", related_name=False, on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(SubjectKind, max_length=8)
    province: fields.ForeignKeyRelation[Province] = fields.ForeignKeyField(
        "cetgql.Province", related_name=False, on_delete=fields.CASCADE
    )
    school: fields.ForeignKeyNullableRelation[School] = fields.ForeignKeyField(
        "cetgql.School", related_name=False, null=True, on_delete=fields.CASCADE
    )
    unit_key = fields.CharField(max_length=24)
    opens_at = fields.DatetimeField(null=True)
    closes_at = fields.DatetimeField(null=True)
    handed_out = fields.BooleanField(default=False)
    updated_at = fields.DatetimeField()

    session_id: int
    province_id: int
    school_id: int | None

    class Meta:
        table = "ticket_print_window"
        unique_together = (("session", "unit_key"),)
