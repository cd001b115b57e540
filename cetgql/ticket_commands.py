"""The ticket commands of ``cetgql`` (allocate, publish-tickets, print-batch): the same service
calls as the GraphQL mutations, acting as the national office, with progress bars."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cetgql.models import SubjectKind
from cetgql.services import allocation, exam_rooms, tickets
from cetgql.services.errors import DomainError
from cetgql.services.registration_setup import print_domain_error

_STAGES = {
    "load": "Loading registrations",
    "shuffle": "Shuffling per centre",
    "write": "Writing tickets",
    "render": "Rendering pages",
}


@contextmanager
def _progress(console: Console) -> Iterator[Callable[[str, int, int], None]]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(_STAGES.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield report


async def _unit(
    session: str, kind: str, school: str | None, province: str | None
) -> exam_rooms.Unit:
    return await exam_rooms.resolve_unit(
        None,
        session_code=session,
        kind=SubjectKind(kind.strip().upper()),
        school_code=school,
        province_code=province,
    )


async def allocate(
    console: Console,
    *,
    session: str,
    kind: str,
    school: str | None,
    province: str | None,
    seed: str | None,
) -> bool:
    try:
        unit = await _unit(session, kind, school, province)
        with _progress(console) as report:
            result = await allocation.allocate(None, unit, seed=seed, progress=report)
    except DomainError as error:
        print_domain_error(console, error)
        return False
    what = "top-up" if result.top_up else "allocation"
    seed_text = f" with seed {result.run.seed}" if result.run else ""
    console.print(
        f"{what} of {unit.label}{seed_text}: {result.created} ticket(s) created, "
        f"{result.total} in the unit",
        markup=False,
        highlight=False,
    )
    return True


async def publish(
    console: Console, *, session: str, kind: str, school: str | None, province: str | None
) -> bool:
    try:
        unit = await _unit(session, kind, school, province)
        with console.status(f"Publishing {unit.label}"):
            result = await allocation.publish(None, unit)
    except DomainError as error:
        print_domain_error(console, error)
        return False
    console.print(
        f"published {result.published} ticket(s) of {unit.label}; {result.total} published",
        markup=False,
        highlight=False,
    )
    return True


def _paths(output: Path, parts: int) -> list[Path]:
    """``tickets.pdf``, or ``tickets-01.pdf`` ... when the batch takes several files."""
    if parts == 1:
        return [output]
    return [output.with_name(f"{output.stem}-{n:02d}{output.suffix}") for n in range(1, parts + 1)]


async def print_batch(
    console: Console,
    *,
    session: str,
    school: str | None,
    oral_center: str | None,
    subject: str | None,
    output: Path,
) -> bool:
    """Write the published tickets of a school or an oral centre to PDF files of at most
    ``tickets.MAX_BATCH`` pages each."""
    try:
        if oral_center:
            batch = await tickets.batch_for_oral_center(
                None, session, oral_center_code=oral_center, subject_code=subject
            )
        else:
            batch = await tickets.batch_for_school(None, session, school or "", subject)
        found = await tickets.batch_tickets(batch)
        if not found:
            await tickets.check_batch(batch)  # raises NOTHING_TO_PRINT
        parts = [found[i : i + tickets.MAX_BATCH] for i in range(0, len(found), tickets.MAX_BATCH)]
        paths = _paths(output, len(parts))
        with _progress(console) as report:
            done = 0
            for part, path in zip(parts, paths, strict=True):
                offset = done

                def pages(finished: int, total: int, offset: int = offset) -> None:
                    report("render", offset + finished, len(found))

                content = await tickets.render_batch(part, progress=pages)
                path.write_bytes(content)
                done += len(part)
    except DomainError as error:
        print_domain_error(console, error)
        return False
    await tickets.record_batch(None, batch, len(found))
    for path, part in zip(paths, parts, strict=True):
        console.print(f"wrote {path} ({len(part)} page(s))", markup=False, highlight=False)
    return True
