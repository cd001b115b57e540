"""The ticket commands (``allocate``, ``publish-tickets``, ``print-batch``) run as an operator
would, against the real database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cetgql import models
from cetgql.models import Role
from tests.registration_setup import build_world
from tests.tickets_support import (
    MY_TICKETS,
    SET_ROOMS,
    admin_token,
    close_registration,
    paid_candidate,
    pdf_pages,
    pdf_text,
    rooms_input,
)

ROOT = Path(__file__).resolve().parent.parent


def run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CETGQL_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "cetgql.cli", *args, "--database-url", database_url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


async def test_allocate_publish_and_print_from_the_command_line(gql, database, tmp_path):
    world = await build_world()
    people = [await paid_candidate(gql, world, name=f"学生{'甲乙丙'[i]}") for i in range(3)]
    school = await admin_token(Role.SCHOOL_ADMIN, school="10558")
    await gql.data(SET_ROOMS, {"input": rooms_input((1, 2, ""), (2, 2, ""))}, token=school)

    still_open = run(
        database, "allocate", "--session", "2026H1", "--kind", "WRITTEN", "--school", "10558"
    )
    assert still_open.returncode == 1 and "REGISTRATION_STILL_OPEN" in still_open.stdout

    await close_registration(world)
    unknown = run(
        database, "allocate", "--session", "2026H1", "--kind", "WRITTEN", "--school", "99999"
    )
    assert unknown.returncode == 1 and "UNKNOWN_SCHOOL" in unknown.stdout
    done = run(
        database,
        "allocate",
        "--session",
        "2026H1",
        "--kind",
        "written",
        "--school",
        "10558",
        "--seed",
        "cli-seed",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "seed cli-seed: 3 ticket(s) created" in done.stdout
    assert await models.AllocationRun.filter(seed="cli-seed").count() == 1
    assert await models.Ticket.all().count() == 3

    nothing = run(
        database,
        "print-batch",
        "--session",
        "2026H1",
        "--school",
        "10558",
        "--output",
        str(tmp_path / "none.pdf"),
    )
    assert nothing.returncode == 1 and "NOTHING_TO_PRINT" in nothing.stdout

    published = run(
        database, "publish-tickets", "--session", "2026H1", "--kind", "WRITTEN", "--school", "10558"
    )
    assert published.returncode == 0, published.stdout + published.stderr
    assert "published 3 ticket(s)" in published.stdout
    mine = await gql.data(MY_TICKETS, {"s": "2026H1"}, token=people[0].token)
    assert len(mine["viewer"]["tickets"]) == 1

    output = tmp_path / "tickets.pdf"
    printed = run(
        database, "print-batch", "--session", "2026H1", "--school", "10558", "--output", str(output)
    )
    assert printed.returncode == 0, printed.stdout + printed.stderr
    assert "(3 page(s))" in printed.stdout
    content = output.read_bytes()
    assert pdf_pages(content) == 3
    text = pdf_text(content)
    assert all(n in text for n in await models.Ticket.all().values_list("number", flat=True))
    assert "学生甲" in text
