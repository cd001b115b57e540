"""A3, A6, A7 for signed-in candidates: changing the password (also the forced first change),
changing mobile or email with a code sent to the new value, and the phone appeal that an admin
approves to move a number between accounts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cetgql import models
from cetgql.services import clock, rate_limits
from tests.accounts_support import (
    CANDIDATE,
    CHANGE_CONTACT,
    CHANGE_PASSWORD,
    NEW_PASSWORD,
    PASSWORD,
    REQUEST_CODE,
    USER_ERRORS,
    VIEWER,
    candidate,
    codes,
    national_admin_token,
    outbox_code,
    sign_in,
    signed_up_and_in,
)

SUBMIT_APPEAL = f"""
mutation($input: SubmitPhoneAppealInput!) {{
  submitPhoneAppeal(input: $input) {{ appealId status {USER_ERRORS} }}
}}"""

REVIEW_APPEAL = f"""
mutation($input: ReviewPhoneAppealInput!) {{
  reviewPhoneAppeal(input: $input) {{
    appeal {{ id status reviewNote newPhone account {{ id name }} }}
    {USER_ERRORS}
  }}
}}"""

APPEALS = """
query($status: PhoneAppealStatus) {
  phoneAppeals(first: 10, status: $status) {
    edges { node { id name idType idNumber newPhone email reason status } }
  }
}"""


async def change_password(gql: Any, token: str, current: str, new: str) -> Any:
    data = await gql.data(
        CHANGE_PASSWORD,
        {"input": {"currentPassword": current, "newPassword": new}},
        token=token,
    )
    return data["changePassword"]


async def request_code(gql: Any, purpose: str, destination: str, **kw: Any) -> Any:
    data = await gql.data(
        REQUEST_CODE, {"input": {"purpose": purpose, "destination": destination}}, **kw
    )
    return data["requestVerificationCode"]


async def change_contact(gql: Any, token: str, kind: str, value: str, code: str) -> Any:
    data = await gql.data(
        CHANGE_CONTACT, {"input": {"kind": kind, "value": value, "code": code}}, token=token
    )
    return data["changeContact"]


# ---------------------------------------------------------------------------- password change


async def test_change_password_keeps_this_session_and_ends_the_others(gql):
    token = await signed_up_and_in(gql)
    other = (await sign_in(gql, CANDIDATE["phone"]))["token"]

    wrong = await change_password(gql, token, "Wrong@pass1", NEW_PASSWORD)
    assert [(e["field"], e["code"]) for e in wrong["userErrors"]] == [
        (["currentPassword"], "WRONG_PASSWORD")
    ]
    same = await change_password(gql, token, PASSWORD, PASSWORD)
    assert [(e["field"], e["code"]) for e in same["userErrors"]] == [
        (["newPassword"], "SAME_PASSWORD")
    ]
    weak = await change_password(gql, token, PASSWORD, "abc")
    assert codes(weak["userErrors"]) == ["WEAK_PASSWORD"]

    done = await change_password(gql, token, PASSWORD, NEW_PASSWORD)
    assert done["userErrors"] == []
    assert (await gql.data(VIEWER, token=token))["viewer"] is not None
    assert (await gql.data(VIEWER, token=other))["viewer"] is None
    assert codes((await sign_in(gql, CANDIDATE["phone"]))["userErrors"]) == ["INVALID_CREDENTIALS"]
    assert (await sign_in(gql, CANDIDATE["phone"], NEW_PASSWORD))["token"]


async def test_an_initial_password_must_be_changed_before_anything_else(gql):
    await signed_up_and_in(gql)
    await models.Account.filter(email=CANDIDATE["email"]).update(must_change_password=True)
    token = (await sign_in(gql, CANDIDATE["idNumber"]))["token"]
    assert (await gql.data(VIEWER, token=token))["viewer"]["mustChangePassword"] is True

    blocked = await gql.execute(
        CHANGE_CONTACT,
        {"input": {"kind": "EMAIL", "value": "new@example.cn", "code": "123456"}},
        token=token,
    )
    assert blocked["errors"][0]["extensions"]["code"] == "PASSWORD_CHANGE_REQUIRED"
    blocked_code = await gql.execute(
        REQUEST_CODE,
        {"input": {"purpose": "CHANGE_EMAIL", "destination": "new@example.cn"}},
        token=token,
    )
    assert blocked_code["errors"][0]["extensions"]["code"] == "PASSWORD_CHANGE_REQUIRED"

    done = await change_password(gql, token, PASSWORD, NEW_PASSWORD)
    assert done == {"account": {"id": done["account"]["id"], "mustChangePassword": False},
                    "userErrors": []}  # fmt: skip
    allowed = await request_code(gql, "CHANGE_EMAIL", "new@example.cn", token=token)
    assert allowed["userErrors"] == []


async def test_wrong_current_passwords_are_throttled_like_sign_ins(gql):
    token = await signed_up_and_in(gql)
    for _ in range(3):
        result = await change_password(gql, token, "Wrong@pass1", NEW_PASSWORD)
        assert codes(result["userErrors"]) == ["WRONG_PASSWORD"]
    throttled = await change_password(gql, token, PASSWORD, NEW_PASSWORD)
    assert codes(throttled["userErrors"]) == ["SIGN_IN_THROTTLED"]
    clock.advance(timedelta(seconds=2))
    assert (await change_password(gql, token, PASSWORD, NEW_PASSWORD))["userErrors"] == []


async def test_sign_out_and_change_password_need_a_session(gql):
    result = await gql.execute(
        CHANGE_PASSWORD, {"input": {"currentPassword": "x", "newPassword": "y"}}
    )
    assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert result["data"] is None


# ----------------------------------------------------------------------------- contact change


async def test_change_mobile_with_a_code_sent_to_the_new_number(gql):
    token = await signed_up_and_in(gql)
    new_phone = "13912345678"
    answer = await request_code(gql, "CHANGE_PHONE", new_phone, token=token)
    assert answer["userErrors"] == [] and answer["expiresInSeconds"] == 600
    message = await models.OutboxMessage.get(destination=new_phone)
    assert message.channel == "SMS"

    code = await outbox_code(new_phone)
    bad = await change_contact(gql, token, "PHONE", "1391234", code)
    assert [(e["field"], e["code"]) for e in bad["userErrors"]] == [(["value"], "INVALID_PHONE")]
    wrong = await change_contact(gql, token, "PHONE", new_phone, "00000" + str(int(code[-1]) ^ 1))
    assert codes(wrong["userErrors"]) == ["INVALID_CODE"]
    done = await change_contact(gql, token, "PHONE", new_phone, code)
    assert done["userErrors"] == []
    assert done["account"]["phoneMasked"] == "139****5678"
    assert (await sign_in(gql, new_phone))["token"]
    assert codes((await sign_in(gql, CANDIDATE["phone"]))["userErrors"]) == ["INVALID_CREDENTIALS"]


async def test_change_email_refuses_an_address_of_another_account(gql):
    token = await signed_up_and_in(gql)
    other = candidate(1)
    await signed_up_and_in(gql, other)
    taken = await request_code(gql, "CHANGE_EMAIL", other["email"].upper(), token=token)
    assert [(e["field"], e["code"]) for e in taken["userErrors"]] == [
        (["destination"], "EMAIL_TAKEN")
    ]
    assert await models.OutboxMessage.filter(destination=other["email"]).count() == 0

    answer = await request_code(gql, "CHANGE_EMAIL", "Zhang.San@Mail.Example.cn", token=token)
    assert answer["userErrors"] == []
    code = await outbox_code("zhang.san@mail.example.cn")
    done = await change_contact(gql, token, "EMAIL", "zhang.san@mail.example.cn", code)
    assert done["account"]["emailMasked"] == "z***@mail.example.cn"
    # A code proves one address for one account: it does not work for another value.
    reuse = await change_contact(gql, token, "EMAIL", "zhang.san@mail.example.cn", code)
    assert codes(reuse["userErrors"]) == ["INVALID_CODE"]


async def test_contact_codes_need_a_session_appeal_codes_do_not(gql):
    anonymous = await gql.execute(
        REQUEST_CODE, {"input": {"purpose": "CHANGE_PHONE", "destination": "13912345678"}}
    )
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    appeal = await request_code(gql, "PHONE_APPEAL", "13912345678")
    assert appeal["userErrors"] == []
    missing = await gql.data(REQUEST_CODE, {"input": {"purpose": "RESET_PASSWORD"}})
    assert {
        (e["field"][0], e["code"]) for e in missing["requestVerificationCode"]["userErrors"]
    } == {
        ("login", "REQUIRED"),
        ("channel", "REQUIRED"),
    }


# -------------------------------------------------------------------------------- phone appeal


async def submit_appeal(gql: Any, values: dict[str, str], phone: str, code: str, **kw: Any) -> Any:
    data = await gql.data(
        SUBMIT_APPEAL,
        {
            "input": {
                "name": values["name"],
                "idType": values["idType"],
                "idNumber": values["idNumber"],
                "newPhone": phone,
                "code": code,
                "email": values["email"],
                "reason": "原手机号已停用，新号码被他人账号占用。",
                **kw,
            }
        },
    )
    return data["submitPhoneAppeal"]


async def test_an_approved_appeal_moves_the_number(gql):
    claimant = candidate(1, name="阿依古丽·买买提")
    holder = candidate(2)
    claimant_token = await signed_up_and_in(gql, claimant)
    holder_token = await signed_up_and_in(gql, holder)
    number = holder["phone"]

    await request_code(gql, "PHONE_APPEAL", number)
    mismatch = await submit_appeal(
        gql, claimant | {"name": "阿依古丽·买买"}, number, await outbox_code(number)
    )
    assert mismatch["userErrors"] == [
        {"field": None, "code": "APPEAL_IDENTITY_MISMATCH",
         "message": "未找到与所填身份信息一致的账号。", "retryAfter": None}
    ]  # fmt: skip

    clock.advance(timedelta(seconds=61))
    await request_code(gql, "PHONE_APPEAL", number)
    # Another spelling of the middle dot is the same name.
    submitted = await submit_appeal(
        gql, claimant | {"name": "阿依古丽\u30fb买买提"}, number, await outbox_code(number)
    )
    assert submitted["userErrors"] == [] and submitted["status"] == "PENDING"

    admin = await national_admin_token(gql)
    listed = await gql.data(APPEALS, {"status": "PENDING"}, token=admin)
    [edge] = listed["phoneAppeals"]["edges"]
    assert edge["node"]["id"] == submitted["appealId"]
    assert edge["node"]["newPhone"] == number
    assert edge["node"]["idNumber"] == claimant["idNumber"]
    refused = await gql.execute(APPEALS, token=claimant_token)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    not_theirs = await gql.execute(
        REVIEW_APPEAL,
        {"input": {"appealId": submitted["appealId"], "approve": True}},
        token=claimant_token,
    )
    assert not_theirs["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    reviewed = await gql.data(
        REVIEW_APPEAL,
        {"input": {"appealId": submitted["appealId"], "approve": True, "note": "核实无误"}},
        token=admin,
    )
    appeal = reviewed["reviewPhoneAppeal"]["appeal"]
    assert appeal["status"] == "APPROVED" and appeal["reviewNote"] == "核实无误"
    assert appeal["account"]["name"] == "阿依古丽·买买提"

    # The number now signs the claimant in; the previous holder no longer has it.
    signed = await sign_in(gql, number)
    me = (await gql.data(VIEWER, token=claimant_token))["viewer"]
    assert signed["account"]["id"] == me["id"]
    assert me["phoneMasked"] == f"{number[:3]}****{number[-4:]}"
    assert (await gql.data(VIEWER, token=holder_token))["viewer"]["phoneMasked"] is None
    assert await models.AuditEvent.filter(action="account.phone_removed_by_appeal").count() == 1
    notice = await models.OutboxMessage.filter(destination=holder["email"]).first()
    assert notice is not None and "解除绑定" in notice.body

    twice = await gql.data(
        REVIEW_APPEAL,
        {"input": {"appealId": submitted["appealId"], "approve": False}},
        token=admin,
    )
    assert codes(twice["reviewPhoneAppeal"]["userErrors"]) == ["APPEAL_ALREADY_REVIEWED"]
    unknown = await gql.data(
        REVIEW_APPEAL, {"input": {"appealId": "bm9wZQ==", "approve": True}}, token=admin
    )
    assert [(e["field"], e["code"]) for e in unknown["reviewPhoneAppeal"]["userErrors"]] == [
        (["appealId"], "NOT_FOUND")
    ]


async def test_a_rejected_appeal_moves_nothing(gql):
    claimant = candidate(1)
    holder = candidate(2)
    await signed_up_and_in(gql, claimant)
    await signed_up_and_in(gql, holder)
    await request_code(gql, "PHONE_APPEAL", holder["phone"])
    submitted = await submit_appeal(
        gql, claimant, holder["phone"], await outbox_code(holder["phone"])
    )
    admin = await national_admin_token(gql)
    reviewed = await gql.data(
        REVIEW_APPEAL,
        {"input": {"appealId": submitted["appealId"], "approve": False}},
        token=admin,
    )
    assert reviewed["reviewPhoneAppeal"]["appeal"]["status"] == "REJECTED"
    signed = await sign_in(gql, holder["phone"], holder["password"])
    assert signed["account"]["name"] == holder["name"]


async def test_appeals_need_the_code_and_are_rate_limited(gql):
    claimant = candidate(1)
    await signed_up_and_in(gql, claimant)
    phone = "13712345678"
    no_code = await submit_appeal(gql, claimant, phone, "123456")
    assert [(e["field"], e["code"]) for e in no_code["userErrors"]] == [(["code"], "INVALID_CODE")]
    missing = await submit_appeal(gql, claimant, "", "", reason="")
    assert {(e["field"][0], e["code"]) for e in missing["userErrors"]} == {
        ("newPhone", "REQUIRED"),
        ("code", "REQUIRED"),
        ("reason", "REQUIRED"),
    }
    for _ in range(rate_limits.APPEAL_PER_ADDRESS.hits - 2):
        await submit_appeal(gql, claimant, phone, "123456")
    [limited] = (await submit_appeal(gql, claimant, phone, "123456"))["userErrors"]
    assert limited["code"] == "RATE_LIMITED" and limited["retryAfter"] > 0
    assert await models.PhoneAppeal.all().count() == 0
