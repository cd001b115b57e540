"""Set-up helpers for the roster and qualification tests: schools, roster files, photos,
accounts with tokens, and GraphQL multipart uploads as a partner front end sends them.

Accounts are made through the accounts service or the signUp/signIn mutations; the behaviour
under test always goes through GraphQL (or the command line)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import Any

from openpyxl import Workbook
from PIL import Image

from cetgql import models
from cetgql.models import Role
from cetgql.services import accounts, catalog, identity

SESSION = "2026H1"
PASSWORD = "Cet@2026test"
ADMIN_PASSWORD = "Admin@2026test"
USER_ERRORS = "userErrors { field code message retryAfter }"

HEADER_ZH = {
    "school_code": "学校代码",
    "campus_code": "校区代码",
    "name": "姓名",
    "id_type": "证件类型",
    "id_number": "证件号码",
    "gender": "性别",
    "student_number": "学号",
    "department": "院系",
    "major": "专业",
    "enrollment_year": "入学年份",
    "education_level": "学历层次",
    "eligible_subjects": "可报科目",
    "restrictions": "报考限制",
    "photo": "照片",
}

IMPORT_ROSTER = f"""
mutation($input: ImportRosterInput!) {{
  importRoster(input: $input) {{
    created updated unchanged
    problems {{ line column code message }}
    {USER_ERRORS}
  }}
}}"""


def resident_id(serial: int, region: str = "110105", born: str = "20040312") -> str:
    first17 = f"{region}{born}{serial % 1000:03d}"
    return first17 + identity.resident_id_check_char(first17)


def student(serial: int, **changes: Any) -> dict[str, Any]:
    """A valid roster row of 北京大学 本部."""
    row: dict[str, Any] = {
        "school_code": "10001",
        "campus_code": "1",
        "name": "学生"
        + "甲乙丙丁戊己庚辛壬癸"[serial % 10]
        + "子丑寅卯辰巳午未申酉"[serial // 10 % 10],
        "id_type": "居民身份证",
        "id_number": resident_id(serial),
        "gender": "",
        "student_number": f"2023{serial:06d}",
        "department": "外国语学院",
        "major": "英语",
        "enrollment_year": "2023",
        "education_level": "本科",
        "eligible_subjects": "CET4;CET6;CET-SET4",
        "restrictions": "",
        "photo": "",
    }
    row.update(changes)
    return row


def csv_bytes(rows: list[dict[str, Any]], *, encoding: str = "utf-8-sig", zh: bool = True) -> bytes:
    columns = list(HEADER_ZH)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow([HEADER_ZH[c] if zh else c for c in columns])
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    return text.getvalue().encode(encoding)


def xlsx_bytes(rows: list[dict[str, Any] | None]) -> bytes:
    """An XLSX with Chinese headers; ``None`` makes a blank row (still counted as a line)."""
    book = Workbook()
    sheet = book.active
    columns = list(HEADER_ZH)
    sheet.append([HEADER_ZH[c] for c in columns])
    for row in rows:
        sheet.append([None] * len(columns) if row is None else [row.get(c, "") for c in columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def image_bytes(
    kind: str = "JPEG", size: tuple[int, int] = (90, 120), noise: bool = False
) -> bytes:
    image = Image.new("RGB", size, (40, 90, 160))
    if noise:  # random pixels do not compress: a big file
        image = Image.frombytes("RGB", size, bytes(__import__("os").urandom(size[0] * size[1] * 3)))
    out = io.BytesIO()
    image.save(out, format=kind, quality=95)
    return out.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return out.getvalue()


async def geography() -> None:
    """Two provinces, three schools, five campuses, and the session with its catalogue."""
    await catalog.ensure_session(SESSION)
    beijing = await models.Province.create(code="11", name="北京市")
    guangdong = await models.Province.create(code="44", name="广东省")
    pku = await models.School.create(code="10001", name="北京大学", province=beijing)
    thu = await models.School.create(code="10003", name="清华大学", province=beijing)
    sysu = await models.School.create(code="10558", name="中山大学", province=guangdong)
    await models.Campus.create(school=pku, code="1", name="本部", address="颐和园路5号")
    await models.Campus.create(school=pku, code="2", name="医学部")
    await models.Campus.create(school=thu, code="1", name="本部")
    await models.Campus.create(school=sysu, code="1", name="南校园")
    await models.Campus.create(school=sysu, code="2", name="珠海校区")


SIGN_UP = f"""
mutation($input: SignUpInput!) {{ signUp(input: $input) {{ account {{ id }} {USER_ERRORS} }} }}"""
SIGN_IN = f"""
mutation($input: SignInInput!) {{ signIn(input: $input) {{ token {USER_ERRORS} }} }}"""


async def sign_in(gql: Any, login: str, password: str) -> str:
    data = await gql.data(SIGN_IN, {"input": {"login": login, "password": password}})
    token = data["signIn"]["token"]
    assert token, data
    return str(token)


async def candidate(
    gql: Any, serial: int, *, name: str, id_number: str | None = None, id_type: str = "RESIDENT_ID"
) -> str:
    """Sign a candidate up through GraphQL and sign them in; their bearer token."""
    values = {
        "name": name,
        "idType": id_type,
        "idNumber": id_number or resident_id(serial),
        "phone": f"139{serial:08d}",
        "email": f"student{serial}@example.cn",
        "password": PASSWORD,
    }
    data = await gql.data(SIGN_UP, {"input": values})
    assert data["signUp"]["userErrors"] == [], data
    return await sign_in(gql, values["email"], PASSWORD)


async def admin(
    gql: Any,
    email: str,
    role: Role,
    *,
    school_code: str | None = None,
    province_code: str | None = None,
) -> str:
    """An administrator made as `cetgql create-admin` makes one, signed in; the token."""
    await accounts.create_admin(
        name="管理员",
        email=email,
        password=ADMIN_PASSWORD,
        role=role,
        school_code=school_code,
        province_code=province_code,
    )
    return await sign_in(gql, email, ADMIN_PASSWORD)


async def national(gql: Any) -> str:
    return await admin(gql, "admin@cet.example.cn", Role.NATIONAL_ADMIN)


def _set_path(variables: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target = variables
    for key in parents:
        target = target[key]
    target[last] = value


async def upload(
    gql: Any,
    query: str,
    variables: dict[str, Any],
    files: dict[str, tuple[str, bytes]],
    *,
    token: str | None = None,
) -> dict[str, Any]:
    """POST a GraphQL multipart request (spec: operations + map + file parts).

    ``files`` maps a variable path such as ``input.file`` to (file name, content).
    """
    variables = json.loads(json.dumps(variables))
    file_map: dict[str, list[str]] = {}
    parts: dict[str, tuple[str, bytes, str]] = {}
    for index, (path, (name, content)) in enumerate(files.items()):
        _set_path(variables, path, None)
        file_map[str(index)] = [f"variables.{path}"]
        parts[str(index)] = (name, content, "application/octet-stream")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await gql.http.post(
        "/graphql",
        data={
            "operations": json.dumps({"query": query, "variables": variables}),
            "map": json.dumps(file_map),
        },
        files=parts,
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return response.json()


async def import_roster(
    gql: Any,
    token: str,
    content: bytes,
    *,
    filename: str = "roster.csv",
    photos: bytes | None = None,
    session: str = SESSION,
) -> dict[str, Any]:
    """The importRoster payload (asserting no top-level errors)."""
    files = {"input.file": (filename, content)}
    if photos is not None:
        files["input.photos"] = ("photos.zip", photos)
    result = await upload(
        gql, IMPORT_ROSTER, {"input": {"sessionCode": session}}, files, token=token
    )
    assert "errors" not in result, result
    return result["data"]["importRoster"]
