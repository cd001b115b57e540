"""Roster import (学籍): CSV and XLSX through GraphQL multipart uploads and the command line;
every bad row reported with the line the school sees, nothing written unless the whole file is
clean, re-imports update instead of duplicating, photos checked and served by signed URL."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from cetgql import models
from cetgql.models import Role
from cetgql.services import clock
from tests import factories as f

ROOT = Path(__file__).resolve().parent.parent

RECORDS = """
query($after: String, $school: String) {
  rosterRecords(sessionCode: "2026H1", schoolCode: $school, first: 50, after: $after) {
    edges { node { id name idNumber department major gender eligibleSubjectCodes photoUrl
                   school { code name } campus { code name } enrollmentYear educationLevel } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def problems(payload: dict) -> set[tuple[int, str, str]]:
    return {(p["line"], p["column"], p["code"]) for p in payload["problems"]}


async def test_csv_import_and_reimport_updates_never_duplicates(gql):
    await f.geography()
    token = await f.national(gql)
    rows = [f.student(1), f.student(2), f.student(3, campus_code="2", department="基础医学院")]
    first = await f.import_roster(gql, token, f.csv_bytes(rows))
    assert (first["created"], first["updated"], first["unchanged"]) == (3, 0, 0)
    assert first["problems"] == [] and first["userErrors"] == []

    # The school fixes one major and adds a student: one created, one updated, two untouched.
    rows[1]["major"] = "翻译"
    again = await f.import_roster(gql, token, f.csv_bytes([*rows, f.student(4)]))
    assert (again["created"], again["updated"], again["unchanged"]) == (1, 1, 2)
    assert await models.RosterRecord.all().count() == 4

    data = await gql.data(RECORDS, token=token)
    nodes = [e["node"] for e in data["rosterRecords"]["edges"]]
    assert len(nodes) == 4
    by_number = {n["idNumber"]: n for n in nodes}
    assert by_number[f.resident_id(2)]["major"] == "翻译"
    third = by_number[f.resident_id(3)]
    assert third["campus"] == {"code": "2", "name": "医学部"}
    assert third["school"] == {"code": "10001", "name": "北京大学"}
    assert third["eligibleSubjectCodes"] == ["CET4", "CET6", "CET-SET4"]
    assert third["enrollmentYear"] == 2023 and third["educationLevel"] == "本科"
    # Gender left blank is read from the resident ID (17th digit odd = male).
    assert third["gender"] == ("MALE" if int(f.resident_id(3)[16]) % 2 else "FEMALE")

    audit = await models.AuditEvent.filter(action="roster.import").order_by("id")
    assert [(a.details["created"], a.details["updated"]) for a in audit] == [(3, 0), (1, 1)]


async def test_english_headers_and_enum_id_types(gql):
    await f.geography()
    token = await f.national(gql)
    rows = [
        f.student(1, id_type="RESIDENT_ID"),
        f.student(2, id_type="PASSPORT", id_number="E12345678", gender="女"),
        f.student(3, id_type="港澳居民来往内地通行证", id_number="H12345678", gender="M"),
    ]
    payload = await f.import_roster(gql, token, f.csv_bytes(rows, zh=False))
    assert payload["created"] == 3, payload
    kinds = set(await models.RosterRecord.all().values_list("id_type", flat=True))
    assert kinds == {"RESIDENT_ID", "PASSPORT", "HK_MACAO_PERMIT"}


async def test_xlsx_import_counts_lines_like_the_spreadsheet(gql):
    await f.geography()
    token = await f.national(gql)
    rows = [f.student(1), None, f.student(2), f.student(3, campus_code="9")]
    payload = await f.import_roster(gql, token, f.xlsx_bytes(rows), filename="名单.xlsx")
    # header = 1, student 1 = 2, blank = 3, student 2 = 4, the bad one = 5
    assert problems(payload) == {(5, "校区代码", "UNKNOWN_CAMPUS")}
    assert await models.RosterRecord.all().count() == 0

    good = await f.import_roster(gql, token, f.xlsx_bytes(rows[:3]), filename="名单.xlsx")
    assert good["created"] == 2 and good["problems"] == []


async def test_every_bad_row_is_reported_and_nothing_is_written(gql):
    await f.geography()
    token = await f.national(gql)
    bad_check_digit = f.resident_id(5)[:-1] + ("0" if f.resident_id(5)[-1] != "0" else "1")
    rows = [
        f.student(1),  # line 2: fine
        f.student(2, id_number=bad_check_digit),  # 3
        f.student(3, campus_code="7"),  # 4
        f.student(4, id_number=f.resident_id(1)),  # 5: same ID as line 2
        f.student(5, eligible_subjects="CET4;CET8"),  # 6
        f.student(6, name=""),  # 7
        f.student(7, department="院" * 129),  # 8
        f.student(8, school_code="99999"),  # 9
        f.student(9, id_type="驾驶证"),  # 10
        f.student(10, enrollment_year="明年", gender="未知"),  # 11: two problems
        f.student(11),  # 12: fine
    ]
    payload = await f.import_roster(gql, token, f.csv_bytes(rows))
    assert problems(payload) == {
        (3, "证件号码", "INVALID_ID_NUMBER"),
        (4, "校区代码", "UNKNOWN_CAMPUS"),
        (5, "证件号码", "DUPLICATE_IN_FILE"),
        (6, "可报科目", "UNKNOWN_SUBJECT"),
        (7, "姓名", "REQUIRED"),
        (8, "院系", "TOO_LONG"),
        (9, "学校代码", "UNKNOWN_SCHOOL"),
        (10, "证件类型", "INVALID_FORMAT"),
        (11, "入学年份", "INVALID_FORMAT"),
        (11, "性别", "INVALID_FORMAT"),
    }
    duplicate = next(p for p in payload["problems"] if p["code"] == "DUPLICATE_IN_FILE")
    assert "第 2 行" in duplicate["message"]
    unknown = next(p for p in payload["problems"] if p["code"] == "UNKNOWN_SUBJECT")
    assert "CET8" in unknown["message"]
    assert [e["code"] for e in payload["userErrors"]] == ["ROSTER_INVALID"]
    assert (payload["created"], payload["updated"]) == (0, 0)
    assert await models.RosterRecord.all().count() == 0
    assert not await models.AuditEvent.filter(action="roster.import").exists()


async def test_problem_messages_follow_accept_language(gql):
    await f.geography()
    token = await f.national(gql)
    content = f.csv_bytes([f.student(1), f.student(2, id_number=f.resident_id(1))])
    result = await f.upload(
        gql,
        f.IMPORT_ROSTER,
        {"input": {"sessionCode": "2026H1"}},
        {"input.file": ("roster.csv", content)},
        token=token,
    )
    assert "第 2 行" in result["data"]["importRoster"]["problems"][0]["message"]
    response = await gql.http.post(
        "/graphql",
        data={
            "operations": json.dumps(
                {
                    "query": f.IMPORT_ROSTER,
                    "variables": {"input": {"sessionCode": "2026H1", "file": None}},
                }
            ),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("roster.csv", content, "text/csv")},
        headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
    )
    problem = response.json()["data"]["importRoster"]["problems"][0]
    assert problem["line"] == 3 and "same as line 2" in problem["message"]


async def test_missing_columns_and_unreadable_files(gql):
    await f.geography()
    token = await f.national(gql)
    no_subjects = "学校代码,校区代码,姓名,证件号码\n10001,1,张三,11010519491231002X\n".encode()
    payload = await f.import_roster(gql, token, no_subjects)
    assert problems(payload) == {(1, "可报科目", "MISSING_COLUMN")}

    legacy_xls = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100
    payload = await f.import_roster(gql, token, legacy_xls, filename="old.xls")
    assert [e["code"] for e in payload["userErrors"]] == ["UNSUPPORTED_FILE"]

    header_only = f.csv_bytes([])
    payload = await f.import_roster(gql, token, header_only)
    assert [p["code"] for p in payload["problems"]] == ["EMPTY_FILE"]

    payload = await f.import_roster(gql, token, f.csv_bytes([f.student(1)]), session="2031H1")
    assert [e["code"] for e in payload["userErrors"]] == ["SESSION_NOT_FOUND"]


async def test_gb18030_file_from_chinese_excel(gql):
    await f.geography()
    token = await f.national(gql)
    rows = [f.student(1, name="欧阳娜娜", department="信息科学技术学院", major="计算机科学与技术")]
    content = f.csv_bytes(rows, encoding="gb18030")
    try:
        content.decode("utf-8")
        raise AssertionError("the test file must not be valid UTF-8")
    except UnicodeDecodeError:
        pass
    payload = await f.import_roster(gql, token, content)
    assert payload["created"] == 1, payload
    record = await models.RosterRecord.get()
    assert (record.name, record.department) == ("欧阳娜娜", "信息科学技术学院")


async def test_rare_characters_and_middle_dots_survive_import(gql):
    await f.geography()
    token = await f.national(gql)
    rows = [
        f.student(1, name="王𪚥"),
        f.student(2, name="李𠀀"),
        f.student(3, name="阿依古丽\u30fb买买提"),  # katakana middle dot in the file
    ]
    payload = await f.import_roster(gql, token, f.csv_bytes(rows))
    assert payload["created"] == 3, payload
    names = set(await models.RosterRecord.all().values_list("name", flat=True))
    assert names == {"王𪚥", "李𠀀", "阿依古丽\u00b7买买提"}


async def test_photos_are_checked_and_served_by_signed_url(gql, client):
    await f.geography()
    token = await f.national(gql)
    jpeg, png = f.image_bytes("JPEG"), f.image_bytes("PNG")
    rows = [
        f.student(1, photo="a.jpg"),
        f.student(2, photo="b.png"),
        f.student(3, photo="missing.jpg"),
        f.student(4, photo="big.jpg"),
        f.student(5, photo="fake.jpg"),
    ]
    archive = f.zip_bytes(
        {
            "photos/a.jpg": jpeg,
            "b.png": png,
            "big.jpg": f.image_bytes("JPEG", (600, 600), noise=True),
            "fake.jpg": b"this is not a picture",
        }
    )
    payload = await f.import_roster(gql, token, f.csv_bytes(rows), photos=archive)
    assert problems(payload) == {
        (4, "照片", "PHOTO_NOT_FOUND"),
        (5, "照片", "PHOTO_TOO_LARGE"),
        (6, "照片", "PHOTO_INVALID"),
    }
    assert await models.RosterRecord.all().count() == 0

    payload = await f.import_roster(gql, token, f.csv_bytes(rows[:2]), photos=archive)
    assert payload["created"] == 2, payload
    nodes = [e["node"] for e in (await gql.data(RECORDS, token=token))["rosterRecords"]["edges"]]
    urls = {n["idNumber"]: n["photoUrl"] for n in nodes}

    response = await client.get(urls[f.resident_id(1)])
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content == jpeg
    response = await client.get(urls[f.resident_id(2)])
    assert (response.headers["content-type"], response.content) == ("image/png", png)

    url = urlsplit(urls[f.resident_id(1)])
    other = urlsplit(urls[f.resident_id(2)])
    tampered = url.query[:-1] + ("0" if url.query[-1] != "0" else "1")
    assert (await client.get(f"{url.path}?{tampered}")).status_code == 403
    # a valid signature of one record does not open another
    assert (await client.get(f"{url.path}?{other.query}")).status_code == 403
    assert (await client.get(url.path)).status_code == 403
    clock.advance(timedelta(minutes=16))
    assert (await client.get(urls[f.resident_id(1)])).status_code == 403

    # A re-import without the photo column keeps the photos on file.
    clock.reset()
    again = await f.import_roster(gql, token, f.csv_bytes([f.student(1), f.student(2)]))
    assert again["unchanged"] == 2
    assert await models.RosterRecord.filter(photo_digest="").count() == 0


async def test_school_admin_imports_only_their_own_school(gql):
    await f.geography()
    pku = await f.admin(gql, "pku@cet.example.cn", Role.SCHOOL_ADMIN, school_code="10001")
    rows = [f.student(1), f.student(2, school_code="10558")]
    payload = await f.import_roster(gql, pku, f.csv_bytes(rows))
    assert problems(payload) == {(3, "学校代码", "OUT_OF_SCOPE")}
    assert await models.RosterRecord.all().count() == 0

    # A student already on another school's roster cannot be taken over by re-listing them.
    national = await f.national(gql)
    await f.import_roster(gql, national, f.csv_bytes([f.student(7, school_code="10558")]))
    payload = await f.import_roster(gql, pku, f.csv_bytes([f.student(1), f.student(7)]))
    assert problems(payload) == {(3, "证件号码", "HELD_BY_ANOTHER_SCHOOL")}

    payload = await f.import_roster(gql, pku, f.csv_bytes([f.student(1)]))
    assert payload["created"] == 1

    guangdong = await f.admin(gql, "gd@cet.example.cn", Role.PROVINCE_ADMIN, province_code="44")
    payload = await f.import_roster(
        gql, guangdong, f.csv_bytes([f.student(7, school_code="10558", major="法学")])
    )
    assert payload["updated"] == 1


async def test_candidates_cannot_import(gql):
    await f.geography()
    token = await f.candidate(gql, 1, name="张三")
    result = await f.upload(
        gql,
        f.IMPORT_ROSTER,
        {"input": {"sessionCode": "2026H1"}},
        {"input.file": ("roster.csv", f.csv_bytes([f.student(1)]))},
        token=token,
    )
    assert result["data"] is None
    assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await models.RosterRecord.all().count() == 0


async def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [str(ROOT / ".venv/bin/cetgql"), "import-roster", *args, "--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(ROOT)},
    )


async def test_command_line_import_with_photo_folder(database_url, tmp_path):
    await f.geography()
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "2023000001.JPG").write_bytes(f.image_bytes("JPEG"))
    roster = tmp_path / "roster.csv"
    roster.write_bytes(
        f.csv_bytes([f.student(1, photo="2023000001.jpg"), f.student(2), f.student(3)])
    )
    done = await _cli(database_url, str(roster), "--session", "2026H1", "--photos", str(photos))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 created, 0 updated, 0 unchanged" in done.stdout
    assert await models.RosterRecord.all().count() == 3
    assert await models.RosterRecord.exclude(photo_digest="").count() == 1

    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        f.csv_bytes(
            [
                f.student(1, department="法学院"),
                f.student(2, campus_code="8"),
                f.student(4, id_number="123"),
            ]
        )
    )
    done = await _cli(database_url, str(bad), "--session", "2026H1")
    assert done.returncode == 1
    assert "ROSTER_INVALID" in done.stdout
    assert "line 3\t校区代码\tUNKNOWN_CAMPUS\t" in done.stdout
    assert "line 4\t证件号码\tINVALID_ID_NUMBER\t" in done.stdout
    departments = set(await models.RosterRecord.all().values_list("department", flat=True))
    assert departments == {"外国语学院"}  # nothing from the bad file was written

    done = await _cli(database_url, str(roster), "--session", "1999H1")
    assert done.returncode == 1 and "SESSION_NOT_FOUND" in done.stdout
