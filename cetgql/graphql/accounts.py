"""Account mutations (A1–A7): sign-up, sign-in and out, codes, password and contact changes,
phone appeals.

Each mutation takes one ``input`` and calls one service function; a domain error becomes
``userErrors`` whose ``field`` is the path of the offending field inside ``input`` (for example
``["idNumber"]``). Missing authentication is a top-level error, as for every other field.
"""

from __future__ import annotations

import strawberry
from strawberry import relay
from strawberry.types import Info

from cetgql import models
from cetgql.graphql.errors import UserError, attempt
from cetgql.graphql.permissions import IsAuthenticated, IsSignedIn
from cetgql.graphql.types.accounts import Account, IdType
from cetgql.services import accounts, appeals, notifier, verification

Channel = strawberry.enum(
    notifier.Channel, name="Channel", description="How a message is sent: SMS or EMAIL."
)
ContactKind = strawberry.enum(
    verification.ContactKind, name="ContactKind", description="A contact of an account."
)
VerificationPurpose = strawberry.enum(
    models.VerificationPurpose,
    name="VerificationPurpose",
    description="What a one-time code is for.",
)
PhoneAppealStatus = strawberry.enum(models.PhoneAppealStatus, name="PhoneAppealStatus")


def _account(account: models.Account | None) -> Account | None:
    return Account.from_model(account) if account is not None else None


async def _require_authenticated(info: Info) -> models.Account:
    """The permission check of ``IsAuthenticated``, for a field that needs it only for some
    inputs (codes for a contact change); raises the same top-level error."""
    permission = IsAuthenticated()
    if not await permission.has_permission(None, info):
        permission.on_unauthorized()
    viewer = await info.context.viewer()
    assert viewer is not None
    return viewer


# -------------------------------------------------------------------------------- sign-up/in


@strawberry.input(description="A new candidate account (报名账号).")
class SignUpInput:
    name: str = strawberry.field(description="As on the ID document; rare characters kept.")
    id_type: IdType  # type: ignore[valid-type]
    id_number: str
    phone: str = strawberry.field(description="Mainland mobile number, 11 digits.")
    email: str
    password: str = strawberry.field(
        description="At least 8 characters with letters, digits and a symbol."
    )


@strawberry.type
class SignUpPayload:
    account: Account | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class SignInInput:
    login: str = strawberry.field(description="ID number, mobile number or email.")
    password: str


@strawberry.type
class SignInPayload:
    token: str | None = strawberry.field(
        default=None, description="Send as 'Authorization: Bearer <token>'."
    )
    account: Account | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class SignOutInput:
    everywhere: bool = strawberry.field(
        default=False, description="End every session of the account, not only this one."
    )


@strawberry.type
class SignOutPayload:
    signed_out: bool = False
    user_errors: list[UserError] = strawberry.field(default_factory=list)


# ------------------------------------------------------------------------------------- codes


@strawberry.input(description="Ask for a one-time code.")
class RequestVerificationCodeInput:
    purpose: VerificationPurpose  # type: ignore[valid-type]
    channel: Channel | None = strawberry.field(  # type: ignore[valid-type]
        default=None,
        description="RESET_PASSWORD: required. Otherwise implied (SMS for a phone).",
    )
    login: str | None = strawberry.field(
        default=None, description="RESET_PASSWORD: the account's ID number, mobile or email."
    )
    destination: str | None = strawberry.field(
        default=None,
        description="CHANGE_PHONE, CHANGE_EMAIL, PHONE_APPEAL: the new mobile number or email.",
    )


@strawberry.type(
    description="For a password reset the answer is the same whether or not the account "
    "exists; the code arrives only if it does."
)
class RequestVerificationCodePayload:
    expires_in_seconds: int | None = None
    resend_after_seconds: int | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ResetPasswordInput:
    login: str
    channel: Channel  # type: ignore[valid-type]
    code: str
    new_password: str


@strawberry.type
class ResetPasswordPayload:
    ok: bool = False
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str


@strawberry.type
class ChangePasswordPayload:
    account: Account | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ChangeContactInput:
    kind: ContactKind  # type: ignore[valid-type]
    value: str = strawberry.field(description="The new mobile number or email.")
    code: str = strawberry.field(description="The code sent to the new value.")


@strawberry.type
class ChangeContactPayload:
    account: Account | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="信息占用申诉: move a mobile number to your account.")
class SubmitPhoneAppealInput:
    name: str
    id_type: IdType  # type: ignore[valid-type]
    id_number: str
    new_phone: str
    code: str = strawberry.field(description="The PHONE_APPEAL code sent to newPhone.")
    reason: str
    email: str | None = strawberry.field(default=None, description="Where to reach you.")


@strawberry.type
class SubmitPhoneAppealPayload:
    appeal_id: strawberry.ID | None = None
    status: PhoneAppealStatus | None = None  # type: ignore[valid-type]
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AccountMutations:
    @strawberry.mutation(description="Create a candidate account. Does not sign in.")
    async def sign_up(self, info: Info, input: SignUpInput) -> SignUpPayload:
        account, errors = await attempt(
            info,
            accounts.sign_up(
                name=input.name,
                id_type=input.id_type,
                id_number=input.id_number,
                phone=input.phone,
                email=input.email,
                password=input.password,
                client_address=info.context.client_address,
            ),
        )
        return SignUpPayload(account=_account(account), user_errors=errors)

    @strawberry.mutation(
        description="Exchange a login and password for a session token. Repeated failures "
        "slow down, then lock the account for a while (retryAfter says how long)."
    )
    async def sign_in(self, info: Info, input: SignInInput) -> SignInPayload:
        result, errors = await attempt(
            info,
            accounts.sign_in(
                login=input.login,
                password=input.password,
                client_address=info.context.client_address,
                user_agent=info.context.user_agent,
            ),
        )
        if result is None:
            return SignInPayload(user_errors=errors)
        account, token = result
        # The rest of this operation acts as the account that just signed in.
        info.context.token = token
        info.context.forget_viewer()
        return SignInPayload(token=token, account=_account(account))

    @strawberry.mutation(
        description="End this request's session (or all, with everywhere).",
        permission_classes=[IsSignedIn],
    )
    async def sign_out(self, info: Info, input: SignOutInput | None = None) -> SignOutPayload:
        token = info.context.token
        assert token is not None
        signed_out, errors = await attempt(
            info, accounts.sign_out(token, everywhere=bool(input and input.everywhere))
        )
        info.context.token = None
        info.context.forget_viewer()
        return SignOutPayload(signed_out=bool(signed_out), user_errors=errors)

    @strawberry.mutation(
        description="Send a one-time code (valid 10 minutes, 5 tries). CHANGE_PHONE and "
        "CHANGE_EMAIL need a signed-in account."
    )
    async def request_verification_code(
        self, info: Info, input: RequestVerificationCodeInput
    ) -> RequestVerificationCodePayload:
        account = None
        if input.purpose in (
            models.VerificationPurpose.CHANGE_PHONE,
            models.VerificationPurpose.CHANGE_EMAIL,
        ):
            account = await _require_authenticated(info)
        answer, errors = await attempt(
            info,
            verification.request_code(
                purpose=input.purpose,
                channel=input.channel,
                login=input.login,
                destination=input.destination,
                account=account,
                client_address=info.context.client_address,
            ),
        )
        if answer is None:
            return RequestVerificationCodePayload(user_errors=errors)
        return RequestVerificationCodePayload(
            expires_in_seconds=answer.expires_in, resend_after_seconds=answer.resend_after
        )

    @strawberry.mutation(
        description="Set a new password with a RESET_PASSWORD code; ends every open session."
    )
    async def reset_password(self, info: Info, input: ResetPasswordInput) -> ResetPasswordPayload:
        _, errors = await attempt(
            info,
            verification.reset_password(
                login=input.login,
                channel=input.channel,
                code=input.code,
                new_password=input.new_password,
            ),
        )
        info.context.forget_viewer()
        return ResetPasswordPayload(ok=not errors, user_errors=errors)

    @strawberry.mutation(
        description="Change the password (also the required first change of an initial "
        "password); ends the account's other sessions.",
        permission_classes=[IsSignedIn],
    )
    async def change_password(
        self, info: Info, input: ChangePasswordInput
    ) -> ChangePasswordPayload:
        viewer = await info.context.viewer()
        account, errors = await attempt(
            info,
            accounts.change_password(
                viewer,
                current_password=input.current_password,
                new_password=input.new_password,
                token=info.context.token,
                client_address=info.context.client_address,
            ),
        )
        return ChangePasswordPayload(account=_account(account), user_errors=errors)

    @strawberry.mutation(
        description="Change the mobile number or email with a code sent to the new value.",
        permission_classes=[IsAuthenticated],
    )
    async def change_contact(self, info: Info, input: ChangeContactInput) -> ChangeContactPayload:
        viewer = await info.context.viewer()
        account, errors = await attempt(
            info,
            verification.change_contact(
                viewer, kind=input.kind, value=input.value, code=input.code
            ),
        )
        return ChangeContactPayload(account=_account(account), user_errors=errors)

    @strawberry.mutation(
        description="信息占用申诉: ask for a mobile number held by another account (or lost) to "
        "be moved to yours; needs a PHONE_APPEAL code sent to that number. No sign-in needed."
    )
    async def submit_phone_appeal(
        self, info: Info, input: SubmitPhoneAppealInput
    ) -> SubmitPhoneAppealPayload:
        appeal, errors = await attempt(
            info,
            appeals.submit_phone_appeal(
                name=input.name,
                id_type=input.id_type,
                id_number=input.id_number,
                new_phone=input.new_phone,
                code=input.code,
                email=input.email,
                reason=input.reason,
                client_address=info.context.client_address,
            ),
        )
        if appeal is None:
            return SubmitPhoneAppealPayload(user_errors=errors)
        return SubmitPhoneAppealPayload(
            appeal_id=strawberry.ID(relay.to_base64("PhoneAppeal", appeal.id)),
            status=appeal.status,
        )
