"""Exports checked as a reviewer reads them: golden files for every format of one fixed incident,
user text made inert in each format, redaction, and a 100,000-event timeline streamed in bounded
memory, all read from a real SQLite file. Set UPDATE_GOLDEN=1 to rewrite the golden files after a
deliberate change. The CLI writing them: tests/app/test_cli_export.py."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import WarroomConfig
from bot.errors import NotFoundError, UsageError
from bot.exports.export import export_chunks
from bot.exports.templating import build_environment, markdown_escape
from storage import incidents as incident_store
from storage import timeline as timeline_store
from storage.db import Database
from storage.migrate import upgrade
from tests.support.ci import missing
from tests.support.exports import (
    CONFIG,
    EDITED_BEFORE,
    EVIL_NAME,
    FORMATS,
    FORMULAS,
    IMG,
    MENTIONS,
    MULTILINE,
    NOW,
    PERSONAL,
    RAW_SCRIPT,
    SCRIPT,
    T0,
    build_incident,
    parse_html,
    ts,
)
from tests.support.paths import GOLDEN, REPO

UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'exports.db'}")
    upgrade(database.engine)
    yield database
    database.close()


@pytest.fixture
def incident(db: Database) -> int:
    return build_incident(db)


def render(
    db: Database,
    number: int,
    fmt: str,
    *,
    redact: bool = False,
    config: WarroomConfig = CONFIG,
) -> str:
    with db.reading() as session:
        return "".join(
            export_chunks(
                session,
                number,
                fmt,
                config=config,
                templates=build_environment(),
                redact=redact,
                now=NOW,
            )
        )


def check_golden(name: str, produced: str) -> None:
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(produced.encode("utf-8"))
        return
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 to write it"
    expected = path.read_bytes().decode("utf-8")
    assert produced == expected, f"{name} differs from its golden file; UPDATE_GOLDEN=1 rewrites"


# -- golden files -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("redact", [False, True], ids=["plain", "redacted"])
def test_golden(db: Database, incident: int, fmt: str, redact: bool) -> None:
    suffix = "-redacted" if redact else ""
    check_golden(f"INC-1{suffix}.{fmt}", render(db, incident, fmt, redact=redact))


@pytest.mark.parametrize("fmt", FORMATS)
def test_chunks_are_plain_strings(db: Database, incident: int, fmt: str) -> None:
    """Not Markup: Markup + str escapes the str, so `+=` over the chunks would escape twice."""
    with db.reading() as session:
        chunks = list(
            export_chunks(
                session, 1, fmt, config=CONFIG, templates=build_environment(), redact=False, now=NOW
            )
        )
    assert all(type(chunk) is str for chunk in chunks)
    joined = ""
    for chunk in chunks:
        joined += chunk
    assert joined == render(db, incident, fmt)


# -- user text stays inert in every format ----------------------------------------------------


# The page's own markup; a tag outside this set came from user text.
PAGE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "span", "dl",
    "dt", "dd", "time", "div", "b", "table", "thead", "tbody", "tr", "th", "td", "form",
    "label", "select", "option", "ol", "li", "del", "footer", "script",
}  # fmt: skip


def test_html_runs_nothing_from_user_text(db: Database, incident: int) -> None:
    page = render(db, incident, "html")
    parsed = parse_html(page)
    tags = [tag for tag, _ in parsed.tags]
    assert set(tags) <= PAGE_TAGS, set(tags) - PAGE_TAGS
    assert tags.count("script") == 1, "only the page's own filter script"
    [script] = [attrs for tag, attrs in parsed.tags if tag == "script"]
    assert set(script) <= {"nonce"}, "no src, no type tricks"
    handlers = [(tag, name) for tag, attrs in parsed.tags for name in attrs if name[:2] == "on"]
    assert handlers == [], "no inline event handlers at all (the CSP would refuse them anyway)"
    for tag, attrs in parsed.tags:
        for name, value in attrs.items():
            assert "javascript:" not in (value or "").lower(), (tag, name, value)
    # The attack text is there, as text a reviewer can read.
    text = "".join(parsed.text)
    assert "<script>alert(1)</script>" in text
    assert '"><img src=x onerror=alert(1)>' in text
    assert "@channel @here ping @ana and @cy see label (http://x.example)" in text
    assert "=SUM(A1)" in text
    actor_names = {attrs.get("data-actor-name") for tag, attrs in parsed.tags if tag == "li"}
    assert EVIL_NAME in actor_names, "a hostile display name survives as an attribute value"
    assert "<svg" not in page and "<img" not in page


def test_html_tells_kinds_apart_and_nests_replies(db: Database, incident: int) -> None:
    parsed = parse_html(render(db, incident, "html"))
    items = [attrs for tag, attrs in parsed.tags if tag == "li"]
    with db.reading() as session:
        stored = list(timeline_store.events_for(session, incident_id=1))
    assert len(items) == len(stored), "one list item per event"
    classes = [str(attrs["class"]).split() for attrs in items]
    kinds = [attrs["data-kind"] for attrs in items]
    assert all(f"k-{kind}" in c for kind, c in zip(kinds, classes, strict=True))
    keys = {kind for kind, c in zip(kinds, classes, strict=True) if "key" in c}
    assert keys == {"declared", "status_changed", "customer_update", "resolved"}
    # The two replies come right after their parent, before the later top-level message.
    replies = [i for i, c in enumerate(classes) if "reply" in c]
    parent = next(
        i for i, a in enumerate(items) if a["data-kind"] == "message" and "reply" not in classes[i]
    )
    assert replies == [parent + 1, parent + 2]
    # Edits and deletions show what was there before, struck through.
    dels = [attrs for tag, attrs in parsed.tags if tag == "del"]
    assert len(dels) == 2


def test_markdown_is_inert_and_pastes_cleanly(db: Database, incident: int) -> None:
    page = render(db, incident, "md")
    assert "<" not in page.replace("<br>", ""), "no raw HTML from user text"
    for live in ("@channel", "@here", "@ana", "@cmd", "<!channel>", "<@U0ANA>", "<http"):
        assert live not in page, live
    assert "](" not in page, "no Markdown links from user text"
    # Every event is one list item (replies nested under their parent); nothing runs together.
    with db.reading() as session:
        count = sum(1 for _ in timeline_store.events_for(session, incident_id=1))
    timeline = page.split("## Timeline\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(timeline) == count
    assert all(re.match(r"^(    )?- (\*\*)?\d\d:\d\d:\d\d ", line) for line in timeline), timeline
    assert sum(line.startswith("    - ") for line in timeline) == 2
    assert 'line one, "quoted"<br>line two \\| pipe \\*stars\\*' in page
    assert page.endswith("by warroom._\n")


DISGUISED_FORMULAS = (
    " =SUM(A1)",
    "\t=1+1",
    "  +1",
    " -2",
    " @cmd",
    "＝SUM(A1)",
    "＋1",
    "－2",
    "＠cmd",
)


def test_csv_quotes_formulas_behind_spaces_and_fullwidth_signs(db: Database, incident: int) -> None:
    # Text stored before the edge cleaned it: a right-to-left override too.
    with db.unit_of_work() as session:
        for n, text in enumerate((*DISGUISED_FORMULAS, "paid \u202egnp.exe")):
            timeline_store.add_event(
                session, incident_id=incident, kind="message", at=T0, text=text,
                actor_id="U0ANA", actor_name=" =HYPERLINK(1)", dedupe_key=f"disguised:{n}",
            )  # fmt: skip
    page = render(db, incident, "csv")
    rows = list(csv.DictReader(io.StringIO(page, newline="")))
    texts = [r["text"] for r in rows]
    for formula in DISGUISED_FORMULAS:
        assert "'" + formula in texts, formula
    assert " =HYPERLINK(1)" not in [r["actor_name"] for r in rows]
    assert "paid [U+202E]gnp.exe" in texts
    for fmt in ("csv", "md", "html"):
        assert "\u202e" not in render(db, incident, fmt), fmt


def test_csv_is_one_row_per_event_and_runs_no_formula(db: Database, incident: int) -> None:
    page = render(db, incident, "csv")
    rows = list(csv.DictReader(io.StringIO(page, newline="")))
    with db.reading() as session:
        stored = list(timeline_store.events_for(session, incident_id=1))
    assert len(rows) == len(stored)
    # Records end in CRLF (RFC 4180); the one line break inside a cell is the user's own.
    assert page.endswith("\r\n") and page.count("\r\n") == len(rows) + 1
    assert [r["kind"] for r in rows] == [e.kind for e in stored]
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)
    texts = [r["text"] for r in rows]
    for formula in FORMULAS:
        assert "'" + formula in texts
    assert "'@channel @here ping @ana and @cy see label (http://x.example)" in texts
    # RFC 4180: quotes doubled, newlines and commas kept inside one quoted cell.
    assert MULTILINE_PLAIN in texts
    assert '"><img src=x onerror=alert(1)>' in texts
    assert "'" + EVIL_NAME not in texts and EVIL_NAME in [r["actor_name"] for r in rows]
    declared = rows[0]
    assert declared["text"] == "Checkout <API> returning 500s & timeouts", "a title is not markup"
    assert declared["at"] == "2024-03-05T09:00:00Z"
    assert declared["local_time"] == "2024-03-05 10:00:00 CET"
    assert json.loads(declared["data"]) == {"severity": "sev1", "source": "slack"}


MULTILINE_PLAIN = MULTILINE  # nothing in it is Slack markup


def test_json_is_valid_and_keeps_slack_text_raw(db: Database, incident: int) -> None:
    document = json.loads(render(db, incident, "json"))
    texts = [e["text"] for e in document["events"]]
    for raw in (SCRIPT, IMG, RAW_SCRIPT, MENTIONS, PERSONAL, MULTILINE, *FORMULAS):
        assert raw in texts, raw
    assert document["incident"]["title"] == "Checkout <API> returning 500s & timeouts"
    edit = next(e for e in document["events"] if e["kind"] == "message_edited")
    assert edit["data"] == {"previous_text": EDITED_BEFORE}
    deletion = next(e for e in document["events"] if e["kind"] == "message_deleted")
    assert deletion["text"] is None
    assert deletion["data"] == {"previous_text": "wrong channel, sorry"}
    assert [e["at"] for e in document["events"]] == sorted(e["at"] for e in document["events"])


def test_times_show_the_date_once_the_incident_runs_past_midnight(
    db: Database, incident: int
) -> None:
    with db.unit_of_work() as session:
        timeline_store.add_event(
            session, incident_id=1, kind="note", at=T0 + timedelta(hours=20), text="next morning"
        )
    assert "- 06:00:00 note" not in render(db, incident, "md")
    assert "- 2024-03-06 06:00:00 note · warroom: next morning" in render(db, incident, "md")


def test_a_slack_date_token_reads_in_the_configured_time_zone(db: Database, incident: int) -> None:
    # Reminders are written for Slack with a date token; the export reads it in its own zone.
    token = f"<!date^{int(T0.timestamp())}^{{date_short_pretty}} {{time}}|2024-03-05 09:00 UTC>"
    with db.unit_of_work() as session:
        timeline_store.add_event(
            session, incident_id=1, kind="reminder", at=T0, text=f"No update since {token}"
        )
    markdown = render(db, incident, "md")
    assert "No update since 2024-03-05 10:00 CET" in markdown
    assert "<!date^" not in markdown and "09:00 UTC" not in markdown


# -- redaction --------------------------------------------------------------------------------

SECRETS = ("ana@example.com", "ops@example.com", "1234567", "10.0.0.12", "2001:db8::1", "ACME-1234")


@pytest.mark.parametrize("fmt", FORMATS)
def test_redaction_masks_personal_data_in_every_format(
    db: Database, incident: int, fmt: str
) -> None:
    plain = render(db, incident, fmt)
    redacted = render(db, incident, fmt, redact=True)
    for secret in SECRETS:
        assert secret in plain, f"the fixture should carry {secret}"
        assert secret not in redacted, f"{secret} leaked into the redacted {fmt}"
    for mask in ("[email]", "[phone]", "[ip]", "[redacted]"):
        assert (markdown_escape(mask) if fmt == "md" else mask) in redacted, mask
    # Only what redaction promises is masked: the story is still there.
    assert "rolling back deploy 4711" in redacted
    assert "09:58" in redacted


def test_redaction_reaches_edits_data_and_the_title(db: Database, incident: int) -> None:
    with db.unit_of_work() as session:
        row = incident_store.incident_by_number(session, number=incident)
        assert row is not None
        row.title = "Mail to ana@example.com bounces"
        session.add(row)
    document = json.loads(render(db, incident, "json", redact=True))
    assert document["incident"]["title"] == "Mail to [email] bounces"
    edit = next(e for e in document["events"] if e["kind"] == "message_edited")
    assert edit["data"] == {"previous_text": "Root cause: bad config pushd, ask [email]"}
    page = render(db, incident, "html", redact=True)
    assert "ana@example.com" not in page and "ops@example.com" not in page
    assert 'id="redacted"' in page
    assert "| Redacted |" in render(db, incident, "md", redact=True)


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_redaction_reaches_role_holders_names(db: Database, incident: int, fmt: str) -> None:
    """A display name can be an address or a number: the roles table is redacted too."""
    with db.unit_of_work() as session:
        for role in incident_store.current_roles(session, incident_id=incident):
            if role.role == "comms":
                role.user_name = "bo.ops@example.com"
                session.add(role)
    assert "bo.ops@example.com" in render(db, incident, fmt)
    redacted = render(db, incident, fmt, redact=True)
    assert "bo.ops@example.com" not in redacted
    assert (markdown_escape("[email]") if fmt == "md" else "[email]") in redacted


def test_configured_patterns_only_apply_when_redacting(db: Database, incident: int) -> None:
    config = WarroomConfig(timezone="UTC", redact_patterns=[r"deploy \d+", r"(?i)ROLLBACK"])
    redacted = render(db, incident, "md", redact=True, config=config)
    assert "deploy 4711" not in redacted and "rollback" not in redacted.lower()
    assert "Rolled back \\[redacted\\]" in redacted
    assert "deploy 4711" in render(db, incident, "md", config=config)


# -- errors -----------------------------------------------------------------------------------


def test_an_unknown_incident_is_named(db: Database, incident: int) -> None:
    with db.reading() as session, pytest.raises(NotFoundError, match="INC-99"):
        export_chunks(
            session, 99, "md", config=CONFIG, templates=build_environment(), redact=False, now=NOW
        )


def test_an_unknown_format_is_refused_before_anything_is_read(db: Database) -> None:
    with db.reading() as session, pytest.raises(UsageError, match="pdf"):
        export_chunks(
            session, 1, "pdf", config=CONFIG, templates=build_environment(), redact=False, now=NOW
        )


# -- scale ------------------------------------------------------------------------------------

SCALE = 100_000
STORY_EVENTS = 32  # what build_incident writes
BATCH = 5_000


def add_many_events(db: Database, incident_id: int, count: int) -> None:
    """`count` messages in threads of five, in group-commit batches. Every row has the same
    columns set (a thread's parent carries its own ts as thread_ts, as Slack does): rows whose
    None-columns differ are split into separate INSERTs, which makes a batch far slower."""
    start = T0 + timedelta(hours=2)
    for first in range(0, count, BATCH):
        rows = []
        for n in range(first, min(first + BATCH, count)):
            at = start + timedelta(seconds=n)
            parent = start + timedelta(seconds=n - n % 5)
            rows.append(
                {
                    "incident_id": incident_id,
                    "kind": "message",
                    "at": at,
                    "actor_id": ("U0ANA", "U0BO", "U0CY")[n % 3],
                    "actor_name": ("ana", "bo", "cy")[n % 3],
                    "text": f'=step {n}: "checked" <@U0BO>, &lt;ok&gt; host 10.1.{n % 250}.7',
                    "slack_ts": ts(at),
                    "thread_ts": ts(parent),
                    "dedupe_key": f"scale:{n}",
                }
            )
        with db.unit_of_work() as session:
            assert len(timeline_store.add_events(session, rows)) == len(rows)


# Run in a process of its own per format, so that its peak memory is its own. The kernel's
# high-water mark (VmHWM) is reset just before the export, so the peak it reports afterwards is
# what the export itself took, C allocations (SQLite's cache, the driver) included.
# tracemalloc would count only Python's allocations and makes these exports 4x slower (~90 s
# for the four formats on a 2-core machine), over this test's budget.
EXPORT_IN_A_CHILD = r"""
import csv, json, re, sys
from datetime import datetime
from pathlib import Path

from bot.config import WarroomConfig
from bot.exports.export import export_chunks
from bot.exports.templating import build_environment
from storage.db import Database
from storage import timeline as timeline_store

url, fmt, now = sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3])
config = WarroomConfig(timezone="Europe/Berlin")
templates = build_environment()
db = Database(url)


def rss(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


def lines_of(chunks):
    pending = ""
    for chunk in chunks:
        pending += chunk
        *whole, pending = pending.split("\n")
        for line in whole:
            yield line + "\n"
    if pending:
        yield pending


with db.reading() as session:
    session.connection()  # open the connection before the baseline
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = rss("VmRSS")
    size = counted = 0
    if fmt == "hold":  # what keeping every event in memory at once would take
        held = list(timeline_store.events_for(session, incident_id=1))
        counted = len(held)
    else:
        chunks = export_chunks(
            session, 1, fmt, config=config, templates=templates, redact=True, now=now
        )
        written = [0]

        def sized(chunks):
            for chunk in chunks:
                written[0] += len(chunk)
                yield chunk

        lines = lines_of(sized(chunks))
        if fmt == "csv":
            reader = csv.reader(lines)
            next(reader)
            for row in reader:
                counted += 1
                assert not row[5].startswith(("=", "+", "-", "@")), row
                assert "10.1." not in row[5], row
        for line in lines:
            if fmt == "json" and line.startswith("    {"):
                event = json.loads(line.strip().rstrip(","))
                if "kind" not in event:
                    continue  # a follow-up, listed after the events
                counted += 1
                assert "10.1." not in (event["text"] or ""), event
            elif fmt == "md" and re.match(r"(    )?- (\*\*)?\d", line):
                counted += 1
            elif fmt == "html" and line.startswith('  <li class="event'):
                counted += 1
        size = written[0]
    peak = rss("VmHWM") - before
print(json.dumps({"counted": counted, "size": size, "peak": peak}))
"""


def export_in_a_child(url: str, fmt: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", EXPORT_IN_A_CHILD, url, fmt, NOW.isoformat()],
        cwd=REPO,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_hundred_thousand_events_stream_in_bounded_memory(db: Database, incident: int) -> None:
    if not Path("/proc/self/clear_refs").exists():
        missing("Linux's /proc is needed to measure memory")
    started = time.monotonic()
    add_many_events(db, 1, SCALE)
    report = [f"stored {SCALE} events in {time.monotonic() - started:.1f}s"]
    with db.reading() as session:
        total = sum(1 for _ in timeline_store.events_for(session, incident_id=1))
    assert total == SCALE + STORY_EVENTS
    started = time.monotonic()
    children = {fmt: export_in_a_child(db.url, fmt) for fmt in ("hold", *FORMATS)}
    results = {}
    for fmt, child in children.items():
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, f"{fmt}: {err}"
        results[fmt] = json.loads(out)
    report.append(f"exported every format in {time.monotonic() - started:.1f}s")
    held = results.pop("hold")["peak"]
    report.append(f"holding the events takes {held / 1e6:.0f} MB")
    for fmt, result in results.items():
        report.append(
            f"{fmt}: {result['counted']} events, {result['size'] / 1e6:.0f} MB written, "
            f"peak {result['peak'] / 1e6:.1f} MB"
        )
    print("; ".join(report))
    for fmt, result in results.items():
        assert result["counted"] == total, (fmt, report)
        # Measured: about 8 MB per format, against about 200 MB to hold the events (and 9 to
        # 38 MB of output).
        assert result["peak"] < 50e6, (fmt, report)
        assert result["peak"] < held / 10, (fmt, report)
