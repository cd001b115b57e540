"""Accounts (A1–A4): sign-up, sign-in with throttling, sign-out, password change, admins.

Sign-in throttling (A4) works on two levels. Per account: the first three consecutive failures
are free, then each further attempt must wait ``2^(n-3)`` seconds (at most a minute) after the
previous failure, and ten consecutive failures lock the account for fifteen minutes, during
which even the right password is refused. Per client address: failed attempts (wrong password
or unknown login) count in ``rate_limits.SIGN_IN_PER_ADDRESS``, so one address cannot spray
many accounts. An attempt is counted as a failure *before* the password is checked and undone
on success: concurrent attempts against one account then cannot all slip through the same
throttle window.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from cetgql.models import Account, IdType, Province, Role, RoleGrant, School
from cetgql.models.prepared import PreparedQuery
from cetgql.services import audit, clock, identity, passwords, rate_limits, sessions
from cetgql.services.errors import DomainError, ErrorCode, Problem

T = TypeVar("T")

FREE_FAILURES = 3
MAX_DELAY_SECONDS = 60
LOCK_AFTER_FAILURES = 10
LOCK_DURATION = timedelta(minutes=15)
MAX_LOGIN_LENGTH = 254
MAX_EMAIL_LENGTH = 254

_PHONE = re.compile(r"^1[3-9]\d{9}$")
_EMAIL = re.compile(
    r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
    r"@(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$"
)


class Problems:
    """Collects the problems of several fields so a form shows them all at once."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def check(self, validate: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        try:
            return validate(*args, **kwargs)
        except DomainError as error:
            self.items.extend(error.problems)
            return None

    def add(self, code: ErrorCode, *field: str) -> None:
        self.items.append(Problem(code, tuple(field) or None))

    def raise_if_any(self) -> None:
        if self.items:
            raise DomainError(self.items)


# ---------------------------------------------------------------------------------- contacts


def normalise_phone(value: str) -> str:
    """Digits only, full-width digits folded, an optional +86 / 0086 country prefix dropped."""
    text = re.sub(r"[\s\-()]", "", unicodedata.normalize("NFKC", value))
    for prefix in ("+86", "0086"):
        if text.startswith(prefix):
            text = text.removeprefix(prefix)
    return text


def validate_phone(value: str, *, field: str = "phone") -> str:
    """A mainland mobile number: 11 digits starting 13–19."""
    phone = normalise_phone(value)
    if not phone:
        raise DomainError.of(ErrorCode.REQUIRED, field)
    if len(phone) > 20:
        raise DomainError.of(ErrorCode.TOO_LONG, field)
    if not _PHONE.match(phone):
        raise DomainError.of(ErrorCode.INVALID_PHONE, field)
    return phone


def normalise_email(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().lower()


def validate_email(value: str, *, field: str = "email") -> str:
    """A sane address, lower-cased (mail providers treat addresses case-insensitively)."""
    email = normalise_email(value)
    if not email:
        raise DomainError.of(ErrorCode.REQUIRED, field)
    if len(email) > MAX_EMAIL_LENGTH:
        raise DomainError.of(ErrorCode.TOO_LONG, field)
    if not _EMAIL.match(email) or ".." in email:
        raise DomainError.of(ErrorCode.INVALID_EMAIL, field)
    return email


def is_phone_shaped(login: str) -> bool:
    return bool(_PHONE.match(normalise_phone(login)))


# The queries of every sign-in, prepared (models/prepared.py): built once, not per attempt.
_BY_EMAIL: PreparedQuery[Account | None] = PreparedQuery(
    lambda email: Account.get_or_none(email=email)
)
_BY_PHONE: PreparedQuery[Account | None] = PreparedQuery(
    lambda phone: Account.get_or_none(phone=phone)
)
_BY_ID_NUMBER: PreparedQuery[Account | None] = PreparedQuery(
    lambda number: Account.filter(id_number=number).order_by("id").first()
)
_CLAIM: PreparedQuery[int] = PreparedQuery(
    lambda account_id, failures, counted, now: Account.filter(
        id=account_id, failed_sign_ins=failures
    ).update(failed_sign_ins=counted, last_failed_sign_in_at=now)
)
_CLEAR: PreparedQuery[int] = PreparedQuery(
    lambda account_id: Account.filter(id=account_id).update(
        failed_sign_ins=0, last_failed_sign_in_at=None, locked_until=None
    )
)


async def find_by_login(login: str) -> Account | None:
    """The account a login names: an email (has an @), a mobile number (11 digits starting
    13–19), else an ID number. ID numbers are unique across document types (sign-up refuses a
    number already registered under any type), so the lookup is never ambiguous."""
    text = login.strip()
    if not text or len(text) > MAX_LOGIN_LENGTH:
        return None
    if "@" in text:
        return await _BY_EMAIL(normalise_email(text))
    if is_phone_shaped(text):
        found = await _BY_PHONE(normalise_phone(text))
        if found is not None:
            return found
    number = identity.normalise_id_number(text)
    if len(number) > 32:
        return None
    return await _BY_ID_NUMBER(number)


# ----------------------------------------------------------------------------------- sign-up


async def _taken_problems(
    *, id_number: str | None, phone: str | None, email: str | None, exclude_id: int | None = None
) -> list[Problem]:
    """The uniqueness conflicts of the given values with other accounts."""
    problems: list[Problem] = []
    checks = (
        ("id_number", id_number, ErrorCode.ID_NUMBER_TAKEN, "idNumber"),
        ("phone", phone, ErrorCode.PHONE_TAKEN, "phone"),
        ("email", email, ErrorCode.EMAIL_TAKEN, "email"),
    )
    for column, value, code, field in checks:
        if value is None:
            continue
        query = Account.filter(**{column: value})
        if exclude_id is not None:
            query = query.exclude(id=exclude_id)
        if await query.exists():
            problems.append(Problem(code, (field,)))
    return problems


async def sign_up(
    *,
    name: str,
    id_type: IdType,
    id_number: str,
    phone: str,
    email: str,
    password: str,
    client_address: str,
) -> Account:
    """Create a candidate account (A1–A3). Every field problem is reported at once."""
    problems = Problems()
    clean_name = problems.check(identity.validate_name, name)
    clean_number: str | None = None
    if id_type == IdType.STAFF:
        problems.add(ErrorCode.ID_TYPE_NOT_ALLOWED, "idType")
    else:
        clean_number = problems.check(identity.validate_id, id_type, id_number)
    clean_phone = problems.check(validate_phone, phone)
    clean_email = problems.check(validate_email, email)
    problems.check(passwords.check_policy, password)
    problems.raise_if_any()
    assert clean_name and clean_number and clean_phone and clean_email

    taken = await _taken_problems(id_number=clean_number, phone=clean_phone, email=clean_email)
    if taken:
        raise DomainError(taken)
    password_hash = await passwords.hash_password(password)
    try:
        async with in_transaction():
            account = await Account.create(
                name=clean_name,
                name_key=identity.name_key(clean_name),
                id_type=id_type,
                id_number=clean_number,
                phone=clean_phone,
                email=clean_email,
                password_hash=password_hash,
            )
    except IntegrityError as error:
        # Someone registered the same number or contact between our check and the insert.
        taken = await _taken_problems(id_number=clean_number, phone=clean_phone, email=clean_email)
        raise DomainError(taken or [Problem(ErrorCode.ID_NUMBER_TAKEN, ("idNumber",))]) from error
    return account


# ----------------------------------------------------------------------------------- sign-in


def throttle_delay(failures: int) -> int:
    """Seconds an attempt must wait after the last failure, given the consecutive failures."""
    if failures < FREE_FAILURES:
        return 0
    return int(min(2 ** (failures - FREE_FAILURES), MAX_DELAY_SECONDS))


def _seconds_until(moment: Any) -> int:
    return max(1, math.ceil((moment - clock.now()).total_seconds()))


async def _claim_attempt(account: Account) -> int:
    """Refuse the attempt if the account is locked or throttled, else count it as a failure
    (undone on success) and return the new count. A compare-and-set on the counter makes
    concurrent attempts take turns."""
    for _ in range(5):
        now = clock.now()
        if account.locked_until is not None and account.locked_until > now:
            raise DomainError.of(
                ErrorCode.ACCOUNT_LOCKED, retry_after=_seconds_until(account.locked_until)
            )
        failures = account.failed_sign_ins
        delay = throttle_delay(failures)
        if delay and account.last_failed_sign_in_at is not None:
            allowed_at = account.last_failed_sign_in_at + timedelta(seconds=delay)
            if now < allowed_at:
                raise DomainError.of(
                    ErrorCode.SIGN_IN_THROTTLED, retry_after=_seconds_until(allowed_at)
                )
        claimed = await _CLAIM(account.id, failures, failures + 1, now)
        if claimed:
            account.failed_sign_ins = failures + 1
            account.last_failed_sign_in_at = now
            return failures + 1
        await account.refresh_from_db(
            fields=["failed_sign_ins", "last_failed_sign_in_at", "locked_until"]
        )
    raise DomainError.of(ErrorCode.SIGN_IN_THROTTLED, retry_after=1)


async def _clear_failures(account: Account) -> None:
    await _CLEAR(account.id)
    account.failed_sign_ins = 0
    account.last_failed_sign_in_at = None
    account.locked_until = None


async def _failed(account: Account, failures: int, *, action: str, client_address: str) -> None:
    """After a wrong password: lock at the tenth consecutive failure, audit, and raise."""
    if failures >= LOCK_AFTER_FAILURES:
        locked_until = clock.now() + LOCK_DURATION
        async with in_transaction():
            await Account.filter(id=account.id).update(locked_until=locked_until)
            await audit.record(
                "account.locked",
                actor=account,
                subject=f"Account:{account.id}",
                client_address=client_address,
                failures=failures,
                until=locked_until.isoformat(),
            )
        account.locked_until = locked_until
        raise DomainError.of(ErrorCode.ACCOUNT_LOCKED, retry_after=_seconds_until(locked_until))
    await audit.record(
        action,
        actor=account,
        subject=f"Account:{account.id}",
        client_address=client_address,
        failures=failures,
    )


async def sign_in(
    *, login: str, password: str, client_address: str, user_agent: str
) -> tuple[Account, str]:
    """Exchange a login (ID number, mobile or email) and password for a session token (A4)."""
    problems = Problems()
    if not login.strip():
        problems.add(ErrorCode.REQUIRED, "login")
    if not password:
        problems.add(ErrorCode.REQUIRED, "password")
    problems.raise_if_any()
    await rate_limits.check(rate_limits.SIGN_IN_PER_ADDRESS, client_address)

    account = await find_by_login(login)
    if account is None:
        await passwords.verify_dummy(password)
        await rate_limits.record(rate_limits.SIGN_IN_PER_ADDRESS, client_address)
        await audit.record(
            "sign_in.unknown_login", client_address=client_address, login=login.strip()[:64]
        )
        raise DomainError.of(ErrorCode.INVALID_CREDENTIALS)

    failures = await _claim_attempt(account)
    if not await passwords.verify_password(account.password_hash, password):
        await rate_limits.record(rate_limits.SIGN_IN_PER_ADDRESS, client_address)
        await _failed(account, failures, action="sign_in.failed", client_address=client_address)
        raise DomainError.of(ErrorCode.INVALID_CREDENTIALS)

    await _clear_failures(account)
    if passwords.needs_rehash(account.password_hash):
        account.password_hash = await passwords.hash_password(password)
        await account.save(update_fields=["password_hash"])
    token = await sessions.open_session(
        account, client_address=client_address, user_agent=user_agent
    )
    return account, token


async def sign_out(token: str, *, everywhere: bool = False) -> bool:
    """End the session of this token (or, with ``everywhere``, every session of its account)."""
    account = await sessions.account_for_token(token)
    if account is None:
        return False
    if everywhere:
        return await sessions.close_all_sessions(account) > 0
    return await sessions.close_session(token)


async def change_password(
    account: Account,
    *,
    current_password: str,
    new_password: str,
    token: str | None,
    client_address: str | None = None,
) -> Account:
    """Change the password (also the forced first change of S11) and end the account's other
    sessions, keeping the one making the change. Wrong current passwords count against the
    account's sign-in throttle: a stolen session must not become a way to guess the password."""
    problems = Problems()
    if not current_password:
        problems.add(ErrorCode.REQUIRED, "currentPassword")
    problems.check(passwords.check_policy, new_password, field="newPassword")
    problems.raise_if_any()

    failures = await _claim_attempt(account)
    if not await passwords.verify_password(account.password_hash, current_password):
        await _failed(account, failures, action="account.password_change_failed", client_address="")
        raise DomainError.of(ErrorCode.WRONG_PASSWORD, "currentPassword")
    await _clear_failures(account)
    if current_password == new_password or await passwords.verify_password(
        account.password_hash, new_password
    ):
        raise DomainError.of(ErrorCode.SAME_PASSWORD, "newPassword")

    new_hash = await passwords.hash_password(new_password)
    async with in_transaction():
        account.password_hash = new_hash
        account.must_change_password = False
        await account.save(update_fields=["password_hash", "must_change_password", "updated_at"])
        ended = await sessions.close_all_sessions(account, except_token=token)
        await audit.record(
            "account.password_changed",
            actor=account,
            subject=f"Account:{account.id}",
            client_address=client_address,
            other_sessions_ended=ended,
        )
    return account


# ------------------------------------------------------------------------------------ admins


def _staff_number_base(email: str) -> str:
    local = re.sub(r"[^A-Z0-9]+", "-", email.partition("@")[0].upper()).strip("-") or "STAFF"
    return f"ADMIN-{local}"[:26]


async def _grant(
    account: Account, role: Role, school: School | None, province: Province | None
) -> bool:
    """Add the role grant unless the account already holds exactly it."""
    exists = await RoleGrant.filter(
        account_id=account.id,
        role=role,
        school_id=school.id if school else None,
        province_id=province.id if province else None,
    ).exists()
    if exists:
        return False
    await RoleGrant.create(account=account, role=role, school=school, province=province)
    return True


async def create_admin(
    *,
    name: str,
    email: str,
    password: str,
    role: Role,
    school_code: str | None = None,
    province_code: str | None = None,
    phone: str | None = None,
) -> Account:
    """Create an administrator with a scoped role, or add the role to the account that already
    has this email (so seeding and provisioning scripts can run again safely; the existing
    password is kept). A school admin needs a school, a province admin a province; a scope the
    role does not use is refused rather than silently dropped."""
    problems = Problems()
    clean_name = problems.check(identity.validate_name, name)
    clean_email = problems.check(validate_email, email)
    clean_phone = problems.check(validate_phone, phone) if phone else None
    if role == Role.CANDIDATE:
        problems.add(ErrorCode.INVALID_FORMAT, "role")
    if role == Role.SCHOOL_ADMIN and not school_code:
        problems.add(ErrorCode.REQUIRED, "school")
    if role != Role.SCHOOL_ADMIN and school_code:
        problems.add(ErrorCode.INVALID_FORMAT, "school")
    if role == Role.PROVINCE_ADMIN and not province_code:
        problems.add(ErrorCode.REQUIRED, "province")
    if role != Role.PROVINCE_ADMIN and province_code:
        problems.add(ErrorCode.INVALID_FORMAT, "province")
    problems.raise_if_any()
    assert clean_name and clean_email

    school = await School.get_or_none(code=school_code.strip()) if school_code else None
    if school_code and school is None:
        problems.add(ErrorCode.NOT_FOUND, "school")
    province = await Province.get_or_none(code=province_code.strip()) if province_code else None
    if province_code and province is None:
        problems.add(ErrorCode.NOT_FOUND, "province")
    problems.raise_if_any()

    existing = await Account.get_or_none(email=clean_email)
    if existing is not None:
        async with in_transaction():
            if await _grant(existing, role, school, province):
                await audit.record(
                    "admin.role_granted", subject=f"Account:{existing.id}", role=role.value
                )
        return existing

    problems.check(passwords.check_policy, password)
    problems.raise_if_any()
    if clean_phone and await Account.filter(phone=clean_phone).exists():
        raise DomainError.of(ErrorCode.PHONE_TAKEN, "phone")
    password_hash = await passwords.hash_password(password)
    base = _staff_number_base(clean_email)
    number = base
    suffix = 1
    while await Account.filter(id_number=number).exists():
        suffix += 1
        number = f"{base}-{suffix}"
    try:
        async with in_transaction():
            account = await Account.create(
                name=clean_name,
                name_key=identity.name_key(clean_name),
                id_type=IdType.STAFF,
                id_number=number,
                phone=clean_phone,
                email=clean_email,
                password_hash=password_hash,
            )
            await _grant(account, role, school, province)
            await audit.record(
                "admin.created",
                subject=f"Account:{account.id}",
                role=role.value,
                school=school_code,
                province=province_code,
            )
    except IntegrityError as error:
        # A concurrent run created the same admin: fall back to granting on that account.
        existing = await Account.get_or_none(email=clean_email)
        if existing is None:
            raise DomainError.of(ErrorCode.PHONE_TAKEN, "phone") from error
        await _grant(existing, role, school, province)
        return existing
    return account
