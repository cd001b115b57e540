"""Admin operations on the school roster (学籍): import a file, correct a record, list records.

Files arrive as GraphQL multipart uploads (the ``Upload`` scalar). Scope is decided by the
services: a school admin touches only their school's rows, a province admin their province's.
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry import relay
from strawberry.file_uploads import Upload
from strawberry.types import Info

from cetgql.graphql.errors import UserError, attempt
from cetgql.graphql.permissions import IsSchoolAdmin
from cetgql.graphql.types.accounts import IdType
from cetgql.graphql.types.roster import (
    RosterProblem,
    RosterRecord,
    RosterRecordConnection,
    RosterRecordEdge,
)
from cetgql.services import roster, roster_import
from cetgql.services.errors import DomainError, ErrorCode, message_for

_CURSOR_PREFIX = "RosterRecord"


async def _read_upload(upload: Any, limit: int, field: str) -> bytes:
    """The upload's bytes, refusing (without reading it all) a file over ``limit``."""
    if isinstance(upload, bytes):
        content = upload
    else:
        content = await upload.read(limit + 1)
    if len(content) > limit:
        raise DomainError.of(ErrorCode.FILE_TOO_LARGE, field)
    return content


def _unset_to_none(value: Any) -> Any:
    return None if value is strawberry.UNSET else value


# ---------------------------------------------------------------------------------- import


@strawberry.input(description="A roster file (CSV or XLSX) and, optionally, a ZIP of photos.")
class ImportRosterInput:
    session_code: str
    file: Upload = strawberry.field(
        description="CSV (UTF-8 or GB18030) or XLSX; header names in English or Chinese."
    )
    photos: Upload | None = strawberry.field(
        default=None, description="ZIP of JPEG/PNG files (≤ 200 KB) named in the photo column."
    )


@strawberry.type
class ImportRosterPayload:
    created: int
    updated: int
    unchanged: int
    problems: list[RosterProblem] = strawberry.field(
        description="Every problem found; when there is any, nothing was written."
    )
    user_errors: list[UserError]


async def _import(info: Info, input: ImportRosterInput) -> roster_import.ImportResult:
    content = await _read_upload(input.file, roster_import.MAX_FILE_BYTES, "file")
    photos = (
        await _read_upload(input.photos, roster_import.MAX_PHOTOS_BYTES, "photos")
        if input.photos is not None
        else None
    )
    return await roster_import.import_roster(
        actor=await info.context.viewer(),
        session_code=input.session_code,
        content=content,
        filename=getattr(input.file, "filename", "") or "",
        photos_zip=photos,
        client_address=info.context.client_address,
    )


# ---------------------------------------------------------------------------------- update


@strawberry.input(description="Fields to correct; leave out what stays as it is.")
class UpdateRosterRecordInput:
    id: relay.GlobalID
    name: str | None = strawberry.UNSET
    id_type: IdType | None = strawberry.UNSET  # type: ignore[valid-type]
    id_number: str | None = strawberry.UNSET
    campus_code: str | None = strawberry.UNSET
    gender: str | None = strawberry.field(default=strawberry.UNSET, description="男/女 or M/F.")
    student_number: str | None = strawberry.UNSET
    department: str | None = strawberry.UNSET
    major: str | None = strawberry.UNSET
    enrollment_year: int | None = strawberry.UNSET
    education_level: str | None = strawberry.UNSET
    eligible_subjects: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description='Subject codes, e.g. ["CET4", "CET-SET4"].'
    )
    restrictions: str | None = strawberry.UNSET
    photo: Upload | None = strawberry.field(
        default=strawberry.UNSET, description="JPEG or PNG, at most 200 KB."
    )


@strawberry.type
class UpdateRosterRecordPayload:
    record: RosterRecord | None
    user_errors: list[UserError]


async def _update(info: Info, input: UpdateRosterRecordInput) -> Any:
    if input.id.type_name != "RosterRecord" or not input.id.node_id.isdigit():
        raise DomainError.of(ErrorCode.NOT_FOUND, "id")
    photo = _unset_to_none(input.photo)
    changes = roster.RecordChanges(
        name=_unset_to_none(input.name),
        id_type=_unset_to_none(input.id_type),
        id_number=_unset_to_none(input.id_number),
        campus_code=_unset_to_none(input.campus_code),
        gender=_unset_to_none(input.gender),
        student_number=_unset_to_none(input.student_number),
        department=_unset_to_none(input.department),
        major=_unset_to_none(input.major),
        enrollment_year=_unset_to_none(input.enrollment_year),
        education_level=_unset_to_none(input.education_level),
        eligible_subjects=_unset_to_none(input.eligible_subjects),
        restrictions=_unset_to_none(input.restrictions),
        photo=(
            await _read_upload(photo, roster_import.MAX_PHOTO_BYTES, "photo")
            if photo is not None
            else None
        ),
    )
    viewer = await info.context.viewer()
    return await roster.update_record(
        viewer, int(input.id.node_id), changes, client_address=info.context.client_address
    )


@strawberry.type
class RosterMutations:
    @strawberry.mutation(
        permission_classes=[IsSchoolAdmin],
        description="Import a roster file: every bad row is reported with its line and nothing "
        "is written; a clean file is written at once. Re-importing updates, never duplicates.",
    )
    async def import_roster(self, info: Info, input: ImportRosterInput) -> ImportRosterPayload:
        result, errors = await attempt(info, _import(info, input))
        if result is None:
            return ImportRosterPayload(
                created=0, updated=0, unchanged=0, problems=[], user_errors=errors
            )
        language = info.context.language
        problems = [
            RosterProblem(line=p.line, column=p.column, code=p.code, message=p.message(language))
            for p in result.problems
        ]
        if problems:
            errors = [
                UserError(
                    field=["file"],
                    code=ErrorCode.ROSTER_INVALID,
                    message=message_for(ErrorCode.ROSTER_INVALID, language),
                )
            ]
        return ImportRosterPayload(
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
            problems=problems,
            user_errors=errors,
        )

    @strawberry.mutation(
        permission_classes=[IsSchoolAdmin],
        description="Correct one roster record of your school (Q2); audited.",
    )
    async def update_roster_record(
        self, info: Info, input: UpdateRosterRecordInput
    ) -> UpdateRosterRecordPayload:
        record, errors = await attempt(info, _update(info, input))
        return UpdateRosterRecordPayload(
            record=(await RosterRecord.many([record]))[0] if record is not None else None,
            user_errors=errors,
        )


@strawberry.type
class RosterQueries:
    @strawberry.field(
        permission_classes=[IsSchoolAdmin],
        description="Roster records of a session in your scope, in upload order.",
    )
    async def roster_records(
        self,
        info: Info,
        session_code: str,
        school_code: str | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> RosterRecordConnection:
        limit = 20 if first is None else first
        if not 0 <= limit <= roster.MAX_PAGE:
            raise GraphQLError(f"first must be between 0 and {roster.MAX_PAGE}")
        after_id = None
        if after:
            try:
                type_name, raw_id = relay.from_base64(after)
                after_id = int(raw_id)
            except ValueError as error:
                raise GraphQLError("after is not a cursor of this connection") from error
            if type_name != _CURSOR_PREFIX:
                raise GraphQLError("after is not a cursor of this connection")
        viewer = await info.context.viewer()
        try:
            records, has_more = await roster.list_records(
                viewer,
                session_code=session_code,
                school_code=school_code,
                after_id=after_id,
                limit=limit,
            )
        except DomainError:
            records, has_more = [], False
        nodes = await RosterRecord.many(records)
        edges = [
            RosterRecordEdge(cursor=relay.to_base64(_CURSOR_PREFIX, node.model.id), node=node)
            for node in nodes
        ]
        return RosterRecordConnection(
            edges=edges,
            page_info=relay.PageInfo(
                has_next_page=has_more,
                has_previous_page=after_id is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )
