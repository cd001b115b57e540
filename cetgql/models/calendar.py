"""The working-day calendar: which days are holidays and which weekend days are worked (调休).

Score release and the deadlines after it count working days (R1, R5, R7). The public
``chinesecalendar`` package knows the years 2004–2026 only, so the calendar lives here, seeded
from the package and extended by the national office for later years.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class WorkCalendarYear(Model):
    """A year the calendar knows in full: its days below are complete, whoever entered them.

    A year without a row is counted Monday to Friday and every date computed in it is marked
    provisional."""

    id = fields.BigIntField(primary_key=True)
    year = fields.IntField(unique=True)
    source = fields.CharField(max_length=16)  # "chinesecalendar" or "admin"
    updated_at = fields.DatetimeField()

    class Meta:
        table = "work_calendar_year"


class WorkCalendarDay(Model):
    """A day that is not what its weekday says: a holiday on a weekday, a make-up working
    Saturday or Sunday, or a named holiday falling on a weekend."""

    id = fields.BigIntField(primary_key=True)
    day = fields.DateField(unique=True)
    year = fields.IntField(db_index=True)
    workday = fields.BooleanField()
    name = fields.CharField(max_length=64, default="")

    class Meta:
        table = "work_calendar_day"
