"""The one hot path answered without Bolt: a person's plain message in a known war room.

Under load almost every request is such a message, and Bolt's dispatch (building its request,
context and listener arguments, running its middleware) cost more than recording the message.
This answers it straight from the aiohttp route, after the signature check, with what the Bolt
path does for it: the same Entry, the same `TimelineService.record` (committed before the 200,
recorded once however often Slack redelivers it, webhooks enqueued on the same write), the same
request metrics and in-flight count, the same error answer. Anything it is not sure of (another
event or subtype, a bot's message, a channel not yet seen as a war room, a bot identity not yet
known, an event it cannot read) goes to Bolt unchanged."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response

from bot.metrics import Metrics
from bot.slack.identity import BotIdentity
from bot.slack.listeners.errors import handle_errors
from bot.tasks import InFlight
from bot.timeline.entries import Entry, entry_for_message
from bot.timeline.service import TimelineService

REQUEST_TYPE = "event:message"


class MessageFastPath:
    """Records a person's plain war-room message and acks it, or declines to (None)."""

    def __init__(
        self,
        *,
        timeline: TimelineService,
        identity: BotIdentity,
        metrics: Metrics,
        in_flight: InFlight,
    ) -> None:
        self.timeline = timeline
        self.identity = identity
        self.metrics = metrics
        self.in_flight = in_flight
        # Requests this path answered (the rest went to Bolt).
        self.answered = 0

    def entry(self, payload: dict[str, Any]) -> Entry | None:
        """The entry this path records for `payload`, or None when Bolt should handle it."""
        if payload.get("type") != "event_callback":
            return None
        event = payload.get("event")
        if not isinstance(event, dict) or event.get("type") != "message":
            return None
        # Edits, deletions, joins, bots' posts (and warroom's own, which Bolt ignores): Bolt.
        if "subtype" in event or "bot_id" in event:
            return None
        user = event.get("user")
        own = self.identity.result
        if own is None or not isinstance(user, str) or not user or user == own.bot_user_id:
            return None
        channel = event.get("channel")
        if not isinstance(channel, str) or not self.timeline.known_war_room(channel):
            return None
        try:
            return entry_for_message(event)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            return None  # Bolt's path meets the same failure and answers it as it always has

    async def answer(self, payload: dict[str, Any], started: float) -> web.Response | None:
        """Record and ack the message, or None (nothing done) when it is not this path's."""
        entry = self.entry(payload)
        if entry is None:
            return None
        self.answered += 1
        with self.in_flight:
            try:
                await self.timeline.record(entry)
            except Exception as exc:
                # As the Bolt path: logged with a reference, a 500 so that Slack resends it.
                failure = await handle_errors(exc, payload)
                response = await to_aiohttp_response(failure)
            else:
                response = web.Response(status=200, body=b"", content_type="text/plain")
        status = response.status
        self.metrics.count_request(
            REQUEST_TYPE, "ok" if status < 400 else str(status), time.perf_counter() - started
        )
        return response
