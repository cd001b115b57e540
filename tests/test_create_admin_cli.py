"""``cetgql create-admin``: the command an operator runs to make the first administrators.
It must work on the real database, be safe to repeat, and refuse a role without its scope."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cetgql import models
from tests.accounts_support import sign_in

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "cetgql.cli"]


def run(database_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CETGQL_")}
    return subprocess.run(
        [*CLI, "create-admin", *args, "--database-url", database_url],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


async def test_create_admin_then_sign_in_as_national_admin(gql, database_url):
    args = ("--name", "考试中心", "--email", "Ops@NEEA.example.cn", "--role", "NATIONAL_ADMIN")
    first = run(database_url, *args, "--password", "Admin@2026x")
    assert first.returncode == 0, first.stderr + first.stdout
    assert "ops@neea.example.cn" in first.stdout

    signed = await sign_in(gql, "ops@neea.example.cn", "Admin@2026x")
    assert signed["userErrors"] == []
    roles = await gql.data("{ viewer { roles idType } }", token=signed["token"])
    assert roles["viewer"] == {"roles": ["NATIONAL_ADMIN"], "idType": "STAFF"}

    # Running it again changes nothing; a missing --password is prompted for (twice).
    again = run(database_url, *args, stdin="Other@2026x\nOther@2026x\n")
    assert again.returncode == 0, again.stderr + again.stdout
    assert await models.Account.filter(email="ops@neea.example.cn").count() == 1
    assert await models.RoleGrant.all().count() == 1
    assert (await sign_in(gql, "ops@neea.example.cn", "Admin@2026x"))["token"]


async def test_a_scoped_role_needs_an_existing_scope(database_url):
    base = ("--name", "学校管理员", "--email", "school@example.cn", "--password", "Admin@2026x")
    no_school = run(database_url, *base, "--role", "SCHOOL_ADMIN")
    assert no_school.returncode == 1
    assert "REQUIRED" in no_school.stdout and "school" in no_school.stdout
    unknown = run(database_url, *base, "--role", "SCHOOL_ADMIN", "--school", "99999")
    assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stdout

    province = await models.Province.create(code="11", name="北京市")
    await models.School.create(code="10001", name="北京大学", province=province)
    ok = run(database_url, *base, "--role", "SCHOOL_ADMIN", "--school", "10001")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    grant = await models.RoleGrant.get(account__email="school@example.cn").prefetch_related(
        "school"
    )
    assert grant.role == models.Role.SCHOOL_ADMIN and grant.school.code == "10001"
    weak = run(
        database_url, "--name", "甲", "--email", "weak@example.cn", "--password", "weak",
        "--role", "NATIONAL_ADMIN",
    )  # fmt: skip
    assert weak.returncode == 1 and "WEAK_PASSWORD" in weak.stdout
