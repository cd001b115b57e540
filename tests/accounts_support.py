"""Operations and helpers shared by the account tests: the mutations as a partner front end
sends them, a valid candidate, and reading the outbox where codes land without a transport."""

from __future__ import annotations

import re
from typing import Any

from cetgql import models
from cetgql.models import Role
from cetgql.services import accounts, identity

PASSWORD = "Cet@2026demo"
NEW_PASSWORD = "Cet@2026new!"

CANDIDATE: dict[str, str] = {
    "name": "张三",
    "idType": "RESIDENT_ID",
    "idNumber": "11010519491231002X",
    "phone": "13800138000",
    "email": "zhangsan@example.cn",
    "password": PASSWORD,
}

USER_ERRORS = "userErrors { field code message retryAfter }"

SIGN_UP = f"""
mutation($input: SignUpInput!) {{
  signUp(input: $input) {{
    account {{ id name idType idNumberMasked phoneMasked emailMasked }}
    {USER_ERRORS}
  }}
}}"""

SIGN_IN = f"""
mutation($input: SignInInput!) {{
  signIn(input: $input) {{
    token
    account {{ id name idNumber mustChangePassword }}
    {USER_ERRORS}
  }}
}}"""

VIEWER = "{ viewer { id name idType idNumber phoneMasked emailMasked mustChangePassword } }"

REQUEST_CODE = f"""
mutation($input: RequestVerificationCodeInput!) {{
  requestVerificationCode(input: $input) {{ expiresInSeconds resendAfterSeconds {USER_ERRORS} }}
}}"""

RESET_PASSWORD = f"""
mutation($input: ResetPasswordInput!) {{
  resetPassword(input: $input) {{ ok {USER_ERRORS} }}
}}"""

CHANGE_PASSWORD = f"""
mutation($input: ChangePasswordInput!) {{
  changePassword(input: $input) {{ account {{ id mustChangePassword }} {USER_ERRORS} }}
}}"""

CHANGE_CONTACT = f"""
mutation($input: ChangeContactInput!) {{
  changeContact(input: $input) {{ account {{ id phoneMasked emailMasked }} {USER_ERRORS} }}
}}"""

SIGN_OUT = f"mutation {{ signOut {{ signedOut {USER_ERRORS} }} }}"

_CODE = re.compile(r"\b(\d{6})\b")


def resident_id(serial: int, born: str = "19990101") -> str:
    """A valid resident ID number (Beijing Dongcheng) for the given serial."""
    first17 = f"110101{born}{serial % 1000:03d}"
    return first17 + identity.resident_id_check_char(first17)


def candidate(serial: int, **changes: str) -> dict[str, str]:
    """A distinct valid candidate: own ID number, mobile and email."""
    values = {
        **CANDIDATE,
        "name": "考生" + "甲乙丙丁戊己庚辛壬癸"[serial % 10],
        "idNumber": resident_id(serial),
        "phone": f"139{serial:08d}",
        "email": f"candidate{serial}@example.cn",
    }
    values.update(changes)
    return values


def codes(errors: list[dict[str, Any]]) -> list[str]:
    return [e["code"] for e in errors]


async def sign_up(gql: Any, values: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    data = await gql.data(SIGN_UP, {"input": values or CANDIDATE}, **kw)
    return data["signUp"]


async def sign_in(gql: Any, login: str, password: str = PASSWORD, **kw: Any) -> dict[str, Any]:
    data = await gql.data(SIGN_IN, {"input": {"login": login, "password": password}}, **kw)
    return data["signIn"]


async def signed_up_and_in(gql: Any, values: dict[str, str] | None = None) -> str:
    """Sign up and sign in; the token."""
    values = values or CANDIDATE
    payload = await sign_up(gql, values)
    assert payload["userErrors"] == [], payload
    signed = await sign_in(gql, values["idNumber"], values["password"])
    assert signed["token"], signed
    return str(signed["token"])


async def national_admin_token(gql: Any, email: str = "admin@neea.example.cn") -> str:
    await accounts.create_admin(
        name="考试中心管理员", email=email, password="Admin@2026x", role=Role.NATIONAL_ADMIN
    )
    signed = await sign_in(gql, email, "Admin@2026x")
    assert signed["token"], signed
    return str(signed["token"])


async def outbox_code(destination: str) -> str:
    """The code in the newest outbox message to this destination (no transport configured)."""
    message = await models.OutboxMessage.filter(destination=destination).order_by("-id").first()
    assert message is not None, f"nothing sent to {destination}"
    found = _CODE.search(message.body)
    assert found, message.body
    return found.group(1)
