"""Qualification (资格验证, Q1) and its confirmation (Q2).

Q1: a candidate proves they are on their school's roster for a session by entering their name,
ID type and ID number. The entered identity must be the account's own (an account cannot be
used to probe other people's IDs), and must match a roster record of that session: same ID
type and number, and the same name after normalisation (NFC, trimmed, middle dots unified).
Every failure of the roster match gives one code and one message, whichever field differed,
so the check cannot tell an attacker whether an ID is on some roster; failures are counted per
account and per client address and throttled.

Q2: after a match the candidate reviews the data and confirms it; subjects can be chosen only
after that (the registration service checks ``confirmed_at``).

When the school corrects a record after the candidate confirmed it, the confirmation stays and
the candidate is shown the current data: the correction is what the FAQ tells candidates to ask
their school for (三.2), so asking them to confirm again would only block registration. The
``roster_updated_after_confirmation`` helper lets the front end point out that something
changed. Eligibility is read from the current record whenever subjects are chosen.
"""

from __future__ import annotations

from datetime import datetime

from tortoise.exceptions import IntegrityError

from cetgql.models import Account, ExamSession, IdType, Qualification, RosterRecord
from cetgql.services import clock, identity, rate_limits
from cetgql.services.errors import DomainError, ErrorCode


async def _session(session_code: str) -> ExamSession:
    session = await ExamSession.get_or_none(code=session_code.strip().upper()[:8])
    if session is None:
        raise DomainError.of(ErrorCode.SESSION_NOT_FOUND, "sessionCode")
    return session


async def _throttle(account: Account, client_address: str) -> None:
    await rate_limits.check(rate_limits.QUALIFICATION_PER_ACCOUNT, str(account.id))
    await rate_limits.check(rate_limits.QUALIFICATION_PER_ADDRESS, client_address)


async def _count_failure(account: Account, client_address: str) -> None:
    await rate_limits.record(rate_limits.QUALIFICATION_PER_ACCOUNT, str(account.id))
    await rate_limits.record(rate_limits.QUALIFICATION_PER_ADDRESS, client_address)


def _is_account_holder(account: Account, name: str, id_type: IdType, id_number: str) -> bool:
    return (
        account.id_type == id_type
        and account.id_number == identity.normalise_id_number(id_number)
        and account.name_key == identity.name_key(name)
    )


async def verify(
    account: Account,
    *,
    session_code: str,
    name: str,
    id_type: IdType,
    id_number: str,
    client_address: str,
) -> Qualification:
    """Match the candidate against the session's roster (Q1); the qualification on success.

    Raises ``IDENTITY_NOT_ACCOUNT_HOLDER`` when the entered identity is not the account's (the
    user's own data, safe to say), ``QUALIFICATION_FAILED`` when no roster record matches (never
    saying which field), ``RATE_LIMITED`` after too many failures.
    """
    session = await _session(session_code)
    await _throttle(account, client_address)
    if not _is_account_holder(account, name, id_type, id_number):
        await _count_failure(account, client_address)
        raise DomainError.of(ErrorCode.IDENTITY_NOT_ACCOUNT_HOLDER)
    record = await RosterRecord.get_or_none(
        session_id=session.id, id_type=account.id_type, id_number=account.id_number
    )
    if record is None or record.name_key != account.name_key:
        # One answer for "not on the roster" and "on it under another name" (Q1).
        await _count_failure(account, client_address)
        raise DomainError.of(ErrorCode.QUALIFICATION_FAILED)
    match = await _remember_match(account, session, record)
    return await _loaded(match.id)


async def _remember_match(
    account: Account, session: ExamSession, record: RosterRecord
) -> Qualification:
    """Create or refresh the qualification; a repeated check keeps an earlier confirmation
    unless it now points at a different roster record."""
    now = clock.now()
    existing = await Qualification.get_or_none(account_id=account.id, session_id=session.id)
    if existing is None:
        try:
            return await Qualification.create(
                account=account, session=session, roster_record=record, verified_at=now
            )
        except IntegrityError:  # the same candidate pressed twice at once
            existing = await Qualification.get(account_id=account.id, session_id=session.id)
    if existing.roster_record_id != record.id:  # type: ignore[attr-defined]
        existing.roster_record = record
        existing.confirmed_at = None
    existing.verified_at = now
    await existing.save(update_fields=["roster_record_id", "verified_at", "confirmed_at"])
    return existing


async def confirm(account: Account, session_code: str) -> Qualification:
    """The candidate confirms the matched data (Q2); once only."""
    session = await _session(session_code)
    qualification = await Qualification.get_or_none(account_id=account.id, session_id=session.id)
    if qualification is None:
        raise DomainError.of(ErrorCode.NOT_QUALIFIED)
    # Conditional update: two concurrent confirmations cannot both succeed.
    now = clock.now()
    changed = await Qualification.filter(id=qualification.id, confirmed_at__isnull=True).update(
        confirmed_at=now
    )
    if not changed:
        raise DomainError.of(ErrorCode.ALREADY_CONFIRMED)
    return await _loaded(qualification.id)


_WITH_RECORD = ("session", "roster_record__school", "roster_record__campus")


async def find(account_id: int, session_code: str) -> Qualification | None:
    """The account's qualification for the session with its roster record, or None."""
    return (
        await Qualification.filter(
            account_id=account_id, session__code=session_code.strip().upper()[:8]
        )
        .select_related(*_WITH_RECORD)
        .first()
    )


async def get(qualification_id: int) -> Qualification | None:
    """A qualification by id with its record; the caller decides who may see it."""
    return await Qualification.filter(id=qualification_id).select_related(*_WITH_RECORD).first()


async def _loaded(qualification_id: int) -> Qualification:
    return await Qualification.get(id=qualification_id).select_related(*_WITH_RECORD)


def roster_updated_after_confirmation(
    confirmed_at: datetime | None, record_updated_at: datetime | None
) -> bool:
    return (
        confirmed_at is not None
        and record_updated_at is not None
        and record_updated_at > confirmed_at
    )
