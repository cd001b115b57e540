"""Payment providers per province (P1) through GraphQL: province admins turn providers on and
set merchant settings, secrets are write-only, and candidates see what their province offers.

The providers are objects of this module, put in force with ``manager.use_registry``: the
tests do not depend on which plugin distributions happen to be installed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from cetgql import models
from cetgql.models import Role
from cetgql.payments import (
    ChargeRequest,
    ChargeResult,
    MerchantConfig,
    MerchantLookup,
    Notification,
    NotifyReply,
    NotifyRequest,
    PaymentProvider,
    RefundRequest,
    RefundResult,
    SettingField,
    TradeState,
    TradeStatus,
    manager,
)
from cetgql.services import accounts, provider_settings, sessions
from tests.registration_setup import World, build_world, qualified_candidate

PRIVATE_KEY = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvQ-very-secret-key-material-4f1c\n-----END PRIVATE KEY-----"
)
API_KEY = "sk-live-do-not-show-9b2e77"
ERRORS = "userErrors { field code message }"
SETTING = "provinceCode provider displayName enabled values { name value } secretsSet updatedAt"
SET_PROVIDER = f"""
mutation($input: SetPaymentProviderInput!) {{ setPaymentProvider(input: $input) {{
  providerSetting {{ {SETTING} fields {{ name label secret required multiline }} }}
  {ERRORS} }} }}"""
PROVIDER_SETTINGS = f"""
query($p: String!) {{ providerSettings(provinceCode: $p) {{ {SETTING} }} }}"""
PAYMENT_PROVIDERS = "{ paymentProviders { name displayName } }"


# --- providers defined here -----------------------------------------------------------------


@dataclass
class FakeProvider:
    """Implements the PaymentProvider protocol just enough to be configured; never charges."""

    name: str
    display_name: str
    settings_fields: tuple[SettingField, ...]

    async def charge(self, merchant: MerchantConfig, request: ChargeRequest) -> ChargeResult:
        return ChargeResult(qr_code=f"fake://{request.out_trade_no}")

    async def query(self, merchant: MerchantConfig, out_trade_no: str) -> TradeStatus:
        return TradeStatus(out_trade_no=out_trade_no, state=TradeState.PENDING)

    async def callback(self, request: NotifyRequest, lookup: MerchantLookup) -> Notification:
        raise NotImplementedError

    def reply(self, accepted: bool) -> NotifyReply:
        return NotifyReply(status_code=200, body=b"ok" if accepted else b"fail")

    async def refund(self, merchant: MerchantConfig, request: RefundRequest) -> RefundResult:
        return RefundResult(accepted=True)

    async def close(self, merchant: MerchantConfig, out_trade_no: str) -> bool:
        return True

    def sandbox(self, notify_url: str) -> ASGIApp:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            raise NotImplementedError

        return app

    def sandbox_merchant(self, sandbox_url: str) -> dict[str, str]:
        return {}


TESTPAY = FakeProvider(
    "testpay",
    "测试支付",
    (
        SettingField("merchant_id", "商户号"),
        SettingField("private_key", "商户私钥", secret=True, multiline=True),
        SettingField("api_key", "接口密钥", secret=True),
        SettingField("note", "备注", required=False),
    ),
)
OTHERPAY = FakeProvider("otherpay", "另一支付", (SettingField("merchant_id", "商户号"),))


@pytest.fixture(autouse=True)
def providers() -> Iterator[None]:
    assert isinstance(TESTPAY, PaymentProvider)
    with manager.use_registry(manager.ProviderRegistry([TESTPAY, OTHERPAY])):
        yield


# --- helpers --------------------------------------------------------------------------------


async def admin_token(role: Role, *, province: str | None = None, school: str | None = None) -> str:
    account = await accounts.create_admin(
        name="管理员",
        email=f"{role.value.lower()}{province or ''}{school or ''}@example.cn",
        password="Admin@2026x",
        role=role,
        province_code=province,
        school_code=school,
    )
    return await sessions.open_session(account, client_address="127.0.0.1", user_agent="tests")


def full_settings(**changes: str) -> list[dict[str, str]]:
    values = {"merchant_id": "2088001", "private_key": PRIVATE_KEY, "api_key": API_KEY}
    values.update(changes)
    return [{"name": name, "value": value} for name, value in values.items()]


async def set_provider(gql: Any, token: str, **input: Any) -> dict[str, Any]:
    value = {"provinceCode": "44", "provider": "testpay", "enabled": True, **input}
    data = await gql.data(SET_PROVIDER, {"input": value}, token=token)
    return data["setPaymentProvider"]


async def configure(gql: Any, token: str, **input: Any) -> None:
    """Set-up through the mutation, which must succeed."""
    assert (await set_provider(gql, token, **input))["userErrors"] == []


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


async def everything_stored() -> tuple[Any, ...]:
    return (
        sorted(
            await models.ProviderSetting.all().values_list(
                "provider", "enabled", "values", "secrets"
            )
        ),
        await models.AuditEvent.all().count(),
    )


async def province_world(code: str, name: str, school_code: str) -> World:
    """A second province with a school, in the session ``build_world`` made."""
    session = await models.ExamSession.get(code="2026H1")
    province = await models.Province.create(code=code, name=name)
    school = await models.School.create(code=school_code, name=f"{name}大学", province=province)
    campus = await models.Campus.create(school=school, code="1", name="本部")
    return World(session=session, province=province, school=school, campus=campus)


# --- secrets --------------------------------------------------------------------------------


async def test_secrets_are_written_but_never_read_back(gql):
    await build_world()
    admin = await admin_token(Role.PROVINCE_ADMIN, province="44")

    saved = await set_provider(gql, admin, values=full_settings(note="广东省考试院"))
    assert saved["userErrors"] == []
    setting = saved["providerSetting"]
    assert setting["enabled"] is True
    assert setting["displayName"] == "测试支付"
    assert setting["values"] == [
        {"name": "merchant_id", "value": "2088001"},
        {"name": "note", "value": "广东省考试院"},
    ]
    assert setting["secretsSet"] == ["private_key", "api_key"]
    assert {f["name"]: f["secret"] for f in setting["fields"]} == {
        "merchant_id": False,
        "private_key": True,
        "api_key": True,
        "note": False,
    }
    listed = await gql.execute(PROVIDER_SETTINGS, {"p": "44"}, token=admin)
    assert "errors" not in listed
    assert [s["provider"] for s in listed["data"]["providerSettings"]] == ["otherpay", "testpay"]

    # A change that leaves the secrets out keeps them.
    changed = await set_provider(gql, admin, values=[{"name": "merchant_id", "value": "2088002"}])
    assert changed["userErrors"] == []
    assert changed["providerSetting"]["secretsSet"] == ["private_key", "api_key"]
    province = await models.Province.get(code="44")
    merchant = await provider_settings.merchant_config(province.id, "testpay")
    assert merchant is not None
    assert dict(merchant.values) == {
        "merchant_id": "2088002",
        "private_key": PRIVATE_KEY,
        "api_key": API_KEY,
        "note": "广东省考试院",
    }

    # Nothing the API answered, and nothing in the audit trail, holds a secret (or a piece).
    for response in (saved, changed, listed):
        text = json.dumps(response, ensure_ascii=False)
        for secret in (API_KEY, PRIVATE_KEY, "very-secret-key-material"):
            assert secret not in text
    audit = await models.AuditEvent.filter(action="payment_provider.set").order_by("id")
    assert [a.details["changed"] for a in audit] == [
        ["api_key", "merchant_id", "note", "private_key"],
        ["merchant_id"],
    ]
    trail = json.dumps(
        [(a.subject, a.details) for a in await models.AuditEvent.all()], ensure_ascii=False
    )
    assert API_KEY not in trail and "very-secret-key-material" not in trail


async def test_a_required_secret_cannot_be_cleared_while_the_provider_is_on(gql):
    await build_world()
    admin = await admin_token(Role.PROVINCE_ADMIN, province="44")
    assert (await set_provider(gql, admin, values=full_settings()))["userErrors"] == []
    province = await models.Province.get(code="44")

    refused = await set_provider(gql, admin, values=[{"name": "api_key", "value": ""}])
    assert codes(refused) == ["PROVIDER_SETTING_REQUIRED"]
    assert refused["userErrors"][0]["field"] == ["values"]
    assert refused["userErrors"][0]["message"].endswith("api_key")
    merchant = await provider_settings.merchant_config(province.id, "testpay")
    assert merchant is not None and merchant["api_key"] == API_KEY

    off = await set_provider(gql, admin, enabled=False, values=[{"name": "api_key", "value": ""}])
    assert off["userErrors"] == []
    assert off["providerSetting"]["secretsSet"] == ["private_key"]
    assert await provider_settings.merchant_config(province.id, "testpay") is None
    assert await provider_settings.enabled_providers(province.id) == []
    upkeep = await provider_settings.merchant_config(province.id, "testpay", include_disabled=True)
    assert upkeep is not None and upkeep["private_key"] == PRIVATE_KEY  # for payments made


# --- validation -----------------------------------------------------------------------------


async def test_bad_settings_are_coded_and_nothing_is_written(gql):
    await build_world()
    admin = await admin_token(Role.PROVINCE_ADMIN, province="44")
    before = await everything_stored()

    bad = await set_provider(
        gql,
        admin,
        values=[
            {"name": "merchant_id", "value": "2088001"},
            {"name": "merchant_id", "value": "2088002"},
            {"name": "app_secret", "value": "x"},
            {"name": "api_key", "value": "two\nlines"},
            {"name": "note", "value": "长" * 2000},
        ],
    )
    assert [(e["code"], e["field"]) for e in bad["userErrors"]] == [
        ("DUPLICATE_SETTING_FIELD", ["values", "1", "name"]),
        ("UNKNOWN_SETTING_FIELD", ["values", "2", "name"]),
        ("INVALID_FORMAT", ["values", "3", "value"]),
        ("TOO_LONG", ["values", "4", "value"]),
    ]
    assert bad["providerSetting"] is None

    missing = await set_provider(gql, admin, values=[{"name": "merchant_id", "value": "1"}])
    assert codes(missing) == ["PROVIDER_SETTING_REQUIRED"]
    assert missing["userErrors"][0]["message"].endswith("private_key, api_key")

    english = await gql.data(
        SET_PROVIDER,
        {"input": {"provinceCode": "44", "provider": "nopay", "enabled": False}},
        token=admin,
        headers={"Accept-Language": "en"},
    )
    assert english["setPaymentProvider"]["userErrors"] == [
        {
            "field": ["provider"],
            "code": "UNKNOWN_PAYMENT_PROVIDER",
            "message": "No payment provider of this name is installed.",
        }
    ]
    assert codes(await set_provider(gql, admin, provinceCode="99")) == ["UNKNOWN_PROVINCE"]
    assert await everything_stored() == before


# --- scope ----------------------------------------------------------------------------------


async def test_admins_of_another_province_are_refused(gql):
    await build_world()
    await models.Province.create(code="11", name="北京市")
    beijing = await admin_token(Role.PROVINCE_ADMIN, province="11")
    before = await everything_stored()

    assert codes(await set_provider(gql, beijing, values=full_settings())) == ["OUT_OF_SCOPE"]
    listed = await gql.execute(PROVIDER_SETTINGS, {"p": "44"}, token=beijing)
    assert listed["data"] is None
    assert [e["extensions"]["code"] for e in listed["errors"]] == ["OUT_OF_SCOPE"]
    assert await everything_stored() == before

    national = await admin_token(Role.NATIONAL_ADMIN)
    assert (await set_provider(gql, national, values=full_settings()))["userErrors"] == []
    own = await gql.data(PROVIDER_SETTINGS, {"p": "11"}, token=beijing)
    assert [s["enabled"] for s in own["providerSettings"]] == [False, False]


@pytest.mark.parametrize("who", ["anonymous", "candidate", "school admin"])
async def test_people_without_a_province_role_are_refused_at_the_top_level(gql, who):
    world = await build_world()
    token = None
    if who == "candidate":
        token = (await qualified_candidate(world)).token
    elif who == "school admin":
        token = await admin_token(Role.SCHOOL_ADMIN, school="10558")
    value = {"provinceCode": "44", "provider": "testpay", "enabled": False}
    for query, variables in (
        (SET_PROVIDER, {"input": value}),
        (PROVIDER_SETTINGS, {"p": "44"}),
    ):
        result = await gql.execute(query, variables, token=token)
        assert result["data"] is None, query
        assert result["errors"][0]["extensions"]["code"] in {"UNAUTHENTICATED", "FORBIDDEN"}
    assert await models.ProviderSetting.all().count() == 0


# --- what candidates see --------------------------------------------------------------------


async def test_candidates_see_exactly_the_providers_on_in_their_province(gql):
    guangdong = await build_world()
    beijing = await province_world("11", "北京市", "10001")
    national = await admin_token(Role.NATIONAL_ADMIN)
    in_guangdong = await qualified_candidate(guangdong)
    in_beijing = await qualified_candidate(beijing, name="王芳")
    unconfirmed = await qualified_candidate(guangdong, confirmed=False, name="张伟")

    async def offered(token: str) -> list[dict[str, str]]:
        return (await gql.data(PAYMENT_PROVIDERS, token=token))["paymentProviders"]

    assert await offered(in_guangdong.token) == []

    await configure(gql, national, values=full_settings())  # testpay on in 44
    await configure(  # otherpay set up in 44 but left off
        gql,
        national,
        provider="otherpay",
        enabled=False,
        values=[{"name": "merchant_id", "value": "1"}],
    )
    await configure(  # otherpay on in 11
        gql,
        national,
        provinceCode="11",
        provider="otherpay",
        values=[{"name": "merchant_id", "value": "2"}],
    )
    assert await offered(in_guangdong.token) == [{"name": "testpay", "displayName": "测试支付"}]
    assert await offered(in_beijing.token) == [{"name": "otherpay", "displayName": "另一支付"}]
    assert await offered(unconfirmed.token) == []  # no confirmed qualification: no province
    assert await provider_settings.enabled_providers(guangdong.province.id) == ["testpay"]

    # A provider whose plugin is gone is off, whatever the province set.
    with manager.use_registry(manager.ProviderRegistry([OTHERPAY])):
        assert await offered(in_guangdong.token) == []
        assert await provider_settings.merchant_config(guangdong.province.id, "testpay") is None

    await configure(gql, national, enabled=False)
    assert await offered(in_guangdong.token) == []
    anonymous = await gql.execute(PAYMENT_PROVIDERS)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
