"""The reviewer's HTTP routes through the real aiohttp server: who gets in (the export token as a
bearer token, or a signed link that has not expired), what they get, and that everyone else gets
401 and no data."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from storage import incidents as incident_store
from storage.db import Database
from tests.support.exports import (
    NOW,
    T0,
    TOKEN,
    TTL,
    ExportReply,
    ExportServer,
    build_incident,
    parse_html,
    serve_exports,
)
from tests.support.fakes.slack_api import FakeSlack
from tests.support.paths import GOLDEN

MEDIA_TYPES = {
    "md": "text/markdown",
    "html": "text/html",
    "json": "application/json",
    "csv": "text/csv",
}
# Bodies that would mean data got out.
SECRET_BITS = ("Checkout", "ana@example.com", "INC-1:", "events")


@pytest.fixture
async def exports(slack: FakeSlack, tmp_path: Path) -> AsyncIterator[ExportServer]:
    async with serve_exports(slack, tmp_path) as server:
        yield server


def golden(name: str) -> str:
    return (GOLDEN / name).read_bytes().decode("utf-8")


def without_nonce(page: str) -> str:
    return re.sub(r' nonce="[^"]+"', "", page)


def assert_no_data(reply: ExportReply) -> None:
    for bit in SECRET_BITS:
        assert bit not in reply.text, f"{bit!r} got out with a {reply.status}"
    assert "Content-Disposition" not in reply.headers


# -- the bearer token -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["md", "html", "json", "csv"])
@pytest.mark.parametrize("redact", [False, True], ids=["plain", "redacted"])
async def test_the_token_gets_every_format(exports: ExportServer, fmt: str, redact: bool) -> None:
    query = "?redact=1" if redact else ""
    reply = await exports.get(f"/incidents/1/timeline.{fmt}{query}", token=TOKEN)
    assert reply.status == 200, reply.text
    assert reply.headers["Content-Type"] == f"{MEDIA_TYPES[fmt]}; charset=utf-8"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    suffix = "-redacted" if redact else ""
    assert without_nonce(reply.text) == golden(f"INC-1{suffix}.{fmt}")
    if fmt != "html":
        disposition = reply.headers["Content-Disposition"]
        assert disposition == f'inline; filename="INC-1{suffix}.{fmt}"'


async def test_the_page_is_the_html_export_under_a_strict_policy(exports: ExportServer) -> None:
    first = await exports.get("/incidents/1", token=TOKEN)
    second = await exports.get("/incidents/1", token=TOKEN)
    assert first.status == 200
    assert first.headers["Content-Type"] == "text/html; charset=utf-8"
    assert without_nonce(first.text) == golden("INC-1.html")
    policy = first.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["img-src"] == "'none'"
    [nonce] = re.findall(r"'nonce-([^']+)'", directives["script-src"])
    assert directives["script-src"] == f"'nonce-{nonce}'", "no unsafe-inline, no hosts"
    scripts = [attrs for tag, attrs in parse_html(first.text).tags if tag == "script"]
    assert scripts == [{"nonce": nonce}]
    assert nonce not in second.text, "a fresh nonce for every response"
    assert first.headers["Cache-Control"] == "private, no-store"
    assert first.headers["Referrer-Policy"] == "no-referrer"


async def test_the_scheme_is_case_insensitive(exports: ExportServer) -> None:
    reply = await exports.get("/incidents/1/timeline.json", Authorization=f"bearer {TOKEN}")
    assert reply.status == 200


PROTECTED = [
    "/incidents",
    "/incidents/1",
    "/incidents/1/timeline.json",
    "/incidents/1/timeline.html?redact=1",
    "/incidents/99",
    "/incidents/99/timeline.md",
    "/incidents/1/timeline.pdf",
]


@pytest.mark.parametrize("path", PROTECTED)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        "Bearer ",
        TOKEN,
        "Basic dDBrM246dDBrM24=",
        "Bearer t0k3n\u00e9",
    ],
    ids=["none", "wrong", "longer", "shorter", "empty", "no-scheme", "basic", "non-ascii"],
)
async def test_anyone_else_gets_401_and_no_data(
    exports: ExportServer, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    reply = await exports.get(path, **headers)
    assert reply.status == 401, (path, reply.status, reply.text)
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert_no_data(reply)


@pytest.mark.parametrize("path", PROTECTED)
async def test_no_token_configured_means_exports_are_off(
    slack: FakeSlack, tmp_path: Path, path: str
) -> None:
    async with serve_exports(slack, tmp_path, token=None) as exports:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}):
            reply = await exports.get(path, **headers)
            assert reply.status == 403, (headers, reply.text)
            assert "WARROOM_EXPORT_TOKEN" in reply.text
            assert_no_data(reply)
        # Not even with a link signed with an empty key.
        signed = exports.link(urlsplit(path).path, key=" ")
        reply = await exports.get(signed)
        assert reply.status == 403


# -- signed links -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/incidents",
        "/incidents/1",
        "/incidents/1/timeline.md",
        "/incidents/1/timeline.html",
        "/incidents/1/timeline.json",
        "/incidents/1/timeline.csv",
    ],
)
async def test_a_signed_link_opens_its_page(exports: ExportServer, path: str) -> None:
    reply = await exports.get(exports.link(path))
    assert reply.status == 200, reply.text
    assert "INC-1" in reply.text


@pytest.mark.parametrize("fmt", ["md", "html", "json", "csv"])
async def test_a_redacting_link_redacts(exports: ExportServer, fmt: str) -> None:
    reply = await exports.get(exports.link(f"/incidents/1/timeline.{fmt}", redact=True))
    assert reply.status == 200, reply.text
    assert without_nonce(reply.text) == golden(f"INC-1-redacted.{fmt}")
    assert "ana@example.com" not in reply.text


async def test_a_signed_link_expires(exports: ExportServer) -> None:
    link = exports.link("/incidents/1")
    exports.clock.now = NOW + TTL - timedelta(seconds=1)
    assert (await exports.get(link)).status == 200
    exports.clock.now = NOW + TTL + timedelta(seconds=1)
    reply = await exports.get(link)
    assert reply.status == 401
    assert_no_data(reply)
    # The token still works after the link is gone.
    assert (await exports.get("/incidents/1", token=TOKEN)).status == 200


def tamper(link: str, **changes: str | None) -> str:
    path, _, query = link.partition("?")
    params = dict(parse_qsl(query))
    new_path = changes.pop("path", None) or path
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return f"{new_path}?{urlencode(params)}"


def flip(text: str) -> str:
    return text[:-1] + ("0" if text[-1] != "0" else "1")


async def test_a_tampered_link_is_refused(exports: ExportServer) -> None:
    plain = exports.link("/incidents/1/timeline.json")
    redacting = exports.link("/incidents/1/timeline.json", redact=True)
    expires = dict(parse_qsl(plain.partition("?")[2]))["expires"]
    sig = dict(parse_qsl(plain.partition("?")[2]))["sig"]
    refused = {
        "signature": tamper(plain, sig=flip(sig)),
        "signature cut short": tamper(plain, sig=sig[:-2]),
        "no signature": tamper(plain, sig=None),
        "no expiry": tamper(plain, expires=None),
        "later expiry": tamper(plain, expires=str(int(expires) + 3600)),
        "another incident": tamper(plain, path="/incidents/2/timeline.json"),
        "another format": tamper(plain, path="/incidents/1/timeline.csv"),
        "the page": tamper(plain, path="/incidents/1"),
        "the list": tamper(plain, path="/incidents"),
        "redaction dropped": tamper(redacting, redact=None),
        "redaction changed": tamper(redacting, redact="0"),
        "redaction added": tamper(plain, redact="1"),
        "signed with another key": exports.link("/incidents/1/timeline.json", key="other"),
        "huge expiry": tamper(plain, expires="9" * 5000),
        "non-digit expiry": tamper(plain, expires="1e99"),
        "non-ascii digits": tamper(plain, expires="١٢٣٤٥٦٧٨٩٠"),
        "non-ascii signature": tamper(plain, sig="é" * 64),
    }
    for what, link in refused.items():
        reply = await exports.get(link)
        assert reply.status == 401, (what, reply.status, reply.text)
        assert_no_data(reply)
    # The untouched links still work, so it was the tampering that was refused.
    assert (await exports.get(plain)).status == 200
    assert (await exports.get(redacting)).status == 200


# -- not found --------------------------------------------------------------------------------


async def test_an_unknown_incident_is_404_once_in(exports: ExportServer) -> None:
    for path in ("/incidents/99", "/incidents/99/timeline.json", "/incidents/99/timeline.csv"):
        reply = await exports.get(path, token=TOKEN)
        assert reply.status == 404, path
        assert "INC-99" in reply.text
        assert (await exports.get(exports.link(path))).status == 404
        # A stranger cannot tell a missing incident from a present one.
        assert (await exports.get(path)).status == 401


@pytest.mark.parametrize(
    "number",
    ["99999999999999999999999", "2147483648", "0", "0" * 5000 + "1", "%C2%B2", "%EF%BC%91"],
)
async def test_a_number_no_incident_can_have_is_404_not_an_error(
    slack: FakeSlack, tmp_path: Path, database_url: str, number: str
) -> None:
    # On PostgreSQL the number column is 32 bits: a larger number must not reach the query.
    async with serve_exports(slack, tmp_path, database_url=database_url) as exports:
        for path in (f"/incidents/{number}", f"/incidents/{number}/timeline.json"):
            reply = await exports.get(path, token=TOKEN)
            assert reply.status == 404, (path, reply.text)
            assert "Traceback" not in reply.text and "rror" not in reply.text
        assert (await exports.get("/incidents/1", token=TOKEN)).status == 200


async def test_an_unknown_format_is_404_once_in(exports: ExportServer) -> None:
    reply = await exports.get("/incidents/1/timeline.pdf", token=TOKEN)
    assert reply.status == 404
    assert "md, html, json or csv" in reply.text
    assert (await exports.get("/incidents/1/timeline.JSON", token=TOKEN)).status == 404
    assert (await exports.get("/incidents/1/timeline.pdf")).status == 401


# -- the incident list ------------------------------------------------------------------------


def with_more_incidents(db: Database) -> None:
    """INC-1 (resolved, the fixed story), INC-2 and INC-3 open, INC-4 resolved."""
    build_incident(db)
    with db.unit_of_work() as session:
        for minutes, title, resolved in (
            (60, 'Search <b>slow</b> "again" <script>alert(4)</script>', False),
            (90, "Queue backlog", False),
            (120, "Login errors", True),
        ):
            incident = incident_store.create_incident(
                session,
                number=incident_store.next_incident_number(session),
                title=title,
                severity="sev2",
                declared_at=T0 + timedelta(minutes=minutes),
                declared_by_id="U0BO",
                declared_by_name="bo",
                origin_channel_id="C0GENERAL",
            )
            assert incident.id is not None
            incident_store.set_incident_channel(
                session,
                incident_id=incident.id,
                channel_id=f"C0INC{incident.number}",
                channel_name=f"inc-{incident.number}",
            )
            if resolved:
                incident.status = "resolved"
                incident.resolved_at = T0 + timedelta(minutes=minutes + 30)
                session.add(incident)


async def test_the_list_shows_open_incidents_first_with_links_that_work(
    slack: FakeSlack, tmp_path: Path
) -> None:
    async with serve_exports(slack, tmp_path, prepare=with_more_incidents) as exports:
        reply = await exports.get("/incidents", token=TOKEN)
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "default-src 'none'" in reply.headers["Content-Security-Policy"]
        parsed = parse_html(reply.text)
        rows = [attrs.get("class") for tag, attrs in parsed.tags if tag == "tr"][1:]
        links = [str(attrs["href"]) for tag, attrs in parsed.tags if tag == "a"]
        numbers = [int(re.findall(r"/incidents/(\d+)\?", link)[0]) for link in links]
        assert numbers == [3, 2, 4, 1], "open ones first, then the most recent"
        assert rows == ["open", "open", "closed", "closed"]
        # User text is text here too.
        assert {tag for tag, _ in parsed.tags}.isdisjoint({"b", "script", "img"})
        assert 'Search <b>slow</b> "again" <script>alert(4)</script>' in "".join(parsed.text)
        # Each link is signed for its page only, and opens it with no token.
        for number, link in zip(numbers, links, strict=True):
            assert link.startswith(f"/incidents/{number}?expires=")
            page = await exports.get(link)
            assert page.status == 200, link
            [heading] = re.findall(r"<h1>(.*?)</h1>", page.text)
            assert heading.startswith(f"INC-{number}: ")
            json_link = link.replace(f"/incidents/{number}?", f"/incidents/{number}/timeline.json?")
            assert (await exports.get(json_link)).status == 401
        # And they expire with the configured lifetime.
        exports.clock.now = NOW + TTL + timedelta(seconds=1)
        assert (await exports.get(links[0])).status == 401
