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
from cetgql.models.payments import Payment, PaymentEvent, PaymentStatus, ProviderSetting
from cetgql.models.rate_limits import RateLimitHit
from cetgql.models.registration import (
    Cet6Review,
    Fee,
    OralCenter,
    Order,
    OrderStatus,
    Registration,
    RegistrationStatus,
    RegistrationWindow,
    ReviewStatus,
)
from cetgql.models.roster import Qualification, RosterRecord
from cetgql.models.scores import ScoreRecord

__all__ = [
    "Account",
    "AuditEvent",
    "AuthSession",
    "Campus",
    "Cet6Review",
    "ExamSession",
    "Fee",
    "IdType",
    "OralCenter",
    "Order",
    "OrderStatus",
    "OutboxMessage",
    "Payment",
    "PaymentEvent",
    "PaymentStatus",
    "PhoneAppeal",
    "PhoneAppealStatus",
    "ProviderSetting",
    "Province",
    "Qualification",
    "RateLimitHit",
    "Registration",
    "RegistrationStatus",
    "RegistrationWindow",
    "ReviewStatus",
    "Role",
    "RoleGrant",
    "RosterRecord",
    "School",
    "ScoreRecord",
    "SessionSubject",
    "Subject",
    "SubjectKind",
    "VerificationCode",
    "VerificationPurpose",
]
