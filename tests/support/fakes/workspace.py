"""The Slack workspace every test starts in."""

from __future__ import annotations

from bot.demo.standin.slack_api import FakeSlack


def add_workspace(fake: FakeSlack) -> None:
    """Four people (ana, bo, cy and root, an admin in the tests' config), #general and
    #incidents (the announcement channel)."""
    for user_id, name in (("U0ANA", "ana"), ("U0BO", "bo"), ("U0CY", "cy"), ("U0ADMIN", "root")):
        fake.add_user(user_id, name)
    fake.add_channel("C0GENERAL", "general")
    fake.channels["C0GENERAL"].is_general = True
    fake.add_channel("C0ANNOUNCE", "incidents")
