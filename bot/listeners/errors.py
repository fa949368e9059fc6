"""The one error handler: a user-facing error becomes an ephemeral reply, the rest an id."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from bot.errors import WarroomError

log = logging.getLogger(__name__)


async def handle_errors(error: Exception, body: dict[str, Any]) -> BoltResponse:
    if isinstance(error, WarroomError):
        message = error.message
    else:
        ref = uuid.uuid4().hex[:8]
        log.error("unhandled error, reference %s", ref, exc_info=error)
        if "command" not in body:
            # An event we failed to store: answer 500 so that Slack sends it again.
            return BoltResponse(status=500, body="")
        message = f"Something went wrong on our side (reference {ref})."
    if "command" not in body:
        return BoltResponse(status=200, body="")
    return BoltResponse(
        status=200,
        body=json.dumps({"response_type": "ephemeral", "text": message}),
        headers={"content-type": "application/json"},
    )


def register(app: AsyncApp) -> None:
    app.error(handle_errors)
