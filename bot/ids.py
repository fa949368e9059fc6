"""Every name Slack and warroom share, in one place; tests hold manifest.yml to these."""

from __future__ import annotations

from enum import StrEnum


class SlashCommand(StrEnum):
    """The slash commands the app answers."""

    INCIDENT = "/incident"


class EventType(StrEnum):
    """Events the app listens to, as Bolt sees them."""

    MESSAGE = "message"
    MEMBER_JOINED_CHANNEL = "member_joined_channel"
    MEMBER_LEFT_CHANNEL = "member_left_channel"
    APP_HOME_OPENED = "app_home_opened"
    PIN_ADDED = "pin_added"
    REACTION_ADDED = "reaction_added"
    CHANNEL_ARCHIVE = "channel_archive"
    GROUP_ARCHIVE = "group_archive"


class BotEvent(StrEnum):
    """Bot event subscriptions in the manifest, and the event type each delivers."""

    MESSAGE_CHANNELS = "message.channels"
    MESSAGE_GROUPS = "message.groups"
    MEMBER_JOINED_CHANNEL = "member_joined_channel"
    MEMBER_LEFT_CHANNEL = "member_left_channel"
    APP_HOME_OPENED = "app_home_opened"
    PIN_ADDED = "pin_added"
    REACTION_ADDED = "reaction_added"
    CHANNEL_ARCHIVE = "channel_archive"
    GROUP_ARCHIVE = "group_archive"

    @property
    def event_type(self) -> str:
        """The event type this subscription delivers: `message.channels` -> `message`."""
        return self.value.split(".", 1)[0]


class ActionId(StrEnum):
    """Block Kit button and select action ids (block_actions). Add new ones here."""

    # Opens the declare modal: from App Home, and anywhere else a "Declare" button appears.
    DECLARE_OPEN = "declare_open"
    # The pinned header's buttons; each opens a short modal. The button's value is the number.
    HEADER_ASSIGN_ROLE = "header_assign_role"
    HEADER_POST_UPDATE = "header_post_update"
    HEADER_CHANGE_STATUS = "header_change_status"
    HEADER_RESOLVE = "header_resolve"
    # App Home's "Done" beside each of your follow-ups; the value is the follow-up's number.
    FOLLOWUP_DONE = "followup_done"


class CallbackId(StrEnum):
    """Modal callback ids (view_submission / view_closed) and shortcut callback ids."""

    DECLARE_MODAL = "declare_modal"
    # The header buttons' modals.
    ROLE_MODAL = "role_modal"
    UPDATE_MODAL = "update_modal"
    STATUS_MODAL = "status_modal"
    RESOLVE_MODAL = "resolve_modal"
    # Message shortcut "Add to incident timeline"; declared in manifest.yml.
    ADD_TO_TIMELINE = "add_to_timeline"
    # Message shortcut "Make a follow-up"; declared in manifest.yml. Its form is FOLLOWUP_MODAL.
    MAKE_FOLLOWUP = "make_followup"
    FOLLOWUP_MODAL = "followup_modal"


class BlockId(StrEnum):
    """Block ids of the header's buttons and the modals' inputs; an input's element has the
    same string as its action_id, and view_submission errors are keyed on these."""

    HEADER_ACTIONS = "header_actions"
    TITLE = "title"
    SEVERITY = "severity"
    SUMMARY = "summary"
    COMMANDER = "commander"
    RESPONDERS = "responders"
    PRIVATE = "private"
    ROLE = "role"
    ROLE_HOLDER = "role_holder"
    UPDATE_TEXT = "update_text"
    STATUS = "status"
    FOLLOWUP_TEXT = "followup_text"
    FOLLOWUP_OWNER = "followup_owner"
    FOLLOWUP_DUE = "followup_due"
