"""`warroom export`: DESIGN.md's JSON schema for an incident declared through the real server,
read by a separate process while the server is up; and the fixed INC-1 of the export tests
written by the CLI byte for byte as its golden files."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from storage.db import Database
from storage.migrate import upgrade
from tests.support.cli import run_cli, warroom_cli, write_config
from tests.support.exports import FORMATS, build_incident
from tests.support.paths import GOLDEN
from tests.support.warroom import Warroom

# DESIGN.md, "Export JSON": new keys may be added later, but these are the contract today.
INCIDENT_KEYS = {
    "id",
    "number",
    "title",
    "severity",
    "status",
    "channel",
    "declared_by",
    "declared_at",
    "acknowledged_at",
    "mitigated_at",
    "resolved_at",
    "roles",
    "private",
    "comms",  # issue 17: the customer-update ledger
    "merged_into",
    # When its war room was archived (issue 16).
    "archived_at",
}
ROLE_KEYS = {"role", "user", "assigned_at", "relieved_at"}
EVENT_KEYS = {"at", "kind", "actor", "text", "slack_ts", "thread_ts", "data"}
EVENT_KINDS = {
    "declared",
    "message",
    "message_edited",
    "message_deleted",
    "command",
    "command_refused",
    "role_assigned",
    "status_changed",
    "severity_changed",
    "customer_update",
    "note",
    "reminder",
    "escalation",
    "member_joined",
    "member_left",
    "key_event",
    "alert",
    "resolved",
    "postmortem",
}


def parse_iso_z(value: str) -> datetime:
    assert isinstance(value, str) and value.endswith("Z"), value
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0)
    return parsed


@pytest.fixture
async def declared(warroom: Warroom) -> Warroom:
    """INC-1 with a hand-over, a comms lead, a note and a refused command on its timeline."""
    incident = await warroom.declare("Café Zürich paiement en échec sev1")
    room = incident.channel_id
    for text, user in (
        ("role comms <@U0BO|bo>", "U0ANA"),
        ("role commander <@U0CY>", "U0ANA"),
        ("note Failing over to the replica", "U0CY"),
        ("role resolver <@U0BO>", "U0ANA"),  # refused: ana is no longer commander
    ):
        reply = await warroom.command(text, channel=room or "", user=user)
        assert reply.status == 200, reply.text
    await warroom.settle()
    return warroom


def database_url(room: Warroom) -> str:
    return room.services.db.url


async def test_export_json_follows_the_design(declared: Warroom, tmp_path: Path) -> None:
    run = await warroom_cli(
        "export", "INC-1", "--format", "json", database_url=database_url(declared), cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    document = run.json
    assert set(document) == {"incident", "events", "followups"}
    assert document["followups"] == []

    incident = document["incident"]
    assert set(incident) == INCIDENT_KEYS
    assert incident["id"] == "INC-1"
    assert incident["number"] == 1
    assert incident["title"] == "Café Zürich paiement en échec"
    assert incident["severity"] == "sev1"
    assert incident["private"] is False
    assert incident["merged_into"] is None
    assert incident["status"] == "investigating"
    assert set(incident["channel"]) == {"id", "name"}
    assert incident["channel"]["name"] == "inc-1-cafe-zurich-paiement-en-echec"
    assert declared.slack.channels[incident["channel"]["id"]].name == incident["channel"]["name"]
    assert incident["declared_by"] == {"id": "U0ANA", "name": "ana"}
    declared_at = parse_iso_z(incident["declared_at"])
    assert parse_iso_z(incident["acknowledged_at"]) == declared_at
    assert incident["mitigated_at"] is None
    assert incident["resolved_at"] is None

    roles = incident["roles"]
    assert all(set(r) == ROLE_KEYS and set(r["user"]) == {"id", "name"} for r in roles)
    assert [(r["role"], r["user"]["id"], r["relieved_at"] is None) for r in roles] == [
        ("commander", "U0ANA", False),
        ("comms", "U0BO", True),
        ("commander", "U0CY", True),
    ]
    assert roles[1]["user"]["name"] == "Bo"
    assert parse_iso_z(roles[0]["relieved_at"]) == parse_iso_z(roles[2]["assigned_at"])

    events = document["events"]
    assert all(set(e) == EVENT_KEYS for e in events)
    assert {e["kind"] for e in events} <= EVENT_KINDS
    times = [parse_iso_z(e["at"]) for e in events]
    assert times == sorted(times), "events are in time order"
    assert [e["kind"] for e in events] == [
        "command",
        "declared",
        "role_assigned",
        "command",
        "role_assigned",
        "command",
        "role_assigned",
        "command",
        "note",
        "command_refused",
    ]
    declared_event = events[1]
    assert declared_event["actor"] == {"id": "U0ANA", "name": "ana"}
    assert declared_event["text"] == "Café Zürich paiement en échec"
    assert declared_event["data"] == {"severity": "sev1", "source": "slack"}
    assert declared_event["slack_ts"] is None and declared_event["thread_ts"] is None
    note = events[8]
    assert note["text"] == "Failing over to the replica"
    assert note["actor"]["id"] == "U0CY"
    assert isinstance(events[-1]["data"]["reason"], str)


async def test_export_accepts_a_bare_number_and_writes_a_file(
    declared: Warroom, tmp_path: Path
) -> None:
    to_stdout = await warroom_cli(
        "export", "INC-1", database_url=database_url(declared), cwd=tmp_path
    )
    to_file = await warroom_cli(
        "export", "1", "-o", "inc-1.json", database_url=database_url(declared), cwd=tmp_path
    )
    assert to_file.returncode == 0, to_file.stderr
    assert to_file.stdout == ""
    written = json.loads((tmp_path / "inc-1.json").read_text(encoding="utf-8"))
    expected = to_stdout.json
    # An open incident's comms ledger runs to now, which moved between the two runs.
    assert written["incident"].pop("comms")["updates"] == 0
    assert expected["incident"].pop("comms")["updates"] == 0
    assert written == expected


@pytest.mark.parametrize("ref", ["INC-99", "99", "inc-99"])
async def test_an_unknown_incident(declared: Warroom, tmp_path: Path, ref: str) -> None:
    run = await warroom_cli(
        "export", ref, "--format", "json", database_url=database_url(declared), cwd=tmp_path
    )
    assert run.returncode == 2
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("warroom: ") and "INC-99" in line


async def test_a_malformed_incident_id(declared: Warroom, tmp_path: Path) -> None:
    run = await warroom_cli("export", "INC-x", database_url=database_url(declared), cwd=tmp_path)
    assert run.returncode == 2
    [line] = run.stderr.strip().splitlines()
    assert "INC-x" in line and "INC-7" in line


def files_in(folder: Path) -> list[str]:
    """Every file and folder below `folder`, by name (a temporary file left behind shows)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(
    ("ref", "named"),
    [("INC-²", "INC-²"), ("INC-99999999999999999999999", "INC-9999"), ("INC-0", "INC-0")],
)
async def test_an_incident_id_no_incident_can_have_is_one_line(
    declared: Warroom, tmp_path: Path, ref: str, named: str
) -> None:
    run = await warroom_cli("export", ref, database_url=database_url(declared), cwd=tmp_path)
    assert run.returncode == 2 and run.stdout == ""
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("warroom: ") and named in line and "INC-7" in line


async def test_dash_o_dash_is_standard_output(declared: Warroom, tmp_path: Path) -> None:
    run = await warroom_cli(
        "export", "INC-1", "-o", "-", database_url=database_url(declared), cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert run.json["incident"]["id"] == "INC-1"
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("", "-o needs a file name (or - for standard output)"),
        ("out", "-o out: is a directory; name a file in it"),
        ("missing/inc-1.json", "-o missing/inc-1.json: there is no directory missing"),
    ],
)
async def test_an_output_that_cannot_be_written_is_one_line_and_no_file(
    declared: Warroom, tmp_path: Path, output: str, reason: str
) -> None:
    (tmp_path / "out").mkdir()
    before = files_in(tmp_path)
    run = await warroom_cli(
        "export", "INC-1", "-o", output, database_url=database_url(declared), cwd=tmp_path
    )
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip() == f"warroom: {reason}"
    assert files_in(tmp_path) == before


async def test_a_failed_export_leaves_no_partial_file_and_keeps_the_old_one(
    declared: Warroom, tmp_path: Path
) -> None:
    # A team's own Markdown template that breaks after the header has been written out.
    templates = tmp_path / "templates" / "exports"
    templates.mkdir(parents=True)
    (templates / "timeline.md.j2").write_text(
        "# {{ page.title }}\n{% for e in events %}{{ e.no_such_field }}{% endfor %}\n"
    )
    (tmp_path / "warroom.yml").write_text(f"templates_dir: {tmp_path / 'templates'}\n")
    (tmp_path / ".env").write_text(f"WARROOM_CONFIG={tmp_path / 'warroom.yml'}\n")
    target = tmp_path / "inc.md"
    target.write_text("the export from yesterday")
    run = await warroom_cli(
        "export", "INC-1", "--format", "md", "-o", "inc.md",
        database_url=database_url(declared), cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 2
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("warroom: templates_dir ") and "no_such_field" in line
    assert target.read_text() == "the export from yesterday"
    assert [name for name in files_in(tmp_path) if name.startswith(".inc")] == []


async def test_a_database_without_the_schema_is_one_line(tmp_path: Path) -> None:
    run = await warroom_cli(
        "export", "INC-1", database_url=f"sqlite:///{tmp_path / 'empty.db'}", cwd=tmp_path
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    [line] = run.stderr.strip().splitlines()
    assert "DATABASE_URL" in line and "warroom db upgrade" in line


async def test_export_reads_while_the_server_holds_a_write_transaction(
    declared: Warroom, tmp_path: Path
) -> None:
    url = database_url(declared)
    path = url.removeprefix("sqlite:///")
    # The server is up, and another writer holds SQLite's strongest lock while this runs
    # (in WAL mode readers go on reading the last commit).
    writer = sqlite3.connect(path, isolation_level=None, timeout=1)
    try:
        writer.execute("BEGIN EXCLUSIVE")
        writer.execute("UPDATE incident SET title = 'uncommitted' WHERE number = 1")
        run = await warroom_cli("export", "INC-1", database_url=url, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert run.json["incident"]["title"] == "Café Zürich paiement en échec"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    # And the server still takes commands afterwards.
    reply = await declared.command("INC-1 note still here")
    assert reply.status == 200 and "Noted" in reply.json["text"]
    assert declared.kinds(1)[-1] == "note"


async def test_export_reads_while_a_request_is_in_flight(declared: Warroom, tmp_path: Path) -> None:
    """A slow Slack holds background work open; the export is not held up behind it."""
    declared.slack.latency = 0.5
    reply = await declared.command("declare Second incident")
    assert reply.status == 200
    assert declared.services.tasks.pending > 0
    run = await warroom_cli("export", "INC-2", database_url=database_url(declared), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.json["incident"]["id"] == "INC-2"
    await declared.settle()


# -- the fixed INC-1 of the export tests, exported by the CLI with a config file -------------

CLI_CONFIG = 'timezone: Europe/Berlin\nredact_patterns: ["ACME-\\\\d{4}"]\n'


@pytest.fixture
def inc1_url(tmp_path: Path) -> str:
    """A SQLite file holding the fixed INC-1 (tests/support/exports.py)."""
    url = f"sqlite:///{tmp_path / 'exports.db'}"
    db = Database(url)
    try:
        upgrade(db.engine)
        build_incident(db)
    finally:
        db.close()
    return url


def export_with_config(
    *args: str, database_url: str, cwd: Path, config: str
) -> CompletedProcess[str]:
    """`warroom export ...` in its own process, with `config` as its config file."""
    config_file = write_config(cwd, config)
    env = {"DATABASE_URL": database_url, "WARROOM_CONFIG": str(config_file)}
    return run_cli("export", *args, cwd=cwd, env=env)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_cli_writes_the_golden_file(inc1_url: str, fmt: str, tmp_path: Path) -> None:
    """`warroom export` in its own process, with the config file and -o, writes the same bytes."""
    out = tmp_path / f"out.{fmt}"
    args = ("INC-1", "--format", fmt, "--redact", "-o", str(out))
    run = export_with_config(*args, database_url=inc1_url, cwd=tmp_path, config=CLI_CONFIG)
    assert run.returncode == 0, run.stderr
    produced = out.read_bytes().decode("utf-8")
    expected = (GOLDEN / f"INC-1-redacted.{fmt}").read_bytes().decode("utf-8")
    # The page says when it was exported, and the CLI's clock is the real one.
    stamp = re.compile(r"([Ee]xported) \d{4}-\d\d-\d\d \d\d:\d\d \w+")
    assert stamp.sub(r"\1 …", produced) == stamp.sub(r"\1 …", expected)


def test_the_cli_names_a_bad_redact_pattern(inc1_url: str, tmp_path: Path) -> None:
    run = export_with_config(
        "INC-1",
        "--redact",
        database_url=inc1_url,
        cwd=tmp_path,
        config='redact_patterns: ["("]\n',
    )
    assert run.returncode == 2
    assert run.stdout == "" and "Traceback" not in run.stderr
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("warroom: redact_patterns: '('")
