"""Logging: plain lines, or one JSON object a line (LOG_FORMAT=json). Every line is masked and
bounded: no secret, token, response_url or signed-link query appears, user text cannot start a
line of its own, and no line runs past MAX_LINE characters."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from pythonjsonlogger.json import JsonFormatter

PLAIN = "%(asctime)s %(levelname)s %(name)s %(message)s"
MASK = "[secret]"
# A log line longer than this is cut, saying how much was left out.
MAX_LINE = 4096

# Credentials that may reach a line without being this deployment's own (another app's token
# pasted into a message, Slack's response_urls, which anyone may post to for 30 minutes).
_CREDENTIALS = (
    (re.compile(r"\bxox[a-z]-[A-Za-z0-9-]+"), "xox?-" + MASK),
    (re.compile(r"\bxapp-[A-Za-z0-9-]+"), "xapp-" + MASK),
    (
        re.compile(r"https://hooks\.slack(?:-gov)?\.com/[^\s'\"<>]+"),
        "https://hooks.slack.com/" + MASK,
    ),
    # A signed export link's signature (and any other `sig` or `token` query value).
    (re.compile(r"([?&;](?:sig|signature|token)=)[^&\s'\"]+"), r"\1" + MASK),
)
# A credential pattern above matches only where one of these is in the text.
_CREDENTIAL_NEEDLES = ("xox", "xapp-", "hooks.slack", "sig=", "signature=", "token=")
# Characters that would end a line, or reorder one, in a terminal or a log viewer.
_LINE_BREAKERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]|\r|\n|\t")
# Noisy at DEBUG and INFO, and they log request bodies and URLs there: warnings only.
_QUIET_LOGGERS = ("slack_bolt", "slack_sdk", "alembic.runtime.plugins")


def _escaped(text: str) -> str:
    return _LINE_BREAKERS.sub(lambda m: repr(m.group())[1:-1], text)


def _bounded(text: str, limit: int = MAX_LINE) -> str:
    if len(text) <= limit:
        return text
    cut = limit - 40
    return f"{text[:cut]}… [{len(text) - cut} more characters]"


class SecretMaskingFormatter(logging.Formatter):
    """Formats with another formatter, then masks every configured secret and every credential
    pattern in the result (a token can reach a log through an exception message or a URL as
    easily as by mistake). With `one_line`, the message's own line breaks are escaped and a
    traceback's lines are indented under it, so no text can pass for a line of its own."""

    def __init__(
        self, inner: logging.Formatter, secrets: Iterable[str], *, one_line: bool = False
    ) -> None:
        super().__init__()
        self.inner = inner
        self.one_line = one_line
        # Longest first, so that a secret containing another is masked whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        """The inner formatter's line, masked, its message bounded (and, with `one_line`,
        escaped); each line of the result at most MAX_LINE characters."""
        message = _bounded(record.getMessage())
        if self.one_line:
            message = _escaped(message)
        # A copy, so that other handlers see the record as it was logged. Made without
        # LogRecord.__init__, which would look up the time, thread and process once more only
        # to have them overwritten: this runs for every request's access-log line.
        shown = logging.LogRecord.__new__(logging.LogRecord)
        shown.__dict__.update(record.__dict__)
        shown.msg, shown.args = message, None
        text = self._masked(self.inner.format(shown))
        lines = text.split("\n")
        if self.one_line and len(lines) > 1:
            lines = [lines[0], *(f"    | {_escaped(line)}" for line in lines[1:])]
        return "\n".join(_bounded(line) for line in lines)

    def _masked(self, text: str) -> str:
        # This deployment's own secrets first: a pattern could cut one in two.
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        # Each pattern needs one of these strings to match: most lines have none of them.
        if any(needle in text for needle in _CREDENTIAL_NEEDLES):
            for pattern, replacement in _CREDENTIALS:
                text = pattern.sub(replacement, text)
        return text


class MalformedHttpFilter(logging.Filter):
    """aiohttp logs a request it cannot parse as an ERROR with a traceback quoting the bytes
    sent: anyone can send those. One INFO line naming the kind of error instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite aiohttp's record of a malformed request; pass everything else."""
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = (
                "refused a malformed HTTP request: %s %s",
                (
                    exc.code,
                    type(exc).__name__,
                ),
            )
            record.exc_info, record.exc_text = None, None
        return True


class PlainFormatter(logging.Formatter):
    """The plain format, its timestamp's date and time worked out once a second rather than
    for every line (the access log writes one a request)."""

    def __init__(self) -> None:
        super().__init__(PLAIN)
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        """As logging.Formatter's, from a per-second cache."""
        if datefmt:
            return super().formatTime(record, datefmt)
        second, stamp = self._second  # one read: another thread may replace the pair
        if second != int(record.created):
            stamp = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = (int(record.created), stamp)
        msec_format = self.default_msec_format
        return msec_format % (stamp, record.msecs) if msec_format else stamp


_ACCESS_LINE = '%s "%s %s" %s %s %.1fms'


class AccessLogger(AbstractAccessLogger):
    """One line a request: client, method, path without its query (a signed link's signature
    is in it), status, size and time. No Referer, which can carry the same query.

    Lighter than `logger.info` per request, which cost as much CPU as recording a war-room
    message: the record is a copy of the first one made, with its own time and arguments,
    instead of looking up the caller's frame, the thread and the process again. Handlers,
    filters and formatters get the same record `logger.info` would make."""

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        self._template: dict[str, Any] | None = None

    @property
    def enabled(self) -> bool:
        """Whether a line would be written at all (aiohttp skips the call when not)."""
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Log one answered request."""
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        args = (
            request.remote,
            request.method,
            request.path,
            response.status,
            response.body_length,
            time * 1000,
        )
        logger.handle(self._record(args))

    def _record(self, args: tuple[Any, ...]) -> logging.LogRecord:
        template = self._template
        if template is None or template["thread"] != threading.get_ident():
            record = self.logger.makeRecord(
                self.logger.name, logging.INFO, __file__, 0, _ACCESS_LINE, args, None, "log"
            )
            self._template = dict(record.__dict__)
            return record
        record = logging.LogRecord.__new__(logging.LogRecord)
        record.__dict__.update(template)
        now = _now()
        record.created = now
        record.msecs = int((now - int(now)) * 1000) + 0.0
        record.relativeCreated = template["relativeCreated"] + (now - template["created"]) * 1000
        record.args = args
        return record


_now = time.time


def configure_logging(
    secrets: Iterable[str] = (), *, json_lines: bool = False, level: int = logging.INFO
) -> None:
    """Set up the root logger once for the process (the CLI calls this)."""
    if json_lines:
        inner: logging.Formatter = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    else:
        inner = PlainFormatter()
    handler = logging.StreamHandler()
    handler.setFormatter(SecretMaskingFormatter(inner, secrets, one_line=not json_lines))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedHttpFilter) for f in server.filters):
        server.addFilter(MalformedHttpFilter())
