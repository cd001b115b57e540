"""Set-up for the ticket tests: paid candidates, admins, closed registration, and reading PDFs
back with Debian's poppler-utils (pdftotext, pdffonts, pdfinfo) the way a person would.

Setting up goes through the services or straight to the models; the behaviour under test
goes through GraphQL and the HTTP routes."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from PIL import Image
from strawberry.relay import GlobalID

from cetgql import models
from cetgql.models import Role, SubjectKind
from cetgql.services import accounts, clock, registration, sessions
from tests.registration_setup import Candidate, World, qualified_candidate

ERRORS = "userErrors { field code message }"

SET_ROOMS = f"""
mutation($input: SetExamRoomsInput!) {{ setExamRooms(input: $input) {{
  examRooms {{ id number name capacity centreKey }} {ERRORS} }} }}"""
ALLOCATE = f"""
mutation($input: AllocateSeatsInput!) {{ allocateSeats(input: $input) {{
  allocationRun {{ id seed topUp tickets roomsUsed publishedAt }} created total topUp
  {ERRORS} }} }}"""
PUBLISH = f"""
mutation($input: PublishTicketsInput!) {{ publishTickets(input: $input) {{
  published total {ERRORS} }} }}"""
SET_PRINT_WINDOW = f"""
mutation($input: SetTicketPrintWindowInput!) {{ setTicketPrintWindow(input: $input) {{
  printWindow {{ kind opensAt closesAt handedOutBySchool }} {ERRORS} }} }}"""
PRINT_BATCH = f"""
mutation($input: PrintTicketBatchInput!) {{ printTicketBatch(input: $input) {{
  url pages {ERRORS} }} }}"""
TICKET_FIELDS = """id number kind sessionCode subject { code name kind } examStart examEnd
  centerName centerAddress room roomName seat printableFrom printableUntil handedOutBySchool
  pdfUrl printError { code message } verificationCode"""
MY_TICKETS = f"""
query($s: String) {{ viewer {{ tickets(sessionCode: $s) {{ {TICKET_FIELDS} }} }} }}"""
MY_REGISTRATIONS = """
{ viewer { registrations(sessionCode: "2026H1") { subject { code } status
  ticket { id number room seat } } } }"""
VERIFY = """
query($code: String!) { verifyDocument(code: $code) {
  valid code kind title holderName idNumberMasked issuedAt facts { key label value } note } }"""
SELECT = """
mutation($input: SelectSubjectsInput!) { selectSubjects(input: $input) {
  order { id } userErrors { field code } } }"""


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


def photo_bytes(color: tuple[int, int, int] = (40, 90, 160)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (90, 120), color).save(out, format="JPEG", quality=90)
    return out.getvalue()


async def admin_token(
    role: Role, *, province: str | None = None, school: str | None = None, tag: str = ""
) -> str:
    account = await accounts.create_admin(
        name="管理员",
        email=f"t-{role.value.lower()}{province or ''}{school or ''}{tag}@example.cn",
        password="Admin@2026x",
        role=role,
        province_code=province,
        school_code=school,
    )
    return await sessions.open_session(account, client_address="127.0.0.1", user_agent="tests")


async def set_photo(candidate: Candidate, content: bytes) -> None:
    await models.RosterRecord.filter(id_number=candidate.account.id_number).update(
        photo=content, photo_type="image/jpeg", photo_digest=hashlib.sha256(content).hexdigest()
    )


async def rename(candidate: Candidate, name: str) -> None:
    """The school corrects the roster name (set-up: the roster service is tested elsewhere)."""
    await models.RosterRecord.filter(id_number=candidate.account.id_number).update(name=name)


async def paid_candidate(
    gql: Any,
    world: World,
    subjects: tuple[str, ...] = ("CET4",),
    *,
    name: str = "李雷",
    oral_center: models.OralCenter | None = None,
    photo: bytes | None = None,
) -> Candidate:
    """A qualified candidate who chose ``subjects`` through GraphQL and paid (written first)."""
    candidate = await qualified_candidate(world, name=name)
    if photo is not None:
        await set_photo(candidate, photo)
    written = [s for s in subjects if not s.startswith("CET-SET")]
    oral = [s for s in subjects if s.startswith("CET-SET")]
    for group in (written, oral):
        if not group:
            continue
        items: list[dict[str, Any]] = []
        for code in group:
            item: dict[str, Any] = {"subjectCode": code}
            if code.startswith("CET-SET"):
                center = oral_center or world.centers[0]
                item["oralCenterId"] = str(GlobalID("OralCenter", str(center.id)))
            items.append(item)
        result = await gql.data(
            SELECT, {"input": {"sessionCode": "2026H1", "items": items}}, token=candidate.token
        )
        payload = result["selectSubjects"]
        assert payload["userErrors"] == [], payload
        order_id = int(GlobalID.from_id(payload["order"]["id"]).node_id)
        await registration.mark_order_paid(order_id, clock.now())
    return candidate


async def close_registration(world: World, kind: SubjectKind | None = None) -> None:
    """Registration ended a minute ago (allocation waits for it, T4)."""
    query = models.RegistrationWindow.filter(session_id=world.session.id)
    if kind is not None:
        query = query.filter(kind=kind)
    await query.update(closes_at=clock.now() - timedelta(minutes=1))


def unit(kind: str = "WRITTEN", **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sessionCode": "2026H1", "kind": kind}
    if kind == "WRITTEN":
        base["schoolCode"] = "10558"
    else:
        base["provinceCode"] = "44"
    return {**base, **extra}


def rooms_input(*rooms: tuple[int, int, str], **centre: Any) -> dict[str, Any]:
    if not centre:
        centre = {"schoolCode": "10558", "campusCode": "1"}
    return {
        "sessionCode": "2026H1",
        **centre,
        "rooms": [{"number": n, "capacity": c, "name": name} for n, c, name in rooms],
    }


def oral_center_id(center: models.OralCenter) -> str:
    return str(GlobalID("OralCenter", str(center.id)))


# --- reading PDFs back ---------------------------------------------------------------------


def _poppler(tool: str, content: bytes, *args: str) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "document.pdf"
        path.write_bytes(content)
        done = subprocess.run(
            [tool, *args, str(path), *(["-"] if tool == "pdftotext" else [])],
            capture_output=True,
            check=True,
            timeout=60,
        )
    return done.stdout.decode("utf-8", errors="replace")


def pdf_text(content: bytes) -> str:
    return _poppler("pdftotext", content, "-enc", "UTF-8", "-layout")


def pdf_fonts(content: bytes) -> list[dict[str, str]]:
    """pdffonts rows: name, type, emb(edded), sub(set)."""
    lines = _poppler("pdffonts", content).splitlines()[2:]
    rows = []
    for line in lines:
        parts = line.split()
        # name type... encoding emb sub uni object ID: the last six columns are fixed.
        rows.append({"name": parts[0], "emb": parts[-5], "sub": parts[-4], "uni": parts[-3]})
    return rows


def pdf_images(content: bytes) -> list[tuple[int, int]]:
    """(width, height) of every image in the PDF (pdfimages -list)."""
    lines = _poppler("pdfimages", content, "-list").splitlines()[2:]
    return [(int(line.split()[3]), int(line.split()[4])) for line in lines if line.strip()]


def pdf_pages(content: bytes) -> int:
    for line in _poppler("pdfinfo", content).splitlines():
        if line.startswith("Pages:"):
            return int(line.split()[1])
    raise AssertionError("pdfinfo printed no page count")
