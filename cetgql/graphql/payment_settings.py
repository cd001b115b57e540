"""Payment providers per province: admins turn them on and set merchant settings
(``setPaymentProvider``, ``providerSettings``); candidates list what they can pay with
(``paymentProviders``). Secret values are write-only: no type here can carry one."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from cetgql.graphql.errors import UserError, attempt
from cetgql.graphql.permissions import IsAuthenticated, IsProvinceAdmin
from cetgql.services import provider_settings
from cetgql.services.errors import DomainError, message_for

if TYPE_CHECKING:
    from cetgql.payments import SettingField


@strawberry.type(description="A payment method a candidate can choose (P1).")
class PaymentProvider:
    name: str = strawberry.field(description='Pass to startPayment, e.g. "alipay".')
    display_name: str = strawberry.field(description='For people, e.g. "支付宝".')


@strawberry.type(description="A merchant setting a provider asks for: one field of the form.")
class ProviderSettingField:
    name: str
    label: str
    secret: bool = strawberry.field(description="Write-only: never shown back once saved.")
    required: bool = strawberry.field(description="Must be set before the provider is on.")
    multiline: bool = strawberry.field(description="PEM keys and certificates.")

    @classmethod
    def from_field(cls, field: SettingField) -> ProviderSettingField:
        return cls(
            name=field.name,
            label=field.label,
            secret=field.secret,
            required=field.required,
            multiline=field.multiline,
        )


@strawberry.type
class ProviderSettingValue:
    name: str
    value: str


@strawberry.type(description="A province's settings for one installed payment provider.")
class ProviderSetting:
    province_code: str
    provider: str
    display_name: str
    enabled: bool
    fields: list[ProviderSettingField] = strawberry.field(
        description="What the provider asks for, in its order."
    )
    values: list[ProviderSettingValue] = strawberry.field(
        description="The non-secret settings that are set."
    )
    secrets_set: list[str] = strawberry.field(
        description="Names of the secret settings that are set; their values are never shown."
    )
    updated_at: datetime | None

    @classmethod
    def from_view(cls, view: provider_settings.ProviderSettings) -> ProviderSetting:
        return cls(
            province_code=view.province_code,
            provider=view.provider,
            display_name=view.display_name,
            enabled=view.enabled,
            fields=[ProviderSettingField.from_field(f) for f in view.fields],
            values=[ProviderSettingValue(name=v.name, value=v.value) for v in view.values],
            secrets_set=list(view.secrets_set),
            updated_at=view.updated_at,
        )


@strawberry.input
class ProviderSettingValueInput:
    name: str
    value: str = strawberry.field(description="An empty value clears the setting.")


@strawberry.input
class SetPaymentProviderInput:
    province_code: str
    provider: str
    enabled: bool
    values: list[ProviderSettingValueInput] = strawberry.field(
        default_factory=list,
        description="Settings to change; one left out keeps its stored value, so secrets need "
        "not be entered again.",
    )


@strawberry.type
class SetPaymentProviderPayload:
    provider_setting: ProviderSetting | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PaymentSettingsQueries:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="The payment providers on in the viewer's province (from the school of "
        "their latest confirmed qualification); empty before that.",
    )
    async def payment_providers(self, info: Info) -> list[PaymentProvider]:
        viewer = await info.context.viewer()
        offered = await provider_settings.providers_for_candidate(viewer)
        return [PaymentProvider(name=p.name, display_name=p.display_name) for p in offered]

    @strawberry.field(
        permission_classes=[IsProvinceAdmin],
        description="Every installed provider with the province's settings for it; for the "
        "province's admins and the national office.",
    )
    async def provider_settings(self, info: Info, province_code: str) -> list[ProviderSetting]:
        viewer = await info.context.viewer()
        try:
            views = await provider_settings.list_for_province(viewer, province_code)
        except DomainError as error:
            code = error.problems[0].code
            raise GraphQLError(
                message_for(code, info.context.language), extensions={"code": code.value}
            ) from error
        return [ProviderSetting.from_view(v) for v in views]


@strawberry.type
class PaymentSettingsMutations:
    @strawberry.mutation(
        permission_classes=[IsProvinceAdmin],
        description="Turn a payment provider on or off in a province and set its merchant "
        "settings (P1).",
    )
    async def set_payment_provider(
        self, info: Info, input: SetPaymentProviderInput
    ) -> SetPaymentProviderPayload:
        viewer = await info.context.viewer()
        view, errors = await attempt(
            info,
            provider_settings.set_provider(
                viewer,
                province_code=input.province_code,
                provider=input.provider,
                enabled=input.enabled,
                values=[provider_settings.SettingValue(v.name, v.value) for v in input.values],
                client_address=info.context.client_address,
            ),
        )
        return SetPaymentProviderPayload(
            provider_setting=ProviderSetting.from_view(view) if view else None,
            user_errors=errors,
        )
