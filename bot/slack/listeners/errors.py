"""The one error handler: a user-facing error becomes an ephemeral reply, the rest an id."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from bot.errors import WarroomError, unexpected_failure_reply

log = logging.getLogger(__name__)


async def handle_errors(error: Exception, body: dict[str, Any]) -> BoltResponse:
    """Slack's answer to a failure: an ephemeral reply, an error on the form, or a 500 to resend."""
    if isinstance(error, WarroomError):
        message = error.message
    else:
        ref = uuid.uuid4().hex[:8]
        log.error("unhandled error, reference %s", ref, exc_info=error)
        message = unexpected_failure_reply(ref)
        if "command" not in body and body.get("type") != "view_submission":
            # An event we failed to store: answer 500 so that Slack sends it again.
            return BoltResponse(status=500, body="")
    if body.get("type") == "view_submission":
        return _on_the_form(body, message)
    if "command" not in body:
        return BoltResponse(status=200, body="")
    return BoltResponse(
        status=200,
        body=json.dumps({"response_type": "ephemeral", "text": message}),
        headers={"content-type": "application/json"},
    )


def _on_the_form(body: dict[str, Any], message: str) -> BoltResponse:
    """A form Slack would otherwise close on a generic error keeps its input and says why,
    on its first field (Slack does not retry a submission: the user can)."""
    blocks = (body.get("view") or {}).get("blocks") or []
    field = next((b.get("block_id") for b in blocks if b.get("type") == "input"), None)
    if field is None:
        return BoltResponse(status=200, body="")
    return BoltResponse(
        status=200,
        body=json.dumps({"response_action": "errors", "errors": {field: message[:150]}}),
        headers={"content-type": "application/json"},
    )


def register(app: AsyncApp) -> None:
    """Make `handle_errors` the app's error handler."""
    app.error(handle_errors)
