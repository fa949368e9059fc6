"""Bolt listeners, one module per surface, each with `register(app)`."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners import (
    commands,
    errors,
    events,
    home,
    interactions,
    key_events,
    shortcuts,
)


def register_listeners(app: AsyncApp) -> None:
    """Register every listener on `app`, the most frequent first, and the error handler."""
    # Bolt tries listeners in this order: messages, by far the most frequent, come first.
    events.register(app)
    commands.register(app)
    home.register(app)
    interactions.register(app)
    key_events.register(app)
    shortcuts.register(app)
    errors.register(app)
