"""The fake Slack Web API lives in the package (bot/demo/standin): `warroom demo` runs on it.
The tests' FakeSlack grants exactly the bot scopes manifest.yml asks for, so that a method the
manifest has no scope for fails a test as it fails in Slack."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import yaml

from bot.demo.standin import slack_api as standin
from bot.demo.standin.slack_api import BOT_USER, METHOD_SCOPES, Call, Channel, Fault, SlackError
from tests.support.paths import REPO

MANIFEST = REPO / "manifest.yml"

__all__ = [
    "BOT_USER",
    "METHOD_SCOPES",
    "Call",
    "Channel",
    "FakeSlack",
    "Fault",
    "SlackError",
    "manifest_bot_scopes",
]


@cache
def manifest_bot_scopes() -> frozenset[str]:
    """The bot scopes manifest.yml asks Slack for."""
    manifest = yaml.safe_load(MANIFEST.read_text())
    return frozenset(manifest["oauth_config"]["scopes"]["bot"])


class FakeSlack(standin.FakeSlack):
    """The stand-in, granting the manifest's bot scopes unless told otherwise."""

    def __init__(self, *, granted_scopes: Iterable[str] | None = None) -> None:
        super().__init__(
            granted_scopes=manifest_bot_scopes() if granted_scopes is None else granted_scopes
        )
