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


class ActionId(StrEnum):
    """Block Kit button and select action ids (block_actions). Add new ones here."""

    # Opens the declare modal: from App Home, and anywhere else a "Declare" button appears.
    DECLARE_OPEN = "declare_open"


class CallbackId(StrEnum):
    """Modal callback ids (view_submission / view_closed) and shortcut callback ids."""

    DECLARE_MODAL = "declare_modal"
    # Message shortcut "Add to incident timeline"; declared in manifest.yml.
    ADD_TO_TIMELINE = "add_to_timeline"
