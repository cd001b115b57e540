"""The ``cetgql`` command: serve, worker, demo, migrate, create-admin, import-roster,
group-register, export-schema."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from cetgql import db
from cetgql.settings import Settings, configure, get_settings

app = typer.Typer(
    help="cetgql: GraphQL back end for CET registration.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
T = TypeVar("T")

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="CETGQL_DATABASE_URL",
        help="sqlite://PATH or postgres://USER@HOST:PORT/DB (default: embedded SQLite file).",
        show_envvar=True,
    ),
]


def _settings(database_url: str | None, **changes: Any) -> Settings:
    settings = get_settings()
    if database_url:
        changes["database_url"] = database_url
    settings = settings.with_overrides(**changes) if changes else settings
    configure(settings)
    return settings


def _run_with_database(settings: Settings, work: Callable[[], Awaitable[T]]) -> T:
    async def runner() -> T:
        await db.connect(settings.database_url)
        try:
            return await work()
        finally:
            await db.disconnect()

    return asyncio.run(runner())


def _serve(settings: Settings, host: str, port: int, workers: int) -> None:
    import os

    # Worker processes read their settings from the environment, so pass ours on.
    os.environ["CETGQL_DATABASE_URL"] = settings.database_url
    os.environ["CETGQL_SECRET_KEY"] = settings.secret_key
    os.environ["CETGQL_DEMO"] = "1" if settings.demo else "0"
    os.environ.setdefault("CETGQL_PUBLIC_URL", f"http://{host}:{port}")
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # One /metrics answer for all workers: prometheus_client's multiprocess mode, in a
        # directory of this run only (stale files of earlier runs would be counted too).
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="cetgql-metrics-")
    from cetgql.observability import configure_logging, log_config

    configure_logging(settings)
    console.print(f"cetgql on [bold]http://{host}:{port}/graphql[/bold] (GraphiQL in a browser)")
    from cetgql import worker_sockets

    # Several workers each listen on a socket of their own (SO_REUSEPORT), so the kernel
    # spreads connections across them (cetgql/worker_sockets.py, docs/scaling.md).
    config = worker_sockets.PerWorkerSocketConfig(
        "cetgql.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        log_config=log_config(settings),  # every worker logs the same way (request ids)
        proxy_headers=True,
        # Named, not left to "auto": a missing uvloop or httptools must fail loudly rather
        # than fall back to asyncio's loop and h11 (about 0.4 ms more CPU per request here,
        # docs/performance.md).
        loop="uvloop",
        http="httptools",
    )
    worker_sockets.run(config)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    database_url: DatabaseOption = None,
) -> None:
    """Serve the API (migrate first with `cetgql migrate`)."""
    _serve(_settings(database_url), host, port, workers)


@app.command()
def migrate(database_url: DatabaseOption = None) -> None:
    """Apply the database migrations (safe to repeat)."""
    settings = _settings(database_url)
    asyncio.run(db.migrate(settings.database_url))
    console.print("database is up to date")


@app.command()
def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, help="Jobs run at the same time (PostgreSQL).")
    ] = 2,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve this worker's Prometheus metrics (job runs) on this port."),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Run the periodic jobs (order lapse, pruning, ...) until stopped; see docs/jobs.md.

    PostgreSQL: any number of workers and API processes (CETGQL_RUN_JOBS); a tick runs once.

    SQLite: one worker at most, and only with CETGQL_RUN_JOBS=0 for `cetgql serve`.
    """
    from cetgql import jobs

    settings = _settings(database_url)
    from cetgql.observability import configure_logging

    configure_logging(settings)
    if metrics_port is not None:
        # A worker serves no HTTP of its own; its job runs are counted here (docs/operations.md).
        from prometheus_client import start_http_server

        start_http_server(metrics_port)
    _run_with_database(
        settings, lambda: jobs.run_worker(settings.database_url, concurrency=concurrency)
    )


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    database_url: DatabaseOption = None,
    seed_only: Annotated[bool, typer.Option(help="Seed, then exit without serving.")] = False,
) -> None:
    """Migrate, seed realistic demo data (idempotent), then serve with GraphiQL."""
    from cetgql.services import demo as demo_data

    settings = _settings(database_url, demo=True)
    asyncio.run(db.migrate(settings.database_url))
    summary = _run_with_database(settings, demo_data.seed)
    console.print(summary)
    if not seed_only:
        _serve(settings, host, port, workers=1)


@app.command("create-admin")
def create_admin(
    name: Annotated[str, typer.Option(help="Display name.")],
    email: Annotated[str, typer.Option(help="Sign-in email.")],
    password: Annotated[
        str,
        typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="Password."),
    ],
    role: Annotated[
        str, typer.Option(help="SCHOOL_ADMIN, PROVINCE_ADMIN or NATIONAL_ADMIN.")
    ] = "NATIONAL_ADMIN",
    school: Annotated[str | None, typer.Option(help="School code, for SCHOOL_ADMIN.")] = None,
    province: Annotated[str | None, typer.Option(help="Province code, for PROVINCE_ADMIN.")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create an administrator account with its role and scope."""
    from cetgql.models import Role
    from cetgql.services import accounts
    from cetgql.services.errors import DomainError, message_for

    settings = _settings(database_url)

    async def work() -> None:
        try:
            account = await accounts.create_admin(
                name=name,
                email=email,
                password=password,
                role=Role(role.upper()),
                school_code=school,
                province_code=province,
            )
        except DomainError as error:
            for problem in error.problems:
                field = ".".join(problem.field or ())
                text = message_for(problem.code, "en")
                console.print(f"[red]{problem.code}[/red] {field} {text}")
            raise typer.Exit(1) from error
        console.print(f"created admin {account.email} ({role.upper()})")

    _run_with_database(settings, work)


@app.command("import-roster")
def import_roster(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or XLSX file.")],
    session: Annotated[str, typer.Option(help='Exam session code, e.g. "2026H1".')],
    photos: Annotated[
        Path | None,
        typer.Option(file_okay=False, help="Folder of photos named by the file's photo column."),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Import a school roster: all rows or none; re-import updates, never duplicates."""
    from cetgql.services import roster_import

    settings = _settings(database_url)
    ok = _run_with_database(
        settings, lambda: roster_import.import_from_cli(file, session, photos, console)
    )
    raise typer.Exit(0 if ok else 1)


@app.command("group-register")
def group_register(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="CSV or XLSX: 证件类型, 证件号码, 报考科目."
        ),
    ],
    session: Annotated[str, typer.Option(help='Exam session code, e.g. "2026H1".')],
    school: Annotated[str, typer.Option(help="Code of the school that registers and pays.")],
    dry_run: Annotated[bool, typer.Option(help="Check every row; register nobody.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Group-register (集体报名) written subjects paid by a school: all rows or none (S11)."""
    from cetgql.services import group_registration

    settings = _settings(database_url)
    ok = _run_with_database(
        settings,
        lambda: group_registration.register_from_cli(
            file, session, school, console, dry_run=dry_run
        ),
    )
    raise typer.Exit(0 if ok else 1)


SheetFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or XLSX file.")]
SessionOption = Annotated[str, typer.Option(help='Exam session code, e.g. "2026H1".')]


@app.command("import-oral-centers")
def import_oral_centers(
    file: SheetFile, session: SessionOption, database_url: DatabaseOption = None
) -> None:
    """Import oral centres (省份代码, 考点代码, 考点名称, 考点地址, 考位数, 开考科目): new codes
    are created, known ones updated; all rows or none."""
    from cetgql.services import oral_centers, registration_setup

    settings = _settings(database_url)
    ok = _run_with_database(
        settings,
        lambda: registration_setup.import_from_cli(
            oral_centers.import_centers, file, session, console, "oral centres"
        ),
    )
    raise typer.Exit(0 if ok else 1)


@app.command("import-fees")
def import_fees(
    file: SheetFile, session: SessionOption, database_url: DatabaseOption = None
) -> None:
    """Import fees (省份代码, 科目, 报名费 in yuan, or a fee column headed 分/fen in fen);
    all rows or none."""
    from cetgql.services import registration_setup

    settings = _settings(database_url)
    ok = _run_with_database(
        settings,
        lambda: registration_setup.import_from_cli(
            registration_setup.import_fees, file, session, console, "fees"
        ),
    )
    raise typer.Exit(0 if ok else 1)


def _beijing_time(text: str) -> datetime:
    """ISO 8601; without an offset, Beijing time (what the notices announce)."""
    from cetgql.services.clock import SHANGHAI

    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise typer.BadParameter(
            f"{text!r} is not a date and time like 2026-03-01T09:00"
        ) from error
    return value if value.tzinfo else value.replace(tzinfo=SHANGHAI)


@app.command("set-window")
def set_window(
    session: SessionOption,
    province: Annotated[str, typer.Option(help="Province code, e.g. 44.")],
    kind: Annotated[str, typer.Option(help="WRITTEN or ORAL.")],
    opens: Annotated[datetime, typer.Option(parser=_beijing_time, help="Opening time.")],
    closes: Annotated[datetime, typer.Option(parser=_beijing_time, help="Closing time.")],
    school: Annotated[
        str | None, typer.Option(help="School code, for a school's own written window.")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Set a registration window (S6); times without an offset are Beijing time."""
    from cetgql.models import SubjectKind
    from cetgql.services import registration_setup
    from cetgql.services.clock import SHANGHAI
    from cetgql.services.errors import DomainError

    try:
        subject_kind = SubjectKind(kind.strip().upper())
    except ValueError as error:
        raise typer.BadParameter("--kind must be WRITTEN or ORAL") from error
    settings = _settings(database_url)

    async def work() -> bool:
        try:
            window = await registration_setup.set_window(
                None,
                session_code=session,
                province_code=province,
                school_code=school,
                kind=subject_kind,
                opens_at=opens,
                closes_at=closes,
            )
        except DomainError as error:
            registration_setup.print_domain_error(console, error)
            return False
        where = f"school {window.school.code}" if window.school else f"province {province}"
        console.print(
            f"{subject_kind.value} window of {where} in {window.session.code}: "
            f"{window.opens_at.astimezone(SHANGHAI).isoformat()} to "
            f"{window.closes_at.astimezone(SHANGHAI).isoformat()}",
            markup=False,
        )
        return True

    raise typer.Exit(0 if _run_with_database(settings, work) else 1)


KindOption = Annotated[str, typer.Option(help="WRITTEN (a school's) or ORAL (a province's).")]
SchoolOption = Annotated[str | None, typer.Option(help="School code, for WRITTEN tickets.")]
ProvinceOption = Annotated[str | None, typer.Option(help="Province code, for ORAL tickets.")]


@app.command()
def allocate(
    session: SessionOption,
    kind: KindOption,
    school: SchoolOption = None,
    province: ProvinceOption = None,
    seed: Annotated[
        str | None, typer.Option(help="Reproduce an earlier run; a fresh seed if left out.")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Allocate rooms and seats to a unit's paid registrations once registration has closed
    (T4); re-runnable until published, then it only seats newcomers. See docs/tickets.md."""
    from cetgql import ticket_commands

    settings = _settings(database_url)
    ok = _run_with_database(
        settings,
        lambda: ticket_commands.allocate(
            console, session=session, kind=kind, school=school, province=province, seed=seed
        ),
    )
    raise typer.Exit(0 if ok else 1)


@app.command("publish-tickets")
def publish_tickets(
    session: SessionOption,
    kind: KindOption,
    school: SchoolOption = None,
    province: ProvinceOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Publish a unit's tickets: candidates see them and their numbers are final."""
    from cetgql import ticket_commands

    settings = _settings(database_url)
    ok = _run_with_database(
        settings,
        lambda: ticket_commands.publish(
            console, session=session, kind=kind, school=school, province=province
        ),
    )
    raise typer.Exit(0 if ok else 1)


@app.command("print-batch")
def print_batch(
    session: SessionOption,
    output: Annotated[Path, typer.Option(dir_okay=False, help="The PDF file to write.")],
    school: Annotated[str | None, typer.Option(help="A school's written tickets.")] = None,
    oral_center: Annotated[
        str | None, typer.Option(help="An oral centre's tickets, by its 6-digit code.")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="Only this subject, e.g. CET4.")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Print published tickets of a school or an oral centre into one PDF, a page each, in
    subject, room and seat order (several files of 1000 pages for more)."""
    from cetgql import ticket_commands

    if bool(school) == bool(oral_center):
        raise typer.BadParameter("give either --school or --oral-center")
    settings = _settings(database_url)
    ok = _run_with_database(
        settings,
        lambda: ticket_commands.print_batch(
            console,
            session=session,
            school=school,
            oral_center=oral_center,
            subject=subject,
            output=output,
        ),
    )
    raise typer.Exit(0 if ok else 1)


@app.command("import-scores")
def import_scores(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or XLSX file.")],
    session: SessionOption,
    database_url: DatabaseOption = None,
) -> None:
    """Import scores (准考证号, 姓名, 证件号码, 听力, 阅读, 写作和翻译, 总分, 口试成绩, 缺考, 违纪):
    streamed, every bad row reported with its line, all rows or none; re-import corrects."""
    from cetgql.services import score_import

    settings = _settings(database_url)
    ok = _run_with_database(settings, lambda: score_import.import_from_cli(file, session, console))
    raise typer.Exit(0 if ok else 1)


@app.command("set-score-release")
def set_score_release(
    session: SessionOption,
    at: Annotated[
        datetime | None,
        typer.Option(
            parser=_beijing_time,
            help="Release time (Beijing time without an offset); default while none is set: "
            "10:00 on the 60th working day after the exam.",
        ),
    ] = None,
    verification_days: Annotated[
        int | None, typer.Option(help="Working days score checks are taken after release.")
    ] = None,
    paper_days: Annotated[
        int | None, typer.Option(help="Working days paper reports can be asked for.")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Set when a session's scores are released (R1); nothing shows before."""
    from cetgql.services import registration_setup, score_release
    from cetgql.services.clock import SHANGHAI
    from cetgql.services.errors import DomainError

    settings = _settings(database_url)

    async def work() -> bool:
        try:
            info = await score_release.set_release(
                None,
                session,
                release_at=at,
                verification_working_days=verification_days,
                paper_request_working_days=paper_days,
            )
        except DomainError as error:
            registration_setup.print_domain_error(console, error)
            return False

        def shown(value: datetime | None) -> str:
            return value.astimezone(SHANGHAI).isoformat() if value else "-"

        console.print(
            f"{info.session_code}: release {shown(info.release_at)}; electronic reports from "
            f"{shown(info.electronic_from)}; score checks until {shown(info.verification_until)}; "
            f"paper requests until {shown(info.paper_request_until)}"
            + (" (provisional: a year is missing from the calendar)" if info.provisional else ""),
            markup=False,
        )
        return True

    raise typer.Exit(0 if _run_with_database(settings, work) else 1)


calendar_app = typer.Typer(
    help="The working-day calendar (holidays and 调休).", no_args_is_help=True
)
app.add_typer(calendar_app, name="calendar")


@calendar_app.command("seed")
def calendar_seed(database_url: DatabaseOption = None) -> None:
    """Copy the years of the chinesecalendar package the database lacks (safe to repeat)."""
    from cetgql.services import work_calendar

    settings = _settings(database_url)
    years = _run_with_database(settings, work_calendar.seed)
    console.print(f"seeded {len(years)} year(s)" + (f": {years[0]}–{years[-1]}" if years else ""))


@calendar_app.command("show")
def calendar_show(year: int, database_url: DatabaseOption = None) -> None:
    """List a year's holidays (休) and make-up working days (班)."""
    from cetgql.services import work_calendar

    settings = _settings(database_url)
    found = _run_with_database(settings, lambda: work_calendar.calendar_year(year))
    state = f"known ({found.source})" if found.known else "not entered: Monday to Friday assumed"
    console.print(f"{year}: {state}", markup=False)
    for day in found.days:  # tab-separated, past rich's rendering, for grep and cut
        console.file.write(f"{day.day.isoformat()}\t{'班' if day.workday else '休'}\t{day.name}\n")
    console.file.flush()


@calendar_app.command("set-year")
def calendar_set_year(
    year: int,
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="CSV lines: date,休|班,name (2027-10-01,休,国庆节)."
        ),
    ],
    database_url: DatabaseOption = None,
) -> None:
    """Enter (or replace) a whole year of holidays and make-up working days."""
    from cetgql.services import registration_setup, work_calendar
    from cetgql.services.errors import DomainError

    settings = _settings(database_url)

    async def work() -> bool:
        try:
            days = work_calendar.read_days(file.read_text(encoding="utf-8-sig"))
            found = await work_calendar.set_year(None, year, days)
        except DomainError as error:
            registration_setup.print_domain_error(console, error)
            return False
        console.print(f"{year}: {len(found.days)} day(s) entered")
        return True

    raise typer.Exit(0 if _run_with_database(settings, work) else 1)


@app.command("export-schema")
def export_schema(
    output: Annotated[Path, typer.Option(help="Where to write the SDL.")] = Path(
        "schema/schema.graphql"
    ),
) -> None:
    """Write the GraphQL SDL that partners build against."""
    from cetgql.graphql.schema import schema

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(schema.as_str() + "\n", encoding="utf-8")
    console.print(f"wrote {output}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
