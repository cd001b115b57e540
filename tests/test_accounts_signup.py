"""A1–A3 through signUp / signIn / viewer: identity checks, rare-character names, contacts,
password policy and storage, duplicates, English messages, sign-out and node visibility."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from cetgql import models
from tests.accounts_support import (
    CANDIDATE,
    PASSWORD,
    SIGN_OUT,
    VIEWER,
    candidate,
    codes,
    sign_in,
    sign_up,
    signed_up_and_in,
)


async def test_sign_up_then_sign_in_with_id_number_phone_or_email(gql):
    payload = await sign_up(gql)
    assert payload["userErrors"] == []
    account = payload["account"]
    assert account["name"] == "张三"
    assert account["idType"] == "RESIDENT_ID"
    assert account["idNumberMasked"] == "1101**********002X"
    assert account["phoneMasked"] == "138****8000"
    assert account["emailMasked"] == "z***@example.cn"

    for login in ("11010519491231002x", "13800138000", "ZhangSan@Example.CN"):
        signed = await sign_in(gql, login)
        assert signed["userErrors"] == [], login
        assert signed["account"]["id"] == account["id"]
        # The payload already acts as the new session: the owner sees the full ID number.
        assert signed["account"]["idNumber"] == "11010519491231002X"
        viewer = await gql.data(VIEWER, token=signed["token"])
        assert viewer["viewer"]["id"] == account["id"]


async def test_sign_up_does_not_sign_in_and_stores_an_argon2id_hash(gql):
    await sign_up(gql)
    assert (await gql.data(VIEWER))["viewer"] is None
    stored = await models.Account.get(id_number=CANDIDATE["idNumber"])
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash


async def test_a_hash_with_old_parameters_is_upgraded_at_sign_in(gql):
    await sign_up(gql)
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    await models.Account.filter(phone=CANDIDATE["phone"]).update(password_hash=old)
    assert (await sign_in(gql, CANDIDATE["phone"]))["token"]
    stored = await models.Account.get(phone=CANDIDATE["phone"])
    assert stored.password_hash != old
    assert stored.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert (await sign_in(gql, CANDIDATE["phone"]))["token"]


@pytest.mark.parametrize("name", ["王𠀀", "李𪚥", "𠀀𪚥", "阿依古丽·买买提"])
async def test_rare_character_names_survive_sign_up_and_read_back(gql, name):
    token = await signed_up_and_in(gql, candidate(1, name=name))
    viewer = (await gql.data(VIEWER, token=token))["viewer"]
    assert viewer["name"] == name
    assert len(viewer["name"].encode("utf-8")) > len(viewer["name"])  # multi-byte kept


async def test_every_middle_dot_spelling_is_one_name(gql):
    """U+00B7, U+2022, U+30FB and U+FF0E all come back as the one middle dot, so the four
    spellings name the same person; a phone appeal typed with another dot still matches."""
    names = []
    for serial, dot in enumerate(("\u00b7", "\u2022", "\u30fb", "\uff0e"), start=1):
        token = await signed_up_and_in(gql, candidate(serial, name=f"阿依古丽{dot}买买提"))
        names.append((await gql.data(VIEWER, token=token))["viewer"]["name"])
    assert names == ["阿依古丽·买买提"] * 4


async def test_gb11643_check_digit_and_birth_date(gql):
    wrong_check = await sign_up(gql, candidate(1, idNumber="110105194912310021"))
    assert wrong_check["account"] is None
    assert wrong_check["userErrors"] == [
        {
            "field": ["idNumber"],
            "code": "INVALID_ID_NUMBER",
            "message": "证件号码不正确，请核对后重新输入。",
            "retryAfter": None,
        }
    ]
    no_such_day = await sign_up(gql, candidate(2, idNumber="11010519490231002X"))
    assert codes(no_such_day["userErrors"]) == ["INVALID_ID_NUMBER"]
    valid = await sign_up(gql, candidate(3, idNumber="11010519491231002X"))
    assert valid["userErrors"] == []


async def test_every_field_problem_is_reported_at_once(gql):
    payload = await sign_up(
        gql,
        {
            "name": "张<三>",
            "idType": "RESIDENT_ID",
            "idNumber": "12345",
            "phone": "12800138000",
            "email": "not-an-email",
            "password": "password",
        },
    )
    assert payload["account"] is None
    found = {(tuple(e["field"]), e["code"]) for e in payload["userErrors"]}
    assert found == {
        (("name",), "INVALID_NAME"),
        (("idNumber",), "INVALID_ID_NUMBER"),
        (("phone",), "INVALID_PHONE"),
        (("email",), "INVALID_EMAIL"),
        (("password",), "WEAK_PASSWORD"),
    }
    assert await models.Account.all().count() == 0


async def test_missing_and_oversized_fields_are_coded(gql):
    empty = await sign_up(
        gql, {"name": " ", "idType": "PASSPORT", "idNumber": "", "phone": "", "email": "",
              "password": ""},
    )  # fmt: skip
    assert {(e["field"][0], e["code"]) for e in empty["userErrors"]} == {
        ("name", "REQUIRED"),
        ("idNumber", "REQUIRED"),
        ("phone", "REQUIRED"),
        ("email", "REQUIRED"),
        ("password", "REQUIRED"),
    }
    huge = await sign_up(
        gql,
        candidate(
            1,
            name="张" * 65,
            idNumber="E" + "1" * 40,
            email="a" * 250 + "@example.cn",
            password="Aa1!" * 33,
        ),
    )
    assert {(e["field"][0], e["code"]) for e in huge["userErrors"]} == {
        ("name", "TOO_LONG"),
        ("idNumber", "TOO_LONG"),
        ("email", "TOO_LONG"),
        ("password", "TOO_LONG"),
    }


@pytest.mark.parametrize(
    "password", ["Ab1!", "abcdefgh", "abcd1234", "abcd!@#$", "12345678!", "Abc 1234"]
)
async def test_weak_passwords_are_refused(gql, password):
    payload = await sign_up(gql, candidate(1, password=password))
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["password"], "WEAK_PASSWORD")
    ]


async def test_staff_id_type_cannot_sign_up(gql):
    payload = await sign_up(gql, candidate(1, idType="STAFF", idNumber="ADMIN-X"))
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["idType"], "ID_TYPE_NOT_ALLOWED")
    ]


async def test_other_document_types(gql):
    for serial, (id_type, number) in enumerate(
        [("HK_MACAO_PERMIT", "H12345678"), ("TAIWAN_PERMIT", "12345678"),
         ("PASSPORT", "e12345678")],
        start=1,
    ):  # fmt: skip
        payload = await sign_up(gql, candidate(serial, idType=id_type, idNumber=number))
        assert payload["userErrors"] == [], id_type
    signed = await sign_in(gql, "E12345678")
    assert signed["account"]["idNumber"] == "E12345678"
    bad = await sign_up(gql, candidate(9, idType="HK_MACAO_PERMIT", idNumber="X1234"))
    assert codes(bad["userErrors"]) == ["INVALID_ID_NUMBER"]


async def test_duplicates_are_refused_per_field(gql):
    await sign_up(gql)
    same_id = await sign_up(gql, candidate(1, idNumber=CANDIDATE["idNumber"].lower()))
    assert [(e["field"], e["code"]) for e in same_id["userErrors"]] == [
        (["idNumber"], "ID_NUMBER_TAKEN")
    ]
    same_contacts = await sign_up(
        gql, candidate(2, phone="+86 138 0013 8000", email="ZHANGSAN@example.cn")
    )
    assert {(e["field"][0], e["code"]) for e in same_contacts["userErrors"]} == {
        ("phone", "PHONE_TAKEN"),
        ("email", "EMAIL_TAKEN"),
    }
    # An ID number is a sign-in login, so it is unique across document types too.
    as_passport = await sign_up(gql, candidate(3, idType="PASSPORT", idNumber="87654321"))
    assert as_passport["userErrors"] == []
    clash = await sign_up(gql, candidate(4, idType="TAIWAN_PERMIT", idNumber="87654321"))
    assert [(e["field"], e["code"]) for e in clash["userErrors"]] == [
        (["idNumber"], "ID_NUMBER_TAKEN")
    ]
    assert await models.Account.all().count() == 2


async def test_messages_are_english_when_asked(gql):
    payload = await sign_up(
        gql, candidate(1, idNumber="110105194912310021"), headers={"Accept-Language": "en-US"}
    )
    assert payload["userErrors"][0]["message"] == "The ID number is not valid; please check it."
    wrong = await sign_in(gql, "nobody@example.cn", headers={"Accept-Language": "en"})
    assert wrong["userErrors"][0]["message"] == "The account or password is wrong."
    chinese = await sign_in(gql, "nobody@example.cn")
    assert chinese["userErrors"][0]["message"] == "账号或密码错误。"


async def test_unknown_login_and_wrong_password_look_the_same(gql):
    await sign_up(gql)
    unknown = await sign_in(gql, "13900000000")
    wrong = await sign_in(gql, CANDIDATE["phone"], "Wrong@pass1")
    assert unknown == wrong == {
        "token": None,
        "account": None,
        "userErrors": [
            {"field": None, "code": "INVALID_CREDENTIALS", "message": "账号或密码错误。",
             "retryAfter": None}
        ],
    }  # fmt: skip


async def test_sign_out_ends_the_session(gql):
    token = await signed_up_and_in(gql)
    other = (await sign_in(gql, CANDIDATE["email"]))["token"]
    result = await gql.data(SIGN_OUT, token=token)
    assert result["signOut"] == {"signedOut": True, "userErrors": []}
    assert (await gql.data(VIEWER, token=token))["viewer"] is None
    assert (await gql.data(VIEWER, token=other))["viewer"] is not None
    again = await gql.execute(SIGN_OUT, token=token)
    assert again["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    everywhere = await gql.data(
        "mutation { signOut(input: {everywhere: true}) { signedOut } }", token=other
    )
    assert everywhere["signOut"]["signedOut"] is True
    assert (await gql.data(VIEWER, token=other))["viewer"] is None


async def test_node_of_another_candidates_account_is_null(gql):
    mine = await signed_up_and_in(gql)
    theirs = await signed_up_and_in(gql, candidate(1))
    their_id = (await gql.data(VIEWER, token=theirs))["viewer"]["id"]
    my_id = (await gql.data(VIEWER, token=mine))["viewer"]["id"]
    query = "query($id: ID!) { node(id: $id) { id ... on Account { name idNumber } } }"
    assert (await gql.data(query, {"id": their_id}, token=mine))["node"] is None
    assert (await gql.data(query, {"id": their_id}))["node"] is None
    own = (await gql.data(query, {"id": my_id}, token=mine))["node"]
    assert own == {"id": my_id, "name": "张三", "idNumber": "11010519491231002X"}
