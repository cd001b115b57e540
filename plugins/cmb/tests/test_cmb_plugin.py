"""The distribution as cetgql sees it: found through the entry point, implementing the
contract, with settings an admin can fill in and that work against the sandbox."""

from __future__ import annotations

from cetgql_cmb.provider import CmbProvider, Merchant

from cetgql.payments import MerchantConfig, PaymentProvider
from cetgql.payments.manager import load


def test_cetgql_loads_the_plugin_through_its_entry_point() -> None:
    registry = load()
    provider = registry.get("cmb")
    assert isinstance(provider, CmbProvider)
    assert isinstance(provider, PaymentProvider)
    assert (provider.name, provider.display_name) == ("cmb", "招商银行")
    [loaded] = [item for item in registry.loaded if item.provider == "cmb"]
    assert (loaded.distribution, loaded.version) == ("cetgql-cmb", "0.1.0")


def test_settings_fields() -> None:
    fields = {f.name: f for f in CmbProvider.settings_fields}
    assert list(fields) == [
        "branchNo",
        "merchantNo",
        "merchantKey",
        "bankPublicKey",
        "bankSignAlgorithm",
        "netpayUrl",
        "merchservUrl",
    ]
    assert [name for name, f in fields.items() if f.secret] == ["merchantKey"]
    assert [name for name, f in fields.items() if f.multiline] == ["bankPublicKey"]
    assert {name for name, f in fields.items() if f.required} == {
        "branchNo",
        "merchantNo",
        "merchantKey",
        "bankPublicKey",
    }
    assert all(f.label for f in fields.values())


def test_sandbox_merchant_fills_exactly_the_settings_fields() -> None:
    provider = CmbProvider()
    values = provider.sandbox_merchant("http://localhost:8000/sandbox/cmb/")
    assert set(values) == {f.name for f in provider.settings_fields}
    merchant = Merchant.from_config(MerchantConfig("cmb", values))
    assert merchant.netpay_url == merchant.merchserv_url == "http://localhost:8000/sandbox/cmb"
    assert merchant.algorithm.value == "SHA256withRSA"


def test_blank_gateway_urls_mean_production() -> None:
    values = {
        **CmbProvider().sandbox_merchant("http://x"),
        "netpayUrl": "",
        "merchservUrl": " ",
        "bankSignAlgorithm": "",
    }
    merchant = Merchant.from_config(MerchantConfig("cmb", values))
    assert merchant.netpay_url == "https://netpay.cmbchina.com"
    assert merchant.merchserv_url == "https://merchserv.netpay.cmbchina.com"
    assert merchant.algorithm.value == "SHA1withRSA"
