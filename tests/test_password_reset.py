"""A5: forgotten password. A one-time code goes to the registered email (real SMTP) or mobile
(SMS webhook); it expires, allows five tries, works once; the reset ends every session."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from cetgql import models
from cetgql.services import clock, rate_limits
from cetgql.settings import Settings, configure
from tests.accounts_support import (
    CANDIDATE,
    NEW_PASSWORD,
    PASSWORD,
    REQUEST_CODE,
    RESET_PASSWORD,
    VIEWER,
    candidate,
    codes,
    national_admin_token,
    outbox_code,
    sign_in,
    signed_up_and_in,
)
from tests.smtp import SmtpSink, WebhookSink

EMAIL = CANDIDATE["email"]
PHONE = CANDIDATE["phone"]


@pytest.fixture
def smtp(settings: Settings) -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    configure(settings.with_overrides(smtp_host="127.0.0.1", smtp_port=sink.port))
    try:
        yield sink
    finally:
        configure(settings)
        sink.stop()


@pytest.fixture
def webhook(settings: Settings) -> Iterator[WebhookSink]:
    sink = WebhookSink().start()
    configure(settings.with_overrides(sms_webhook_url=sink.url))
    try:
        yield sink
    finally:
        configure(settings)
        sink.stop()


async def request_reset(gql: Any, login: str, channel: str = "EMAIL", **kw: Any) -> Any:
    data = await gql.data(
        REQUEST_CODE,
        {"input": {"purpose": "RESET_PASSWORD", "channel": channel, "login": login}},
        **kw,
    )
    return data["requestVerificationCode"]


async def reset(gql: Any, code: str, login: str = EMAIL, channel: str = "EMAIL", **kw: Any) -> Any:
    data = await gql.data(
        RESET_PASSWORD,
        {
            "input": {
                "login": login,
                "channel": channel,
                "code": code,
                "newPassword": kw.pop("new_password", NEW_PASSWORD),
            }
        },
        **kw,
    )
    return data["resetPassword"]


async def test_reset_by_email_through_a_real_smtp_server(gql, smtp):
    token = await signed_up_and_in(gql)
    second = (await sign_in(gql, PHONE))["token"]
    answer = await request_reset(gql, CANDIDATE["idNumber"])
    assert answer == {"expiresInSeconds": 600, "resendAfterSeconds": 60, "userErrors": []}

    [mail] = smtp.to(EMAIL)
    assert "验证码" in mail.message["Subject"]
    assert "10分钟内有效" in mail.text and "valid for 10 minutes" in mail.text
    code = smtp.code_for(EMAIL)
    stored = await models.VerificationCode.get(destination=EMAIL)
    assert code not in stored.code_hash and len(stored.code_hash) == 64

    wrong = "000000" if code != "000000" else "111111"
    assert codes((await reset(gql, wrong))["userErrors"]) == ["INVALID_CODE"]
    weak = await reset(gql, code, new_password="short")
    assert [(e["field"], e["code"]) for e in weak["userErrors"]] == [
        (["newPassword"], "WEAK_PASSWORD")
    ]
    done = await reset(gql, code)
    assert done == {"ok": True, "userErrors": []}

    # Every open session ended; the old password is gone, the new one works.
    assert (await gql.data(VIEWER, token=token))["viewer"] is None
    assert (await gql.data(VIEWER, token=second))["viewer"] is None
    assert codes((await sign_in(gql, EMAIL, PASSWORD))["userErrors"]) == ["INVALID_CREDENTIALS"]
    assert (await sign_in(gql, EMAIL, NEW_PASSWORD))["token"]
    # A code works once.
    again = await reset(gql, code, new_password="Another@pass9")
    assert codes(again["userErrors"]) == ["INVALID_CODE"]
    assert await models.AuditEvent.filter(action="account.password_reset").count() == 1


async def test_reset_by_sms_through_the_webhook(gql, webhook):
    await signed_up_and_in(gql)
    assert (await request_reset(gql, EMAIL, channel="SMS"))["userErrors"] == []
    [sms] = webhook.received
    assert sms["to"] == PHONE
    assert sms["text"].startswith("【CET报名】您的验证码是 ")
    done = await reset(gql, webhook.code_for(PHONE), login=PHONE, channel="SMS")
    assert done["ok"] is True
    assert (await sign_in(gql, PHONE, NEW_PASSWORD))["token"]
    message = await models.OutboxMessage.get(destination=PHONE)
    assert message.delivered is True and message.error is None


async def test_a_failed_delivery_keeps_the_code_in_the_outbox(gql, webhook):
    webhook.status = 500
    await signed_up_and_in(gql)
    answer = await request_reset(gql, PHONE, channel="SMS")
    assert answer["userErrors"] == []
    message = await models.OutboxMessage.get(destination=PHONE)
    assert message.delivered is False
    assert "500" in (message.error or "")
    # An admin can read the message, code included, and the code still works.
    admin = await national_admin_token(gql)
    data = await gql.data(
        "query($d: String) { outboxMessages(first: 5, destination: $d) {"
        " edges { node { channel destination body delivered error } } } }",
        {"d": PHONE},
        token=admin,
    )
    [edge] = data["outboxMessages"]["edges"]
    assert edge["node"]["channel"] == "SMS" and edge["node"]["delivered"] is False
    code = await outbox_code(PHONE)
    assert code in edge["node"]["body"]
    assert (await reset(gql, code, login=PHONE, channel="SMS"))["ok"] is True


async def test_unknown_login_gets_the_same_answer_and_nothing_is_sent(gql, smtp):
    await signed_up_and_in(gql)
    known = await request_reset(gql, EMAIL)
    unknown = await request_reset(gql, "nobody@example.cn")
    no_email = await request_reset(gql, "11010519900307123X")
    assert known == unknown == no_email
    assert [m.recipients for m in smtp.mails] == [[EMAIL]]
    assert await models.OutboxMessage.all().count() == 1
    assert codes((await reset(gql, "123456", login="nobody@example.cn"))["userErrors"]) == [
        "INVALID_CODE"
    ]


async def test_code_expires_after_ten_minutes(gql):
    await signed_up_and_in(gql)
    await request_reset(gql, EMAIL)
    code = await outbox_code(EMAIL)
    clock.advance(timedelta(minutes=11))
    expired = await reset(gql, code)
    assert [(e["field"], e["code"]) for e in expired["userErrors"]] == [(["code"], "CODE_EXPIRED")]
    assert (await sign_in(gql, EMAIL, PASSWORD))["token"]


async def test_five_tries_then_the_code_is_dead(gql):
    await signed_up_and_in(gql)
    await request_reset(gql, EMAIL)
    code = await outbox_code(EMAIL)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(4):
        assert codes((await reset(gql, wrong))["userErrors"]) == ["INVALID_CODE"]
    assert codes((await reset(gql, wrong))["userErrors"]) == ["CODE_ATTEMPTS_EXCEEDED"]
    assert codes((await reset(gql, code))["userErrors"]) == ["CODE_ATTEMPTS_EXCEEDED"]
    # A new code starts afresh, and only the newest code counts.
    clock.advance(timedelta(seconds=61))
    await request_reset(gql, EMAIL)
    fresh = await outbox_code(EMAIL)
    assert (await reset(gql, fresh))["ok"] is True


async def test_requests_are_rate_limited_per_destination(gql):
    await signed_up_and_in(gql)
    assert (await request_reset(gql, EMAIL))["userErrors"] == []
    first = await outbox_code(EMAIL)
    [error] = (await request_reset(gql, CANDIDATE["idNumber"]))["userErrors"]
    assert error["code"] == "RATE_LIMITED" and 0 < error["retryAfter"] <= 60
    for _ in range(rate_limits.CODE_PER_DESTINATION.hits - 1):
        clock.advance(timedelta(seconds=61))
        assert (await request_reset(gql, EMAIL))["userErrors"] == []
    clock.advance(timedelta(seconds=61))
    [error] = (await request_reset(gql, EMAIL))["userErrors"]
    assert error["code"] == "RATE_LIMITED" and error["retryAfter"] > 60
    # The first code was superseded by the later ones.
    latest = await outbox_code(EMAIL)
    if first != latest:
        assert codes((await reset(gql, first))["userErrors"]) == ["INVALID_CODE"]
    assert (await reset(gql, latest))["ok"] is True


async def test_the_reset_unlocks_a_locked_account(gql):
    await signed_up_and_in(gql)
    account = await models.Account.get(email=EMAIL)
    account.failed_sign_ins = 10
    account.locked_until = clock.now() + timedelta(minutes=15)
    await account.save()
    assert codes((await sign_in(gql, EMAIL, PASSWORD))["userErrors"]) == ["ACCOUNT_LOCKED"]
    await request_reset(gql, EMAIL)
    assert (await reset(gql, await outbox_code(EMAIL)))["ok"] is True
    assert (await sign_in(gql, EMAIL, NEW_PASSWORD))["token"]


@pytest.fixture
def demo_mode(settings: Settings, smtp: SmtpSink) -> Iterator[SmtpSink]:
    configure(settings.with_overrides(demo=True, smtp_host="127.0.0.1", smtp_port=smtp.port))
    yield smtp
    configure(settings)


async def test_demo_mode_only_records_and_only_admins_read_the_outbox(gql, demo_mode):
    candidate_token = await signed_up_and_in(gql)
    other = candidate(1)
    await signed_up_and_in(gql, other)
    await request_reset(gql, EMAIL)
    await request_reset(gql, other["email"])
    assert demo_mode.mails == []  # nothing leaves the machine in demo mode

    query = (
        "query($d: String, $after: String) { outboxMessages(first: 1, destination: $d,"
        " after: $after) { edges { node { id destination body delivered } }"
        " pageInfo { hasNextPage endCursor } } }"
    )
    refused = await gql.execute(query, token=candidate_token)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert refused["data"] is None
    anonymous = await gql.execute(query)
    assert anonymous["errors"]

    admin = await national_admin_token(gql)
    page = (await gql.data(query, token=admin))["outboxMessages"]
    assert page["edges"][0]["node"]["destination"] == other["email"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await gql.data(query, {"after": page["pageInfo"]["endCursor"]}, token=admin)
    [edge] = rest["outboxMessages"]["edges"]
    assert edge["node"]["destination"] == EMAIL and edge["node"]["delivered"] is False
    one = await gql.data(query, {"d": EMAIL}, token=admin)
    assert [e["node"]["destination"] for e in one["outboxMessages"]["edges"]] == [EMAIL]
    # node(id:) on a message is as private as the list.
    node_query = "query($id: ID!) { node(id: $id) { ... on OutboxMessage { body } } }"
    message_id = edge["node"]["id"]
    assert (await gql.data(node_query, {"id": message_id}, token=candidate_token))["node"] is None
    assert (await gql.data(node_query, {"id": message_id}, token=admin))["node"]["body"]
