"""Logging: plain lines, or one JSON object a line (LOG_FORMAT=json); secrets never appear."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pythonjsonlogger.json import JsonFormatter

PLAIN = "%(asctime)s %(levelname)s %(name)s %(message)s"
MASK = "[secret]"


class SecretMaskingFormatter(logging.Formatter):
    """Formats with another formatter, then masks every configured secret in the result (a
    token can reach a log through an exception message or a URL as easily as by mistake)."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self.inner = inner
        # Longest first, so that a secret containing another is masked whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        """The inner formatter's line, with every secret in it replaced by `[secret]`."""
        text = self.inner.format(record)
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


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
        inner = logging.Formatter(PLAIN)
    handler = logging.StreamHandler()
    handler.setFormatter(SecretMaskingFormatter(inner, secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic announces each of its plugins at INFO as it loads: noise before a one-line error.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
