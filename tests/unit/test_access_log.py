"""The access log's lighter records: each line is what `logger.info` would have written, plain
or JSON, masked and kept on one line, with its own time."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.logs import AccessLogger, PlainFormatter, configure_logging

SECRET = "signing-secret-abc"


@dataclass
class FakeRequest:
    """What the access logger reads of an aiohttp request (a plain value object)."""

    remote: str
    method: str
    path: str


@dataclass
class FakeResponse:
    status: int
    body_length: int


@pytest.fixture(params=[False, True], ids=["plain", "json"])
def logged(request: pytest.FixtureRequest) -> Iterator[tuple[io.StringIO, bool]]:
    """The process's logging as `warroom serve` sets it up, into a buffer; put back after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging([SECRET], json_lines=request.param)
    stream = io.StringIO()
    [handler] = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream, request.param
    root.handlers[:], level = saved
    root.setLevel(level)


def _without_times(line: str, json_lines: bool) -> Any:
    if json_lines:
        record = json.loads(line)
        record.pop("time")
        return record
    return line.split(" ", 2)[2]


def test_each_line_is_what_logger_info_writes(logged: tuple[io.StringIO, bool]) -> None:
    stream, json_lines = logged
    logger = logging.getLogger("aiohttp.access")
    access = AccessLogger(logger, "")
    path = f"/slack/events\nCRITICAL forged line {SECRET}"
    for status in (200, 401, 500):
        access.log(FakeRequest("127.0.0.1", "POST", path), FakeResponse(status, 12), 0.0123)
        logger.info('%s "%s %s" %s %s %.1fms', "127.0.0.1", "POST", path, status, 12, 12.3)

    lines = stream.getvalue().splitlines()
    assert len(lines) == 6, "one line a request, however the path tries to break it"
    for ours, theirs in zip(lines[0::2], lines[1::2], strict=True):
        assert _without_times(ours, json_lines) == _without_times(theirs, json_lines)
    assert SECRET not in stream.getvalue()
    assert "[secret]" in lines[0]


def test_each_line_has_its_own_time(logged: tuple[io.StringIO, bool]) -> None:
    _stream, _json_lines = logged
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("warroom.test.access")
    logger.addHandler(keep := Keep())
    try:
        access = AccessLogger(logger, "")
        request, response = FakeRequest("10.0.0.1", "GET", "/healthz"), FakeResponse(200, 2)
        before = time.time()
        access.log(request, response, 0.001)
        access.log(request, response, 0.002)
        after = time.time()
    finally:
        logger.removeHandler(keep)

    assert [r.getMessage() for r in records] == [
        '10.0.0.1 "GET /healthz" 200 2 1.0ms',
        '10.0.0.1 "GET /healthz" 200 2 2.0ms',
    ]
    assert all(before <= r.created <= after for r in records)
    assert records[0].created <= records[1].created
    assert all(0 <= r.msecs < 1000 for r in records)
    assert records[0] is not records[1] and records[0].args != records[1].args


def test_the_plain_time_is_logging_s_own() -> None:
    ours, theirs = PlainFormatter(), logging.Formatter("%(asctime)s %(message)s")
    for created in (1_700_000_000.25, 1_700_000_000.75, 1_700_000_001.5, 1_600_000_000.0):
        record = logging.makeLogRecord({"msg": "x", "created": created})
        record.msecs = int((created - int(created)) * 1000) + 0.0
        assert ours.formatTime(record) == theirs.formatTime(record)
        assert ours.formatTime(record, "%H:%M") == theirs.formatTime(record, "%H:%M")
