"""The schema: root types merged from one module per concept."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from cetgql.graphql.accounts import AccountMutations
from cetgql.graphql.admin_accounts import AdminAccountMutations, AdminAccountQueries
from cetgql.graphql.cet6_review import Cet6ReviewMutations, Cet6ReviewQueries
from cetgql.graphql.extensions import TrackedExecutor, default_extensions
from cetgql.graphql.group_registration import GroupRegistrationMutations
from cetgql.graphql.payment_settings import PaymentSettingsMutations, PaymentSettingsQueries
from cetgql.graphql.payments import PaymentMutations
from cetgql.graphql.qualification import QualificationMutations
from cetgql.graphql.registration import RegistrationMutations, RegistrationQueries
from cetgql.graphql.registration_admin import (
    RegistrationAdminMutations,
    RegistrationAdminQueries,
)
from cetgql.graphql.roster import RosterMutations, RosterQueries
from cetgql.graphql.scalars import DateTime
from cetgql.graphql.scores import ScoreAdminMutations, ScoreMutations, ScoreQueries
from cetgql.graphql.subscriptions import OrderSubscriptions
from cetgql.graphql.tickets import TicketMutations, TicketQueries
from cetgql.graphql.types.exams import ExamSessionQueries
from cetgql.graphql.viewer import ViewerQueries

QUERY_ROOTS: tuple[type, ...] = (
    ViewerQueries,
    ExamSessionQueries,
    RegistrationQueries,
    AdminAccountQueries,
    RosterQueries,
    RegistrationAdminQueries,
    Cet6ReviewQueries,
    PaymentSettingsQueries,
    TicketQueries,
    ScoreQueries,
)
MUTATION_ROOTS: tuple[type, ...] = (
    RegistrationMutations,
    AccountMutations,
    AdminAccountMutations,
    QualificationMutations,
    RosterMutations,
    RegistrationAdminMutations,
    Cet6ReviewMutations,
    GroupRegistrationMutations,
    PaymentMutations,
    PaymentSettingsMutations,
    TicketMutations,
    ScoreMutations,
    ScoreAdminMutations,
)
SUBSCRIPTION_ROOTS: tuple[type, ...] = (OrderSubscriptions,)

Query = merge_types("Query", QUERY_ROOTS)


def build_schema() -> strawberry.Schema:
    mutation = merge_types("Mutation", MUTATION_ROOTS) if MUTATION_ROOTS else None
    return strawberry.Schema(
        query=Query,
        mutation=mutation,
        subscription=merge_types("Subscription", SUBSCRIPTION_ROOTS),
        config=StrawberryConfig(relay_max_results=100, scalar_map={datetime: DateTime}),
        extensions=default_extensions(),
        execution_context_class=TrackedExecutor,
    )


schema = build_schema()
