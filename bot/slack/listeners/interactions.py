"""Buttons (block_actions) and modal submissions (view_submission)."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.commands.forms import Actor, FormError, FormService
from bot.home.service import HomeService
from bot.ids import ActionId, CallbackId
from bot.incidents.refs import incident_number
from bot.slack.blocks.modals import form_values
from bot.tasks import BackgroundTasks

HEADER_BUTTONS = (
    ActionId.HEADER_ASSIGN_ROLE,
    ActionId.HEADER_POST_UPDATE,
    ActionId.HEADER_CHANGE_STATUS,
    ActionId.HEADER_RESOLVE,
)
INCIDENT_MODALS = (
    CallbackId.ROLE_MODAL,
    CallbackId.UPDATE_MODAL,
    CallbackId.STATUS_MODAL,
    CallbackId.RESOLVE_MODAL,
)


def actor_from(body: dict[str, Any]) -> Actor:
    """Who acted, from a block_actions or view_submission payload."""
    user = body.get("user") or {}
    channel = body.get("channel") or {}
    return Actor(
        user_id=user["id"],
        user_name=user.get("username") or user.get("name"),
        trigger_id=body.get("trigger_id", ""),
        channel_id=channel.get("id"),
    )


async def handle_declare_open(ack: AsyncAck, body: dict[str, Any], forms: FormService) -> None:
    """Open the declare modal first: the trigger id dies 3 s after the click."""
    await forms.open_declare_form(actor_from(body))
    await ack()


async def handle_header_button(
    ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], forms: FormService
) -> None:
    """A header button: open its modal (or tell the clicker why not), then ack."""
    value = str(action.get("value") or "")
    # A forged value names no incident (None), and is refused politely as such.
    number = incident_number(value)
    await forms.open_incident_form(ActionId(action["action_id"]), number, actor_from(body))
    await ack()


async def handle_declare_submission(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], forms: FormService
) -> None:
    """Declare from the form; bad input comes back on its field and the modal stays open."""
    # Keyed on the form, not the submission's trigger: a form submitted again (Slack gave up
    # on a slow first answer) finds its incident declared instead of declaring a second.
    actor = replace(actor_from(body), trigger_id=f"view:{view['id']}")
    await _ack_form(
        ack,
        forms.declare_from_form(
            actor, form_values(view["state"]["values"]), view.get("private_metadata", "")
        ),
    )


async def handle_incident_submission(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], forms: FormService
) -> None:
    """A header modal's submission: the same command, checks and record as the slash command."""
    await _ack_form(
        ack,
        forms.submit_incident_form(
            CallbackId(view["callback_id"]),
            actor_from(body),
            form_values(view["state"]["values"]),
            view.get("private_metadata", ""),
        ),
    )


async def handle_followup_submission(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], forms: FormService
) -> None:
    """The follow-up form: added (once, however often it is submitted) or its errors shown."""
    # Keyed on the form, as the declare form is: a second submission adds nothing.
    actor = replace(actor_from(body), trigger_id=f"view:{view['id']}")
    await _ack_form(
        ack,
        forms.followup_from_form(
            actor, form_values(view["state"]["values"]), view.get("private_metadata", "")
        ),
    )


async def handle_followup_done(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    forms: FormService,
    home: HomeService,
    tasks: BackgroundTasks,
) -> None:
    """App Home's Done: the follow-up is closed before the ack, then the tab is built again."""
    actor = actor_from(body)
    await forms.followup_done_from_home(actor, str(action.get("value") or ""))
    await ack()
    tasks.spawn(home.show(actor.user_id))


def register(app: AsyncApp) -> None:
    """Send the declare and header buttons, and the modals' submissions, to their handlers."""
    app.action(ActionId.DECLARE_OPEN.value)(handle_declare_open)
    app.action(ActionId.FOLLOWUP_DONE.value)(handle_followup_done)
    for action_id in HEADER_BUTTONS:
        app.action(action_id.value)(handle_header_button)
    app.view(CallbackId.DECLARE_MODAL.value)(handle_declare_submission)
    app.view(CallbackId.FOLLOWUP_MODAL.value)(handle_followup_submission)
    for callback_id in INCIDENT_MODALS:
        app.view(callback_id.value)(handle_incident_submission)


async def _ack_form(ack: AsyncAck, submission: Awaitable[object]) -> None:
    """Carry out a form's submission, then close the form, or keep it open with its errors."""
    try:
        await submission
    except FormError as exc:
        await ack(response_action="errors", errors=exc.errors)
        return
    await ack()
