"""Score import (R1–R4): CSV and XLSX through GraphQL and the command line, every bad row
reported with its line and nothing written, re-imports that correct instead of duplicating,
and files bigger than one chunk."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from cetgql import models
from cetgql.models import Role
from cetgql.services import clock
from tests.conftest import ROOT
from tests.scores_support import (
    HEADER,
    by_ticket,
    csv_file,
    history,
    import_scores,
    oral_ticket,
    person,
    release,
    row,
    session,
    token,
    written,
    written_ticket,
    xlsx_file,
)
from tests.scores_support import admin as make_admin

CODE = "2025H1"


async def test_a_clean_file_is_imported_and_nothing_shows_before_release(gql) -> None:
    national = await make_admin()
    await session(CODE)
    alice, bob = await person("李白"), await person("杜甫")
    rows = [
        written(written_ticket(CODE, seat=1), alice, 560),
        written(written_ticket(CODE, seat=2), bob, 219.5),
        row(oral_ticket(CODE, seat=1), alice, oral="良好"),
    ]
    payload = await import_scores(gql, await token(national), csv_file(rows), CODE)
    assert payload["userErrors"] == [] and payload["problems"] == []
    assert (payload["rows"], payload["created"], payload["updated"]) == (3, 3, 0)
    assert payload["reportsIssued"] == 1  # alice: written and oral on one report; bob none
    record = await models.ScoreRecord.get(ticket_number=written_ticket(CODE, seat=1))
    assert record.account_id == alice.id and record.total == Decimal("560.0")

    # No release time yet: nothing anywhere.
    assert await history(gql, alice) == []
    await release(gql, await token(national), CODE, clock.now() + timedelta(days=1))
    assert await history(gql, alice) == []


async def test_every_bad_row_is_reported_with_its_line_and_nothing_is_written(gql) -> None:
    national = await make_admin()
    await session(CODE)
    alice = await person("王维")
    good = written_ticket(CODE, seat=1)
    rows = [
        written(good, alice, 500),  # line 2: fine
        written("12345", alice, 500),  # 3: not 15 digits
        written(written_ticket("2024H2", seat=3), alice, 500),  # 4: another session
        row(written_ticket(CODE, seat=4), alice, listening=249, reading=200, writing=100),  # 5
        row(written_ticket(CODE, seat=5), alice, listening="100.3", reading=200, writing=100),
        row(
            written_ticket(CODE, seat=6), alice, listening=100, reading=200, writing=100, total=401
        ),
        written(good, alice, 480),  # 8: the ticket of line 2 again
        row(oral_ticket(CODE, seat=1), alice, oral="B"),  # 9: the old scale in 2025
        row(written_ticket(CODE, seat=9), name="", id_number="", listening=1, reading=1, writing=1),
        row(
            written_ticket(CODE, seat=10), alice, listening=100, reading=100, writing=100, oral="A"
        ),
        row(written_ticket(CODE, seat=11), alice, absent="是", listening=100),  # 12
        row(written_ticket(CODE, seat=12), alice, reading=100, writing=100),  # 13: no listening
    ]
    payload = await import_scores(gql, await token(national), csv_file(rows), CODE)
    assert [e["code"] for e in payload["userErrors"]] == ["SCORES_INVALID"]
    found = {(p["line"], p["code"]) for p in payload["problems"]}
    assert found == {
        (3, "TICKET_NUMBER_INVALID"),
        (4, "TICKET_SESSION_MISMATCH"),
        (5, "SCORE_OUT_OF_RANGE"),
        (6, "SCORE_NOT_HALF_POINT"),
        (7, "TOTAL_MISMATCH"),
        (8, "DUPLICATE_ROW"),
        (9, "INVALID_ORAL_GRADE"),
        (10, "REQUIRED"),
        (11, "WRONG_SCORE_KIND"),
        (12, "SCORES_WHEN_ABSENT"),
        (13, "REQUIRED"),
    }, payload["problems"]
    assert payload["problemCount"] == len(payload["problems"]) == 12  # line 10: name and ID
    duplicate = next(p for p in payload["problems"] if p["code"] == "DUPLICATE_ROW")
    assert duplicate["otherLine"] == 2 and duplicate["column"] == "准考证号"
    columns = {p["line"]: p["column"] for p in payload["problems"]}
    assert columns[5] == "听力" and columns[7] == "总分" and columns[9] == "口试成绩"
    assert await models.ScoreRecord.all().count() == 0
    assert await models.ScoreReport.all().count() == 0
    assert await models.ScoreImportRow.all().count() == 0  # the staging table is emptied
    job = await models.ScoreImport.get()
    assert (job.status, job.problem_count) == (models.ScoreImportStatus.FAILED, 12)


async def test_a_missing_column_or_an_empty_file_is_a_problem_of_line_1_or_2(gql) -> None:
    national = await make_admin()
    await session(CODE)
    admin_token = await token(national)
    missing = await import_scores(gql, admin_token, csv_file([], header=["姓名", "听力"]), CODE)
    assert [(p["line"], p["code"], p["column"]) for p in missing["problems"]] == [
        (1, "MISSING_COLUMN", "准考证号")
    ]
    empty = await import_scores(gql, admin_token, csv_file([]), CODE)
    assert [(p["line"], p["code"]) for p in empty["problems"]] == [(2, "NO_DATA_ROWS")]
    legacy = await import_scores(gql, admin_token, b"\xd0\xcf\x11\xe0" + b"\0" * 100, CODE)
    assert [e["code"] for e in legacy["userErrors"]] == ["UNSUPPORTED_FILE"]


async def test_a_reimport_corrects_instead_of_duplicating(gql) -> None:
    national = await make_admin()
    await session(CODE)
    alice, bob = await person("苏轼"), await person("苏辙")
    first = [
        written(written_ticket(CODE, seat=1), alice, 500),
        written(written_ticket(CODE, seat=2), bob, 450),
    ]
    admin_token = await token(national)
    await import_scores(gql, admin_token, csv_file(first), CODE)
    report = await models.ScoreReport.get(report_key__contains=alice.id_number)
    second = [
        written(written_ticket(CODE, seat=1), alice, 520.5),
        written(written_ticket(CODE, seat=2), bob, 450),
    ]
    payload = await import_scores(gql, admin_token, csv_file(second), CODE)
    assert (payload["created"], payload["updated"], payload["unchanged"]) == (0, 1, 1)
    assert await models.ScoreRecord.all().count() == 2
    # Not released yet: the report is corrected where it stands, same number, version 1.
    reports = await models.ScoreReport.filter(report_key__contains=alice.id_number)
    assert [(r.number, r.version) for r in reports] == [(report.number, 1)]
    assert reports[0].content["written"]["total"] == "520.5"

    await release(gql, admin_token, CODE, (await _past()))
    scores = by_ticket(await history(gql, alice))
    assert scores[written_ticket(CODE, seat=1)]["total"] == 520.5


async def _past() -> datetime:  # a release instant an hour ago
    return clock.now() - timedelta(hours=1)


async def test_an_xlsx_file_with_numeric_cells_is_read(gql) -> None:
    national = await make_admin()
    await session(CODE)
    alice = await person("辛弃疾")
    ticket = written_ticket(CODE, seat=7)
    rows = [
        [
            int(ticket),
            alice.name,
            "居民身份证",
            alice.id_number,
            200.5,
            180,
            160,
            540.5,
            "",
            "",
            "",
        ],
        [None] * 11,  # a blank row still counts as a line
        [
            oral_ticket(CODE, seat=3),
            alice.name,
            "",
            alice.id_number,
            None,
            None,
            None,
            None,
            "优秀",
        ],
    ]
    payload = await import_scores(
        gql, await token(national), xlsx_file(rows), CODE, filename="scores.xlsx"
    )
    assert payload["userErrors"] == [], payload
    assert (payload["rows"], payload["created"]) == (2, 2)
    record = await models.ScoreRecord.get(ticket_number=ticket)
    assert (record.listening, record.total) == (Decimal("200.5"), Decimal("540.5"))

    bad = [[int(ticket), alice.name, "", alice.id_number, 200.5, 180, 160, 541, "", "", ""]]
    bad.insert(0, [None] * 11)
    payload = await import_scores(gql, await token(national), xlsx_file(bad), CODE, "x.xlsx")
    assert [(p["line"], p["code"]) for p in payload["problems"]] == [(3, "TOTAL_MISMATCH")]


async def test_tickets_of_this_system_fill_and_check_the_identity(gql) -> None:
    """A ticket issued here is matched to its holder: blank name and ID are filled in, a
    different one is refused."""
    from tests.scores_support import issued_ticket, world

    ticket, holder, _ = await issued_ticket(await world())
    national = await make_admin()
    code = "2026H1"
    stranger = await person("陌生人")
    rows = [
        row(ticket.number, name="", id_number="", listening=200, reading=200, writing=150),
    ]
    payload = await import_scores(gql, await token(national), csv_file(rows), code)
    assert payload["userErrors"] == [], payload
    record = await models.ScoreRecord.get(ticket_number=ticket.number)
    assert (record.account_id, record.id_number, record.name) == (
        holder.id,
        holder.id_number,
        holder.name,
    )
    rows = [row(ticket.number, stranger, listening=200, reading=200, writing=150)]
    payload = await import_scores(gql, await token(national), csv_file(rows), code)
    assert [(p["line"], p["code"]) for p in payload["problems"]] == [
        (2, "TICKET_IDENTITY_MISMATCH")
    ]


async def test_a_file_larger_than_a_chunk_streams_and_finds_duplicates_across_chunks(
    gql, monkeypatch
) -> None:
    from cetgql.services import score_import

    monkeypatch.setattr(score_import, "CHUNK_ROWS", 50)
    monkeypatch.setattr(score_import, "KEY_CHUNK", 40)
    national = await make_admin()
    await session(CODE)
    given = "甲乙丙丁戊己庚辛壬癸"
    people = [
        await person(f"考生{given[n // 100]}{given[n // 10 % 10]}{given[n % 10]}", serial=n)
        for n in range(180)
    ]
    rows = [written(written_ticket(CODE, seat=n), p, 300 + n) for n, p in enumerate(people)]
    payload = await import_scores(gql, await token(national), csv_file(rows), CODE)
    assert (payload["created"], payload["reportsIssued"]) == (180, 180), payload
    numbers = sorted(await models.ScoreReport.all().values_list("number", flat=True))
    assert numbers[0].endswith("00001") and numbers[-1].endswith("00180")

    rows.append(written(written_ticket(CODE, seat=3), people[3], 303))  # line 182 = line 5
    payload = await import_scores(gql, await token(national), csv_file(rows), CODE)
    assert [(p["line"], p["code"], p["otherLine"]) for p in payload["problems"]] == [
        (182, "DUPLICATE_ROW", 5)
    ]
    rows[-1] = written(written_ticket(CODE, seat=199), people[3], 303)  # another ticket
    payload = await import_scores(gql, await token(national), csv_file(rows), CODE)
    assert [(p["line"], p["code"], p["otherLine"]) for p in payload["problems"]] == [
        (182, "DUPLICATE_CANDIDATE", 5)
    ]


async def test_only_the_national_office_imports_and_releases(gql) -> None:
    from tests.factories import upload
    from tests.scores_support import IMPORT_SCORES, school

    await session(CODE)
    await school()
    province_admin = await make_admin(
        Role.PROVINCE_ADMIN, email="p@cet.example.cn", province_code="11"
    )
    result = await upload(
        gql,
        IMPORT_SCORES,
        {"input": {"sessionCode": CODE}},
        {"input.file": ("s.csv", csv_file([]))},
        token=await token(province_admin),
    )
    assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await models.ScoreImport.all().count() == 0
    result = await gql.execute(
        'mutation { setScoreRelease(input: {sessionCode: "2025H1"}) { userErrors { code } } }',
        token=await token(province_admin),
    )
    assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_command_line_prints_every_problem_and_exits_1(
    tmp_path: Path, database: str, settings
) -> None:
    """`cetgql import-scores` on the test database: problems by line, then a clean import."""
    await session(CODE)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        csv_file(
            [
                row(
                    written_ticket(CODE, seat=1),
                    name="甲",
                    id_number=_id(1),
                    listening=300,
                    reading=1,
                    writing=1,
                ),
                row(written_ticket(CODE, seat=2), name="乙", id_number=_id(2), oral="良好"),
            ]
        )
    )
    env = {"CETGQL_DATABASE_URL": database, "CETGQL_SECRET_KEY": settings.secret_key}
    done = await _cli(["import-scores", str(bad), "--session", CODE], env)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("line ")]
    assert lines[0].startswith("line 2\t听力\tSCORE_OUT_OF_RANGE")
    assert lines[1].startswith("line 3\t口试成绩\tWRONG_SCORE_KIND")

    good = tmp_path / "good.csv"
    good.write_bytes(
        csv_file(
            [
                row(
                    written_ticket(CODE, seat=1),
                    name="甲",
                    id_number=_id(1),
                    listening=200,
                    reading=200,
                    writing=150,
                )
            ]
        )
    )
    done = await _cli(["import-scores", str(good), "--session", CODE], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 created" in done.stdout and "reports 1 issued" in done.stdout


def _id(serial: int) -> str:
    from tests.scores_support import resident_id

    return resident_id(900 + serial)


async def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import asyncio
    import os

    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cetgql.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


assert HEADER[0] == "准考证号"


async def test_after_the_release_a_reimport_reissues_and_a_corrected_id_moves_the_score(
    gql,
) -> None:
    from tests.scores_support import VERIFY, released_session

    national = await make_admin()
    alice, wrong = await person("曹雪芹"), await person("曹雪琴")
    ticket = written_ticket(CODE, seat=1)
    await released_session(gql, national, CODE, [written(ticket, wrong, 500)])
    (score,) = await history(gql, wrong)
    old_code = score["reportVerificationCode"]

    # The office finds the row was Alice's: the same ticket under her name and ID.
    payload = await import_scores(
        gql, await token(national), csv_file([written(ticket, alice, 500)]), CODE
    )
    assert (payload["updated"], payload["reportsIssued"], payload["reportsWithdrawn"]) == (1, 1, 1)
    assert await history(gql, wrong) == []
    (score,) = await history(gql, alice)
    assert score["reportNumber"] != old_code.split("-")[1][:15]
    found = (await gql.data(VERIFY, {"code": old_code}))["verifyDocument"]
    assert found["valid"] is False and "withdrawn" in found["note"]

    # A corrected score after the release: the same number, version 2.
    payload = await import_scores(
        gql, await token(national), csv_file([written(ticket, alice, 505.5)]), CODE
    )
    assert (payload["updated"], payload["reportsReissued"]) == (1, 1)
    (again,) = await history(gql, alice)
    assert (again["total"], again["reportNumber"], again["reportVersion"]) == (
        505.5,
        score["reportNumber"],
        2,
    )
    assert await models.ScoreRecord.all().count() == 1
