"""The demo seed: the documented data, twice without duplicates, and a demo candidate who can
sign in and pass the qualification check straight away."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from cetgql import models
from cetgql.models import IdType
from cetgql.services import demo, identity
from tests import factories as f

ROOT = Path(__file__).resolve().parent.parent


async def counts() -> dict[str, int]:
    return {
        "sessions": await models.ExamSession.all().count(),
        "provinces": await models.Province.all().count(),
        "schools": await models.School.all().count(),
        "campuses": await models.Campus.all().count(),
        "roster": await models.RosterRecord.all().count(),
        "accounts": await models.Account.all().count(),
        "grants": await models.RoleGrant.all().count(),
    }


EXPECTED = {
    "sessions": 2,
    "provinces": 2,
    "schools": 4,
    "campuses": 7,
    "roster": 300,
    "accounts": 5,
    "grants": 4,
}


async def test_seed_twice_gives_the_documented_data_once(gql, database_url):
    summary = await demo.seed()
    assert await counts() == EXPECTED
    assert "zhangsan@example.cn" in summary and "admin@cet.example.cn" in summary
    assert "/graphql" in summary

    again = await demo.seed()
    assert await counts() == EXPECTED
    assert "unchanged 300" in again

    # and once more from the command line, as `cetgql demo` runs it
    done = await asyncio.to_thread(
        subprocess.run,
        [str(ROOT / ".venv/bin/cetgql"), "demo", "--seed-only", "--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT), "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "unchanged 300" in done.stdout
    assert await counts() == EXPECTED

    records = await models.RosterRecord.filter(session__code="2026H1").all()
    assert all(
        r.id_type == IdType.RESIDENT_ID and identity.validate_id(r.id_type, r.id_number)
        for r in records
    )
    names = {r.name for r in records}
    assert {"张三", "王𪚥", "李𠀀", "阿依古丽·买买提"} <= names
    assert sum("·" in n for n in names) >= 3
    assert all(
        r.photo and len(r.photo) <= 10 * 1024 and r.photo_type == "image/jpeg" for r in records
    )
    subjects = [tuple(r.eligible_subjects) for r in records]
    assert subjects.count(("CET4", "CET6", "CET-SET4", "CET-SET6")) > len(records) / 2
    assert ("CET4",) in subjects and any("CJT4" in s for s in subjects)
    schools = {r.school_id for r in records}
    assert len(schools) == 4


async def test_demo_candidate_and_admins_can_sign_in_and_use_it(gql, client):
    await demo.seed()
    token = await f.sign_in(gql, "zhangsan@example.cn", "Cet@2026demo")
    data = await gql.data(
        """mutation { verifyQualification(input: {sessionCode: "2026H1", name: "张三",
             idType: RESIDENT_ID, idNumber: "11010519491231002X"}) {
             qualification { school { code name } campus { code name } photoUrl
                             eligibleSubjects { code } }
             userErrors { code } } }""",
        token=token,
    )
    payload = data["verifyQualification"]
    assert payload["userErrors"] == []
    match = payload["qualification"]
    assert match["school"] == {"code": "10001", "name": "北京大学"}
    assert match["campus"] == {"code": "1", "name": "本部"}
    assert (await client.get(match["photoUrl"])).headers["content-type"] == "image/jpeg"

    for email in (
        "admin@cet.example.cn",
        "beijing@cet.example.cn",
        "guangdong@cet.example.cn",
        "pku@cet.example.cn",
    ):
        admin = await f.sign_in(gql, email, "Cet@2026admin")
        roles = (await gql.data("{ viewer { roles } }", token=admin))["viewer"]["roles"]
        assert roles and "CANDIDATE" not in roles
    pku = await f.sign_in(gql, "pku@cet.example.cn", "Cet@2026admin")
    listed = await gql.data(
        '{ rosterRecords(sessionCode: "2026H1", first: 100) '
        "{ edges { node { school { code } } } } }",
        token=pku,
    )
    assert {e["node"]["school"]["code"] for e in listed["rosterRecords"]["edges"]} == {"10001"}
