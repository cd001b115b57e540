"""School roster (学籍) import: CSV or XLSX in, every bad row reported, all rows or none written.

The roster is what qualification (Q1) matches candidates against, so a half-imported file would
let some students through and silently lock others out. The import therefore validates the whole
file first and reports every problem with the line number the school sees in its spreadsheet
(header = line 1); only a clean file is written, in one transaction. Records are keyed by
(session, ID type, ID number), so re-importing a corrected file updates rows instead of
duplicating them, and rows whose content did not change are not touched at all (their
``updated_at`` keeps meaning "the school changed this").

Rows absent from a re-import are kept: a file is often one department's list, not the whole
school, so absence is not a deletion. A row whose photo cell is empty keeps the photo on file
for the same reason.

Schools export CSV in UTF-8 (with or without BOM) or, from Chinese Excel, GB18030; both are
read. Header names may be the English keys or the usual Chinese labels.

The same code path serves the command line (``cetgql import-roster``, a national admin), the
GraphQL ``importRoster`` mutation (school, province or national admins, limited to their scope)
and the demo seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tortoise.transactions import in_transaction

from cetgql.models import (
    Account,
    Campus,
    ExamSession,
    IdType,
    RosterRecord,
    School,
    SessionSubject,
    Subject,
)
from cetgql.services import access, audit, clock, identity
from cetgql.services.errors import DomainError, ErrorCode, message_for

if TYPE_CHECKING:
    from rich.console import Console

T = TypeVar("T")

MAX_FILE_BYTES = 32 * 1024 * 1024  # ~200k rows of a typical roster
MAX_PHOTOS_BYTES = 512 * 1024 * 1024
MAX_PHOTO_BYTES = 200 * 1024
MAX_ROWS = 200_000
PHOTO_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}
_LOOKUP_CHUNK = 2000  # keeps IN (...) lists well under SQLite's bound-parameter limit

# Canonical column → its header in the report when the file lacks it, and accepted aliases.
COLUMNS: dict[str, tuple[str, ...]] = {
    "school_code": ("学校代码", "学校编码", "院校代码", "学校标识码", "schoolcode", "school"),
    "campus_code": ("校区代码", "校区编码", "校区号", "校区", "campuscode", "campus"),
    "name": ("姓名", "考生姓名", "学生姓名", "name"),
    "id_type": ("证件类型", "idtype"),
    "id_number": ("证件号码", "证件号", "身份证号", "身份证号码", "idnumber", "idno"),
    "gender": ("性别", "gender", "sex"),
    "student_number": ("学号", "studentnumber", "studentno", "studentid"),
    "department": ("院系", "学院", "系别", "department", "dept"),
    "major": ("专业", "major"),
    "enrollment_year": ("入学年份", "入学年级", "年级", "enrollmentyear", "grade"),
    "education_level": ("学历层次", "培养层次", "学历", "educationlevel", "level"),
    "eligible_subjects": ("可报科目", "报考科目", "eligiblesubjects", "subjects"),
    "restrictions": ("报考限制", "限制说明", "restrictions"),
    "photo": ("照片", "照片文件", "photo", "photofile"),
}
REQUIRED_COLUMNS = ("school_code", "campus_code", "name", "id_number", "eligible_subjects")
_MAX_LENGTHS = {
    "student_number": 32,
    "department": 128,
    "major": 128,
    "education_level": 16,
    "restrictions": 255,
    "photo": 255,
}

_ID_TYPE_LABELS: dict[str, IdType] = {
    "居民身份证": IdType.RESIDENT_ID,
    "身份证": IdType.RESIDENT_ID,
    "中华人民共和国居民身份证": IdType.RESIDENT_ID,
    "港澳居民来往内地通行证": IdType.HK_MACAO_PERMIT,
    "港澳通行证": IdType.HK_MACAO_PERMIT,
    "回乡证": IdType.HK_MACAO_PERMIT,
    "台湾居民来往大陆通行证": IdType.TAIWAN_PERMIT,
    "台胞证": IdType.TAIWAN_PERMIT,
    "港澳居民居住证": IdType.HK_MACAO_RESIDENCE,
    "台湾居民居住证": IdType.TAIWAN_RESIDENCE,
    "护照": IdType.PASSPORT,
}
_GENDERS = {
    "男": "M", "M": "M", "MALE": "M", "1": "M", "男性": "M",
    "女": "F", "F": "F", "FEMALE": "F", "2": "F", "女性": "F",
}  # fmt: skip
_SUBJECT_SEPARATORS = re.compile(r"[;,；，、\s]+")
_YEAR = re.compile(r"^(\d{4})(?:级|年|年级)?$")


def _header_key(text: str) -> str:
    """Fold the ways people write a header: case, spaces, ``_``/``-``, ``*`` and notes in
    brackets (``姓名*``, ``证件号码（必填）``, ``School Code``)."""
    folded = unicodedata.normalize("NFKC", text).strip().lower()
    folded = re.sub(r"\(.*?\)", "", folded)
    return re.sub(r"[\s_\-*]+", "", folded)


_ALIASES: dict[str, str] = {}
for _canonical, _names in COLUMNS.items():
    _ALIASES[_header_key(_canonical)] = _canonical
    for _name in _names:
        _ALIASES[_header_key(_name)] = _canonical


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowProblem:
    """One thing wrong in the file, where the school will look for it."""

    line: int  # 1-based, as a spreadsheet or text editor shows it; the header is line 1
    column: str  # the header as written in the file (the Chinese label if the column is missing)
    code: ErrorCode
    value: str | None = None  # the offending cell, shortened, to help find it
    other_line: int | None = None  # for duplicates: where the first occurrence is

    def message(self, language: str = "zh") -> str:
        text = message_for(self.code, language)
        if self.other_line is not None:
            text += (
                f"（与第 {self.other_line} 行重复）"
                if language != "en"
                else f" (same as line {self.other_line})"
            )
        if self.value:
            text += f" “{self.value}”" if language != "en" else f' "{self.value}"'
        return text


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


ProgressCallback = Callable[[str, int, int], None]
"""Called as ``(stage, done, total)``; stages are read, validate and write."""


def _report(progress: ProgressCallback | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


# --- photos --------------------------------------------------------------------------------


class PhotoSource(Protocol):
    """Where the files named in the photo column come from."""

    def size(self, name: str) -> int | None: ...

    def read(self, name: str) -> bytes: ...


def _base_name(name: str) -> str:
    """Only the file name: a cell like ``../../etc/passwd`` must not reach outside the source."""
    return PurePosixPath(name.replace("\\", "/")).name


class PhotoFolder:
    """Photos in a folder (command line). Names match exactly, else ignoring case."""

    def __init__(self, folder: Path) -> None:
        self._files = {p.name: p for p in folder.iterdir() if p.is_file()}
        self._folded = {name.lower(): p for name, p in self._files.items()}

    def _path(self, name: str) -> Path | None:
        base = _base_name(name)
        return self._files.get(base) or self._folded.get(base.lower())

    def size(self, name: str) -> int | None:
        path = self._path(name)
        return path.stat().st_size if path else None

    def read(self, name: str) -> bytes:
        path = self._path(name)
        assert path is not None
        return path.read_bytes()


class PhotoZip:
    """Photos in a ZIP upload (GraphQL). Folders inside the archive are ignored."""

    def __init__(self, content: bytes) -> None:
        if len(content) > MAX_PHOTOS_BYTES:
            raise DomainError.of(ErrorCode.FILE_TOO_LARGE, "photos")
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(content))
        except zipfile.BadZipFile as error:
            raise DomainError.of(ErrorCode.UNSUPPORTED_FILE, "photos") from error
        self._members: dict[str, zipfile.ZipInfo] = {}
        for info in self._zip.infolist():
            if info.is_dir():
                continue
            name = info.filename
            if not info.flag_bits & 0x800:
                # No UTF-8 flag: Chinese Windows archivers store names in GBK, which Python
                # has decoded as CP437. Undo that when it yields valid GB18030.
                with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
                    name = name.encode("cp437").decode("gb18030")
            self._members.setdefault(_base_name(name), info)
        self._folded = {name.lower(): info for name, info in self._members.items()}

    def _info(self, name: str) -> zipfile.ZipInfo | None:
        base = _base_name(name)
        return self._members.get(base) or self._folded.get(base.lower())

    def size(self, name: str) -> int | None:
        info = self._info(name)
        return info.file_size if info else None

    def read(self, name: str) -> bytes:
        info = self._info(name)
        assert info is not None
        with self._zip.open(info) as member:
            # The declared size can lie (zip bombs): never read more than the limit allows.
            return member.read(MAX_PHOTO_BYTES + 1)


@dataclass(frozen=True)
class Photo:
    content: bytes
    content_type: str
    digest: str


def check_photo(content: bytes) -> Photo:
    """A JPEG or PNG of at most 200 KB, or a coded error: what a ticket and the candidate's
    confirmation page can show."""
    from PIL import Image, UnidentifiedImageError

    if len(content) > MAX_PHOTO_BYTES:
        raise DomainError.of(ErrorCode.PHOTO_TOO_LARGE, "photo")
    try:
        with Image.open(io.BytesIO(content)) as image:
            kind = image.format or ""
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DomainError.of(ErrorCode.PHOTO_INVALID, "photo") from error
    if kind not in PHOTO_TYPES:
        raise DomainError.of(ErrorCode.PHOTO_INVALID, "photo")
    return Photo(content, PHOTO_TYPES[kind], hashlib.sha256(content).hexdigest())


# --- reading the file ----------------------------------------------------------------------


@dataclass
class Sheet:
    headers: list[str]
    rows: list[tuple[int, list[str]]]  # (line number, cells), blank rows left out


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # an ID or year Excel stored as a number
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _decode(content: bytes) -> str:
    if content.startswith(b"\xef\xbb\xbf"):
        return content[3:].decode("utf-8")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return content.decode("gb18030")  # Chinese Excel's "CSV" export
    except UnicodeDecodeError as error:
        raise DomainError.of(ErrorCode.UNSUPPORTED_FILE, "file", detail="(encoding)") from error


def _read_csv(content: bytes) -> Sheet:
    text = _decode(content)
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    headers: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    consumed = 0
    try:
        for record in reader:
            line = consumed + 1  # a quoted cell may span lines: report where the row starts
            consumed = reader.line_num
            if headers is None:
                headers = [cell.strip() for cell in record]
                continue
            cells = [cell.strip() for cell in record]
            if any(cells):
                rows.append((line, cells))
                if len(rows) > MAX_ROWS:
                    raise DomainError.of(ErrorCode.FILE_TOO_LARGE, "file")
    except csv.Error as error:
        raise DomainError.of(ErrorCode.UNSUPPORTED_FILE, "file") from error
    return Sheet(headers or [], rows)


def _read_xlsx(content: bytes) -> Sheet:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a damaged or foreign ZIP
        raise DomainError.of(ErrorCode.UNSUPPORTED_FILE, "file") from error
    try:
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # some writers record a wrong size; read what is there
        headers: list[str] | None = None
        rows: list[tuple[int, list[str]]] = []
        for line, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_cell_text(v) for v in values]
            if headers is None:
                headers = cells
                continue
            if any(cells):
                rows.append((line, cells))
                if len(rows) > MAX_ROWS:
                    raise DomainError.of(ErrorCode.FILE_TOO_LARGE, "file")
        return Sheet(headers or [], rows)
    finally:
        workbook.close()


def read_sheet(content: bytes) -> Sheet:
    """Rows of a CSV or XLSX file, told apart by content rather than by the file name."""
    if len(content) > MAX_FILE_BYTES:
        raise DomainError.of(ErrorCode.FILE_TOO_LARGE, "file")
    if content.startswith(b"PK\x03\x04"):
        return _read_xlsx(content)
    if content.startswith(b"\xd0\xcf\x11\xe0"):  # legacy .xls: ask for XLSX or CSV
        raise DomainError.of(ErrorCode.UNSUPPORTED_FILE, "file")
    if b"\x00" in content[:4096]:
        raise DomainError.of(ErrorCode.UNSUPPORTED_FILE, "file")
    return _read_csv(content)


# --- validation ----------------------------------------------------------------------------


@dataclass
class _Lookups:
    """What rows are checked against, loaded once as plain values."""

    schools: dict[str, tuple[int, int]]  # code → (school id, province id)
    campuses: dict[tuple[int, str], int]  # (school id, campus code) → campus id
    offered: set[str]  # subject codes of the session
    subject_names: dict[str, str]  # "英语四级" → "CET4"
    scope: access.Scope | None  # None: the national command line


@dataclass
class _Row:
    line: int
    school_id: int
    campus_id: int
    name: str
    id_type: IdType
    id_number: str
    gender: str
    student_number: str
    department: str
    major: str
    enrollment_year: int | None
    education_level: str
    eligible_subjects: list[str]
    restrictions: str
    photo_name: str
    photo: Photo | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.id_type.value, self.id_number)

    def content(self) -> tuple[Any, ...]:
        return (
            self.school_id,
            self.campus_id,
            self.name,
            self.gender,
            self.student_number,
            self.department,
            self.major,
            self.enrollment_year,
            self.education_level,
            self.eligible_subjects,
            self.restrictions,
        )


_CONTENT_FIELDS = (
    "school_id",
    "campus_id",
    "name",
    "gender",
    "student_number",
    "department",
    "major",
    "enrollment_year",
    "education_level",
    "eligible_subjects",
    "restrictions",
)


def parse_id_type(value: str) -> IdType:
    """An ID type from its enum name or its Chinese label; blank means a resident ID card."""
    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        return IdType.RESIDENT_ID
    if text in _ID_TYPE_LABELS:
        return _ID_TYPE_LABELS[text]
    try:
        id_type = IdType(text.upper().replace(" ", "_"))
    except ValueError as error:
        raise DomainError.of(ErrorCode.INVALID_FORMAT, "idType") from error
    if id_type == IdType.STAFF:
        raise DomainError.of(ErrorCode.ID_TYPE_NOT_ALLOWED, "idType")
    return id_type


def parse_gender(value: str, id_type: IdType, id_number: str) -> str:
    """M or F; blank is read from a resident ID (17th digit odd = male), else left blank."""
    text = unicodedata.normalize("NFKC", value).strip().upper()
    if text in _GENDERS:
        return _GENDERS[text]
    if text:
        raise DomainError.of(ErrorCode.INVALID_FORMAT, "gender")
    if id_type == IdType.RESIDENT_ID and len(id_number) == 18 and id_number[16].isdigit():
        return "M" if int(id_number[16]) % 2 else "F"
    return ""


def parse_enrollment_year(value: str) -> int | None:
    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        return None
    match = _YEAR.match(text)
    year = int(match.group(1)) if match else 0
    if not 1950 <= year <= clock.now().year + 1:
        raise DomainError.of(ErrorCode.INVALID_FORMAT, "enrollmentYear")
    return year


def parse_subjects(value: str, offered: set[str], names: dict[str, str]) -> list[str]:
    """Subject codes (or names) separated by ``;`` ``,`` ``、`` or spaces, each offered in the
    session; returned de-duplicated in the order given."""
    codes: list[str] = []
    unknown: list[str] = []
    for token in _SUBJECT_SEPARATORS.split(unicodedata.normalize("NFKC", value)):
        if not token:
            continue
        code = names.get(token, token.upper())
        if code not in offered:
            unknown.append(token)
        elif code not in codes:
            codes.append(code)
    if unknown:
        raise DomainError.of(
            ErrorCode.UNKNOWN_SUBJECT, "eligibleSubjects", detail=",".join(unknown)
        )
    if not codes:
        raise DomainError.of(ErrorCode.REQUIRED, "eligibleSubjects")
    return codes


def _short(value: str) -> str:
    return value if len(value) <= 40 else value[:39] + "…"


def map_headers(
    headers: list[str],
    columns: dict[str, tuple[str, ...]],
    required: Iterable[str],
    *,
    duplicate: ErrorCode = ErrorCode.DUPLICATE_IN_FILE,
) -> tuple[dict[str, int], list[RowProblem]]:
    """Canonical column → position, for any sheet whose ``columns`` map a canonical name to
    its accepted headers (the first one is what a report names when the column is missing).
    Headers are folded like the roster's; unknown columns are ignored, a column given twice
    and a required column missing are problems on line 1."""
    aliases: dict[str, str] = {}
    for column, names in columns.items():
        aliases[_header_key(column)] = column
        aliases.update({_header_key(name): column for name in names})
    index: dict[str, int] = {}
    problems: list[RowProblem] = []
    for position, header in enumerate(headers):
        canonical = aliases.get(_header_key(header))
        if canonical is None:
            continue  # exports carry extra columns (class, phone, ...): ignore them
        if canonical in index:
            problems.append(RowProblem(1, header, duplicate, _short(header)))
            continue
        index[canonical] = position
    for canonical in required:
        if canonical not in index:
            problems.append(RowProblem(1, columns[canonical][0], ErrorCode.MISSING_COLUMN))
    return index, problems


def _map_headers(headers: list[str]) -> tuple[dict[str, int], list[RowProblem]]:
    return map_headers(headers, COLUMNS, REQUIRED_COLUMNS)


class _RowChecker:
    """Checks one row cell by cell, collecting every problem rather than stopping at the first."""

    def __init__(
        self,
        sheet: Sheet,
        index: dict[str, int],
        lookups: _Lookups,
        photos: PhotoSource | None,
        line: int,
        cells: list[str],
    ) -> None:
        self.sheet = sheet
        self.index = index
        self.lookups = lookups
        self.photos = photos
        self.line = line
        self.cells = cells
        self.problems: list[RowProblem] = []

    def header(self, canonical: str) -> str:
        position = self.index.get(canonical)
        return self.sheet.headers[position] if position is not None else COLUMNS[canonical][0]

    def cell(self, canonical: str) -> str:
        position = self.index.get(canonical)
        return self.cells[position] if position is not None and position < len(self.cells) else ""

    def problem(
        self, canonical: str, code: ErrorCode, value: str | None = None, other: int | None = None
    ) -> None:
        self.problems.append(
            RowProblem(
                self.line, self.header(canonical), code, _short(value) if value else None, other
            )
        )

    def attempt(self, canonical: str, parse: Callable[..., T], *args: Any) -> T | None:
        """Run a parser that raises :class:`DomainError`; its codes become row problems."""
        try:
            return parse(*args)
        except DomainError as error:
            for p in error.problems:
                self.problem(canonical, p.code, p.detail or self.cell(canonical) or None)
            return None

    def school_and_campus(self) -> tuple[int, int] | None:
        """(school id, campus id), known and within the acting admin's scope."""
        school_code = unicodedata.normalize("NFKC", self.cell("school_code")).strip()
        campus_code = unicodedata.normalize("NFKC", self.cell("campus_code")).strip()
        school = self.lookups.schools.get(school_code)
        scope = self.lookups.scope
        if not school_code:
            self.problem("school_code", ErrorCode.REQUIRED)
            return None
        if school is None:
            self.problem("school_code", ErrorCode.UNKNOWN_SCHOOL, school_code)
            return None
        if scope is not None and not (
            scope.national or school[0] in scope.school_ids or school[1] in scope.province_ids
        ):
            self.problem("school_code", ErrorCode.OUT_OF_SCOPE, school_code)
            return None
        if not campus_code:
            self.problem("campus_code", ErrorCode.REQUIRED)
            return None
        campus_id = self.lookups.campuses.get((school[0], campus_code))
        if campus_id is None:
            self.problem("campus_code", ErrorCode.UNKNOWN_CAMPUS, campus_code)
            return None
        return school[0], campus_id

    def photo(self, name: str) -> Photo | None:
        size = self.photos.size(name) if self.photos is not None else None
        if size is None or self.photos is None:
            self.problem("photo", ErrorCode.PHOTO_NOT_FOUND, name)
            return None
        if size > MAX_PHOTO_BYTES:
            self.problem("photo", ErrorCode.PHOTO_TOO_LARGE, name)
            return None
        return self.attempt("photo", check_photo, self.photos.read(name))

    def check(self, first_seen: dict[tuple[str, str], int]) -> _Row | None:
        where = self.school_and_campus()
        name = self.attempt("name", identity.validate_name, self.cell("name"))
        id_type = self.attempt("id_type", parse_id_type, self.cell("id_type"))
        id_number = None
        if id_type is not None:
            id_number = self.attempt(
                "id_number", identity.validate_id, id_type, self.cell("id_number")
            )
        if id_type is not None and id_number is not None:
            key = (id_type.value, id_number)
            if key in first_seen:
                self.problem("id_number", ErrorCode.DUPLICATE_IN_FILE, id_number, first_seen[key])
            else:
                first_seen[key] = self.line
        gender = self.attempt(
            "gender",
            parse_gender,
            self.cell("gender"),
            id_type or IdType.PASSPORT,
            id_number or "",
        )
        year = self.attempt("enrollment_year", parse_enrollment_year, self.cell("enrollment_year"))
        subjects = self.attempt(
            "eligible_subjects",
            parse_subjects,
            self.cell("eligible_subjects"),
            self.lookups.offered,
            self.lookups.subject_names,
        )
        texts: dict[str, str] = {}
        for canonical, limit in _MAX_LENGTHS.items():
            text = unicodedata.normalize("NFC", self.cell(canonical)).strip()
            if len(text) > limit:
                self.problem(canonical, ErrorCode.TOO_LONG, text)
            texts[canonical] = text
        photo = None
        if texts["photo"] and len(texts["photo"]) <= _MAX_LENGTHS["photo"]:
            photo = self.photo(texts["photo"])
        if self.problems:
            return None
        assert where is not None and name is not None and id_type is not None
        assert id_number is not None and gender is not None and subjects is not None
        return _Row(
            line=self.line,
            school_id=where[0],
            campus_id=where[1],
            name=name,
            id_type=id_type,
            id_number=id_number,
            gender=gender,
            student_number=texts["student_number"],
            department=texts["department"],
            major=texts["major"],
            enrollment_year=year,
            education_level=texts["education_level"],
            eligible_subjects=subjects,
            restrictions=texts["restrictions"],
            photo_name=texts["photo"],
            photo=photo,
        )


def _validate(
    sheet: Sheet,
    lookups: _Lookups,
    photos: PhotoSource | None,
    progress: ProgressCallback | None,
) -> tuple[list[_Row], list[RowProblem]]:
    """Check every row; pure computation (plus photo reads), so it can run off the event loop."""
    index, problems = _map_headers(sheet.headers)
    if problems:
        return [], problems
    if not sheet.rows:
        return [], [RowProblem(2, COLUMNS["name"][0], ErrorCode.EMPTY_FILE)]
    valid: list[_Row] = []
    first_seen: dict[tuple[str, str], int] = {}
    total = len(sheet.rows)
    for done, (line, cells) in enumerate(sheet.rows, start=1):
        checker = _RowChecker(sheet, index, lookups, photos, line, cells)
        row = checker.check(first_seen)
        if row is None:
            problems.extend(checker.problems)
        elif not problems:  # once the file is known bad, only its problems are worth keeping
            valid.append(row)
        if done % 500 == 0 or done == total:
            _report(progress, "validate", done, total)
    return valid, problems


async def _lookups(session: ExamSession, actor: Account | None) -> _Lookups:
    scope = None if actor is None else await access.scope_of(actor)
    if scope is not None and not scope.is_admin:
        raise DomainError.of(ErrorCode.FORBIDDEN)
    schools = {
        code: (school_id, province_id)
        for school_id, code, province_id in await School.all().values_list(
            "id", "code", "province_id"
        )
    }
    campuses = {
        (school_id, code): campus_id
        for campus_id, school_id, code in await Campus.all().values_list("id", "school_id", "code")
    }
    offered = set(
        await SessionSubject.filter(session_id=session.id).values_list("subject__code", flat=True)
    )
    names = {name: code for code, name in await Subject.all().values_list("code", "name")}
    return _Lookups(schools, campuses, offered, names, scope)  # type: ignore[arg-type]


async def _existing(
    session: ExamSession, rows: list[_Row]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The records already on file for the keys in the file (photos left in the database)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    numbers = sorted({row.id_number for row in rows})
    for start in range(0, len(numbers), _LOOKUP_CHUNK):
        chunk = numbers[start : start + _LOOKUP_CHUNK]
        for record in await RosterRecord.filter(session_id=session.id, id_number__in=chunk).values(
            "id", "id_type", "id_number", "photo_digest", *_CONTENT_FIELDS
        ):
            found[(str(record["id_type"]), record["id_number"])] = record
    return found


def _values(session: ExamSession, row: _Row, now: datetime) -> dict[str, Any]:
    """A row as database parameters keyed by column. The row is validated already, so the
    model fields' per-value validation is skipped (it was half the write time); only the JSON
    column goes through its field's encoder, so it is stored exactly as the ORM stores it."""
    subjects = RosterRecord._meta.fields_map["eligible_subjects"]
    return {
        "session_id": session.id,
        "id_type": row.id_type.value,
        "id_number": row.id_number,
        "school_id": row.school_id,
        "campus_id": row.campus_id,
        "name": row.name,
        "name_key": identity.name_key(row.name),
        "gender": row.gender,
        "student_number": row.student_number,
        "department": row.department,
        "major": row.major,
        "enrollment_year": row.enrollment_year,
        "education_level": row.education_level,
        "eligible_subjects": subjects.to_db_value(row.eligible_subjects, RosterRecord),
        "restrictions": row.restrictions,
        "updated_at": now,
        "photo": row.photo.content if row.photo else None,
        "photo_type": row.photo.content_type if row.photo else "",
        "photo_digest": row.photo.digest if row.photo else "",
    }


_KEY_FIELDS = ["session_id", "id_type", "id_number"]
_UPSERT_FIELDS = [
    "school_id",
    "campus_id",
    "name",
    "name_key",
    "gender",
    "student_number",
    "department",
    "major",
    "enrollment_year",
    "education_level",
    "eligible_subjects",
    "restrictions",
    "updated_at",
]
_PHOTO_FIELDS = ["photo", "photo_type", "photo_digest"]
_WRITE_BATCH = 1000


def _upsert_sql(dialect: str, update: list[str]) -> tuple[str, list[str]]:
    """``INSERT .. ON CONFLICT (key) DO UPDATE``, the same text for SQLite and PostgreSQL but
    for the placeholders; and the column order its parameters follow."""
    columns = _KEY_FIELDS + _UPSERT_FIELDS + _PHOTO_FIELDS
    table = RosterRecord._meta.db_table
    marks = (
        ", ".join(f"${n}" for n in range(1, len(columns) + 1))
        if dialect == "postgres"
        else ", ".join("?" for _ in columns)
    )
    assignments = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in update)
    column_list = ", ".join(f'"{c}"' for c in columns)
    key_list = ", ".join(f'"{c}"' for c in _KEY_FIELDS)
    # Identifiers come from the model's metadata, values only through placeholders.
    sql = (
        f'INSERT INTO "{table}" ({column_list}) VALUES ({marks}) '  # noqa: S608
        f"ON CONFLICT ({key_list}) DO UPDATE SET {assignments}"
    )
    return sql, columns


async def _write(
    session: ExamSession,
    rows: list[_Row],
    existing: dict[tuple[str, str], dict[str, Any]],
    progress: ProgressCallback | None,
    audit_details: dict[str, Any],
    actor: Account | None,
    client_address: str | None,
) -> ImportResult:
    result = ImportResult()
    now = clock.now()
    with_photo: list[dict[str, Any]] = []
    without_photo: list[dict[str, Any]] = []
    for row in rows:
        before = existing.get(row.key)
        if before is None:
            result.created += 1
        else:
            same = tuple(before[f] for f in _CONTENT_FIELDS) == row.content() and (
                row.photo is None or row.photo.digest == before["photo_digest"]
            )
            if same:
                result.unchanged += 1
                continue
            result.updated += 1
        (with_photo if row.photo else without_photo).append(_values(session, row, now))

    total = len(with_photo) + len(without_photo)
    done = 0
    _report(progress, "write", 0, total)
    async with in_transaction() as connection:
        dialect = connection.capabilities.dialect
        for group, update in (
            (with_photo, _UPSERT_FIELDS + _PHOTO_FIELDS),
            (without_photo, _UPSERT_FIELDS),  # a row without a photo keeps the one on file
        ):
            sql, columns = _upsert_sql(dialect, update)
            for start in range(0, len(group), _WRITE_BATCH):
                batch = group[start : start + _WRITE_BATCH]
                # One prepared statement, many parameter sets. ON CONFLICT: an import racing
                # another for the same student updates instead of failing on the key.
                await connection.execute_many(
                    sql, [[values[c] for c in columns] for values in batch]
                )
                done += len(batch)
                _report(progress, "write", done, total)
        await audit.record(
            "roster.import",
            actor=actor,
            subject=f"ExamSession:{session.id}",
            client_address=client_address,
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
            **audit_details,
        )
    return result


def _holder_problems(
    rows: list[_Row],
    existing: dict[tuple[str, str], dict[str, Any]],
    scope: access.Scope | None,
    schools: dict[str, tuple[int, int]],
    id_header: str,
) -> list[RowProblem]:
    """A school admin may not move a student off another school's roster by re-listing them."""
    if scope is None or scope.national:
        return []
    province_of = {school_id: province_id for school_id, province_id in schools.values()}
    problems = []
    for row in rows:
        before = existing.get(row.key)
        if before is None or before["school_id"] == row.school_id:
            continue
        holder = before["school_id"]
        if holder not in scope.school_ids and province_of.get(holder) not in scope.province_ids:
            problems.append(
                RowProblem(row.line, id_header, ErrorCode.HELD_BY_ANOTHER_SCHOOL, row.id_number)
            )
    return problems


async def import_roster(
    *,
    actor: Account | None,
    session_code: str,
    content: bytes,
    filename: str = "",
    photos: PhotoSource | None = None,
    photos_zip: bytes | None = None,
    client_address: str | None = None,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    """Validate the whole file, then write it all or nothing.

    ``actor`` None is the national command line; otherwise rows must belong to schools in the
    actor's scope. Photos come from ``photos`` (a folder) or ``photos_zip`` (an upload).
    File-level failures (unknown session, unreadable file) raise :class:`DomainError`; row
    problems come back in the result with nothing written.
    """
    if photos_zip is not None:
        photos = await asyncio.to_thread(PhotoZip, photos_zip)
    session = await ExamSession.get_or_none(code=session_code.strip().upper()[:8])
    if session is None:
        raise DomainError.of(ErrorCode.SESSION_NOT_FOUND, "sessionCode")
    lookups = await _lookups(session, actor)
    _report(progress, "read", 0, 1)
    sheet = await asyncio.to_thread(read_sheet, content)
    _report(progress, "read", 1, 1)
    rows, problems = await asyncio.to_thread(_validate, sheet, lookups, photos, progress)
    if problems:
        return ImportResult(problems=problems)
    existing = await _existing(session, rows)
    id_header = (
        next((h for h in sheet.headers if _ALIASES.get(_header_key(h)) == "id_number"), "")
        or COLUMNS["id_number"][0]
    )
    problems = _holder_problems(rows, existing, lookups.scope, lookups.schools, id_header)
    if problems:
        return ImportResult(problems=problems)
    school_ids = {row.school_id for row in rows}
    codes = sorted(code for code, (sid, _) in lookups.schools.items() if sid in school_ids)
    return await _write(
        session,
        rows,
        existing,
        progress,
        {"file": filename[:128], "rows": len(rows), "schools": codes[:50]},
        actor,
        client_address,
    )


# --- command line --------------------------------------------------------------------------

_STAGE_LABELS = {
    "read": "Reading file",
    "validate": "Checking rows",
    "write": "Writing records",
}


def print_problems(console: Console, problems: Iterable[RowProblem], language: str = "en") -> None:
    """One line per problem, tab-separated (``line N``, column, code, message), written past
    rich's rendering so tabs survive and a long report stays easy to ``grep``/``cut``."""
    out = console.file
    for p in problems:
        out.write(f"line {p.line}\t{p.column}\t{p.code.value}\t{p.message(language)}\n")
    out.flush()


async def import_from_cli(
    file: Path, session_code: str, photos: Path | None, console: Console
) -> bool:
    """``cetgql import-roster``: import as the national office, with a progress bar, then print
    the line-numbered problems or a summary. Returns whether the file was imported."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    try:
        content = await asyncio.to_thread(file.read_bytes)
        source = await asyncio.to_thread(PhotoFolder, photos) if photos is not None else None
    except OSError as error:
        console.print(f"[red]cannot read[/red] {error.filename}: {error.strerror}")
        return False
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        ) as bar:
            tasks: dict[str, Any] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(_STAGE_LABELS.get(stage, stage), total=total)
                bar.update(tasks[stage], completed=done, total=total)

            result = await import_roster(
                actor=None,
                session_code=session_code,
                content=content,
                filename=file.name,
                photos=source,
                progress=progress,
            )
    except DomainError as error:
        for p in error.problems:
            where = ".".join(p.field or ())
            detail = f" {p.detail}" if p.detail else ""
            console.print(f"[red]{p.code.value}[/red] {where} {message_for(p.code, 'en')}{detail}")
        return False
    if not result.ok:
        invalid = ErrorCode.ROSTER_INVALID
        console.print(
            f"[red]{invalid.value}[/red] {message_for(invalid, 'en')}"
            f" {len(result.problems)} problem(s):"
        )
        print_problems(console, result.problems)
        return False
    console.print(
        f"imported {file.name} into {session_code.upper()}: "
        f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged"
    )
    return True
