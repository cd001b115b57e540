"""信息占用申诉 (A7): moving a mobile number to the account of the person who now holds it.

Mobile numbers are recycled by carriers, and people lose old numbers they registered with. The
claimant proves they hold the new number with a code sent to it and names the identity of
their account; a national admin reviews the appeal, and approval moves the number: the
claimant's account gets it and any other account holding it loses it. The identity check never
says which detail differed and is rate limited per client address, so an appeal cannot be used
to find out whether someone has an account.
"""

from __future__ import annotations

import logging

from tortoise.transactions import in_transaction

from cetgql.models import (
    Account,
    IdType,
    PhoneAppeal,
    PhoneAppealStatus,
    VerificationPurpose,
)
from cetgql.services import access, accounts, audit, clock, identity, notifier, rate_limits
from cetgql.services.errors import DomainError, ErrorCode
from cetgql.services.notifier import Channel
from cetgql.services.verification import consume_code

logger = logging.getLogger("cetgql.appeals")

MAX_REASON_LENGTH = 1000
MAX_NOTE_LENGTH = 1000


async def submit_phone_appeal(
    *,
    name: str,
    id_type: IdType,
    id_number: str,
    new_phone: str,
    code: str,
    email: str | None,
    reason: str,
    client_address: str,
) -> PhoneAppeal:
    """File an appeal. The code is checked before the identity, so probing identities needs a
    fresh code on a phone one holds for every try, on top of the per-address limit."""
    await rate_limits.hit(rate_limits.APPEAL_PER_ADDRESS, client_address)
    problems = accounts.Problems()
    clean_name = problems.check(identity.validate_name, name)
    clean_number: str | None = None
    if id_type == IdType.STAFF:
        problems.add(ErrorCode.ID_TYPE_NOT_ALLOWED, "idType")
    else:
        clean_number = problems.check(identity.validate_id, id_type, id_number)
    phone = problems.check(accounts.validate_phone, new_phone, field="newPhone")
    clean_email = problems.check(accounts.validate_email, email) if email else None
    text = (reason or "").strip()
    if not text:
        problems.add(ErrorCode.REQUIRED, "reason")
    elif len(text) > MAX_REASON_LENGTH:
        problems.add(ErrorCode.TOO_LONG, "reason")
    if not (code or "").strip():
        problems.add(ErrorCode.REQUIRED, "code")
    problems.raise_if_any()
    assert clean_name and clean_number and phone

    await consume_code(
        purpose=VerificationPurpose.PHONE_APPEAL, destination=phone, account_id=None, code=code
    )
    account = await Account.filter(
        id_type=id_type, id_number=clean_number, name_key=identity.name_key(clean_name)
    ).first()
    if account is None:
        raise DomainError.of(ErrorCode.APPEAL_IDENTITY_MISMATCH)

    pending = await PhoneAppeal.get_or_none(
        account_id=account.id, new_phone=phone, status=PhoneAppealStatus.PENDING
    )
    if pending is not None:
        return pending
    async with in_transaction():
        appeal = await PhoneAppeal.create(
            account=account,
            name=clean_name,
            id_type=id_type,
            id_number=clean_number,
            new_phone=phone,
            email=clean_email,
            reason=text,
        )
        await audit.record(
            "phone_appeal.submitted",
            subject=f"PhoneAppeal:{appeal.id}",
            client_address=client_address,
            account=account.id,
        )
    return appeal


async def review_phone_appeal(
    reviewer: Account, appeal_id: int, *, approve: bool, note: str | None = None
) -> PhoneAppeal:
    """Approve (move the number) or reject a pending appeal; national admins only. The status
    moves from PENDING with a conditional update, so two reviewers cannot both decide."""
    await access.require_national(reviewer)
    clean_note = (note or "").strip() or None
    if clean_note and len(clean_note) > MAX_NOTE_LENGTH:
        raise DomainError.of(ErrorCode.TOO_LONG, "note")
    appeal = await PhoneAppeal.get_or_none(id=appeal_id)
    if appeal is None:
        raise DomainError.of(ErrorCode.NOT_FOUND, "appealId")
    if appeal.status != PhoneAppealStatus.PENDING:
        raise DomainError.of(ErrorCode.APPEAL_ALREADY_REVIEWED, "appealId")

    status = PhoneAppealStatus.APPROVED if approve else PhoneAppealStatus.REJECTED
    previous_holders: list[Account] = []
    async with in_transaction():
        decided = await PhoneAppeal.filter(id=appeal.id, status=PhoneAppealStatus.PENDING).update(
            status=status, reviewer_id=reviewer.id, review_note=clean_note, reviewed_at=clock.now()
        )
        if not decided:
            raise DomainError.of(ErrorCode.APPEAL_ALREADY_REVIEWED, "appealId")
        if approve:
            previous_holders = list(
                await Account.filter(phone=appeal.new_phone).exclude(id=appeal.account_id)  # type: ignore[attr-defined]
            )
            for holder in previous_holders:
                await Account.filter(id=holder.id).update(phone=None)
                await audit.record(
                    "account.phone_removed_by_appeal",
                    actor=reviewer,
                    subject=f"Account:{holder.id}",
                    appeal=appeal.id,
                    phone=identity.mask_phone(appeal.new_phone),
                )
            await Account.filter(id=appeal.account_id).update(phone=appeal.new_phone)  # type: ignore[attr-defined]
        await audit.record(
            f"phone_appeal.{status.value.lower()}",
            actor=reviewer,
            subject=f"PhoneAppeal:{appeal.id}",
            account=appeal.account_id,  # type: ignore[attr-defined]
            note=clean_note,
            previous_holders=[h.id for h in previous_holders],
        )
    await appeal.refresh_from_db()
    await _notify(appeal, previous_holders)
    return appeal


async def _notify(appeal: PhoneAppeal, previous_holders: list[Account]) -> None:
    """Tell the claimant the outcome, and a previous holder (by email) that the number left
    their account, so nobody is surprised at their next sign-in."""
    approved = appeal.status == PhoneAppealStatus.APPROVED
    outcome_zh = "已通过，该手机号码已绑定到您的账号" if approved else "未通过"
    outcome_en = (
        "was approved; the number is now on your account" if approved else "was not approved"
    )
    await notifier.send(
        Channel.SMS,
        appeal.new_phone,
        "【CET报名】信息占用申诉结果 / Appeal outcome",
        f"【CET报名】您的信息占用申诉{outcome_zh}。\n"
        f"[CET registration] Your mobile number appeal {outcome_en}.",
    )
    for holder in previous_holders:
        if holder.email:
            await notifier.send(
                Channel.EMAIL,
                holder.email,
                "【CET报名】手机号码已解除绑定 / Mobile number removed",
                f"【CET报名】经信息占用申诉审核，手机号码 {identity.mask_phone(appeal.new_phone)} "
                "已从您的账号解除绑定。如有疑问，请联系考试中心。\n"
                "[CET registration] After a reviewed appeal, the mobile number "
                f"{identity.mask_phone(appeal.new_phone)} was removed from your account.",
            )
