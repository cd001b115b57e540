"""Accounts, their sign-in sessions, one-time codes, role grants and phone appeals (A1–A7)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from cetgql.models.geography import Province, School


class IdType(StrEnum):
    RESIDENT_ID = "RESIDENT_ID"  # 中华人民共和国居民身份证
    HK_MACAO_PERMIT = "HK_MACAO_PERMIT"  # 港澳居民来往内地通行证
    TAIWAN_PERMIT = "TAIWAN_PERMIT"  # 台湾居民来往大陆通行证
    HK_MACAO_RESIDENCE = "HK_MACAO_RESIDENCE"  # 港澳居民居住证
    TAIWAN_RESIDENCE = "TAIWAN_RESIDENCE"  # 台湾居民居住证
    PASSPORT = "PASSPORT"  # 护照
    STAFF = "STAFF"  # administrators' accounts made with create-admin, never by signUp


class Role(StrEnum):
    CANDIDATE = "CANDIDATE"
    SCHOOL_ADMIN = "SCHOOL_ADMIN"
    PROVINCE_ADMIN = "PROVINCE_ADMIN"
    NATIONAL_ADMIN = "NATIONAL_ADMIN"


class VerificationPurpose(StrEnum):
    RESET_PASSWORD = "RESET_PASSWORD"  # noqa: S105 - a purpose, not a secret
    CHANGE_PHONE = "CHANGE_PHONE"
    CHANGE_EMAIL = "CHANGE_EMAIL"
    PHONE_APPEAL = "PHONE_APPEAL"


class PhoneAppealStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class Account(Model):
    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=64)
    # NFC-normalised, trimmed, middle dots unified: what name comparisons use (A2).
    name_key = fields.CharField(max_length=64, db_index=True)
    id_type = fields.CharEnumField(IdType, max_length=24)
    id_number = fields.CharField(max_length=32)
    phone = fields.CharField(max_length=20, null=True, unique=True)
    email = fields.CharField(max_length=254, null=True, unique=True)
    password_hash = fields.CharField(max_length=255)
    must_change_password = fields.BooleanField(default=False)
    failed_sign_ins = fields.IntField(default=0)
    last_failed_sign_in_at = fields.DatetimeField(null=True)
    locked_until = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    grants: fields.ReverseRelation[RoleGrant]
    sessions: fields.ReverseRelation[AuthSession]

    class Meta:
        table = "account"
        unique_together = (("id_type", "id_number"),)
        # Sign-in by ID number (A4) gives no type: the unique key above starts with it.
        indexes = (("id_number",),)


class RoleGrant(Model):
    """An administrative role with its scope: a school, a province, or the whole country."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name="grants", on_delete=fields.CASCADE
    )
    role = fields.CharEnumField(Role, max_length=20)
    province: fields.ForeignKeyNullableRelation[Province] = fields.ForeignKeyField(
        "cetgql.Province", related_name=False, null=True, on_delete=fields.CASCADE
    )
    school: fields.ForeignKeyNullableRelation[School] = fields.ForeignKeyField(
        "cetgql.School", related_name=False, null=True, on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "role_grant"
        indexes = (("account_id",),)  # a viewer's roles and scope, asked on many requests


class AuthSession(Model):
    """A revocable sign-in session: only the SHA-256 of its bearer token is stored."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name="sessions", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    client_address = fields.CharField(max_length=64, null=True)
    user_agent = fields.CharField(max_length=255, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "auth_session"
        indexes = (("account_id", "revoked_at"),)  # ending every session of an account (A5)


class VerificationCode(Model):
    """A one-time code sent to a phone or mailbox, stored hashed, short-lived, with few attempts."""

    id = fields.BigIntField(primary_key=True)
    purpose = fields.CharEnumField(VerificationPurpose, max_length=20)
    channel = fields.CharField(max_length=8)  # "SMS" | "EMAIL"
    destination = fields.CharField(max_length=254, db_index=True)
    account: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name=False, null=True, on_delete=fields.CASCADE
    )
    code_hash = fields.CharField(max_length=64)
    attempts = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    consumed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "verification_code"


class PhoneAppeal(Model):
    """信息占用申诉: someone asks for a mobile number to be moved to their account (A7)."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name="phone_appeals", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=64)
    id_type = fields.CharEnumField(IdType, max_length=24)
    id_number = fields.CharField(max_length=32)
    new_phone = fields.CharField(max_length=20)
    email = fields.CharField(max_length=254, null=True)
    reason = fields.TextField()
    status = fields.CharEnumField(
        PhoneAppealStatus, max_length=10, default=PhoneAppealStatus.PENDING
    )
    reviewer: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "cetgql.Account", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    review_note = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    reviewed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "phone_appeal"
