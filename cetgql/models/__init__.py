"""Tortoise models, one module per aggregate. Importing this package registers them all."""

from cetgql.models.accounts import (
    Account,
    AuthSession,
    IdType,
    PhoneAppeal,
    PhoneAppealStatus,
    Role,
    RoleGrant,
    VerificationCode,
    VerificationPurpose,
)
from cetgql.models.audit import AuditEvent
from cetgql.models.exams import ExamSession, SessionSubject, Subject, SubjectKind
from cetgql.models.geography import Campus, Province, School
from cetgql.models.outbox import OutboxMessage
from cetgql.models.rate_limits import RateLimitHit
from cetgql.models.roster import Qualification, RosterRecord

__all__ = [
    "Account",
    "AuditEvent",
    "AuthSession",
    "Campus",
    "ExamSession",
    "IdType",
    "OutboxMessage",
    "PhoneAppeal",
    "PhoneAppealStatus",
    "Province",
    "Qualification",
    "RateLimitHit",
    "Role",
    "RoleGrant",
    "RosterRecord",
    "School",
    "SessionSubject",
    "Subject",
    "SubjectKind",
    "VerificationCode",
    "VerificationPurpose",
]
