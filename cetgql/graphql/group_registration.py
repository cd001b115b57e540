"""Group registration (集体报名, S11): a school registers and pays its students' written subjects.

The batch is all or nothing: ``userErrors`` name each offending entry by its path inside
``input`` (``["entries", "3", "subjectCodes", "1"]``) and nothing is written while any remains.
"""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from cetgql.graphql.errors import UserError, attempt
from cetgql.graphql.permissions import IsSchoolAdmin
from cetgql.graphql.scalars import Money
from cetgql.graphql.types.accounts import IdType
from cetgql.graphql.types.geography import School
from cetgql.graphql.types.registration import Order
from cetgql.services import group_registration, identity


@strawberry.input(description="A student of your school's roster and their written subjects.")
class GroupRegisterEntryInput:
    id_type: IdType  # type: ignore[valid-type]
    id_number: str
    subject_codes: list[str] = strawberry.field(description='Written subjects, e.g. ["CET4"].')


@strawberry.input
class GroupRegisterInput:
    session_code: str
    entries: list[GroupRegisterEntryInput] = strawberry.field(
        description=f"At most {group_registration.MAX_ENTRIES}; larger batches: the command "
        "line `cetgql group-register`."
    )
    school_code: str | None = strawberry.field(
        default=None,
        description="The registering school; may be left out by an admin of exactly one school.",
    )
    dry_run: bool = strawberry.field(
        default=False, description="Check every entry and report problems; register nobody."
    )


@strawberry.type(description="One student registered by the batch.")
class GroupRegisteredStudent:
    name: str
    id_type: IdType  # type: ignore[valid-type]
    id_number_masked: str
    account_created: bool = strawberry.field(
        description="A new account was made: the student signs in with their ID number and "
        "the initial password 123456, which must be changed first."
    )
    order: Order = strawberry.field(description="The written order, paid by the school.")


@strawberry.type
class GroupRegisterPayload:
    school: School | None = None
    students: list[GroupRegisteredStudent] = strawberry.field(default_factory=list)
    accounts_created: int = 0
    total: Money | None = strawberry.field(default=None, description="What the school pays.")
    checked: int = strawberry.field(
        default=0, description="Entries checked without problems (with dryRun: nothing written)."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class GroupRegistrationMutations:
    @strawberry.mutation(
        permission_classes=[IsSchoolAdmin],
        description="Register and pay written subjects for students of your school's roster "
        "(S11): all entries or none. Students without an account get one (initial password "
        "123456, to be changed at the first sign-in); they add oral subjects online.",
    )
    async def group_register(self, info: Info, input: GroupRegisterInput) -> GroupRegisterPayload:
        viewer = await info.context.viewer()
        assert viewer is not None
        result, errors = await attempt(
            info,
            group_registration.group_register(
                actor=viewer,
                session_code=input.session_code,
                school_code=input.school_code,
                entries=[
                    group_registration.Entry(
                        id_type=e.id_type,
                        id_number=e.id_number,
                        subject_codes=tuple(e.subject_codes),
                    )
                    for e in input.entries
                ],
                dry_run=input.dry_run,
                source="graphql",
                client_address=info.context.client_address,
            ),
        )
        if result is None:
            return GroupRegisterPayload(user_errors=errors)
        return GroupRegisterPayload(
            school=School.from_model(result.school),
            students=[
                GroupRegisteredStudent(
                    name=s.account.name,
                    id_type=s.account.id_type,
                    id_number_masked=identity.mask_id_number(s.account.id_number),
                    account_created=s.account_created,
                    order=Order.from_model(s.order),
                )
                for s in result.students
            ],
            accounts_created=result.accounts_created,
            total=Money(fen=result.total_fen),
            checked=len(input.entries),
        )
