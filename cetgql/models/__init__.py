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
from cetgql.models.calendar import WorkCalendarDay, WorkCalendarYear
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
from cetgql.models.scores import (
    ScoreCertificate,
    ScoreImport,
    ScoreImportProblem,
    ScoreImportRow,
    ScoreImportStatus,
    ScoreRecord,
    ScoreRelease,
    ScoreReport,
    ScoreVerification,
    VerificationOutcome,
    VerificationStatus,
)
from cetgql.models.tickets import (
    AllocationRun,
    ExamRoom,
    Ticket,
    TicketPdf,
    TicketPrintWindow,
)

__all__ = [
    "Account",
    "AllocationRun",
    "AuditEvent",
    "AuthSession",
    "Campus",
    "Cet6Review",
    "ExamRoom",
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
    "ScoreCertificate",
    "ScoreImport",
    "ScoreImportProblem",
    "ScoreImportRow",
    "ScoreImportStatus",
    "ScoreRecord",
    "ScoreRelease",
    "ScoreReport",
    "ScoreVerification",
    "SessionSubject",
    "Subject",
    "SubjectKind",
    "Ticket",
    "TicketPdf",
    "TicketPrintWindow",
    "VerificationCode",
    "VerificationOutcome",
    "VerificationPurpose",
    "VerificationStatus",
    "WorkCalendarDay",
    "WorkCalendarYear",
]
