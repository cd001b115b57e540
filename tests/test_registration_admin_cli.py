"""The bulk side of registration set-up on the command line: ``import-oral-centers``,
``import-fees`` (CSV or XLSX, all rows or none, every bad row reported by line) and
``set-window``; run as an operator would, against the real database."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from cetgql import models
from cetgql.services import clock, registration
from cetgql.services.clock import SHANGHAI
from tests.registration_setup import SESSION, build_world, qualified_candidate

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "cetgql.cli"]

CENTERS = """
query($subject: String!) { oralCenters(sessionCode: "2026H1", subjectCode: $subject) {
  code name remainingSeats } }"""
AVAILABLE = """
query { availableSubjects(sessionCode: "2026H1") { subject { code } reasons fee { fen } } }"""


def run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CETGQL_")}
    env["COLUMNS"] = "200"  # one problem per line, unwrapped
    return subprocess.run(
        [*CLI, *args, "--database-url", database_url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


def write_csv(path: Path, text: str, encoding: str = "utf-8-sig") -> Path:
    path.write_bytes(text.strip().encode(encoding) + b"\n")
    return path


def problem_lines(output: str) -> list[tuple[str, str, str]]:
    """(line, column, code) of each reported problem."""
    found = []
    for text in output.splitlines():
        if text.startswith("line "):
            _, line, column, code, *_ = text.split()  # rich shows the tabs as spaces
            found.append((line, column, code))
    return found


async def centres() -> list[tuple[str, str, int, list[str]]]:
    return [
        (c.code, c.name, c.capacity, c.subject_codes)
        for c in await models.OralCenter.all().order_by("code")
    ]


async def hold_a_seat(gql, world, center: models.OralCenter) -> None:
    """A candidate pays CET4 and then holds a seat at ``center`` (through GraphQL)."""
    from strawberry.relay import GlobalID

    me = await qualified_candidate(world)
    select = """mutation($input: SelectSubjectsInput!) { selectSubjects(input: $input) {
        order { id } userErrors { code } } }"""

    async def choose(item):
        data = await gql.data(
            select, {"input": {"sessionCode": SESSION, "items": [item]}}, token=me.token
        )
        assert data["selectSubjects"]["userErrors"] == []
        return data["selectSubjects"]["order"]["id"]

    written = await choose({"subjectCode": "CET4"})
    await registration.mark_order_paid(int(GlobalID.from_id(written).node_id), clock.now())
    await choose(
        {"subjectCode": "CET-SET4", "oralCenterId": str(GlobalID("OralCenter", str(center.id)))}
    )


async def test_oral_centres_are_created_then_updated_from_a_file(gql, database_url, tmp_path):
    world = await build_world(centers=0)
    file = write_csv(
        tmp_path / "centres.csv",
        """
省份代码,考点代码,考点名称,考点地址,考位数,开考科目
44,440101,广州大学城口试考点,番禺区大学城,30,CET-SET4;CET-SET6
44,440102,深圳口试考点,,20,英语四级口语
""",
    )
    first = run(database_url, "import-oral-centers", str(file), "--session", "2026h1")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "2 created, 0 updated, 0 unchanged" in first.stdout
    assert await centres() == [
        ("440101", "广州大学城口试考点", 30, ["CET-SET4", "CET-SET6"]),
        ("440102", "深圳口试考点", 20, ["CET-SET4"]),
    ]
    me = await qualified_candidate(world)
    listed = (await gql.data(CENTERS, {"subject": "CET-SET6"}, token=me.token))["oralCenters"]
    assert listed == [{"code": "440101", "name": "广州大学城口试考点", "remainingSeats": 30}]

    # Re-importing updates by code; an empty address cell keeps the address on file.
    write_csv(
        file,
        """
考点代码,省份代码,考点名称,考点地址,考位数,开考科目,备注
440101,44,广州大学城口试考点,,45,CET-SET4;CET-SET6,扩容
440102,44,深圳口试考点,,20,CET-SET4,
""",
    )
    again = run(database_url, "import-oral-centers", str(file), "--session", SESSION)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 created, 1 updated, 1 unchanged" in again.stdout
    updated = await models.OralCenter.get(code="440101")
    assert updated.capacity == 45 and updated.address == "番禺区大学城"
    events = await models.AuditEvent.filter(action="oral_center.import").order_by("id")
    assert [e.details["created"] for e in events] == [2, 0]


async def test_bad_centre_rows_are_reported_by_line_and_nothing_is_written(database_url, tmp_path):
    await build_world(centers=1)
    await models.Province.create(code="11", name="北京市")
    before = await centres()
    file = write_csv(
        tmp_path / "centres.csv",
        """
省份代码,考点代码,考点名称,考点地址,考位数,开考科目
44,440101,广州口试考点,,30,
99,990101,无此省份,,30,
44,110101,代码错省,,30,
44,440101,重复代码,,30,
44,440103,容量错误,,many,
44,440104,笔试科目,,30,CET4;XYZ
11,110101,,,5,
""",
    )
    result = run(database_url, "import-oral-centers", str(file), "--session", SESSION)
    assert result.returncode == 1
    assert "FILE_INVALID" in result.stdout
    assert problem_lines(result.stdout) == [
        ("3", "省份代码", "UNKNOWN_PROVINCE"),
        ("4", "考点代码", "CENTER_CODE_INVALID"),
        ("5", "考点代码", "DUPLICATE_ROW"),
        ("6", "考位数", "INVALID_CAPACITY"),
        ("7", "开考科目", "SUBJECT_NOT_ORAL"),
        ("7", "开考科目", "UNKNOWN_SUBJECT"),
        ("8", "考点名称", "REQUIRED"),
    ]
    assert "same as line 2" in result.stdout
    assert await centres() == before
    assert await models.AuditEvent.all().count() == 0

    missing = write_csv(tmp_path / "missing.csv", "省份代码,考点代码,考点名称\n44,440105,考点")
    result = run(database_url, "import-oral-centers", str(missing), "--session", SESSION)
    assert result.returncode == 1
    assert problem_lines(result.stdout) == [("1", "考位数", "MISSING_COLUMN")]
    unknown = run(database_url, "import-oral-centers", str(missing), "--session", "2030H1")
    assert unknown.returncode == 1 and "SESSION_NOT_FOUND" in unknown.stdout


async def test_a_file_cannot_shrink_a_centre_below_its_held_seats(gql, database_url, tmp_path):
    world = await build_world(centers=1, center_capacity=20)
    await hold_a_seat(gql, world, world.centers[0])
    file = write_csv(
        tmp_path / "centres.csv",
        """
省份代码,考点代码,考点名称,考位数,开考科目
44,440001,广州口试考点1,0,
44,440003,新考点,10,
44,440001,广州口试考点1,5,CET-SET6
""",
    )
    # the same code twice is itself a problem: fix that first, then see the seat checks
    result = run(database_url, "import-oral-centers", str(file), "--session", SESSION)
    assert problem_lines(result.stdout) == [("4", "考点代码", "DUPLICATE_ROW")]
    write_csv(
        file,
        """
省份代码,考点代码,考点名称,考位数,开考科目
44,440003,新考点,10,
44,440001,广州口试考点1,0,CET-SET6
""",
    )
    result = run(database_url, "import-oral-centers", str(file), "--session", SESSION)
    assert result.returncode == 1
    assert problem_lines(result.stdout) == [
        ("3", "考位数", "CAPACITY_BELOW_HELD"),
        ("3", "开考科目", "CENTER_SUBJECT_IN_USE"),
    ]
    assert await centres() == [("440001", "广州口试考点1", 20, [])]


async def test_fees_import_from_xlsx_in_yuan_and_csv_in_fen(gql, database_url, tmp_path):
    from openpyxl import Workbook

    world = await build_world()
    me = await qualified_candidate(world)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["省份代码", "科目", "报名费（元）"])
    sheet.append([44, "英语四级", 37])
    sheet.append(["44", "CET-SET4", "50.00"])
    sheet.append([None, None, None])
    sheet.append(["44", "cet6", "¥37.5"])
    buffer = io.BytesIO()
    book.save(buffer)
    xlsx = tmp_path / "fees.xlsx"
    xlsx.write_bytes(buffer.getvalue())

    result = run(database_url, "import-fees", str(xlsx), "--session", SESSION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 created, 2 updated, 1 unchanged" in result.stdout  # CET-SET4 was 50 already
    listed = (await gql.data(AVAILABLE, token=me.token))["availableSubjects"]
    fees = {o["subject"]["code"]: o["fee"]["fen"] for o in listed}
    assert (fees["CET4"], fees["CET6"], fees["CET-SET4"]) == (3700, 3750, 5000)

    await models.Province.create(code="11", name="北京市")
    csv_file = write_csv(
        tmp_path / "fees.csv",
        """
province_code,subject,fee_fen
11,CET4,3000
44,CET4,0
99,CET4,3000
44,XYZ,3000
11,CET4,3100
44,CJT4,abc
44,CJT6,30.5
""",
    )
    before = sorted(await models.Fee.all().values_list("province_id", "subject_id", "amount_fen"))
    result = run(database_url, "import-fees", str(csv_file), "--session", SESSION)
    assert result.returncode == 1
    assert problem_lines(result.stdout) == [
        ("3", "fee_fen", "FEE_OUT_OF_RANGE"),
        ("4", "province_code", "UNKNOWN_PROVINCE"),
        ("5", "subject", "UNKNOWN_SUBJECT"),
        ("6", "subject", "DUPLICATE_ROW"),
        ("7", "fee_fen", "INVALID_FORMAT"),
        ("8", "fee_fen", "INVALID_FORMAT"),
    ]
    after = sorted(await models.Fee.all().values_list("province_id", "subject_id", "amount_fen"))
    assert after == before  # Beijing's good row was not written either
    assert await models.AuditEvent.filter(action="registration.fees_import").count() == 1


async def test_set_window_from_the_command_line(gql, database_url):
    world = await build_world()
    me = await qualified_candidate(world)
    args = ("set-window", "--session", SESSION, "--province", "44", "--kind", "written")
    beijing = clock.now().astimezone(SHANGHAI).replace(second=0, microsecond=0)
    opens, closes = beijing - timedelta(days=3), beijing - timedelta(days=1)
    result = run(
        database_url,
        *args,
        "--opens",
        opens.strftime("%Y-%m-%d %H:%M"),  # no offset: Beijing time
        "--closes",
        closes.isoformat(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{opens.isoformat()} to {closes.isoformat()}" in result.stdout
    window = await models.RegistrationWindow.get(kind="WRITTEN", school_id=None)
    assert window.opens_at == opens and window.opens_at.utcoffset() == timedelta(0)
    assert await models.RegistrationWindow.filter(kind="WRITTEN").count() == 1
    listed = (await gql.data(AVAILABLE, token=me.token))["availableSubjects"]
    cet4 = next(o for o in listed if o["subject"]["code"] == "CET4")
    assert "WINDOW_CLOSED" in cet4["reasons"]  # the window the operator set has passed

    school = run(
        database_url,
        *args,
        "--school",
        "10558",
        "--opens",
        "2026-03-02T09:00+08:00",
        "--closes",
        "2026-03-05T17:00+08:00",
    )
    assert school.returncode == 0, school.stdout + school.stderr
    assert "school 10558" in school.stdout
    reversed_window = run(
        database_url, *args, "--opens", "2026-03-10 09:00", "--closes", "2026-03-01 09:00"
    )
    assert reversed_window.returncode == 1 and "INVALID_TIME_RANGE" in reversed_window.stdout
    oral_at_school = run(
        database_url,
        "set-window", "--session", SESSION, "--province", "44", "--kind", "ORAL",
        "--school", "10558", "--opens", "2026-03-01", "--closes", "2026-03-02",
    )  # fmt: skip
    assert oral_at_school.returncode == 1
    assert "SCHOOL_WINDOW_WRITTEN_ONLY" in oral_at_school.stdout
    assert await models.AuditEvent.filter(action="registration.window_set").count() == 2
