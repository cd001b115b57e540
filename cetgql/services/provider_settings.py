"""Which payment providers a province offers, and its merchant settings for each (P1).

A province's admins (and the national office; ``actor=None`` is the national command line)
turn each installed provider on or off for their province and fill in the settings that the
provider declares in ``settings_fields``:

- A value must name a declared field (``UNKNOWN_SETTING_FIELD``), at most once
  (``DUPLICATE_SETTING_FIELD``); a single-line field has no line break (``INVALID_FORMAT``).
- A field left out keeps its stored value, and an empty value clears it. So an admin changes
  one setting without re-entering the secrets, which the API never shows back.
- A provider is on only with every required field set (``PROVIDER_SETTING_REQUIRED``),
  checked on the stored values merged with the new ones; turning it off needs nothing.
- Secret values are stored apart (``ProviderSetting.secrets``) and leave this module only
  inside the :class:`MerchantConfig` handed to the plugin: admins see which secrets are set,
  never what they are, and the audit trail names the fields that changed, never a value.

Payments ask :func:`enabled_providers` and :func:`merchant_config`; candidates see
:func:`providers_for_candidate`. A provider whose plugin is no longer installed, or whose
stored settings lack a field a newer plugin version requires, counts as off.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise.transactions import in_transaction

from cetgql.models import Account, ProviderSetting, Province, Qualification
from cetgql.models.prepared import PreparedQuery
from cetgql.payments import MerchantConfig, PaymentProvider, SettingField
from cetgql.payments.manager import registry
from cetgql.services import access, audit
from cetgql.services.errors import DomainError, ErrorCode, Problem
from cetgql.services.registration_setup import province_by_code, require_province

logger = logging.getLogger("cetgql.payments")

MAX_VALUES = 50
MAX_LINE_LENGTH = 1024
MAX_MULTILINE_LENGTH = 16 * 1024  # a PEM certificate chain fits with room to spare


@dataclass(frozen=True)
class SettingValue:
    name: str
    value: str


@dataclass(frozen=True)
class ProviderSettings:
    """A province's settings for one provider as admins may see them: no secret values."""

    province_code: str
    provider: str
    display_name: str
    enabled: bool
    fields: tuple[SettingField, ...]
    values: tuple[SettingValue, ...]  # the non-secret fields that are set, in field order
    secrets_set: tuple[str, ...]  # names of the secret fields that are set
    updated_at: datetime | None


@dataclass(frozen=True)
class OfferedProvider:
    name: str
    display_name: str


# --- admins --------------------------------------------------------------------------------


async def set_provider(
    actor: Account | None,
    *,
    province_code: str,
    provider: str,
    enabled: bool,
    values: Sequence[SettingValue] = (),
    client_address: str | None = None,
) -> ProviderSettings:
    """Turn a provider on or off in a province and change its settings, in one transaction."""
    province = await province_by_code(province_code, "provinceCode")
    require_province(
        None if actor is None else await access.scope_of(actor), province.id, "provinceCode"
    )
    plugin = registry().get(provider.strip())
    if plugin is None:
        raise DomainError.of(ErrorCode.UNKNOWN_PAYMENT_PROVIDER, "provider")
    changes = _checked_changes(plugin, values)
    async with in_transaction():
        # One admin's change at a time per province: the row may not exist yet.
        await Province.select_for_update().filter(id=province.id).first()
        setting = await ProviderSetting.get_or_none(province_id=province.id, provider=plugin.name)
        if setting is None:
            setting = ProviderSetting(province_id=province.id, provider=plugin.name)
        was_enabled = setting.enabled
        changed = _apply(setting, plugin, changes)
        missing = _missing_required(setting, plugin)
        if enabled and missing:
            raise DomainError.of(
                ErrorCode.PROVIDER_SETTING_REQUIRED, "values", detail=", ".join(missing)
            )
        setting.enabled = enabled
        await setting.save()
        await audit.record(
            "payment_provider.set",
            actor=actor,
            subject=f"ProviderSetting:{setting.id}",
            client_address=client_address,
            province=province.code,
            provider=plugin.name,
            enabled_before=was_enabled,
            enabled=enabled,
            changed=sorted(changed),  # names only: a secret's value is never written here
        )
    return _view(province, plugin, setting)


async def list_for_province(actor: Account | None, province_code: str) -> list[ProviderSettings]:
    """Every installed provider with the province's settings for it (off when never set)."""
    province = await province_by_code(province_code, "provinceCode")
    require_province(
        None if actor is None else await access.scope_of(actor), province.id, "provinceCode"
    )
    stored = {s.provider: s for s in await ProviderSetting.filter(province_id=province.id)}
    return [
        _view(province, plugin, stored.get(plugin.name) or ProviderSetting(provider=plugin.name))
        for plugin in registry()
    ]


def _checked_changes(plugin: PaymentProvider, values: Sequence[SettingValue]) -> dict[str, str]:
    """The changes asked for, by field name, normalised; every problem reported at once."""
    if len(values) > MAX_VALUES:
        raise DomainError.of(ErrorCode.TOO_MANY_ITEMS, "values")
    fields = {f.name: f for f in plugin.settings_fields}
    changes: dict[str, str] = {}
    problems: list[Problem] = []
    for index, item in enumerate(values):
        path = ("values", str(index))
        name = item.name.strip()
        field = fields.get(name)
        if field is None:
            problems.append(Problem(ErrorCode.UNKNOWN_SETTING_FIELD, (*path, "name")))
            continue
        if name in changes:
            problems.append(Problem(ErrorCode.DUPLICATE_SETTING_FIELD, (*path, "name")))
            continue
        value = item.value.replace("\r\n", "\n").strip()
        if len(value) > (MAX_MULTILINE_LENGTH if field.multiline else MAX_LINE_LENGTH):
            problems.append(Problem(ErrorCode.TOO_LONG, (*path, "value")))
        elif not field.multiline and ("\n" in value or "\r" in value):
            problems.append(Problem(ErrorCode.INVALID_FORMAT, (*path, "value")))
        changes[name] = value
    if problems:
        raise DomainError(problems)
    return changes


def _apply(setting: ProviderSetting, plugin: PaymentProvider, changes: dict[str, str]) -> set[str]:
    """Write the changes into the row (secrets apart); the names of fields that changed."""
    secret = {f.name for f in plugin.settings_fields if f.secret}
    values, secrets = dict(setting.values or {}), dict(setting.secrets or {})
    changed = set()
    for name, value in changes.items():
        before = (secrets if name in secret else values).get(name, "")
        # A field that changed from plain to secret (or back) between plugin versions moves.
        values.pop(name, None)
        secrets.pop(name, None)
        if value:
            (secrets if name in secret else values)[name] = value
        if value != before:
            changed.add(name)
    setting.values, setting.secrets = values, secrets
    return changed


def _missing_required(setting: ProviderSetting, plugin: PaymentProvider) -> list[str]:
    present = {**(setting.values or {}), **(setting.secrets or {})}
    return [f.name for f in plugin.settings_fields if f.required and not present.get(f.name)]


def _view(
    province: Province, plugin: PaymentProvider, setting: ProviderSetting
) -> ProviderSettings:
    stored_values, stored_secrets = setting.values or {}, setting.secrets or {}
    fields = tuple(plugin.settings_fields)
    return ProviderSettings(
        province_code=province.code,
        provider=plugin.name,
        display_name=plugin.display_name,
        enabled=setting.enabled,
        fields=fields,
        # Only values stored as plain ever show: one stored as secret stays hidden even if a
        # newer plugin version no longer calls the field secret.
        values=tuple(
            SettingValue(f.name, stored_values[f.name])
            for f in fields
            if not f.secret and stored_values.get(f.name)
        ),
        secrets_set=tuple(
            f.name
            for f in fields
            if f.secret and (stored_secrets.get(f.name) or stored_values.get(f.name))
        ),
        updated_at=setting.updated_at if setting.pk is not None else None,
    )


# --- payments and candidates ---------------------------------------------------------------


def _usable(setting: ProviderSetting) -> PaymentProvider | None:
    """The plugin of an enabled setting if it can take payments: installed, settings complete."""
    plugin = registry().get(setting.provider)
    if not setting.enabled or plugin is None:
        return None
    missing = _missing_required(setting, plugin)
    if missing:
        logger.warning(
            "provider %s is on in province %s but lacks %s; treated as off",
            setting.provider,
            setting.province_id,  # type: ignore[attr-defined]
            ", ".join(missing),
        )
        return None
    return plugin


async def enabled_providers(province_id: int) -> list[str]:
    """Names of the providers a candidate of the province can pay with, in display order."""
    settings = await ProviderSetting.filter(province_id=province_id, enabled=True)
    usable = {s.provider for s in settings if _usable(s) is not None}
    return [name for name in registry().names() if name in usable]


# Read by every payment and notification: prepared (models/prepared.py).
_SETTING: PreparedQuery[ProviderSetting | None] = PreparedQuery(
    lambda province_id, provider: ProviderSetting.get_or_none(
        province_id=province_id, provider=provider
    )
)


async def merchant_config(
    province_id: int, provider: str, *, include_disabled: bool = False
) -> MerchantConfig | None:
    """The province's merchant settings for a provider, secrets included (for the plugin
    only, never for a client), when the provider is on there; otherwise None.

    ``include_disabled`` is for payments already made with it (query, refund, verifying a
    late notification): turning a provider off stops new payments, not the upkeep of old ones.
    """
    setting = await _SETTING(province_id, provider)
    if setting is None:
        return None
    if not include_disabled and _usable(setting) is None:
        return None
    return MerchantConfig(
        provider=setting.provider, values={**(setting.values or {}), **(setting.secrets or {})}
    )


async def candidate_province_id(account: Account) -> int | None:
    """The province of the candidate's school in their latest confirmed qualification."""
    qualification = (
        await Qualification.filter(account_id=account.id, confirmed_at__isnull=False)
        .order_by("-confirmed_at", "-id")
        .select_related("roster_record__school")
        .first()
    )
    if qualification is None:
        return None
    return qualification.roster_record.school.province_id  # type: ignore[attr-defined,no-any-return]


async def providers_for_candidate(account: Account) -> list[OfferedProvider]:
    """What the candidate may pay with: the providers on in their province; none before a
    confirmed qualification tells which province that is."""
    province_id = await candidate_province_id(account)
    if province_id is None:
        return []
    offered = []
    for name in await enabled_providers(province_id):
        plugin = registry().get(name)
        if plugin is not None:
            offered.append(OfferedProvider(plugin.name, plugin.display_name))
    return offered
