"""The `warroom` command line."""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.config import Settings, WarroomConfig, load_config
from bot.errors import ConfigError, UsageError, WarroomError
from bot.logs import AccessLogger, configure_logging

if TYPE_CHECKING:
    from bot.backfill.service import BackfillReport
    from storage.db import Database

log = logging.getLogger("warroom")


def _configure_logging() -> None:
    """Log lines as LOG_FORMAT asks, masking every secret, before anything else can log."""
    try:
        settings = Settings()
    except Exception:  # a bad setting (LOG_FORMAT too) is reported by the command that reads it
        configure_logging()
        return
    secrets = settings.secret_values()
    # A bad config file is reported by the command that reads it; its secrets masked if it reads.
    with contextlib.suppress(Exception):
        secrets += load_config(settings.warroom_config).secret_values()
    configure_logging(secrets, json_lines=settings.log_format == "json")


def _settings() -> Settings:
    return Settings()


def _database(settings: Settings) -> Database:
    """The database DATABASE_URL names; a URL SQLAlchemy cannot read is a setting error."""
    from sqlalchemy.exc import ArgumentError

    from storage.db import Database

    try:
        return Database(settings.database_url)
    except ArgumentError:
        # Not the URL itself in the message: it may carry a password.
        raise ConfigError(
            "DATABASE_URL is not a database URL SQLAlchemy can use "
            "(like sqlite:///warroom.db or postgresql://user@host/warroom)"
        ) from None


@contextmanager
def _database_errors() -> Iterator[None]:
    """A database that cannot be reached or has no schema: one line, not a traceback."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        yield
    except (OperationalError, ProgrammingError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise ConfigError(
            f"DATABASE_URL: cannot use the database ({reason}); is it up and upgraded "
            "(`warroom db upgrade`)?"
        ) from None


def cmd_serve(args: argparse.Namespace) -> None:
    """`warroom serve`: check the schema (upgrading SQLite), then take Slack's requests."""
    # Settings first, before the heavy imports (Alembic logs as it loads): a missing setting
    # is one line and nothing else.
    settings = _settings()
    if args.socket_mode:
        settings.require("slack_bot_token", "slack_app_token")
    else:
        settings.require("slack_bot_token", "slack_signing_secret")
    config = load_config(settings.warroom_config)

    from aiohttp import web

    from bot.app import build_web_app
    from storage.db import is_sqlite
    from storage.migrate import is_current, upgrade

    db = _database(settings)
    try:
        with _database_errors():
            if is_sqlite(settings.database_url):
                upgrade(db.engine)
            elif not is_current(db.engine):
                raise WarroomError("the database schema is out of date; run `warroom db upgrade`")
    finally:
        db.close()
    app = build_web_app(settings, config, socket_mode=args.socket_mode)
    if args.socket_mode:
        print(
            f"warroom taking Slack's requests over Socket Mode; health and metrics on "
            f"http://{args.host}:{args.port}/",
            flush=True,
        )
    else:
        print(f"warroom listening on http://{args.host}:{args.port}/slack/events", flush=True)
    # The requests in flight get the grace too; the stop as a whole keeps within it.
    grace = config.shutdown_grace.total_seconds()
    # What start-up built (modules, the ORM's tables, Bolt) lives as long as the process: out
    # of the collector's sight, a full collection takes about 3 ms instead of 75, a pause that
    # every request in flight, an ack included, would wait out.
    gc.collect()
    gc.freeze()
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        print=None,
        shutdown_timeout=grace,
        access_log_class=AccessLogger,
    )


def cmd_db(args: argparse.Namespace) -> None:
    """`warroom db upgrade`: bring the database schema up to date."""
    from storage.migrate import upgrade

    settings = _settings()
    db = _database(settings)
    try:
        with _database_errors():
            upgrade(db.engine)
    finally:
        db.close()
    print("database is up to date")


def cmd_check_config(_args: argparse.Namespace) -> None:
    """`warroom check-config`: load the settings and config file, and say what they hold."""
    settings = _settings()
    config = load_config(settings.warroom_config)
    source = settings.warroom_config or "built-in defaults"
    print(
        f"config OK ({source}): {len(config.severities)} severities, "
        f"channel pattern {config.channel_pattern!r}"
    )


@contextmanager
def _template_errors(templates_dir: Path | None) -> Iterator[None]:
    """A team's own export template that fails as it renders: one line naming it."""
    from jinja2 import TemplateError

    try:
        yield
    except TemplateError as exc:
        where = f"templates_dir {templates_dir}" if templates_dir else "template"
        raise ConfigError(f"{where}: {type(exc).__name__}: {exc}") from None


def _output(path: str | None) -> AbstractContextManager[TextIO]:
    """Standard output (left open) for no `-o` or `-o -`; else the file, written whole or not
    at all (a temporary file beside it takes its name only once everything is in)."""
    if path is None or path == "-":
        return nullcontext(sys.stdout)
    if not path.strip():
        raise UsageError("-o needs a file name (or - for standard output)")
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"-o {path}: is a directory; name a file in it")
    if not target.parent.is_dir():
        raise UsageError(f"-o {path}: there is no directory {target.parent}")
    return _written_whole(target)


@contextmanager
def _written_whole(target: Path) -> Iterator[TextIO]:
    try:
        handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError as exc:
        raise UsageError(f"-o {target}: cannot write there ({exc.strerror})") from None
    os.close(handle)
    temporary = Path(name)
    try:
        # As open() would have made it (mkstemp makes it readable by its owner alone).
        umask = os.umask(0)
        os.umask(umask)
        temporary.chmod(0o666 & ~umask)
        with temporary.open("w", encoding="utf-8") as out:
            yield out
        temporary.replace(target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def cmd_export(args: argparse.Namespace) -> None:
    """`warroom export`: write an incident's timeline to standard output or a file."""
    from bot.clock import utc_now
    from bot.exports.export import export_chunks, parse_incident_ref
    from bot.exports.templating import build_environment

    number = parse_incident_ref(args.incident)
    settings = _settings()
    config = load_config(settings.warroom_config)
    db = _database(settings)
    try:
        with _database_errors(), db.reading() as session:
            chunks = export_chunks(
                session,
                number,
                args.format,
                config=config,
                templates=build_environment(config.templates_dir),
                redact=args.redact,
                now=utc_now(),
            )
            with _template_errors(config.templates_dir), _output(args.output) as out:
                for chunk in chunks:
                    out.write(chunk)
    finally:
        db.close()


def cmd_report(args: argparse.Namespace) -> None:
    """`warroom report`: the insights report over a window, to standard output or a file."""
    from bot.clock import utc_now
    from bot.exports.templating import build_environment
    from bot.insights.render import render_report
    from bot.insights.service import build_report, parse_window

    now = utc_now()
    window = parse_window(args.since, args.until, now=now)
    settings = _settings()
    config = load_config(settings.warroom_config)
    db = _database(settings)
    try:
        with _database_errors(), db.reading() as session:
            report = build_report(session, window, config=config, now=now)
        templates = build_environment(config.templates_dir)
        with _template_errors(config.templates_dir):
            text = render_report(report, args.format, templates=templates)
        with _output(args.output) as out:
            out.write(text)
    finally:
        db.close()


def cmd_followups(args: argparse.Namespace) -> None:
    """`warroom followups`: list follow-ups across incidents to standard output or a file."""
    from bot.clock import utc_now
    from bot.exports.followups import listed_followups, parse_filter, render_listing
    from bot.exports.templating import build_environment
    from bot.followups.rules import today_in

    wanted = parse_filter(status=args.status, owner=args.owner, overdue=args.overdue)
    settings = _settings()
    config = load_config(settings.warroom_config)
    db = _database(settings)
    now = utc_now()
    try:
        with _database_errors(), db.reading() as session:
            items = listed_followups(session, wanted, today_in(config.zone, now))
        chunks = render_listing(
            items,
            args.format,
            wanted=wanted,
            templates=build_environment(config.templates_dir),
            zone=config.zone,
            now=now,
        )
        with _output(args.output) as out:
            for chunk in chunks:
                out.write(chunk)
    finally:
        db.close()


def cmd_backfill(args: argparse.Namespace) -> None:
    """`warroom backfill`: read war rooms' Slack history and record what the timeline lacks."""
    import asyncio

    from bot.durations import parse_duration
    from bot.exports.export import parse_incident_ref

    number = parse_incident_ref(args.incident) if args.incident is not None else None
    since = None
    if args.since is not None:
        try:
            since = parse_duration(args.since)
        except ValueError as exc:
            raise UsageError(f"--since: {exc}") from None
    settings = _settings()
    settings.require("slack_bot_token")
    config = load_config(settings.warroom_config)
    db = _database(settings)
    try:
        with _database_errors():
            reports = asyncio.run(_backfill(settings, config, db, number=number, since=since))
    finally:
        db.close()
    if not reports:
        print("no war room to back-fill (none open or resolved within backfill_window)")
    for report in reports:
        print(report.summary())
    failed = [r for r in reports if r.error is not None]
    if failed:
        raise WarroomError(f"back-fill failed for {', '.join(f'INC-{r.number}' for r in failed)}")


async def _backfill(
    settings: Settings,
    config: WarroomConfig,
    db: Database,
    *,
    number: int | None,
    since: timedelta | None,
) -> list[BackfillReport]:
    """One back-fill run, on its own Slack client; names are looked up before it returns."""
    from bot.backfill.service import BackfillService
    from bot.clock import utc_now
    from bot.incidents.people import People
    from bot.slack.gateway import SlackGateway, build_web_client
    from bot.slack.identity import BotIdentity
    from bot.tasks import BackgroundTasks
    from bot.timeline.service import TimelineService
    from bot.webhooks.sender import subscriptions
    from storage import webhooks as webhook_store

    # What the back-fill records owes the configured webhooks, as the server's writes do.
    webhook_store.subscribe(db.engines, subscriptions(config.webhooks))
    assert settings.slack_bot_token is not None
    client = build_web_client(settings.slack_bot_token, settings.api_url)
    gateway = SlackGateway(client)
    tasks = BackgroundTasks()
    people = People(db=db, gateway=gateway)
    service = BackfillService(
        db=db,
        gateway=gateway,
        timeline=TimelineService(db=db, people=people, tasks=tasks),
        own_ids=BotIdentity(client, settings.slack_bot_token).own_ids,
        window=config.backfill_window,
        clock=utc_now,
    )
    try:
        reports = await service.backfill(number=number, since=since)
        await tasks.join()
        return reports
    finally:
        if client.session is not None:
            await client.session.close()


def cmd_demo(args: argparse.Namespace) -> None:
    """`warroom demo`: play an incident against a stand-in Slack and say where the exports are."""
    import asyncio

    from bot.demo.demo import run_demo

    # The demo's own lines tell the story; the app's INFO logs (and Alembic's) would bury them.
    logging.getLogger().setLevel(logging.WARNING)
    # Bolt warns that the client's token wins over SLACK_BOT_TOKEN: true, and how warroom wires
    # it. A filter on Bolt's base logger (warroom hands Bolt that one), because Bolt resets
    # levels from the root's when it builds; Bolt copies the base's filters to its own loggers.
    logging.getLogger("slack_bolt").addFilter(lambda r: r.levelno >= logging.ERROR)
    out_dir = Path(args.out)
    echo = (lambda _line: None) if args.quiet else (lambda line: print(line, flush=True))
    result = asyncio.run(run_demo(out_dir, echo=echo))
    print(
        f"{result.incident} played in {result.seconds:.1f}s; "
        f"{result.api_calls} Web API calls answered by the stand-in at {result.api_url}"
    )
    print(f"  HTML      {result.html}  ({result.html.resolve().as_uri()})")
    print(f"  Markdown  {result.markdown}")


def build_parser() -> argparse.ArgumentParser:
    """The `warroom` argument parser; each subcommand sets `run` to the function for it."""
    parser = argparse.ArgumentParser(prog="warroom", description="Incident war rooms in Slack.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve Slack's requests over HTTP")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument(
        "--socket-mode",
        action="store_true",
        help="take Slack's requests over Socket Mode (SLACK_APP_TOKEN) instead of HTTP",
    )
    serve.set_defaults(run=cmd_serve)

    db = commands.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])
    db.set_defaults(run=cmd_db)

    check = commands.add_parser("check-config", help="validate settings and the config file")
    check.set_defaults(run=cmd_check_config)

    export = commands.add_parser("export", help="print an incident's timeline")
    export.add_argument("incident", help="INC-7 or 7")
    export.add_argument("--format", default="json", choices=["md", "html", "json", "csv"])
    export.add_argument(
        "--redact", action="store_true", help="mask email addresses, phone numbers and IPs"
    )
    export.add_argument("-o", "--output", help="write to this file instead of standard output")
    export.set_defaults(run=cmd_export)

    report = commands.add_parser("report", help="insights across incidents over a window")
    report.add_argument(
        "--since", default="30d", help="a duration back from --until (30d) or a date"
    )
    report.add_argument("--until", help="a date (2024-03-31) or ISO time; default now")
    report.add_argument("--format", default="md", choices=["md", "html", "json", "csv"])
    report.add_argument("-o", "--output", help="write to this file instead of standard output")
    report.set_defaults(run=cmd_report)

    followups = commands.add_parser("followups", help="list follow-ups across incidents")
    followups.add_argument(
        "--status", default="open", choices=["open", "done", "dropped", "all"], help="default open"
    )
    followups.add_argument("--owner", help="only this Slack user's (U0123ABC)")
    followups.add_argument("--overdue", action="store_true", help="only open ones past due")
    followups.add_argument("--format", default="md", choices=["md", "csv", "json"])
    followups.add_argument("-o", "--output", help="write to this file instead of standard output")
    followups.set_defaults(run=cmd_followups)
    backfill = commands.add_parser(
        "backfill", help="record what war rooms said in Slack while warroom was not listening"
    )
    backfill.add_argument(
        "incident", nargs="?", help="INC-7 or 7 (default: every open or recent war room)"
    )
    backfill.add_argument(
        "--since",
        metavar="DURATION",
        help="read this far back (45s, 30m, 2h, 5d) instead of from the last recorded message",
    )
    backfill.set_defaults(run=cmd_backfill)

    demo = commands.add_parser(
        "demo", help="play a scripted incident against a local stand-in for Slack, then export it"
    )
    demo.add_argument(
        "--out", default="warroom-demo", help="where the exports go (default ./warroom-demo)"
    )
    demo.add_argument("--quiet", action="store_true", help="print only where the exports are")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `warroom` command line; the exit code is 2 for a WarroomError, 130 on Ctrl-C."""
    _configure_logging()
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except WarroomError as exc:
        print(f"warroom: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
