"""One-time codes (A5, A6, A7) and the flows they unlock: password reset and contact change.

A code is six random digits, stored only as an HMAC-SHA256 (keyed with the server secret and
bound to its purpose and destination), valid for ten minutes, allowing five tries, used once;
asking for a new code supersedes the previous one. Requests are rate limited per destination
(a gap between sends and an hourly cap) and per client address.

Password reset never reveals whether an account exists: an unknown login, or an account with
no contact of the chosen channel, gets exactly the answer a real request gets (same limits,
same payload) but nothing is sent. ``NO_CONTACT_FOR_CHANNEL`` is therefore never returned to an
anonymous caller; the later ``resetPassword`` simply reports ``INVALID_CODE``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from cetgql.models import Account, VerificationCode, VerificationPurpose
from cetgql.services import (
    accounts,
    audit,
    clock,
    identity,
    notifier,
    passwords,
    rate_limits,
    sessions,
)
from cetgql.services.errors import DomainError, ErrorCode, Problem
from cetgql.services.notifier import Channel
from cetgql.settings import get_settings

CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
CODE_DIGITS = 6


class ContactKind(StrEnum):
    PHONE = "PHONE"
    EMAIL = "EMAIL"


@dataclass(frozen=True)
class CodeRequest:
    """What the requester is told: how long the code lives and when another may be asked."""

    expires_in: int
    resend_after: int


_PURPOSE_TEXT: dict[VerificationPurpose, tuple[str, str]] = {
    VerificationPurpose.RESET_PASSWORD: ("重置密码", "resetting your password"),
    VerificationPurpose.CHANGE_PHONE: ("更换手机号码", "changing your mobile number"),
    VerificationPurpose.CHANGE_EMAIL: ("更换电子邮箱", "changing your email address"),
    VerificationPurpose.PHONE_APPEAL: ("信息占用申诉", "your mobile number appeal"),
}


def compose_message(purpose: VerificationPurpose, code: str) -> tuple[str, str]:
    """Subject and body of a code message: Chinese first, with an English line."""
    zh, en = _PURPOSE_TEXT[purpose]
    minutes = int(CODE_TTL.total_seconds() // 60)
    subject = f"【CET报名】{zh}验证码 / CET registration verification code"
    body = (
        f"【CET报名】您的验证码是 {code}，{minutes}分钟内有效，用于{zh}。请勿告诉他人；"
        f"如非本人操作，请忽略。\n"
        f"[CET registration] Your verification code is {code}, valid for {minutes} minutes, "
        f"for {en}. Do not share it; ignore this message if you did not ask for it."
    )
    return subject, body


def _digest(purpose: VerificationPurpose, destination: str, code: str) -> str:
    key = get_settings().secret_key.encode()
    message = f"{purpose.value}|{destination}|{code}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _clean_code(code: str) -> str:
    return "".join(unicodedata.normalize("NFKC", code).split())


# ----------------------------------------------------------------------------------- request


async def _limit(bucket: str, client_address: str) -> None:
    """Check every limit first, then count the request in all of them, so a refused request
    does not use up anything."""
    await rate_limits.check(rate_limits.CODE_RESEND_GAP, bucket)
    await rate_limits.check(rate_limits.CODE_PER_DESTINATION, bucket)
    await rate_limits.check(rate_limits.CODE_PER_ADDRESS, client_address)
    await rate_limits.record(rate_limits.CODE_RESEND_GAP, bucket)
    await rate_limits.record(rate_limits.CODE_PER_DESTINATION, bucket)
    await rate_limits.record(rate_limits.CODE_PER_ADDRESS, client_address)


def _answer() -> CodeRequest:
    return CodeRequest(
        expires_in=int(CODE_TTL.total_seconds()),
        resend_after=int(rate_limits.CODE_RESEND_GAP.window.total_seconds()),
    )


async def issue_code(
    purpose: VerificationPurpose, channel: Channel, destination: str, account: Account | None
) -> None:
    """Store a fresh code (superseding the previous unused one) and send it. Sending happens
    after the commit, so a slow mail server never holds a transaction open."""
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    now = clock.now()
    async with in_transaction():
        await VerificationCode.filter(
            purpose=purpose,
            destination=destination,
            account_id=account.id if account else None,
            consumed_at__isnull=True,
        ).update(consumed_at=now)
        await VerificationCode.create(
            purpose=purpose,
            channel=channel.value,
            destination=destination,
            account=account,
            code_hash=_digest(purpose, destination, code),
            expires_at=now + CODE_TTL,
        )
    subject, body = compose_message(purpose, code)
    await notifier.send(channel, destination, subject, body)


def _check_channel(given: Channel | None, expected: Channel) -> None:
    if given is not None and given != expected:
        raise DomainError.of(ErrorCode.INVALID_FORMAT, "channel")


async def request_code(
    *,
    purpose: VerificationPurpose,
    channel: Channel | None,
    login: str | None,
    destination: str | None,
    account: Account | None,
    client_address: str,
) -> CodeRequest:
    """Send a code for one purpose.

    - ``RESET_PASSWORD``: ``login`` and ``channel``; goes to the account's registered contact.
    - ``CHANGE_PHONE`` / ``CHANGE_EMAIL``: signed-in ``account``; goes to the new
      ``destination``, which must not belong to another account.
    - ``PHONE_APPEAL``: anonymous; goes to the new mobile ``destination`` being claimed.
    """
    if purpose == VerificationPurpose.RESET_PASSWORD:
        return await _request_reset(login=login, channel=channel, client_address=client_address)
    if purpose in (VerificationPurpose.CHANGE_PHONE, VerificationPurpose.CHANGE_EMAIL):
        if account is None:
            raise DomainError.of(ErrorCode.FORBIDDEN)
        kind = (
            ContactKind.PHONE if purpose == VerificationPurpose.CHANGE_PHONE else ContactKind.EMAIL
        )
        expected = Channel.SMS if kind == ContactKind.PHONE else Channel.EMAIL
        _check_channel(channel, expected)
        value = _validate_contact(kind, destination or "", field="destination")
        await _refuse_taken(kind, value, account, field="destination")
        await _limit(f"{purpose.value}:{value}", client_address)
        await issue_code(purpose, expected, value, account)
        return _answer()
    _check_channel(channel, Channel.SMS)
    phone = accounts.validate_phone(destination or "", field="destination")
    await _limit(f"{purpose.value}:{phone}", client_address)
    await issue_code(purpose, Channel.SMS, phone, None)
    return _answer()


def _contact_for(account: Account, channel: Channel) -> str | None:
    return account.phone if channel == Channel.SMS else account.email


async def _request_reset(
    *, login: str | None, channel: Channel | None, client_address: str
) -> CodeRequest:
    problems = accounts.Problems()
    if not (login or "").strip():
        problems.add(ErrorCode.REQUIRED, "login")
    if channel is None:
        problems.add(ErrorCode.REQUIRED, "channel")
    problems.raise_if_any()
    assert login is not None and channel is not None
    account = await accounts.find_by_login(login)
    # Keyed by account when there is one, else by what was typed: the limits then behave the
    # same for known and unknown logins.
    key = f"account:{account.id}" if account else f"login:{login.strip().lower()}"
    await _limit(
        f"{VerificationPurpose.RESET_PASSWORD.value}:{channel.value}:{key}", client_address
    )
    destination = _contact_for(account, channel) if account else None
    if account is not None and destination:
        await issue_code(VerificationPurpose.RESET_PASSWORD, channel, destination, account)
    return _answer()


# ----------------------------------------------------------------------------------- consume


async def consume_code(
    *,
    purpose: VerificationPurpose,
    destination: str,
    account_id: int | None,
    code: str,
    field: str = "code",
) -> None:
    """Accept the latest live code for this purpose and destination, or raise.

    Each try is counted before the comparison (atomically), so parallel guesses cannot exceed
    the allowance; the fifth wrong try already answers ``CODE_ATTEMPTS_EXCEEDED``.
    """
    given = _clean_code(code)
    if not given:
        raise DomainError.of(ErrorCode.REQUIRED, field)
    record = (
        await VerificationCode.filter(
            purpose=purpose,
            destination=destination,
            account_id=account_id,
            consumed_at__isnull=True,
        )
        .order_by("-id")
        .first()
    )
    if record is None:
        raise DomainError.of(ErrorCode.INVALID_CODE, field)
    if record.expires_at <= clock.now():
        raise DomainError.of(ErrorCode.CODE_EXPIRED, field)
    if record.attempts >= MAX_ATTEMPTS:
        raise DomainError.of(ErrorCode.CODE_ATTEMPTS_EXCEEDED, field)
    await VerificationCode.filter(id=record.id).update(attempts=F("attempts") + 1)
    await record.refresh_from_db(fields=["attempts"])
    used = record.attempts
    if used > MAX_ATTEMPTS:
        raise DomainError.of(ErrorCode.CODE_ATTEMPTS_EXCEEDED, field)
    if len(given) > 16 or not hmac.compare_digest(
        record.code_hash, _digest(purpose, destination, given)
    ):
        code_error = (
            ErrorCode.CODE_ATTEMPTS_EXCEEDED if used >= MAX_ATTEMPTS else ErrorCode.INVALID_CODE
        )
        raise DomainError.of(code_error, field)
    consumed = await VerificationCode.filter(id=record.id, consumed_at__isnull=True).update(
        consumed_at=clock.now()
    )
    if not consumed:
        raise DomainError.of(ErrorCode.INVALID_CODE, field)


# --------------------------------------------------------------------------- reset and change


async def reset_password(*, login: str, channel: Channel, code: str, new_password: str) -> None:
    """A5: a valid code for the account's registered contact sets a new password, clears any
    lock and ends every open session of the account."""
    problems = accounts.Problems()
    if not login.strip():
        problems.add(ErrorCode.REQUIRED, "login")
    if not _clean_code(code):
        problems.add(ErrorCode.REQUIRED, "code")
    problems.check(passwords.check_policy, new_password, field="newPassword")
    problems.raise_if_any()

    account = await accounts.find_by_login(login)
    destination = _contact_for(account, channel) if account else None
    if account is None or not destination:
        raise DomainError.of(ErrorCode.INVALID_CODE, "code")
    await consume_code(
        purpose=VerificationPurpose.RESET_PASSWORD,
        destination=destination,
        account_id=account.id,
        code=code,
    )
    new_hash = await passwords.hash_password(new_password)
    async with in_transaction():
        await Account.filter(id=account.id).update(
            password_hash=new_hash,
            must_change_password=False,
            failed_sign_ins=0,
            last_failed_sign_in_at=None,
            locked_until=None,
        )
        ended = await sessions.close_all_sessions(account)
        await audit.record(
            "account.password_reset",
            actor=account,
            subject=f"Account:{account.id}",
            channel=channel.value,
            sessions_ended=ended,
        )


def _validate_contact(kind: ContactKind, value: str, *, field: str) -> str:
    if kind == ContactKind.PHONE:
        return accounts.validate_phone(value, field=field)
    return accounts.validate_email(value, field=field)


async def _refuse_taken(kind: ContactKind, value: str, account: Account, *, field: str) -> None:
    column = "phone" if kind == ContactKind.PHONE else "email"
    if await Account.filter(**{column: value}).exclude(id=account.id).exists():
        code = ErrorCode.PHONE_TAKEN if kind == ContactKind.PHONE else ErrorCode.EMAIL_TAKEN
        raise DomainError.of(code, field)


async def change_contact(account: Account, *, kind: ContactKind, value: str, code: str) -> Account:
    """A6: move the account's mobile or email to a new value proven by a code sent there."""
    problems = accounts.Problems()
    clean = problems.check(_validate_contact, kind, value, field="value")
    if not _clean_code(code):
        problems.add(ErrorCode.REQUIRED, "code")
    problems.raise_if_any()
    assert clean is not None
    await _refuse_taken(kind, clean, account, field="value")
    purpose = (
        VerificationPurpose.CHANGE_PHONE
        if kind == ContactKind.PHONE
        else VerificationPurpose.CHANGE_EMAIL
    )
    await consume_code(purpose=purpose, destination=clean, account_id=account.id, code=code)
    column = "phone" if kind == ContactKind.PHONE else "email"
    old = getattr(account, column)
    mask = identity.mask_phone if kind == ContactKind.PHONE else identity.mask_email
    try:
        async with in_transaction():
            await Account.filter(id=account.id).update(**{column: clean})
            await audit.record(
                "account.contact_changed",
                actor=account,
                subject=f"Account:{account.id}",
                kind=kind.value,
                old=mask(old),
                new=mask(clean),
            )
    except IntegrityError as error:
        taken = ErrorCode.PHONE_TAKEN if kind == ContactKind.PHONE else ErrorCode.EMAIL_TAKEN
        raise DomainError(Problem(taken, ("value",))) from error
    setattr(account, column, clean)
    return account
