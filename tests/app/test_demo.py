"""`warroom demo` as a newcomer runs it: a real process, no Slack settings, no `.env`, and
nothing reaching beyond the machine."""

from __future__ import annotations

import asyncio
import html
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.paths import REPO

WARROOM = Path(sys.executable).parent / "warroom"
TITLE = "Checkout API returning 500s"
# What the scripted incident leaves on the timeline, as plain text: messages (the edited one in
# its new wording), a thread reply, roles, the customer update, the reminder and the resolution.
SCRIPTED = (
    "checkout-api 5xx rate is at 40%, starting right after the 4.2.1 deploy",
    "support has 12 tickets from EU customers so far",
    "rolling checkout-api back to 4.2.0",
    "cy is comms",
    "bo is resolver",
    "dee is commander",
    "we are watching error rates",
    "since the last customer update",
    "Rolled back 4.2.1; checkout error rate is normal",
)
SUMMARY = re.compile(
    r"^INC-1 played in [\d.]+s; (?P<calls>\d+) Web API calls answered by the stand-in at "
    r"(?P<url>\S+)$",
    re.MULTILINE,
)
HTML_LINE = re.compile(r"^  HTML +(?P<path>.+?)  \((?P<uri>file://\S+)\)$", re.MULTILINE)
MARKDOWN_LINE = re.compile(r"^  Markdown +(?P<path>.+)$", re.MULTILINE)


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float


def newcomer_env(home: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any Slack, database or warroom settings."""
    dropped = ("SLACK_", "WARROOM_", "DATABASE_URL", "LOG_FORMAT")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(dropped)}
    return {**env, "HOME": str(home), "PYTHONPATH": str(REPO), **extra}


async def warroom_demo(*args: str, cwd: Path, env: dict[str, str]) -> Run:
    assert WARROOM.exists(), f"no {WARROOM}: `pip install -e '.[dev]'` installs the command"
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        str(WARROOM),
        "demo",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    seconds = time.monotonic() - started
    print(f"warroom demo {' '.join(args)}: exit {process.returncode} after {seconds:.1f}s")
    return Run(process.returncode, stdout.decode(), stderr.decode(), seconds)


@pytest.fixture
async def trap() -> AsyncIterator[tuple[str, list[str]]]:
    """A server that stray settings point at: every request it gets is one the demo leaked."""
    seen: list[str] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path}")
        return web.json_response({"ok": False, "error": "invalid_auth"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}/api/", seen
    await runner.cleanup()


async def test_demo_plays_an_incident_and_exports_html_and_markdown(tmp_path: Path) -> None:
    cwd = tmp_path / "newcomer"
    cwd.mkdir()
    run = await warroom_demo("--out", "exports", cwd=cwd, env=newcomer_env(tmp_path))

    assert run.code == 0, run.stdout + run.stderr
    assert run.stderr == "", "the demo should print no warnings or tracebacks"
    for step in (f"/incident declare {TITLE} sev1", "/incident role comms @cy", "(reminder)"):
        assert step in run.stdout, run.stdout

    summary = SUMMARY.search(run.stdout)
    assert summary, run.stdout
    assert int(summary["calls"]) > 0
    assert summary["url"].startswith("http://127.0.0.1:"), "Web API calls went past loopback"

    html_line, markdown_line = HTML_LINE.search(run.stdout), MARKDOWN_LINE.search(run.stdout)
    assert html_line and markdown_line, run.stdout
    html_path, markdown_path = cwd / html_line["path"], cwd / markdown_line["path"]
    assert html_path.resolve().as_uri() == html_line["uri"]
    assert html_path.parent == markdown_path.parent == cwd / "exports"

    page = html_path.read_text(encoding="utf-8")
    assert f"<title>INC-1: {html.escape(TITLE)}</title>" in page
    markdown = markdown_path.read_text(encoding="utf-8")
    assert markdown.startswith(f"# INC-1: {TITLE}\n")
    for text in SCRIPTED:
        assert html.escape(text) in page, f"{text!r} missing from the HTML export"
        assert text in markdown, f"{text!r} missing from the Markdown export"
    # Nothing is left behind but the exports: the database lived in a scratch directory.
    assert sorted(p.name for p in (cwd / "exports").iterdir()) == ["INC-1.html", "INC-1.md"]
    assert sorted(p.name for p in cwd.iterdir()) == ["exports"]


async def test_demo_ignores_stray_slack_settings_in_the_environment_and_dotenv(
    tmp_path: Path, trap: tuple[str, list[str]]
) -> None:
    trap_url, seen = trap
    stray = {
        "SLACK_BOT_TOKEN": "xoxb-stray-real-workspace",
        "SLACK_SIGNING_SECRET": "stray-secret",
        "SLACK_API_URL": trap_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'stray.db'}",
        "WARROOM_CONFIG": str(tmp_path / "no-such-config.yml"),
    }
    cwd = tmp_path / "project"
    cwd.mkdir()
    (cwd / ".env").write_text("".join(f"{k}={v}\n" for k, v in stray.items()), encoding="utf-8")
    run = await warroom_demo("--quiet", cwd=cwd, env=newcomer_env(tmp_path, **stray))

    assert run.code == 0, run.stdout + run.stderr
    assert seen == [], f"the demo reached the stray SLACK_API_URL: {seen}"
    assert not (tmp_path / "stray.db").exists(), "the demo opened the stray DATABASE_URL"
    assert (cwd / "warroom-demo" / "INC-1.html").is_file()
    # --quiet: the summary and the two paths, no steps.
    assert len(run.stdout.splitlines()) == 3, run.stdout


async def test_demo_names_an_output_directory_it_cannot_write_in_one_line(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    run = await warroom_demo(
        "--out", str(blocker / "exports"), cwd=tmp_path, env=newcomer_env(tmp_path)
    )

    assert run.code == 2
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        f"warroom: --out {blocker / 'exports'}: cannot write there (Not a directory)"
    ]
