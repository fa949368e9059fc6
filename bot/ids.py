"""Every name Slack and warroom share, in one place; tests hold manifest.yml to these."""

from __future__ import annotations

from enum import StrEnum


class SlashCommand(StrEnum):
    INCIDENT = "/incident"


class EventType(StrEnum):
    """Events the app listens to, as Bolt sees them."""

    MESSAGE = "message"
    MEMBER_JOINED_CHANNEL = "member_joined_channel"
    MEMBER_LEFT_CHANNEL = "member_left_channel"


class BotEvent(StrEnum):
    """Bot event subscriptions in the manifest, and the event type each delivers."""

    MESSAGE_CHANNELS = "message.channels"
    MESSAGE_GROUPS = "message.groups"
    MEMBER_JOINED_CHANNEL = "member_joined_channel"
    MEMBER_LEFT_CHANNEL = "member_left_channel"

    @property
    def event_type(self) -> str:
        return self.value.split(".", 1)[0]
