"""Demo data for ``cetgql demo``: a small but realistic country to click through in GraphiQL.

What one seed leaves in the database (and a second seed leaves unchanged):

- the subject catalogue and the sessions 2026H1 and 2025H2;
- 2 provinces (北京市 11, 广东省 44), 4 schools with 7 campuses: 10001 北京大学 (本部, 医学部),
  10003 清华大学 (本部), 10558 中山大学 (广州校区南校园, 珠海校区), 10561 华南理工大学 (五山校区,
  大学城校区);
- a 2026H1 roster of 300 students with valid resident IDs and photos, among them minority
  names with a middle dot and names with rare characters (𠀀, 𪚥), and the demo candidate
  张三 (RESIDENT_ID 11010519491231002X, 北京大学 本部);
- 5 accounts: the candidate 张三 and four admins (national, 北京市, 广东省, 北京大学).

The roster goes through the real import (``roster_import.import_roster``) and the accounts
through the accounts service, so the demo exercises the same rules as production. Everything
is generated from a fixed random seed, so a second run finds every row unchanged.
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
import zipfile
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from cetgql.models import Account, Campus, IdType, OralCenter, Province, Role, School, SubjectKind
from cetgql.payments.manager import registry
from cetgql.services import (
    accounts,
    catalog,
    clock,
    identity,
    oral_centers,
    provider_settings,
    registration_setup,
    roster_import,
)
from cetgql.settings import get_settings

ROSTER_SESSION = "2026H1"
SESSIONS = ("2026H1", "2025H2")
ROSTER_SIZE = 300
CANDIDATE = {
    "name": "张三",
    "id_number": "11010519491231002X",
    "phone": "13800138000",
    "email": "zhangsan@example.cn",
    "password": "Cet@2026demo",
}
ADMIN_PASSWORD = "Cet@2026admin"  # noqa: S105 - a published demo credential
ADMINS: tuple[dict[str, Any], ...] = (
    {"name": "考试中心管理员", "email": "admin@cet.example.cn", "role": Role.NATIONAL_ADMIN},
    {
        "name": "北京教育考试院",
        "email": "beijing@cet.example.cn",
        "role": Role.PROVINCE_ADMIN,
        "province_code": "11",
    },
    {
        "name": "广东省教育考试院",
        "email": "guangdong@cet.example.cn",
        "role": Role.PROVINCE_ADMIN,
        "province_code": "44",
    },
    {
        "name": "北京大学教务部",
        "email": "pku@cet.example.cn",
        "role": Role.SCHOOL_ADMIN,
        "school_code": "10001",
    },
)

PROVINCES = {"11": "北京市", "44": "广东省"}


@dataclass(frozen=True)
class CampusSpec:
    code: str
    name: str
    address: str
    students: int
    majors: tuple[tuple[str, str], ...]  # (department, major)


@dataclass(frozen=True)
class SchoolSpec:
    code: str
    name: str
    province: str
    campuses: tuple[CampusSpec, ...]


SCHOOLS: tuple[SchoolSpec, ...] = (
    SchoolSpec("10001", "北京大学", "11", (
        CampusSpec("1", "本部", "北京市海淀区颐和园路5号", 70, (
            ("外国语学院", "英语"), ("信息科学技术学院", "计算机科学与技术"),
            ("经济学院", "经济学"), ("法学院", "法学"), ("外国语学院", "日语"),
        )),
        CampusSpec("2", "医学部", "北京市海淀区学院路38号", 20, (
            ("基础医学院", "基础医学"), ("药学院", "药学"),
        )),
    )),
    SchoolSpec("10003", "清华大学", "11", (
        CampusSpec("1", "本部", "北京市海淀区双清路30号", 70, (
            ("计算机科学与技术系", "计算机科学与技术"), ("电子工程系", "电子信息工程"),
            ("经济管理学院", "金融学"), ("建筑学院", "建筑学"),
        )),
    )),
    SchoolSpec("10558", "中山大学", "44", (
        CampusSpec("1", "广州校区南校园", "广东省广州市海珠区新港西路135号", 55, (
            ("外国语学院", "日语"), ("岭南学院", "经济学"), ("中山医学院", "临床医学"),
        )),
        CampusSpec("2", "珠海校区", "广东省珠海市香洲区唐家湾", 25, (
            ("海洋科学学院", "海洋科学"), ("国际金融学院", "金融学"),
        )),
    )),
    SchoolSpec("10561", "华南理工大学", "44", (
        CampusSpec("1", "五山校区", "广东省广州市天河区五山路381号", 40, (
            ("计算机科学与工程学院", "软件工程"), ("机械与汽车工程学院", "机械工程"),
        )),
        CampusSpec("2", "大学城校区", "广东省广州市番禺区广州大学城", 20, (
            ("生物科学与工程学院", "生物工程"), ("设计学院", "工业设计"),
        )),
    )),
)  # fmt: skip

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余"
_GIVEN_MALE = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波宇浩凯健俊帆"
_GIVEN_FEMALE = "芳娜敏静丽艳娟霞秀玲桂英慧莹雪琳晶妍婷雯倩颖"
# Minority names keep their middle dot (A2); the roster stores U+00B7.
_MINORITY = (
    ("阿依古丽·买买提", "F", "650102"),
    ("买买提·艾力", "M", "650102"),
    ("迪丽娜尔·阿不都", "F", "650104"),
    ("艾尔肯·吐尔逊", "M", "650103"),
    ("古丽米拉·卡德尔", "F", "650102"),
    ("努尔兰·巴合提", "M", "654002"),
)
# Rare characters outside the Basic Multilingual Plane (4-byte UTF-8) must survive (A2).
_RARE = (("李𠀀", "M", "440104"), ("王𪚥", "F", "110108"))
_REGIONS = (
    "110105", "110108", "110101", "110102", "440106", "440104", "440305", "440103",
    "310104", "320102", "330106", "420106", "430104", "510107", "610113", "370102",
)  # fmt: skip
_COLOURS = ((70, 120, 180), (60, 150, 110), (180, 90, 70), (130, 90, 170), (200, 140, 50),
            (60, 140, 160), (150, 110, 80), (90, 100, 120))  # fmt: skip
_FONT_PATHS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",
)
HEADER = ("学校代码", "校区代码", "姓名", "证件类型", "证件号码", "性别", "学号", "院系", "专业",
          "入学年份", "学历层次", "可报科目", "报考限制", "照片")  # fmt: skip


def resident_id(region: str, born: date, sequence: int) -> str:
    """A valid GB 11643 number: region, birth date, sequence (odd = male), check character."""
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + identity.resident_id_check_char(first17)


@lru_cache(maxsize=1)
def _font() -> Any:
    from PIL import ImageFont

    for path in _FONT_PATHS:
        if Path(path).is_file():
            try:
                return ImageFont.truetype(path, 32)
            except OSError:
                continue
    return None


def avatar(name: str, colour: tuple[int, int, int]) -> bytes:
    """A small ID-style JPEG: a coloured background, a head-and-shoulders silhouette and the
    first character of the name when a CJK font is installed."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (120, 160), colour)
    draw = ImageDraw.Draw(image)
    shade = tuple(min(255, c + 70) for c in colour)
    draw.ellipse((35, 30, 85, 85), fill=shade)
    draw.rounded_rectangle((15, 95, 105, 175), radius=30, fill=shade)
    font = _font()
    if font is not None:
        draw.text((60, 58), name[0], fill=colour, font=font, anchor="mm")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=70, optimize=True)
    return out.getvalue()


@dataclass
class _Student:
    school: str
    campus: str
    name: str
    gender: str
    id_number: str
    student_number: str
    department: str
    major: str
    year: int
    level: str
    subjects: str
    restrictions: str
    photo: str


def _subjects_for(major: str, year: int, level: str, rng: random.Random) -> tuple[str, str]:
    if major == "日语":
        return "CJT4;CJT6;CET4", ""
    if year >= 2025 and level == "本科":
        return "CET4", "新生第一学年仅可报考英语四级。"
    if rng.random() < 0.12:
        return "CET4;CET-SET4", "六级报考资格须通过学校审核。"
    return "CET4;CET6;CET-SET4;CET-SET6", ""


def students() -> list[_Student]:
    """The demo roster, the same on every call."""
    rng = random.Random(2026)
    used: set[str] = {CANDIDATE["id_number"]}
    special = list(_MINORITY + _RARE)
    result = [
        _Student("10001", "1", "张三", "", CANDIDATE["id_number"], "2023010001", "外国语学院",
                 "英语", 2023, "本科", "CET4;CET6;CET-SET4;CET-SET6", "", "2023010001.jpg")
    ]  # fmt: skip
    serial = 1
    for school in SCHOOLS:
        for campus in school.campuses:
            count = campus.students - (1 if (school.code, campus.code) == ("10001", "1") else 0)
            for _ in range(count):
                serial += 1
                if special and rng.random() < 0.05:
                    name, gender, region = special.pop(0)
                else:
                    gender = rng.choice("MF")
                    given = _GIVEN_MALE if gender == "M" else _GIVEN_FEMALE
                    name = rng.choice(_SURNAMES) + "".join(
                        rng.choice(given) for _ in range(rng.choice((1, 2, 2)))
                    )
                    region = rng.choice(_REGIONS)
                level = "研究生" if rng.random() < 0.1 else "本科"
                year = rng.choice((2022, 2023, 2024, 2025)) if level == "本科" else 2025
                born = date(year - 19, 1, 1) + timedelta(days=rng.randrange(0, 730))
                while True:
                    sequence = rng.randrange(1, 999)
                    if (sequence % 2 == 1) != (gender == "M"):
                        sequence += 1
                    number = resident_id(region, born, sequence)
                    if number not in used:
                        used.add(number)
                        break
                department, major = rng.choice(campus.majors)
                subjects, restrictions = _subjects_for(major, year, level, rng)
                student_number = f"{year}{school.code[-2:]}{serial:04d}"
                result.append(
                    _Student(school.code, campus.code, name, "男" if gender == "M" else "女",
                             number, student_number, department, major, year, level, subjects,
                             restrictions, f"{student_number}.jpg")
                )  # fmt: skip
    # Any special name the dice skipped goes on the last campus, so every demo seed has them.
    while special:
        name, gender, region = special.pop(0)
        victim = result.pop()
        born = date(2004, 5, 17)
        sequence = 11 if gender == "M" else 12
        number = resident_id(region, born, sequence)
        while number in used:
            sequence += 2
            number = resident_id(region, born, sequence)
        used.add(number)
        result.append(
            _Student(victim.school, victim.campus, name, "男" if gender == "M" else "女", number,
                     victim.student_number, victim.department, victim.major, victim.year,
                     victim.level, victim.subjects, victim.restrictions, victim.photo)
        )  # fmt: skip
    assert len(result) == ROSTER_SIZE
    return result


def roster_files(roster: list[_Student]) -> tuple[bytes, bytes]:
    """The roster as a school would upload it: a CSV and a ZIP of photos."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(HEADER)
    for s in roster:
        writer.writerow(
            (s.school, s.campus, s.name, "居民身份证", s.id_number, s.gender, s.student_number,
             s.department, s.major, s.year, s.level, s.subjects, s.restrictions, s.photo)
        )  # fmt: skip
    photos = io.BytesIO()
    with zipfile.ZipFile(photos, "w", zipfile.ZIP_STORED) as archive:
        for index, s in enumerate(roster):
            info = zipfile.ZipInfo(f"photos/{s.photo}", date_time=(2026, 3, 1, 0, 0, 0))
            archive.writestr(info, avatar(s.name, _COLOURS[index % len(_COLOURS)]))
    return text.getvalue().encode("utf-8"), photos.getvalue()


async def _geography() -> None:
    provinces = {}
    for code, name in PROVINCES.items():
        provinces[code], _ = await Province.get_or_create(code=code, defaults={"name": name})
    for spec in SCHOOLS:
        school, _ = await School.get_or_create(
            code=spec.code, defaults={"name": spec.name, "province": provinces[spec.province]}
        )
        for campus in spec.campuses:
            await Campus.get_or_create(
                school=school,
                code=campus.code,
                defaults={"name": campus.name, "address": campus.address},
            )


async def _accounts() -> None:
    exists = await Account.exists(id_type=IdType.RESIDENT_ID, id_number=CANDIDATE["id_number"])
    if not exists:
        await accounts.sign_up(
            name=CANDIDATE["name"],
            id_type=IdType.RESIDENT_ID,
            id_number=CANDIDATE["id_number"],
            phone=CANDIDATE["phone"],
            email=CANDIDATE["email"],
            password=CANDIDATE["password"],
            client_address="demo-seed",
        )
    for admin in ADMINS:
        await accounts.create_admin(password=ADMIN_PASSWORD, **admin)


# Fees in fen (P5): written 30–37 yuan depending on the province, oral 50 yuan.
WRITTEN_FEES = {"11": 3000, "44": 3500}
ORAL_FEE = 5000
# Two oral centres per province, with few seats so that "seats full" can be seen in the demo.
ORAL_CENTRES = {
    "11": (("110001", "北京外国语大学口试考点", 40), ("110002", "北京语言大学口试考点", 8)),
    "44": (("440001", "中山大学口试考点", 40), ("440002", "华南理工大学口试考点", 8)),
}


async def _registration_setup() -> None:
    """Open windows, set fees and oral centres the way province admins would (S3, S6, P5)."""
    now = clock.now()
    subjects = await catalog.ensure_catalogue()
    for code in PROVINCES:
        for kind in (SubjectKind.WRITTEN, SubjectKind.ORAL):
            await registration_setup.set_window(
                None,
                session_code=ROSTER_SESSION,
                province_code=code,
                school_code=None,
                kind=kind,
                opens_at=now - timedelta(days=1),
                closes_at=now + timedelta(days=60),
            )
        await registration_setup.set_fees(
            None,
            session_code=ROSTER_SESSION,
            province_code=code,
            items=[
                registration_setup.FeeItem(
                    subject_code=s.code,
                    fen=ORAL_FEE if s.kind == SubjectKind.ORAL else WRITTEN_FEES[code],
                )
                for s in subjects.values()
            ],
        )
        existing = set(
            await OralCenter.filter(session__code=ROSTER_SESSION).values_list("code", flat=True)
        )
        for centre_code, name, capacity in ORAL_CENTRES[code]:
            if centre_code not in existing:
                await oral_centers.create_center(
                    None,
                    session_code=ROSTER_SESSION,
                    province_code=code,
                    code=centre_code,
                    name=name,
                    capacity=capacity,
                )


async def _payment_setup() -> list[str]:
    """Turn every installed provider on in both provinces against its sandbox (P1)."""
    sandbox_base = f"{get_settings().public_url}/sandbox"
    names = []
    for provider in registry():
        values = provider.sandbox_merchant(f"{sandbox_base}/{provider.name}")
        for code in PROVINCES:
            await provider_settings.set_provider(
                None,
                province_code=code,
                provider=provider.name,
                enabled=True,
                values=[provider_settings.SettingValue(k, v) for k, v in values.items()],
            )
        names.append(provider.name)
    return names


async def seed() -> str:
    """Create (or bring back) the demo data; safe to run any number of times."""
    await catalog.ensure_catalogue()
    for code in SESSIONS:
        await catalog.ensure_session(code)
    await _geography()
    roster = students()
    content, photos = await asyncio.to_thread(roster_files, roster)
    result = await roster_import.import_roster(
        actor=None,
        session_code=ROSTER_SESSION,
        content=content,
        filename="demo-roster.csv",
        photos_zip=photos,
        client_address="demo-seed",
    )
    if not result.ok:  # the generator and the rules disagree: a bug, say exactly where
        details = "; ".join(f"line {p.line} {p.column} {p.code}" for p in result.problems[:5])
        raise RuntimeError(f"demo roster rejected: {details}")
    await _accounts()
    await _registration_setup()
    providers = await _payment_setup()
    url = get_settings().public_url
    lines = [
        f"Demo data ready: {len(SCHOOLS)} schools, {ROSTER_SIZE} students on the "
        f"{ROSTER_SESSION} roster (created {result.created}, updated {result.updated}, "
        f"unchanged {result.unchanged}).",
        "Accounts (sign in with the email, the phone or the ID number):",
        f"  candidate  张三  {CANDIDATE['email']} / {CANDIDATE['phone']} / "
        f"{CANDIDATE['id_number']}  password {CANDIDATE['password']}",
    ]
    for admin in ADMINS:
        scope = admin.get("province_code") or admin.get("school_code") or "all"
        lines.append(
            f"  {admin['role'].value.lower():15} {admin['email']:26} scope {scope:5} "
            f"password {ADMIN_PASSWORD}"
        )
    lines.append(
        f"Registration is open, fees and oral centres are set; payment sandboxes: "
        f"{', '.join(providers) or 'none installed'} (at {url}/sandbox/...)."
    )
    lines.append(
        f"GraphiQL: {url}/graphql — run SignIn, then VerifyQualification for session "
        f"{ROSTER_SESSION} with 张三's name and ID."
    )
    return "\n".join(lines)
