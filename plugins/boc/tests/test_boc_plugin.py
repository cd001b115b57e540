"""The distribution as cetgql sees it: entry point, contract, settings and sandbox merchant."""

from __future__ import annotations

from cetgql_boc import BocProvider
from cetgql_boc.sandbox import BocSandbox

from cetgql.payments import PaymentProvider
from cetgql.payments.manager import load


def test_cetgql_finds_the_plugin_by_its_entry_point() -> None:
    registry = load()
    provider = registry.get("boc")
    assert isinstance(provider, BocProvider)
    assert isinstance(provider, PaymentProvider)
    assert provider.display_name == "中国银行"
    [loaded] = [item for item in registry.loaded if item.provider == "boc"]
    assert loaded.distribution == "cetgql-boc"


def test_settings_fields() -> None:
    fields = {field.name: field for field in BocProvider.settings_fields}
    assert [name for name, field in fields.items() if field.required] == [
        "merchantNo",
        "merchantCert",
        "merchantKey",
        "bankCert",
        "gatewayUrl",
    ]
    assert [name for name, field in fields.items() if field.secret] == ["merchantKey"]
    assert {name for name, field in fields.items() if field.multiline} == {
        "merchantCert",
        "merchantKey",
        "bankCert",
    }


def test_the_sandbox_merchant_fills_every_setting() -> None:
    settings = BocProvider().sandbox_merchant("http://localhost:8000/sandbox/boc/")
    assert set(settings) == {field.name for field in BocProvider.settings_fields}
    assert settings["gatewayUrl"] == "http://localhost:8000/sandbox/boc"
    assert "PRIVATE KEY" in settings["merchantKey"]
    assert "PRIVATE KEY" not in settings["bankCert"]


def test_the_sandbox_is_an_app() -> None:
    app = BocProvider().sandbox("http://localhost:8000/payments/boc/notify")
    assert isinstance(app, BocSandbox)
    assert app.notify_url == "http://localhost:8000/payments/boc/notify"
