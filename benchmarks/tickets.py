"""Ticket PDF speed: one ticket rendered, a page of a 100-page batch, a cached download, and
the choice of a process pool over threads for rendering.

    .venv/bin/python benchmarks/tickets.py [--tickets 100] [--database-url URL]

Without ``--database-url`` a throw-away SQLite file is used; for PostgreSQL pass a URL of an
empty database you may create tables in. It seeds one school with ``--tickets`` paid CET4
candidates (with roster photos), allocates and publishes their tickets through the services,
then times:

- a single ticket rendered (not cached): what the first download of a ticket costs;
- the same tickets as one batch document (``render_batch``), per page;
- a cached download through the HTTP route (signed URL, database read, response), per request;
- 20 renders at once in the worker process pool and in threads, with the worst stall of the
  event loop meanwhile: why rendering runs in processes.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from PIL import Image  # noqa: E402

from cetgql import db  # noqa: E402
from cetgql.app import create_app  # noqa: E402
from cetgql.models import (  # noqa: E402
    Account,
    Campus,
    ExamRoom,
    IdType,
    Order,
    Province,
    Registration,
    RegistrationStatus,
    RosterRecord,
    School,
    SessionSubject,
    SubjectKind,
    Ticket,
)
from cetgql.services import (  # noqa: E402
    allocation,
    catalog,
    clock,
    exam_rooms,
    identity,
    pdf,
    signed_urls,
    tickets,
)
from cetgql.settings import Settings, configure  # noqa: E402

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from weasyprint import __version__ as weasyprint_version
    from weasyprint.text.ffi import harfbuzz_subset

    subset = "with" if harfbuzz_subset else "WITHOUT"
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, WeasyPrint {weasyprint_version} "
        f"{subset} libharfbuzz-subset"
    )


def photo(i: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (295, 413), (40 + i % 200, 90, 160)).save(out, format="JPEG", quality=85)
    return out.getvalue()


async def seed(count: int) -> exam_rooms.Unit:
    session = await catalog.ensure_session("2026H1")
    province = await Province.create(code="44", name="广东省")
    school = await School.create(code="10558", name="中山大学", province=province)
    campus = await Campus.create(
        school=school, code="1", name="南校园", address="广州市海珠区新港西路 135 号"
    )
    offering = await SessionSubject.get(session=session, subject__code="CET4")
    now = clock.now()
    for i in range(count):
        name = SURNAMES[i % 20] + GIVEN[i % len(GIVEN)] + GIVEN[(i // 20) % len(GIVEN)]
        first17 = f"440106{2003 + i % 3}0101{i % 1000:03d}"
        number = first17 + identity.resident_id_check_char(first17)
        account = await Account.create(
            name=name,
            name_key=name,
            id_type=IdType.RESIDENT_ID,
            id_number=number,
            password_hash="!",
        )
        picture = photo(i)
        await RosterRecord.create(
            session=session,
            school=school,
            campus=campus,
            name=name,
            name_key=name,
            id_type=IdType.RESIDENT_ID,
            id_number=number,
            photo=picture,
            photo_type="image/jpeg",
            photo_digest=hashlib.sha256(picture).hexdigest(),
            eligible_subjects=["CET4"],
            updated_at=now,
        )
        order = await Order.create(
            number=f"B{i:019d}",
            account=account,
            session=session,
            province=province,
            kind=SubjectKind.WRITTEN,
            status="PAID",
            amount_fen=3000,
            created_at=now,
            expires_at=now + timedelta(hours=24),
            paid_at=now,
        )
        await Registration.create(
            account=account,
            session=session,
            offering=offering,
            order=order,
            status=RegistrationStatus.PAID,
            school=school,
            campus=campus,
            created_at=now,
            expires_at=now + timedelta(hours=24),
            paid_at=now,
        )
    for room in range(1, count // 30 + 2):
        await ExamRoom.create(
            session=session,
            kind=SubjectKind.WRITTEN,
            province=province,
            school=school,
            campus=campus,
            centre_key=exam_rooms.centre_key(campus.id, None),
            number=room,
            name=f"教学楼 A{room:03d}",
            capacity=30,
        )
    unit = await exam_rooms.resolve_unit(
        None, session_code="2026H1", kind=SubjectKind.WRITTEN, school_code="10558"
    )
    await allocation.allocate(None, unit, seed="benchmark")
    await allocation.publish(None, unit)
    await tickets.set_print_window(
        None, unit, opens_at=now - timedelta(hours=1), closes_at=now + timedelta(days=7)
    )
    return unit


async def timed(work: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await work()
    return time.perf_counter() - start


def _cpu_of(pid: int) -> float:
    """User and system CPU seconds a process has used (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _workers_cpu() -> float:
    pool = pdf._pool
    processes = getattr(pool, "_processes", None) or {}
    return sum(_cpu_of(pid) for pid in processes)


@dataclass
class Cost:
    """Per item: wall time, and CPU time of this (the API) process and of the PDF workers.
    The CPU figures hardly move with the machine's load; the wall times do."""

    wall: float
    api_cpu: float
    worker_cpu: float

    def show(self) -> str:
        return (
            f"{self.wall * 1000:7.1f} ms wall, CPU {self.api_cpu * 1000:.1f} ms API process "
            f"+ {self.worker_cpu * 1000:.1f} ms PDF workers"
        )


async def measure(work: Callable[[], Awaitable[object]], items: int, repeat: int = 1) -> Cost:
    workers, api, wall = _workers_cpu(), time.process_time(), time.perf_counter()
    for _ in range(repeat):
        await work()
    n = items * repeat
    return Cost(
        (time.perf_counter() - wall) / n,
        (time.process_time() - api) / n,
        (_workers_cpu() - workers) / n,
    )


async def pool_comparison(document: str, renders: int = 20) -> dict[str, tuple[float, float]]:
    """Per-document time of ``renders`` concurrent renders, and the worst event-loop stall."""

    async def stall(stop: asyncio.Event) -> float:
        worst = 0.0
        while not stop.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.005)
            worst = max(worst, time.perf_counter() - start - 0.005)
        return worst

    async def in_threads(html: str) -> bytes:
        return await asyncio.to_thread(pdf._render_one, html)

    results = {}
    for label, render in (("process pool", pdf.render_pdf), ("threads", in_threads)):
        await asyncio.gather(*(render(document) for _ in range(pdf.pool_size())))  # warm up
        stop = asyncio.Event()
        probe = asyncio.create_task(stall(stop))
        elapsed = await timed(
            lambda r=render: asyncio.gather(*(r(document) for _ in range(renders)))
        )
        stop.set()
        results[label] = (elapsed / renders, await probe)
    return results


async def run(url: str, count: int) -> None:
    await db.migrate(url)
    await db.connect(url)
    try:
        print(f"machine: {machine()}")
        print(f"pdf worker processes: {pdf.pool_size()}")
        started = time.perf_counter()
        unit = await seed(count)
        print(f"seeded, allocated and published {count} tickets in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        published = await Ticket.filter(unit_key=unit.key).order_by("number")
        views = await tickets.load_views(published)
        # Start every worker of the pool (each loads WeasyPrint and the fonts, about a second)
        # before timing anything: concurrent renders make the pool spawn all of them.
        await asyncio.gather(*(tickets.render_ticket(v) for v in views[: pdf.pool_size() * 2]))

        queue = iter(views[:20] * 2)
        single = await measure(lambda: tickets.render_ticket(next(queue)), 1, repeat=20)
        print(f"single ticket, rendered:         {single.show()}")
        size = len(await tickets.render_ticket(views[0]))
        print(f"single ticket PDF size:          {size / 1024:7.1f} KiB")
        body = tickets.ticket_body(views[0], None)
        plain = re.sub(r"<svg.*?</svg>", "", body, flags=re.S)
        with_qr = pdf.html_document(body, title="t", css=tickets.TICKET_CSS)
        without = pdf.html_document(plain, title="t", css=tickets.TICKET_CSS)
        costs = [await measure(lambda d=d: pdf.render_pdf(d), 1, 20) for d in (with_qr, without)]
        print(f"of which the QR code (SVG):      {(costs[0].wall - costs[1].wall) * 1000:7.1f} ms "
              f"wall, {(costs[0].worker_cpu - costs[1].worker_cpu) * 1000:.1f} ms CPU "
              f"(a ticket without photo: {costs[0].worker_cpu * 1000:.1f} ms CPU with the QR "
              f"code, {costs[1].worker_cpu * 1000:.1f} ms without)")  # fmt: skip

        batch = published[:100]
        page = await measure(lambda: tickets.render_batch(batch), len(batch))
        content = await tickets.render_batch(batch)
        print(f"a page of a {len(batch)}-page batch:      {page.show()}; "
              f"{len(content) / 1024:.0f} KiB in all")  # fmt: skip

        app = create_app(manage_database=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            links = iter([signed_urls.sign(tickets.ticket_path(t.id)) for t in published[20:40]])
            first = await measure(lambda: client.get(next(links)), 1, repeat=20)
            link = signed_urls.sign(tickets.ticket_path(published[20].id))
            cached = await measure(lambda: client.get(link), 1, repeat=100)
            check = await client.get(link)
            assert check.status_code == 200 and check.content.startswith(b"%PDF")
        print(f"first download (render + store): {first.show()}")
        print(f"cached download over HTTP:       {cached.show()}")

        document = pdf.html_document(
            tickets.ticket_body(views[0], None), title="t", css=tickets.TICKET_CSS
        )
        for label, (per, worst) in (await pool_comparison(document)).items():
            print(f"20 concurrent renders, {label:12}: {per * 1000:6.1f} ms a document, "
                  f"worst event-loop stall {worst * 1000:.0f} ms")  # fmt: skip
    finally:
        await db.disconnect()
        pdf.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=100)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="cetgql-bench-")
    url = args.database_url or f"sqlite://{folder}/tickets.sqlite3"
    configure(Settings(database_url=url, public_url="http://bench"))
    asyncio.run(run(db.normalise_url(url), args.tickets))


if __name__ == "__main__":
    main()
