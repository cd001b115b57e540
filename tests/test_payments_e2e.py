"""Payments end to end for every provider plugin, over sockets, through the real sandboxes
(P1–P6): real wire formats, real signatures, real notifications."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from strawberry.relay import GlobalID

from cetgql import models
from cetgql.payments.manager import registry
from cetgql.services import clock, payments, provider_settings
from tests.conftest import ServerProcess
from tests.payment_support import (
    PROVIDERS,
    Proxy,
    RecordedNotification,
    enable_sandbox,
    open_cashier,
    payment_server,
    press_pay,
    wait_for,
)
from tests.registration_setup import build_world, qualified_candidate
from tests.test_order_updated import acknowledged, bearer, next_order, subscribe

SELECT = """mutation($i: SelectSubjectsInput!) { selectSubjects(input: $i) {
  order { id } userErrors { code } } }"""
START = """mutation($i: StartPaymentInput!) { startPayment(input: $i) {
  payment { id outTradeNo status amount { yuan } redirect { method url fields { name value } } }
  order { status } userErrors { code field } } }"""
REFRESH = """mutation($id: ID!) { refreshPayment(input: {paymentId: $id}) {
  payment { status } order { status } userErrors { code } } }"""
ORDER = """query($id: ID!) { node(id: $id) { ... on Order { status paidAt
  payments { outTradeNo status refundReason } registrations { status } } } }"""


@pytest.fixture(scope="module")
def server(database: str, settings) -> Iterator[tuple[ServerProcess, Proxy]]:
    with payment_server(database, settings) as pair:
        yield pair


class Candidate:
    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http, self.token = http, token

    async def gql(self, query: str, variables: dict) -> dict:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    async def choose(self, code: str = "CET4") -> str:
        data = await self.gql(
            SELECT, {"i": {"sessionCode": "2026H1", "items": [{"subjectCode": code}]}}
        )
        assert data["selectSubjects"]["userErrors"] == []
        return data["selectSubjects"]["order"]["id"]

    async def start(self, order_id: str, provider: str) -> dict:
        return (await self.gql(START, {"i": {"orderId": order_id, "provider": provider}}))[
            "startPayment"
        ]

    async def order(self, order_id: str) -> dict:
        return (await self.gql(ORDER, {"id": order_id}))["node"]


async def _setup(server: tuple[ServerProcess, Proxy], providers: tuple[str, ...]):
    process, proxy = server
    proxy.drop_notifications = False
    proxy.notifications.clear()
    world = await build_world()
    for name in providers:
        await enable_sandbox(world.province, name, process.url)
    me = await qualified_candidate(world)
    http = httpx.AsyncClient(base_url=process.url, timeout=30)
    return world, me, Candidate(http, me.token), http


def _pk(global_id: str) -> int:
    return int(GlobalID.from_id(global_id).node_id)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_pay_through_the_sandbox(server, provider):
    _, _, me, http = await _setup(server, (provider,))
    async with http:
        order_id = await me.choose()
        started = await me.start(order_id, provider)
        assert started["userErrors"] == []
        payment = started["payment"]
        assert payment["status"] == "PENDING" and payment["amount"]["yuan"] == "30.00"
        again = await me.start(order_id, provider)
        assert again["payment"]["outTradeNo"] == payment["outTradeNo"]  # one trade, not two

        async with acknowledged(server[0].url, bearer(me.token)) as ws:
            await subscribe(ws, order_id)
            assert (await next_order(ws))["status"] == "PENDING_PAYMENT"
            cashier = await open_cashier(http, payment["redirect"])
            assert cashier.status_code == 200
            paid = await press_pay(http, cashier)
            while (await next_order(ws))["status"] != "PAID":
                pass  # the subscription fires on every change until the order is paid
        assert paid.is_redirect  # the cashier sends the browser back to our return page
        back = await http.get(paid.headers["location"], follow_redirects=True)
        assert 'data-status="PAID"' in back.text
        order = await me.order(order_id)
        assert order["payments"] == [
            {"outTradeNo": payment["outTradeNo"], "status": "SUCCEEDED", "refundReason": None}
        ]
        assert order["registrations"] == [{"status": "PAID"}]
        assert server[1].notifications, "the provider notified us"
        refused = await me.start(order_id, provider)
        assert [e["code"] for e in refused["userErrors"]] == ["ORDER_ALREADY_PAID"]


async def _status_is(me: Candidate, order_id: str, status: str) -> bool:
    return (await me.order(order_id))["status"] == status


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_lost_notification_is_found_by_refresh(server, provider):
    _, _, me, http = await _setup(server, (provider,))
    server[1].drop_notifications = True
    async with http:
        order_id = await me.choose()
        payment = (await me.start(order_id, provider))["payment"]
        await press_pay(http, await open_cashier(http, payment["redirect"]))
        assert (await me.order(order_id))["status"] == "PENDING_PAYMENT"
        refreshed = (await me.gql(REFRESH, {"id": payment["id"]}))["refreshPayment"]
        assert refreshed["userErrors"] == []
        assert refreshed["payment"]["status"] == "SUCCEEDED"
        assert refreshed["order"]["status"] == "PAID"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_lost_notification_is_found_by_reconciliation(server, provider):
    _, _, me, http = await _setup(server, (provider,))
    server[1].drop_notifications = True
    async with http:
        order_id = await me.choose()
        payment = (await me.start(order_id, provider))["payment"]
        await press_pay(http, await open_cashier(http, payment["redirect"]))
        assert (await me.order(order_id))["status"] == "PENDING_PAYMENT"
        assert await payments.reconcile(min_age=timedelta(0)) >= 1
        assert (await me.order(order_id))["status"] == "PAID"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_untrusted_notifications_change_nothing(server, provider):
    _, proxy = server
    _, _, me, http = await _setup(server, (provider,))
    plugin = registry().get(provider)
    assert plugin is not None
    accepted, refused = plugin.reply(True), plugin.reply(False)
    proxy.drop_notifications = True
    async with http:
        order_id = await me.choose()
        payment = (await me.start(order_id, provider))["payment"]
        await press_pay(http, await open_cashier(http, payment["redirect"]))
        trade = payment["outTradeNo"]
        await wait_for(lambda: _has_notification(proxy, provider, trade))
        genuine = next(n for n in proxy.notifications if _is_for(n, provider, trade))

        async def replay(body: bytes) -> httpx.Response:
            return await http.post(genuine.path, content=body, headers=genuine.headers)

        def same(response: httpx.Response, reply) -> bool:
            return response.status_code == reply.status_code and response.content == reply.body

        # a forged one: the amount changed after signing
        forged = genuine.body.replace(b"30.00", b"31.00", 1)
        assert forged != genuine.body
        assert same(await replay(forged), refused)
        # a genuine one for an amount we did not ask for
        row = await models.Payment.get(out_trade_no=payment["outTradeNo"])
        await models.Payment.filter(id=row.id).update(amount_fen=3100)
        assert same(await replay(genuine.body), refused)
        await models.Payment.filter(id=row.id).update(amount_fen=3000)
        # a genuine one for a trade we do not know
        await models.Payment.filter(id=row.id).update(out_trade_no="99" + row.out_trade_no[2:])
        assert same(await replay(genuine.body), refused)
        await models.Payment.filter(id=row.id).update(out_trade_no=row.out_trade_no)
        assert (await me.order(order_id))["status"] == "PENDING_PAYMENT"
        # the genuine one is applied once; its replay is acknowledged and changes nothing
        assert same(await replay(genuine.body), accepted)
        paid = await me.order(order_id)
        assert paid["status"] == "PAID"
        assert same(await replay(genuine.body), accepted)
        assert await me.order(order_id) == paid
        # This payment's trail. Refused notifications name no payment, and sandboxes of
        # earlier tests may still be retrying theirs, so only this payment's events count.
        outcomes = await models.PaymentEvent.filter(kind="NOTIFY", payment_id=row.id).values_list(
            "outcome", flat=True
        )
        assert sorted(outcomes) == ["APPLIED", "DUPLICATE", "REJECTED_AMOUNT"]


def _is_for(notification: RecordedNotification, provider: str, trade: str) -> bool:
    """Sandboxes of earlier tests may still be retrying: pick this test's notification."""
    return notification.path == f"/payments/{provider}/notify" and trade.encode() in (
        notification.body
    )


async def _has_notification(proxy: Proxy, provider: str, trade: str) -> bool:
    return any(_is_for(n, provider, trade) for n in proxy.notifications)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_switching_provider_closes_the_earlier_trade(server, provider):
    other = next(p for p in PROVIDERS if p != provider)
    _, _, me, http = await _setup(server, (provider, other))
    async with http:
        order_id = await me.choose()
        first = (await me.start(order_id, provider))["payment"]
        first_cashier = await open_cashier(http, first["redirect"])  # the trade exists there now
        second = await me.start(order_id, other)
        assert second["userErrors"] == []
        assert second["payment"]["outTradeNo"] != first["outTradeNo"]
        order = await me.order(order_id)
        statuses = {p["outTradeNo"]: p["status"] for p in order["payments"]}
        assert statuses[first["outTradeNo"]] == "CLOSED"
        late = await press_pay(http, first_cashier)  # the closed trade can no longer be paid
        assert late.status_code >= 400 or (await me.order(order_id))["status"] != "PAID"
        await press_pay(http, await open_cashier(http, second["payment"]["redirect"]))
        await wait_for(lambda: _status_is(me, order_id, "PAID"))


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_second_successful_payment_is_refunded(server, provider):
    process, _ = server
    world, account, me, http = await _setup(server, (provider,))
    async with http:
        order_id = await me.choose()
        first = (await me.start(order_id, provider))["payment"]
        await press_pay(http, await open_cashier(http, first["redirect"]))
        await wait_for(lambda: _status_is(me, order_id, "PAID"))
        # A trade the provider accepted although we had closed it (a bank delay): it exists
        # with its own trade number and is paid at the provider too.
        order = await models.Order.get(id=_pk(order_id))
        now = clock.now()
        extra = await models.Payment.create(
            order=order, provider=provider, out_trade_no=payments._trade_number(now),
            amount_fen=order.amount_fen, status="PENDING", created_at=now, updated_at=now,
        )  # fmt: skip
        plugin = registry().get(provider)
        assert plugin is not None
        from cetgql.payments import ChargeRequest

        charge = await plugin.charge(
            await provider_settings.merchant_config(world.province.id, provider),
            ChargeRequest(
                out_trade_no=extra.out_trade_no, amount_fen=extra.amount_fen, subject="CET",
                created_at=now, expires_at=now + timedelta(hours=2),
                notify_url=f"{server[1].url}/payments/{provider}/notify",
                return_url=f"{process.url}/healthz",
            ),
        )  # fmt: skip
        assert charge.redirect is not None
        redirect = {
            "method": charge.redirect.method,
            "url": charge.redirect.url,
            "fields": [{"name": n, "value": v} for n, v in charge.redirect.fields],
        }
        await press_pay(http, await open_cashier(http, redirect))
        await wait_for(lambda: _refunded(extra.id))
        view = await me.order(order_id)
        assert view["status"] == "PAID"
        reasons = {p["outTradeNo"]: (p["status"], p["refundReason"]) for p in view["payments"]}
        assert reasons[extra.out_trade_no] == ("REFUNDED", "DOUBLE_PAYMENT")
        assert reasons[first["outTradeNo"]] == ("SUCCEEDED", None)
        state = await plugin.query(
            await provider_settings.merchant_config(world.province.id, provider),
            extra.out_trade_no,
        )
        assert state.state.value == "REFUNDED"  # the money went back at the provider too
        del account


async def _refunded(payment_id: int) -> bool:
    return (await models.Payment.get(id=payment_id)).status == "REFUNDED"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_late_payment_is_applied_while_its_places_are_free(server, provider):
    _, _, me, http = await _setup(server, (provider,))
    server[1].drop_notifications = True
    async with http:
        order_id = await me.choose()
        payment = (await me.start(order_id, provider))["payment"]
        await press_pay(http, await open_cashier(http, payment["redirect"]))
        await _lapse(order_id)
        assert (await me.order(order_id))["status"] == "LAPSED"
        refreshed = (await me.gql(REFRESH, {"id": payment["id"]}))["refreshPayment"]
        assert refreshed["order"]["status"] == "PAID"
        assert (await me.order(order_id))["registrations"] == [{"status": "PAID"}]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_late_payment_whose_places_are_gone_is_refunded(server, provider):
    world, _, me, http = await _setup(server, (provider,))
    server[1].drop_notifications = True
    async with http:
        order_id = await me.choose()
        payment = (await me.start(order_id, provider))["payment"]
        await press_pay(http, await open_cashier(http, payment["redirect"]))
        await _lapse(order_id)
        again = await me.choose()  # the candidate chose the subject again in a new order
        refreshed = (await me.gql(REFRESH, {"id": payment["id"]}))["refreshPayment"]
        assert refreshed["payment"]["status"] == "REFUNDED"
        view = await me.order(order_id)
        assert view["status"] == "LAPSED"
        assert view["payments"][0]["refundReason"] == "LATE_PAYMENT"
        assert (await me.order(again))["status"] == "PENDING_PAYMENT"
        del world


async def _lapse(order_id: str) -> None:
    """The order's deadline passes (the server's clock is real, so move the deadline)."""
    past = clock.now() - timedelta(seconds=1)
    await models.Order.filter(id=_pk(order_id)).update(expires_at=past)
    await models.Registration.filter(order_id=_pk(order_id)).update(expires_at=past)


async def test_an_unreachable_provider_leaves_the_payment_pending(server):
    _, _, me, http = await _setup(server, ("alipay",))
    async with http:
        order_id = await me.choose()
        payment = (await me.start(order_id, "alipay"))["payment"]
        setting = await models.ProviderSetting.get(provider="alipay")
        values = {
            k: v.replace(server[0].url, "http://127.0.0.1:9") for k, v in setting.values.items()
        }
        await models.ProviderSetting.filter(id=setting.id).update(values=values)
        refreshed = (await me.gql(REFRESH, {"id": payment["id"]}))["refreshPayment"]
        assert [e["code"] for e in refreshed["userErrors"]] == ["PROVIDER_UNREACHABLE"]
        row = await models.Payment.get(out_trade_no=payment["outTradeNo"])
        assert row.status == "PENDING"
