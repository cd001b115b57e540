"""Scope checks of every root field, read from the schema itself.

For every root ``Query`` and ``Mutation`` field, operations are generated from the schema:
arguments aim at a *victim* (her ID number, name, contacts, order, payment, roster record,
CET6 review, phone appeal, her school and province), and the selection asks for every field a
few levels down. Each operation is sent as four attackers:

- anonymous;
- another candidate, at the same school;
- a school admin of another school in the same province;
- a province admin of another province.

Whatever they send, no response may contain a victim-specific string, ``node`` answers null for
every one of her objects, a mutation aimed at her objects or her school's or province's set-up
fails (top-level error or ``userErrors``), and afterwards nothing of hers, of her school or of
her province has changed in the database. Anonymous callers get ``UNAUTHENTICATED`` from
every field except the public ones listed in :data:`PUBLIC`.

The operations are generated, so a new root field is covered the day it is added; a new
*public* field must be added to :data:`PUBLIC` on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
    is_leaf_type,
)
from strawberry.relay import GlobalID
from tortoise import Tortoise

from cetgql import models
from cetgql.graphql.schema import schema
from cetgql.models import IdType, Role
from cetgql.services import accounts, clock, identity, passwords, registration, sessions
from tests.factories import csv_bytes, student
from tests.registration_setup import build_world, qualified_candidate

# Root fields anyone may call without signing in. Everything else must answer
# UNAUTHENTICATED to an anonymous caller.
PUBLIC = frozenset(
    {
        "node",  # answers null for objects that are not the caller's
        "viewer",  # null when not signed in
        "examSessions",
        "examSession",
        "oralCenters",
        "provinceFees",  # fees are published
        "scoreRelease",  # release dates are announced
        "workingCalendar",  # the holiday calendar is public
        "verifyDocument",  # is this ticket/report/certificate genuine?
        "signUp",
        "signIn",
        "requestVerificationCode",
        "resetPassword",
        "submitPhoneAppeal",
    }
)

VICTIM_NAME = "韩梅梅"
VICTIM_PHONE = "13912345678"
VICTIM_EMAIL = "hanmeimei@example.cn"
VICTIM_PASSWORD = "Victim@2026pw"
VICTIM_STUDENT_NUMBER = "2023VICTIM01"
VICTIM_TICKET = "100010251100101"
VICTIM_ORDER = "VICTIMORDER0001"
VICTIM_TRADE = "26010112000012345678"
VICTIM_APPEAL_PHONE = "13987654321"
ATTACK_PASSWORD = "Attack@2026pw"
SESSION = "2026H1"
MAX_DEPTH = 3
# Tables that legitimately change whatever the attackers do, or hold only their own rows.
VOLATILE = frozenset(
    {
        "audit_event",
        "rate_limit_hit",
        "payment_event",
        "outbox_message",  # a reset code sent to her is how "forgot password" works
        "verification_code",
        "work_calendar_day",  # seeded on first use from the chinesecalendar package
        "work_calendar_year",
    }
)
THROTTLE_COLUMNS = frozenset({"failed_sign_ins", "last_failed_sign_in_at", "locked_until"})


@dataclass
class Victim:
    account: models.Account
    strings: list[str]
    school_code: str
    province_code: str
    objects: dict[str, int]  # GraphQL type name -> primary key
    oral_center_id: int
    token: str


@dataclass
class Probe:
    field: str
    document: str
    variables: dict[str, Any]
    files: dict[str, tuple[str, bytes]]
    targets_victim: bool
    node_type: str | None = None


# -------------------------------------------------------------------------------- the world


async def victim_world() -> tuple[Victim, dict[str, models.Account | None]]:
    """Her, her school and province with everything in them, and the attackers."""
    world = await build_world()
    other_school = await models.School.create(
        code="10561", name="华南理工大学", province=world.province
    )
    beijing = await models.Province.create(code="11", name="北京市")
    await models.School.create(code="10001", name="北京大学", province=beijing)

    her = await qualified_candidate(world, name=VICTIM_NAME, subjects=("CET4", "CET-SET4"))
    account = her.account
    account.phone, account.email = VICTIM_PHONE, VICTIM_EMAIL
    account.password_hash = await passwords.hash_password(VICTIM_PASSWORD)
    await account.save()
    record = await models.RosterRecord.get(id_number=account.id_number)
    record.student_number = VICTIM_STUDENT_NUMBER
    await record.save()
    qualification = await models.Qualification.get(account_id=account.id)
    [order] = await registration.select_subjects(account, SESSION, [registration.Choice("CET4")])
    await models.Order.filter(id=order.id).update(number=VICTIM_ORDER)
    reg = await models.Registration.get(order_id=order.id)
    now = clock.now()
    payment = await models.Payment.create(
        order=order, provider="alipay", out_trade_no=VICTIM_TRADE, amount_fen=order.amount_fen,
        status="PENDING", created_at=now, updated_at=now,
    )  # fmt: skip
    cet4 = await models.Subject.get(code="CET4")
    await models.ScoreRecord.create(
        ticket_number=VICTIM_TICKET, session=world.session, subject=cet4, account=account,
        name=VICTIM_NAME, name_key=identity.name_key(VICTIM_NAME), id_type=IdType.RESIDENT_ID,
        id_number=account.id_number, total=500, imported_at=now,
    )  # fmt: skip
    review = await models.Cet6Review.create(
        account=account, session=world.session, school=world.school,
        cet4_ticket_number=VICTIM_TICKET, status="PENDING", reason="NAME_MATCH_ONLY",
        created_at=now,
    )  # fmt: skip
    appeal = await models.PhoneAppeal.create(
        account=account, name=VICTIM_NAME, id_type=IdType.RESIDENT_ID,
        id_number=account.id_number, new_phone=VICTIM_APPEAL_PHONE, email=VICTIM_EMAIL,
        reason="手机号被他人占用",
    )  # fmt: skip
    outbox = await models.OutboxMessage.create(
        channel="SMS", destination=VICTIM_PHONE, body=f"{VICTIM_NAME} 您的验证码 480213"
    )
    await models.ProviderSetting.create(
        province=world.province, provider="alipay", enabled=True, values={"app_id": "x"}
    )
    victim = Victim(
        account=account,
        strings=[
            VICTIM_NAME,
            account.id_number,
            identity.mask_id_number(account.id_number),  # not even masked
            VICTIM_PHONE,
            VICTIM_EMAIL,
            VICTIM_STUDENT_NUMBER,
            VICTIM_TICKET,
            VICTIM_ORDER,
            VICTIM_TRADE,
            VICTIM_APPEAL_PHONE,
            "480213",
        ],
        school_code=world.school.code,
        province_code=world.province.code,
        objects={
            "Account": account.id,
            "RosterRecord": record.id,
            "Qualification": qualification.id,
            "Order": order.id,
            "Registration": reg.id,
            "Payment": payment.id,
            "Cet6Review": review.id,
            "PhoneAppeal": appeal.id,
            "OutboxMessage": outbox.id,
        },
        oral_center_id=world.centers[0].id,
        token=her.token,
    )
    other = await qualified_candidate(world, name="李雷")
    attackers: dict[str, models.Account | None] = {
        "anonymous": None,
        "other_candidate": other.account,
        "other_school_admin": await _admin(
            "school@attack.example.cn", Role.SCHOOL_ADMIN, school=other_school.code
        ),
        "other_province_admin": await _admin(
            "province@attack.example.cn", Role.PROVINCE_ADMIN, province=beijing.code
        ),
    }
    return victim, attackers


async def _admin(
    email: str, role: Role, *, school: str | None = None, province: str | None = None
) -> models.Account:
    return await accounts.create_admin(
        name="攻击者", email=email, password=ATTACK_PASSWORD, role=role,
        school_code=school, province_code=province,
    )  # fmt: skip


async def token_of(attacker: models.Account | None) -> str | None:
    """A fresh session per probe: an earlier probe may have signed the attacker out."""
    if attacker is None:
        return None
    return await sessions.open_session(
        attacker, client_address="198.51.100.9", user_agent="scope-matrix"
    )


async def snapshot(victim: Victim) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows that are hers or shared (set-up, rosters, reviews ...)."""
    connection = Tortoise.get_connection("default")
    state: dict[str, list[dict[str, Any]]] = {}
    for model in Tortoise.apps["cetgql"].values():
        table = model._meta.db_table
        if table in VOLATILE:
            continue
        rows = await connection.execute_query_dict(f'SELECT * FROM "{table}" ORDER BY id')
        if table == "account":
            rows = [
                {k: v for k, v in r.items() if k not in THROTTLE_COLUMNS}
                for r in rows
                if r["id"] == victim.account.id
            ]
        elif rows and "account_id" in rows[0]:
            rows = [r for r in rows if r["account_id"] == victim.account.id]
        state[table] = [{k: str(v) for k, v in r.items()} for r in rows]
    return state


# ---------------------------------------------------------------------------- the generator


def _gid(type_name: str, pk: int) -> str:
    return str(GlobalID(type_name, str(pk)))


@dataclass
class Generator:
    schema: GraphQLSchema
    victim: Victim
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    targets: bool = False

    # --- values --------------------------------------------------------------------------

    def id_for(self, name: str, owner: str) -> str:
        key = name[:-2] if name.endswith("Id") else name
        wanted = {
            "order": "Order",
            "payment": "Payment",
            "review": "Cet6Review",
            "appeal": "PhoneAppeal",
            "record": "RosterRecord",
            "account": "Account",
            "registration": "Registration",
            "qualification": "Qualification",
        }.get(key)
        if key == "oralCenter" or owner.endswith("OralCenterInput"):
            self.targets = True
            return _gid("OralCenter", self.victim.oral_center_id)
        if key == "id" and owner == "UpdateRosterRecordInput":
            wanted = "RosterRecord"
        if wanted is None:
            wanted = next(
                (t for t in self.victim.objects if t.lower().endswith(key.lower())), "Account"
            )
        self.targets = True
        return _gid(wanted, self.victim.objects.get(wanted, 1))

    def string_for(self, name: str, owner: str) -> str:
        v = self.victim
        if name in ("sessionCode",) or (name == "code" and owner in ("", "CreateExamSessionInput")):
            return SESSION
        if name in ("provinceCode", "province"):
            self.targets = True
            return v.province_code
        if name in ("schoolCode", "school"):
            self.targets = True
            return v.school_code
        if name == "code" and owner == "CreateOralCenterInput":
            return "440099"
        if name == "subjectCode":
            return "CET4"
        if name == "idNumber":
            return v.account.id_number
        if name == "name" and "OralCenter" not in owner:
            return VICTIM_NAME
        if name in ("phone", "newPhone", "destination"):
            return VICTIM_PHONE
        if name in ("email", "login"):
            return VICTIM_EMAIL
        if name == "value" and owner == "ChangeContactInput":
            return VICTIM_PHONE
        if "password" in name.lower():
            return ATTACK_PASSWORD
        if name == "cet4TicketNumber" or "ticket" in name.lower():
            return VICTIM_TICKET
        if name == "provider":
            return "alipay"
        if name.endswith("Url"):
            return "https://portal.example.cn/back"
        if name == "code":
            return "480213"
        return "测试"

    def value(self, name: str, gql_type: Any, owner: str, depth: int = 0) -> Any:
        if isinstance(gql_type, GraphQLNonNull):
            return self.value(name, gql_type.of_type, owner, depth)
        if isinstance(gql_type, GraphQLList):
            return [self.value(name, gql_type.of_type, owner, depth)]
        named = get_named_type(gql_type)
        if isinstance(named, GraphQLEnumType):
            preferred = {"IdType": "RESIDENT_ID", "SubjectKind": "WRITTEN", "Channel": "SMS"}
            return _Enum(preferred.get(named.name, next(iter(named.values))))
        if isinstance(named, GraphQLInputObjectType):
            return {
                fname: self.value(fname, f.type, named.name, depth + 1)
                for fname, f in named.fields.items()
                if isinstance(f.type, GraphQLNonNull) or self._worth_setting(fname, f.type)
            }
        assert isinstance(named, GraphQLScalarType)
        if named.name == "Upload":
            return _Upload(name)
        if named.name == "ID":
            return self.id_for(name, owner)
        if named.name == "Int":
            return {"fen": 3000, "capacity": 10, "enrollmentYear": 2023}.get(name, 5)
        if named.name == "Float":
            return 1.0
        if named.name == "Boolean":
            return {"dryRun": False, "mobile": False}.get(name, True)
        if named.name == "DateTime":
            return (clock.now() + timedelta(days=1)).isoformat()
        if named.name == "Date":
            return clock.now().date().isoformat()
        return self.string_for(name, owner)

    def _worth_setting(self, name: str, gql_type: Any) -> bool:
        named = get_named_type(gql_type)
        return not (isinstance(named, GraphQLScalarType) and named.name == "Upload")

    # --- literals ------------------------------------------------------------------------

    def literal(self, value: Any) -> str:
        if isinstance(value, _Enum):
            return value.name
        if isinstance(value, _Upload):
            self.targets = True  # the file is a roster of her school
            variable = f"file{len(self.files)}"
            self.files[variable] = ("roster.csv", _roster_file(self.victim))
            return f"${variable}"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return json.dumps(value)
        if isinstance(value, str):
            return json.dumps(value, ensure_ascii=False)
        if isinstance(value, list):
            return "[" + ", ".join(self.literal(v) for v in value) + "]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {self.literal(v)}" for k, v in value.items()) + "}"
        raise TypeError(value)

    def arguments(self, gql_field: GraphQLField, owner: str, *, optional: bool) -> str:
        parts = []
        for name, argument in gql_field.args.items():
            required = isinstance(argument.type, GraphQLNonNull)
            if name in ("first", "last"):
                if name == "first":
                    parts.append("first: 3")
                continue
            if name in ("after", "before"):
                continue
            if required or (optional and self._worth_setting(name, argument.type)):
                parts.append(f"{name}: {self.literal(self.value(name, argument.type, owner))}")
        return f"({', '.join(parts)})" if parts else ""

    # --- selections ----------------------------------------------------------------------

    def selection(self, gql_type: Any, depth: int) -> str:
        """Every field a few levels down. Interfaces and unions get their own fields only:
        fragments on several types would ask for same-named fields of different types."""
        named: GraphQLNamedType = get_named_type(gql_type)
        if is_leaf_type(named):
            return ""
        if isinstance(named, GraphQLUnionType):
            return "{ __typename }"
        assert isinstance(named, GraphQLObjectType | GraphQLInterfaceType)
        parts = ["__typename"]
        wrapper = named.name.endswith(("Connection", "Edge"))
        for name, child in named.fields.items():
            child_named = get_named_type(child.type)
            if not is_leaf_type(child_named) and depth >= MAX_DEPTH and not wrapper:
                continue
            arguments = self.arguments(child, named.name, optional=False)
            deeper = depth if wrapper else depth + 1
            parts.append(f"{name}{arguments} {self.selection(child.type, deeper)}".strip())
        return "{ " + " ".join(parts) + " }"

    # --- probes --------------------------------------------------------------------------

    def probes(self, kind: str, name: str, gql_field: GraphQLField) -> Iterator[Probe]:
        if name == "node":
            for type_name, pk in self.victim.objects.items():
                fragment = self.selection(self.schema.get_type(type_name), 2)
                document = (
                    f"query {{ node(id: {json.dumps(_gid(type_name, pk))}) "
                    f"{{ __typename id ... on {type_name} {fragment} }} }}"
                )
                yield Probe(name, document, {}, {}, True, node_type=type_name)
            return
        variants = (True, False) if kind == "query" else (True,)
        for optional in variants:
            self.files, self.targets = {}, False
            arguments = self.arguments(gql_field, "", optional=optional)
            selection = self.selection(gql_field.type, 1)
            declared = "".join(f"${v}: Upload!, " for v in self.files).rstrip(", ")
            header = f"{kind}({declared})" if declared else kind
            document = f"{header} {{ {name}{arguments} {selection} }}"
            yield Probe(name, document, {}, dict(self.files), self.targets)


@dataclass(frozen=True)
class _Enum:
    name: str


@dataclass(frozen=True)
class _Upload:
    name: str


def _roster_file(victim: Victim) -> bytes:
    """A roster for her school that renames her."""
    row = student(
        1, school_code=victim.school_code, id_number=victim.account.id_number, name="篡改者"
    )
    return csv_bytes([row])


def all_probes(victim: Victim) -> list[Probe]:
    graphql_schema = schema._schema
    generator = Generator(graphql_schema, victim)
    probes: list[Probe] = []
    for kind, root in (
        ("query", graphql_schema.query_type),
        ("mutation", graphql_schema.mutation_type),
    ):
        assert root is not None
        for name, gql_field in root.fields.items():
            probes.extend(generator.probes(kind, name, gql_field))
    return probes


# ------------------------------------------------------------------------------------ sending


async def send(client: Any, probe: Probe, token: str | None) -> dict[str, Any]:
    headers = {"accept": "application/graphql-response+json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if probe.files:
        file_map = {str(i): [f"variables.{v}"] for i, v in enumerate(probe.files)}
        operations = {"query": probe.document, "variables": {v: None for v in probe.files}}
        response = await client.post(
            "/graphql",
            data={"operations": json.dumps(operations), "map": json.dumps(file_map)},
            files={str(i): (f[0], f[1], "text/csv") for i, f in enumerate(probe.files.values())},
            headers=headers,
        )
    else:
        response = await client.post(
            "/graphql",
            json={"query": probe.document, "variables": probe.variables},
            headers=headers,
        )
    assert response.status_code == 200, (probe.document, response.status_code, response.text)
    body = response.json()
    assert "data" in body, (probe.document, body)  # the probe ran: not a request error
    return body


def failed(body: dict[str, Any], field_name: str) -> bool:
    """A top-level error on the field, or userErrors in its payload."""
    if any((e.get("path") or [None])[0] == field_name for e in body.get("errors") or []):
        return True
    payload = (body.get("data") or {}).get(field_name)
    return isinstance(payload, dict) and bool(payload.get("userErrors"))


def error_codes(body: dict[str, Any], field_name: str) -> list[str]:
    return [
        (e.get("extensions") or {}).get("code", "")
        for e in body.get("errors") or []
        if (e.get("path") or [None])[0] == field_name
    ]


ATTACKERS = ("anonymous", "other_candidate", "other_school_admin", "other_province_admin")


@pytest.mark.parametrize("attacker", ATTACKERS)
async def test_no_root_field_reaches_the_victim(client, attacker):
    victim, attackers = await victim_world()
    probes = all_probes(victim)
    before = await snapshot(victim)
    fields_seen = set()
    problems: list[str] = []
    for probe in probes:
        fields_seen.add(probe.field)
        body = await send(client, probe, await token_of(attackers[attacker]))
        text = json.dumps(body, ensure_ascii=False)
        leaked = [s for s in victim.strings if s in text]
        if leaked:
            problems.append(f"{probe.field}: leaks {leaked}: {text[:400]}")
        if probe.node_type is not None and (body.get("data") or {}).get("node") is not None:
            problems.append(f"node({probe.node_type}) is visible: {text[:300]}")
        is_mutation = probe.document.startswith("mutation")
        if attacker == "anonymous" and probe.field not in PUBLIC:
            if "UNAUTHENTICATED" not in error_codes(body, probe.field):
                problems.append(f"{probe.field}: anonymous is not refused: {text[:300]}")
        elif is_mutation and probe.targets_victim and not failed(body, probe.field):
            problems.append(f"{probe.field}: succeeded against the victim: {text[:300]}")
    after = await snapshot(victim)
    changed = sorted(t for t in before if before[t] != after.get(t))
    assert problems == [], "\n".join(problems)
    assert changed == [], {t: (before[t], after.get(t)) for t in changed}
    root = schema._schema
    assert root.query_type is not None and root.mutation_type is not None
    assert fields_seen == set(root.query_type.fields) | set(root.mutation_type.fields)
    # her own token still works: no attacker ended her session
    assert (await sessions.account_for_token(victim.token)) is not None


async def test_the_generated_probes_reach_her_as_herself(client):
    """The probes are real: signed in as the victim, her data does come back, so the
    absence of her strings above is not an accident of the generator."""
    victim, _ = await victim_world()
    seen = ""
    for probe in all_probes(victim):
        if probe.document.startswith("query"):
            seen += json.dumps(await send(client, probe, victim.token), ensure_ascii=False)
    for text in (VICTIM_NAME, VICTIM_ORDER, VICTIM_TRADE, victim.account.id_number):
        assert text in seen, text
