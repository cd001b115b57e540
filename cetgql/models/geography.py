"""Provinces, schools and their campuses: the scopes of administration and of test centres."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Province(Model):
    id = fields.BigIntField(primary_key=True)
    code = fields.CharField(max_length=2, unique=True)  # GB/T 2260 first two digits, e.g. "11"
    name = fields.CharField(max_length=32)

    schools: fields.ReverseRelation[School]

    class Meta:
        table = "province"


class School(Model):
    id = fields.BigIntField(primary_key=True)
    code = fields.CharField(max_length=5, unique=True)  # 5-digit school code
    name = fields.CharField(max_length=128)
    province: fields.ForeignKeyRelation[Province] = fields.ForeignKeyField(
        "cetgql.Province", related_name="schools", on_delete=fields.RESTRICT
    )

    campuses: fields.ReverseRelation[Campus]

    class Meta:
        table = "school"


class Campus(Model):
    id = fields.BigIntField(primary_key=True)
    school: fields.ForeignKeyRelation[School] = fields.ForeignKeyField(
        "cetgql.School", related_name="campuses", on_delete=fields.CASCADE
    )
    code = fields.CharField(max_length=1)  # with the school code, the 6-digit centre code (T4)
    name = fields.CharField(max_length=128)
    address = fields.CharField(max_length=255, default="")

    class Meta:
        table = "campus"
        unique_together = (("school", "code"),)
