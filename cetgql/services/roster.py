"""School-side roster care (Q2): list the records an admin is responsible for and correct one.

The FAQ sends a candidate with wrong photo, department or school data to their school (三.2):
the school fixes the record here, one field at a time, and every fix is audited with the old
and new values (photos only as "changed").

A candidate who already matched the record keeps their qualification and sees the corrected
data. The record's ID type and number are its key and what the candidate matched with, so they
can be corrected only while nobody has matched the record (a record with a wrong ID cannot
have been matched by the right student anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from cetgql.models import (
    Account,
    Campus,
    ExamSession,
    IdType,
    Qualification,
    RosterRecord,
    School,
    SessionSubject,
    Subject,
)
from cetgql.services import access, audit, clock, identity, roster_import
from cetgql.services.errors import DomainError, ErrorCode

MAX_PAGE = 100


@dataclass(frozen=True)
class RecordChanges:
    """Fields to change; ``None`` leaves a field as it is."""

    name: str | None = None
    id_type: IdType | None = None
    id_number: str | None = None
    campus_code: str | None = None
    gender: str | None = None
    student_number: str | None = None
    department: str | None = None
    major: str | None = None
    enrollment_year: int | None = None
    education_level: str | None = None
    eligible_subjects: list[str] | None = None
    restrictions: str | None = None
    photo: bytes | None = None


def _scope_filter(scope: access.Scope) -> Q:
    if scope.national:
        return Q()
    return Q(school_id__in=list(scope.school_ids)) | Q(
        school__province_id__in=list(scope.province_ids)
    )


async def list_records(
    actor: Account,
    *,
    session_code: str,
    school_code: str | None = None,
    after_id: int | None = None,
    limit: int = 20,
) -> tuple[list[RosterRecord], bool]:
    """A page of records in the actor's scope, ordered by id; and whether more follow."""
    scope = await access.scope_of(actor)
    if not scope.is_admin:
        raise DomainError.of(ErrorCode.FORBIDDEN)
    session = await ExamSession.get_or_none(code=session_code.strip().upper()[:8])
    if session is None:
        raise DomainError.of(ErrorCode.SESSION_NOT_FOUND, "sessionCode")
    query = RosterRecord.filter(_scope_filter(scope), session_id=session.id)
    if school_code:
        query = query.filter(school__code=school_code.strip())
    if after_id is not None:
        query = query.filter(id__gt=after_id)
    limit = max(0, min(limit, MAX_PAGE))
    records = await _without_photos(query.order_by("id").limit(limit + 1))
    return records[:limit], len(records) > limit


async def _without_photos(query: QuerySet[RosterRecord]) -> list[RosterRecord]:
    """Records without their photo blobs (a page of 100 could carry 20 MB of them; the photo
    route streams one at a time), with school, campus and session attached."""
    # Field names are complete only once Tortoise has initialised the models: list them here.
    listed = [name for name in RosterRecord._meta.fields_db_projection if name != "photo"]
    records = await query.only(*listed)
    schools = {s.id: s for s in await School.filter(id__in={r.school_id for r in records})}
    campuses = {c.id: c for c in await Campus.filter(id__in={r.campus_id for r in records})}
    sessions = {s.id: s for s in await ExamSession.filter(id__in={r.session_id for r in records})}
    for record in records:
        record.school = schools[record.school_id]
        record.campus = campuses[record.campus_id]
        record.session = sessions[record.session_id]
    return records


async def visible_record(actor: Account, record_id: int) -> RosterRecord | None:
    """The record if it is in the actor's scope (admins only), else None."""
    scope = await access.scope_of(actor)
    if not scope.is_admin:
        return None
    found = await _without_photos(RosterRecord.filter(_scope_filter(scope), id=record_id))
    return found[0] if found else None


def _text(value: str, limit: int, field: str) -> str:
    text = value.strip()
    if len(text) > limit:
        raise DomainError.of(ErrorCode.TOO_LONG, field)
    return text


async def _offered(session_id: int) -> tuple[set[str], dict[str, str]]:
    offered = set(
        await SessionSubject.filter(session_id=session_id).values_list("subject__code", flat=True)
    )
    names = {name: code for code, name in await Subject.all().values_list("code", "name")}
    return offered, names  # type: ignore[return-value]


async def update_record(
    actor: Account,
    record_id: int,
    changes: RecordChanges,
    *,
    client_address: str | None = None,
) -> RosterRecord:
    """Correct one roster record in the actor's scope; audited with what changed."""
    record = await RosterRecord.get_or_none(id=record_id).select_related("school", "campus")
    if record is None or not (await access.scope_of(actor)).is_admin:
        raise DomainError.of(ErrorCode.NOT_FOUND, "id")
    await access.require_school(actor, record.school)

    new: dict[str, Any] = {}
    if changes.name is not None:
        new["name"] = identity.validate_name(changes.name)
        new["name_key"] = identity.name_key(new["name"])
    if changes.id_type is not None or changes.id_number is not None:
        id_type = changes.id_type or record.id_type
        if id_type == IdType.STAFF:
            raise DomainError.of(ErrorCode.ID_TYPE_NOT_ALLOWED, "idType")
        id_number = identity.validate_id(id_type, changes.id_number or record.id_number)
        if (id_type, id_number) != (record.id_type, record.id_number):
            if await Qualification.exists(roster_record_id=record.id):
                raise DomainError.of(ErrorCode.ROSTER_RECORD_IN_USE, "idNumber")
            if await RosterRecord.exists(
                session_id=record.session_id,  # type: ignore[attr-defined]
                id_type=id_type,
                id_number=id_number,
            ):
                raise DomainError.of(ErrorCode.ID_NUMBER_IN_ROSTER, "idNumber")
            new["id_type"] = id_type
            new["id_number"] = id_number
    if changes.campus_code is not None:
        campus = await Campus.get_or_none(
            school_id=record.school.id, code=changes.campus_code.strip()
        )
        if campus is None:
            raise DomainError.of(ErrorCode.UNKNOWN_CAMPUS, "campusCode")
        new["campus_id"] = campus.id
    if changes.gender is not None:
        new["gender"] = roster_import.parse_gender(
            changes.gender,
            new.get("id_type", record.id_type),
            new.get("id_number", record.id_number),
        )
    for attribute, limit, field in (
        ("student_number", 32, "studentNumber"),
        ("department", 128, "department"),
        ("major", 128, "major"),
        ("education_level", 16, "educationLevel"),
        ("restrictions", 255, "restrictions"),
    ):
        value = getattr(changes, attribute)
        if value is not None:
            new[attribute] = _text(value, limit, field)
    if changes.enrollment_year is not None:
        new["enrollment_year"] = roster_import.parse_enrollment_year(str(changes.enrollment_year))
    if changes.eligible_subjects is not None:
        offered, names = await _offered(record.session_id)  # type: ignore[attr-defined]
        new["eligible_subjects"] = roster_import.parse_subjects(
            ";".join(changes.eligible_subjects), offered, names
        )
    if changes.photo is not None:
        photo = roster_import.check_photo(changes.photo)
        new.update(photo=photo.content, photo_type=photo.content_type, photo_digest=photo.digest)

    changed = {k: v for k, v in new.items() if getattr(record, k) != v}
    if not changed:
        return await RosterRecord.get(id=record.id).select_related("school", "campus", "session")
    audited = {
        k: {"from": getattr(record, k), "to": v}
        for k, v in changed.items()
        if k not in {"photo", "photo_type", "photo_digest", "name_key"}
    }
    if "photo" in changed:
        audited["photo"] = {"from": record.photo_digest[:12], "to": changed["photo_digest"][:12]}
    for key, value in changed.items():
        setattr(record, key, value)
    record.updated_at = clock.now()
    async with in_transaction():
        await record.save(update_fields=[*changed, "updated_at"])
        await audit.record(
            "roster.update",
            actor=actor,
            subject=f"RosterRecord:{record.id}",
            client_address=client_address,
            changes=_jsonable(audited),
        )
    return await RosterRecord.get(id=record.id).select_related("school", "campus", "session")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return str(value) if isinstance(value, IdType) else value
    return str(value)


def photo_path(record_id: int) -> str:
    """The file route of a record's photo; hand it out only through ``signed_urls.sign``."""
    return f"/files/roster-photos/{record_id}"


async def photo_of(record_id: int) -> tuple[bytes, str] | None:
    """The photo bytes and content type of a record, for the signed file route."""
    found = await RosterRecord.filter(id=record_id).values_list("photo", "photo_type")
    if not found or not found[0][0]:
        return None
    content, content_type = found[0]
    return bytes(content), content_type or "application/octet-stream"
