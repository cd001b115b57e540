"""Score import at scale: a generated CSV of one million rows imported into PostgreSQL.

    .venv/bin/python benchmarks/score_import.py [--rows 1000000] [--reimport] [--tracemalloc]

Creates a throw-away PostgreSQL database next to ``CETGQL_BENCH_DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/test``), migrates it, writes the file to a temporary
folder (streamed, 80 % written rows of CET4/CET6 at 300 campuses, 20 % oral grades at 50 oral
centres, every oral candidate also with a written score), then imports it exactly as
``cetgql import-scores`` does and prints:

- the time of each stage (read and check, whole-file checks, write scores and reports) and
  rows per second over the whole import;
- peak memory: the process's peak resident set (``getrusage``), against its size before the
  import, and with ``--tracemalloc`` the peak of Python allocations during the import (which
  makes the run slower; use it to see that the peak does not grow with the file);
- with ``--reimport``, the same file again (every row unchanged) and once more with every
  written total changed by half a point (every report rewritten in place).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    create_database,
    drop_database,
    machine_report,
    postgres_version,
)
from cetgql import db  # noqa: E402
from cetgql.models import ScoreRecord, ScoreReport  # noqa: E402
from cetgql.services import catalog, identity, score_import  # noqa: E402
from cetgql.settings import Settings, configure  # noqa: E402

SESSION = "2025H1"
HEADER = [
    "准考证号",
    "姓名",
    "证件类型",
    "证件号码",
    "听力",
    "阅读",
    "写作和翻译",
    "总分",
    "口试成绩",
]
CAMPUSES = 300
ORAL_CENTRES = 50
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文辉力永健世广义兴良海"


def resident_id(index: int) -> str:
    """Unique for up to 3.65 million indexes: a birth date per index modulo ten years and a
    sequence number for each pass."""
    born = date(1998, 1, 1) + timedelta(days=index % 3650)
    first17 = f"110105{born:%Y%m%d}{(index // 3650) % 1000:03d}"
    return first17 + identity.resident_id_check_char(first17)


def name(index: int) -> str:
    return (
        SURNAMES[index % len(SURNAMES)]
        + GIVEN[(index // len(SURNAMES)) % len(GIVEN)]
        + GIVEN[(index // 7) % len(GIVEN)]
    )


def write_file(path: Path, rows: int, seed: int = 2025, shift: float = 0.0) -> None:
    """``rows`` rows, streamed to ``path``: written rows, and for every fourth written
    candidate an oral row of the same level. ``shift`` moves every writing score."""
    generator = random.Random(seed)
    written_rows = rows * 4 // 5
    seats: dict[tuple[str, int], int] = defaultdict(int)
    oral_seats: dict[tuple[str, int], int] = defaultdict(int)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        oral_left = rows - written_rows
        for index in range(written_rows):
            level = 2 if index % 3 == 0 else 1
            centre = f"{10001 + index % CAMPUSES:05d}1"
            seat = seats[(centre, level)]
            seats[(centre, level)] += 1
            ticket = (
                f"{centre}{SESSION[2:4]}{SESSION[-1]}{level}{seat // 30 + 1:03d}{seat % 30 + 1:02d}"
            )
            listening = generator.randint(120, 440) / 2
            reading = generator.randint(120, 440) / 2
            writing = min(generator.randint(100, 380) / 2 + shift, 213.0)
            person = (name(index), "居民身份证", resident_id(index))
            writer.writerow([ticket, *person, listening, reading, writing, "", ""])
            if index % 4 == 0 and oral_left > 0:
                oral_left -= 1
                oral_centre = f"11{1 + index % ORAL_CENTRES:04d}"
                oral_level = 6 if level == 2 else 4
                n = oral_seats[(oral_centre, oral_level)]
                oral_seats[(oral_centre, oral_level)] += 1
                room, place = n // 99 + 1, n % 99 + 1
                oral = f"{oral_centre}{SESSION[2:4]}{SESSION[-1]}0{oral_level}{room:02d}{place:02d}"
                grade = generator.choice(("优秀", "良好", "合格", "合格", "不合格"))
                writer.writerow([oral, *person, "", "", "", "", grade])


class Stages:
    """Wall-clock time of each stage of the import, from its progress callbacks."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.last: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        self.started.setdefault(stage, now)
        self.last[stage] = now

    def report(self, begin: float, end: float) -> str:
        order = [s for s in ("read", "check", "write") if s in self.started]
        marks = [self.started.get(s, begin) for s in order] + [end]
        marks[0] = begin
        return ", ".join(
            f"{stage} {marks[i + 1] - marks[i]:.1f} s" for i, stage in enumerate(order)
        )


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _import(path: Path, label: str, rows: int, trace: bool) -> None:
    stages = Stages()
    rss_before = peak_rss_mib()
    if trace:
        tracemalloc.start()
    begin = time.perf_counter()
    size = (await asyncio.to_thread(path.stat)).st_size
    with path.open("rb") as binary:
        result = await score_import.import_scores(
            actor=None,
            session_code=SESSION,
            binary=binary,
            size=size,
            filename=path.name,
            progress=stages,
            returned_problems=5,
        )
    end = time.perf_counter()
    traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    if trace:
        tracemalloc.stop()
    assert result.ok, (result.problem_count, result.problems)
    elapsed = end - begin
    print(f"{label}: {rows} rows in {elapsed:.1f} s = {rows / elapsed:,.0f} rows/s")
    print(f"  stages: {stages.report(begin, end)}")
    print(
        f"  scores: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged; reports: {result.reports_issued} issued, "
        f"{result.reports_reissued} re-issued, {result.reports_withdrawn} withdrawn"
    )
    memory = f"  peak RSS of the process: {peak_rss_mib():.0f} MiB (before: {rss_before:.0f} MiB)"
    if traced is not None:
        memory += f"; peak Python allocations during the import: {traced:.1f} MiB"
    print(memory)


async def run(rows: int, reimport: bool, trace: bool, keep: bool) -> None:
    database = await create_database("scores")
    url = db.normalise_url(database.url)
    try:
        configure(Settings(database_url=url, secret_key="benchmark-secret-key-" + "x" * 32))
        for line in machine_report(await postgres_version(url)):
            print(line)
        await db.migrate(url)
        await db.connect(url)
        try:
            await catalog.ensure_session(SESSION)
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "scores.csv"
                started = time.perf_counter()
                write_file(path, rows)
                size = path.stat().st_size / 2**20
                print(
                    f"generated {rows} rows ({size:.0f} MiB CSV) in "
                    f"{time.perf_counter() - started:.1f} s; chunk {score_import.CHUNK_ROWS} rows"
                )
                await _import(path, "first import", rows, trace)
                if reimport:
                    await _import(path, "re-import, unchanged", rows, trace)
                    write_file(path, rows, shift=0.5)
                    await _import(path, "re-import, every written score changed", rows, trace)
            print(
                f"in the database: {await ScoreRecord.all().count()} scores, "
                f"{await ScoreReport.filter(superseded_at__isnull=True).count()} current reports"
            )
        finally:
            await db.disconnect()
    finally:
        if not keep:
            await drop_database(database)
        else:
            print(f"kept database {database.name}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reimport", action="store_true", help="also time two re-imports")
    parser.add_argument("--tracemalloc", action="store_true", help="trace Python allocations")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.reimport, args.tracemalloc, args.keep))


if __name__ == "__main__":
    main()
