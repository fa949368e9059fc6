"""Modals: a Block Kit builder for each form, and a reader for what a submission holds. Pure
functions: no Slack client, no database."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from jinja2 import Environment

from bot.commands.parse import MAX_TITLE
from bot.ids import BlockId, CallbackId
from bot.incidents.enums import Role, Status
from bot.incidents.readmodels import IncidentView
from bot.slack.blocks.common import (
    MODAL_BLOCKS,
    OPTION_TEXT_LIMIT,
    context,
    plain_text,
    section,
    truncate,
    within_limit,
)
from bot.slack.text import escape, printable, to_plain

MODAL_TITLE_LIMIT = 24
MODAL_BUTTON_LIMIT = 24
INPUT_LIMIT = 3000
METADATA_LIMIT = 3000
STATUS_LABELS = {
    Status.INVESTIGATING: "Investigating",
    Status.IDENTIFIED: "Identified",
    Status.MONITORING: "Monitoring",
}
ROLE_OPTIONS = {Role.COMMANDER: "Commander", Role.COMMS: "Comms lead", Role.RESOLVER: "Resolver"}
SPECULATION_CAUTION = (
    ":warning: *State facts, not guesses.* Say what is affected, what is being done and when "
    "the next update comes. Words like “probably”, “caused by” or “root cause” earn a caution: "
    "keep causes for the post-mortem."
)
FormValue = str | list[str] | None
# An option's value: a plain string, or a domain word (Role, Status) that is one.
V = TypeVar("V", bound=str)


@dataclass(frozen=True)
class DeclareMetadata:
    """What the declare modal carries from where it was opened to its submission."""

    channel_id: str | None


def modal(
    title: str,
    callback_id: str,
    blocks: list[dict[str, Any]],
    *,
    submit: str,
    private_metadata: str = "",
) -> dict[str, Any]:
    """A modal within Slack's limits: a 24-character title and buttons, 100 blocks."""
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain_text(title, MODAL_TITLE_LIMIT),
        "submit": plain_text(submit, MODAL_BUTTON_LIMIT),
        "close": plain_text("Cancel", MODAL_BUTTON_LIMIT),
        "private_metadata": private_metadata[:METADATA_LIMIT],
        "blocks": within_limit(blocks, MODAL_BLOCKS),
    }


def option(text: str, value: str) -> dict[str, Any]:
    """One choice of a select: `text` shown, `value` submitted."""
    return {"text": plain_text(text, OPTION_TEXT_LIMIT), "value": value}


def static_select(
    block_id: str, options: Mapping[V, str], initial: V | None = None
) -> dict[str, Any]:
    """A single choice among `options` (value -> label)."""
    element: dict[str, Any] = {
        "type": "static_select",
        "action_id": block_id,
        "options": [option(label, value) for value, label in options.items()],
    }
    if initial is not None and initial in options:
        element["initial_option"] = option(options[initial], initial)
    return element


def text_input(
    block_id: str,
    *,
    multiline: bool = False,
    max_length: int = INPUT_LIMIT,
    initial: str | None = None,
    placeholder: str | None = None,
) -> dict[str, Any]:
    """A text field whose action id is its block's; `initial` is cut to `max_length`."""
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": block_id,
        "multiline": multiline,
        "max_length": max_length,
    }
    if initial:
        element["initial_value"] = truncate(initial, max_length)
    if placeholder:
        element["placeholder"] = plain_text(placeholder, 150)
    return element


def input_block(
    block_id: str,
    label: str,
    element: dict[str, Any],
    *,
    optional: bool = False,
    hint: str | None = None,
) -> dict[str, Any]:
    """A labelled input block around `element`, required unless `optional`."""
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": plain_text(label, 2000),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = plain_text(hint, 2000)
    return block


def severity_options(severities: Sequence[str]) -> dict[str, str]:
    """Severities as select options: `sev1` shown as `SEV1`."""
    return {severity: severity.upper() for severity in severities}


def incident_line(incident: IncidentView) -> dict[str, Any]:
    """Which incident a modal acts on: `*INC-7* (SEV1, investigating): title`."""
    return section(
        f"*{incident.ref}* ({incident.severity.upper()}, {incident.status}): "
        f"{escape(incident.title)}"
    )


# -- the modals ---------------------------------------------------------------------------


# The declare form's one checkbox: its value is what the submission carries when ticked.
PRIVATE_OPTION = {"text": {"type": "plain_text", "text": "Private"}, "value": "private"}


def declare_modal(
    *,
    severities: Sequence[str],
    severity: str,
    user_id: str,
    origin_channel_id: str | None,
    private: bool = False,
) -> dict[str, Any]:
    """The declare form: title, severity, summary, commander (the declarer unless changed),
    extra responders and the *Private* box (ticked when `private`)."""
    checkbox: dict[str, Any] = {
        "type": "checkboxes",
        "action_id": BlockId.PRIVATE,
        "options": [PRIVATE_OPTION],
    }
    if private:
        checkbox["initial_options"] = [PRIVATE_OPTION]
    blocks = [
        input_block(
            BlockId.TITLE,
            "Title",
            text_input(
                BlockId.TITLE, max_length=MAX_TITLE, placeholder="Checkout API returning 500s"
            ),
            hint="What is broken, in a few words; it names the channel too.",
        ),
        input_block(
            BlockId.SEVERITY,
            "Severity",
            static_select(BlockId.SEVERITY, severity_options(severities), severity),
        ),
        input_block(
            BlockId.SUMMARY,
            "Summary",
            text_input(BlockId.SUMMARY, multiline=True),
            optional=True,
            hint="What is known so far; it goes on the timeline as the first note.",
        ),
        input_block(
            BlockId.COMMANDER,
            "Incident commander",
            {"type": "users_select", "action_id": BlockId.COMMANDER, "initial_user": user_id},
        ),
        input_block(
            BlockId.RESPONDERS,
            "Responders",
            {
                "type": "multi_users_select",
                "action_id": BlockId.RESPONDERS,
                "max_selected_items": 20,
            },
            optional=True,
            hint="They are invited to the war room as resolvers.",
        ),
        input_block(
            BlockId.PRIVATE,
            "Visibility",
            checkbox,
            optional=True,
            hint="A private channel; outside it only its members and admins see the incident.",
        ),
    ]
    metadata = json.dumps({"channel": origin_channel_id})
    return modal(
        "Declare an incident",
        CallbackId.DECLARE_MODAL,
        blocks,
        submit="Declare",
        private_metadata=metadata,
    )


def read_declare_metadata(private_metadata: str) -> DeclareMetadata:
    """The declare modal's metadata; anything unreadable means "opened from nowhere"."""
    try:
        data = json.loads(private_metadata or "{}")
    except ValueError:
        data = {}
    channel = data.get("channel") if isinstance(data, dict) else None
    return DeclareMetadata(channel_id=channel if isinstance(channel, str) and channel else None)


def role_modal(incident: IncidentView) -> dict[str, Any]:
    """Assign or hand over a role."""
    return modal(
        f"Assign a role: {incident.ref}",
        CallbackId.ROLE_MODAL,
        [
            incident_line(incident),
            input_block(BlockId.ROLE, "Role", static_select(BlockId.ROLE, ROLE_OPTIONS)),
            input_block(
                BlockId.ROLE_HOLDER,
                "Person",
                {"type": "users_select", "action_id": BlockId.ROLE_HOLDER},
                hint="A new commander or comms lead relieves the current one.",
            ),
        ],
        submit="Assign",
        private_metadata=str(incident.number),
    )


def update_draft(templates: Environment, incident: IncidentView, *, cadence: str | None) -> str:
    """The starting text of a first customer update, from the `customer_update_draft` template."""
    draft = templates.get_template("customer_update_draft.txt.j2").render(
        incident=incident, cadence=cadence
    )
    return draft.strip()


def update_modal(incident: IncidentView, *, draft: str, last_update: str | None) -> dict[str, Any]:
    """The customer update, prefilled (the last update, else the draft) under the caution
    about speculative root-cause language."""
    blocks = [incident_line(incident), context(SPECULATION_CAUTION)]
    if last_update:
        quoted = "\n".join(f">{line}" for line in escape(last_update).splitlines())
        blocks.append(section(f"*Last update*\n{quoted}"))
    blocks.append(
        input_block(
            BlockId.UPDATE_TEXT,
            "Customer update",
            text_input(BlockId.UPDATE_TEXT, multiline=True, initial=last_update or draft),
            hint="Posted in the war room and the announcement channel; restarts the update clock.",
        )
    )
    return modal(
        f"Update {incident.ref}",
        CallbackId.UPDATE_MODAL,
        blocks,
        submit="Post update",
        private_metadata=str(incident.number),
    )


def status_modal(incident: IncidentView, *, severities: Sequence[str]) -> dict[str, Any]:
    """Change the status, the severity, or both (the resolve button resolves)."""
    return modal(
        f"Status: {incident.ref}",
        CallbackId.STATUS_MODAL,
        [
            incident_line(incident),
            input_block(
                BlockId.STATUS,
                "Status",
                static_select(BlockId.STATUS, STATUS_LABELS, incident.status),
            ),
            input_block(
                BlockId.SEVERITY,
                "Severity",
                static_select(BlockId.SEVERITY, severity_options(severities), incident.severity),
                hint="The update reminders follow the new severity's cadence.",
            ),
        ],
        submit="Save",
        private_metadata=str(incident.number),
    )


def resolve_modal(incident: IncidentView) -> dict[str, Any]:
    """Resolve, with an optional summary for the announcement and the post-mortem."""
    return modal(
        f"Resolve {incident.ref}",
        CallbackId.RESOLVE_MODAL,
        [
            incident_line(incident),
            input_block(
                BlockId.SUMMARY,
                "Summary",
                text_input(BlockId.SUMMARY, multiline=True),
                optional=True,
                hint="Update reminders stop and post-mortem reminders start.",
            ),
        ],
        submit="Resolve",
        private_metadata=str(incident.number),
    )


def followup_modal(
    incident: IncidentView,
    *,
    text: str,
    owner_id: str | None,
    due: str | None,
    channel_id: str,
    message_ts: str,
) -> dict[str, Any]:
    """The "Make a follow-up" form, prefilled from the war-room message it was made from."""
    owner: dict[str, Any] = {"type": "users_select", "action_id": BlockId.FOLLOWUP_OWNER}
    if owner_id:
        owner["initial_user"] = owner_id
    metadata = json.dumps({"incident": incident.number, "channel": channel_id, "ts": message_ts})
    return modal(
        f"Follow-up: {incident.ref}",
        CallbackId.FOLLOWUP_MODAL,
        [
            incident_line(incident),
            input_block(
                BlockId.FOLLOWUP_TEXT,
                "What has to be done",
                text_input(BlockId.FOLLOWUP_TEXT, multiline=True, initial=text),
            ),
            input_block(BlockId.FOLLOWUP_OWNER, "Owner", owner, optional=True),
            input_block(
                BlockId.FOLLOWUP_DUE,
                "Due",
                text_input(BlockId.FOLLOWUP_DUE, max_length=10, initial=due, placeholder="3d"),
                optional=True,
                hint="A date like 2026-12-24, or a time from today like 3d. The owner is "
                "reminded on the day.",
            ),
        ],
        submit="Add follow-up",
        private_metadata=metadata,
    )


@dataclass(frozen=True)
class FollowUpMetadata:
    """Where the follow-up form came from: the incident, and the message it was made from."""

    incident_number: int | None
    channel_id: str | None
    message_ts: str | None


def read_followup_metadata(private_metadata: str) -> FollowUpMetadata:
    """The follow-up form's metadata; anything unreadable names nothing."""
    try:
        data = json.loads(private_metadata or "{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    number, channel, ts = data.get("incident"), data.get("channel"), data.get("ts")
    return FollowUpMetadata(
        incident_number=number if isinstance(number, int) and number > 0 else None,
        channel_id=channel if isinstance(channel, str) and channel else None,
        message_ts=ts if isinstance(ts, str) and ts else None,
    )


# -- reading a submission -----------------------------------------------------------------


def form_values(
    state_values: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> dict[str, FormValue]:
    """A view_submission's `view.state.values` as {block_id: value}: the text typed, the
    option chosen, the user or users picked; None where nothing was given."""
    values: dict[str, FormValue] = {}
    for block_id, elements in state_values.items():
        for state in elements.values():
            kind = state.get("type")
            if kind == "static_select":
                values[block_id] = (state.get("selected_option") or {}).get("value")
            elif kind == "users_select":
                values[block_id] = state.get("selected_user")
            elif kind == "multi_users_select":
                values[block_id] = list(state.get("selected_users") or [])
            elif kind == "checkboxes":
                values[block_id] = [o.get("value", "") for o in state.get("selected_options") or []]
            else:
                typed = state.get("value")
                values[block_id] = printable(typed) if isinstance(typed, str) else typed
    return values


def field_message(message: str) -> str:
    """A user-facing sentence fit for a modal field error (plain text, no mrkdwn)."""
    return truncate(to_plain(message).replace("`", ""), 150)
