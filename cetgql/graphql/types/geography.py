"""Schools and campuses as candidates and admins see them."""

from __future__ import annotations

import strawberry

from cetgql import models


@strawberry.type(description="A school (学校), by its 5-digit code.")
class School:
    code: str
    name: str

    @classmethod
    def from_model(cls, school: models.School) -> School:
        return cls(code=school.code, name=school.name)


@strawberry.type(description="A campus (校区) of a school; with the school code, the test centre.")
class Campus:
    code: str
    name: str
    address: str

    @classmethod
    def from_model(cls, campus: models.Campus) -> Campus:
        return cls(code=campus.code, name=campus.name, address=campus.address)
