"""Roster import speed: N generated students (CSV, then XLSX), imported, then re-imported.

    .venv/bin/python benchmarks/roster_import.py [--rows 20000] [--database-url URL]

Without ``--database-url`` a throw-away SQLite file is used; for PostgreSQL pass a URL of an
empty database you may drop tables in (the schema is migrated first). Prints seconds per stage.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import tempfile
import time
import zipfile
from datetime import date, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

from openpyxl import Workbook

from cetgql import db
from cetgql.models import Campus, Province, RosterRecord, School
from cetgql.services import catalog, identity, roster_import
from cetgql.settings import Settings, configure

HEADER = ["学校代码", "校区代码", "姓名", "证件类型", "证件号码", "性别", "学号", "院系", "专业",
          "入学年份", "学历层次", "可报科目"]  # fmt: skip


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"


def name(i: int) -> str:
    return SURNAMES[i % 20] + GIVEN[(i // 20) % len(GIVEN)] + GIVEN[(i // 500) % len(GIVEN)]


def rows(count: int) -> list[list[str]]:
    out = []
    born = date(2003, 1, 1)
    for i in range(count):
        day = born + timedelta(days=i % 1800)
        first17 = f"440106{day:%Y%m%d}{i % 1000:03d}"
        # vary the region so 20k+ rows stay unique
        first17 = f"44{(i // 1000) % 100:02d}06" + first17[6:]
        number = first17 + identity.resident_id_check_char(first17)
        out.append(["10558", "1", name(i), "居民身份证", number, "", f"2023{i:06d}",
                    "外国语学院", "英语", "2023", "本科", "CET4;CET6;CET-SET4"])  # fmt: skip
    return out


def as_csv(data: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(data)
    return buffer.getvalue().encode("utf-8-sig")


def _column(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def as_excel_xlsx(data: list[list[str]]) -> bytes:
    """XLSX the way Excel and WPS save it: text in the shared-strings table (openpyxl writes
    inline strings instead, which openpyxl reads about three times slower)."""
    strings: dict[str, int] = {}
    rows = []
    for r, row in enumerate([HEADER, *data], start=1):
        cells = "".join(
            f'<c r="{_column(c)}{r}" t="s"><v>{strings.setdefault(str(v), len(strings))}</v></c>'
            for c, v in enumerate(row)
        )
        rows.append(f'<row r="{r}">{cells}</row>')
    size = f"A1:{_column(len(HEADER) - 1)}{len(data) + 1}"
    sheet = f'{_XML}<worksheet xmlns="{_MAIN}"><dimension ref="{size}"/><sheetData>'
    sheet += "".join(rows) + "</sheetData></worksheet>"
    table = "".join(f"<si><t>{escape(text)}</t></si>" for text in strings)
    shared = f'{_XML}<sst xmlns="{_MAIN}" uniqueCount="{len(strings)}">{table}</sst>'
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            f'{_XML}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            f'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_CT}.worksheet+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_CT}.sharedStrings+xml"/>'
            "</Types>",
        )
        archive.writestr(
            "_rels/.rels",
            f'{_XML}<Relationships xmlns="{_RELS}"><Relationship Id="rId1" '
            f'Type="{_DOC}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        archive.writestr(
            "xl/workbook.xml",
            f'{_XML}<workbook xmlns="{_MAIN}" xmlns:r="{_DOC}"><sheets>'
            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            f'{_XML}<Relationships xmlns="{_RELS}">'
            f'<Relationship Id="rId1" Type="{_DOC}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{_DOC}/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>",
        )
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
        archive.writestr("xl/sharedStrings.xml", shared)
    return out.getvalue()


def as_xlsx(data: list[list[str]]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(HEADER)
    for row in data:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def run(url: str, count: int) -> None:
    await db.migrate(url)
    await db.connect(url)
    try:
        await RosterRecord.all().delete()
        province, _ = await Province.get_or_create(code="44", defaults={"name": "广东省"})
        school, _ = await School.get_or_create(
            code="10558", defaults={"name": "中山大学", "province": province}
        )
        await Campus.get_or_create(school=school, code="1", defaults={"name": "南校园"})
        await catalog.ensure_session("2026H1")
        data = rows(count)
        formats = (
            ("csv", as_csv(data)),
            ("xlsx (Excel)", as_excel_xlsx(data)),
            ("xlsx (openpyxl)", as_xlsx(data)),
        )
        for label, content in formats:
            await RosterRecord.all().delete()
            for attempt in ("first import", "re-import (unchanged)"):
                started = time.perf_counter()
                result = await roster_import.import_roster(
                    actor=None, session_code="2026H1", content=content
                )
                elapsed = time.perf_counter() - started
                assert result.ok, result.problems[:3]
                print(
                    f"{label:15} {attempt:22} {count} rows: {elapsed:6.2f} s "
                    f"(created {result.created}, updated {result.updated}, "
                    f"unchanged {result.unchanged})"
                )
        # every row changed: the update path
        changed = [[*r[:7], "法学院", *r[8:]] for r in data]
        started = time.perf_counter()
        result = await roster_import.import_roster(
            actor=None, session_code="2026H1", content=as_csv(changed)
        )
        print(
            f"{'csv':15} {'re-import (all changed)':22} {count} rows: "
            f"{time.perf_counter() - started:6.2f} s "
            f"(updated {result.updated})"
        )
    finally:
        await db.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    url = args.database_url or f"sqlite://{Path(tempfile.mkdtemp()) / 'bench.sqlite3'}"
    configure(Settings(database_url=url))
    print(f"database: {url.split('@')[-1]}")
    asyncio.run(run(db.normalise_url(url), args.rows))


if __name__ == "__main__":
    main()
