"""Socket Mode: the same Bolt app and listeners, fed over Slack's WebSocket instead of HTTP.

The Bolt app answers only when its listener is done (process_before_response), so the ack goes
back over the socket after the commit, as the HTTP 200 does."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.errors import ConfigError
from bot.slack.gateway import REFUSED_TOKEN_ERRORS, slack_error
from bot.tasks import InFlight

log = logging.getLogger(__name__)

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


DRAIN_SECONDS = 20.0


def socket_mode_connection(bolt: AsyncApp, app_token: str, in_flight: InFlight) -> CleanupContext:
    """An aiohttp cleanup context that connects to Slack once the services are up and
    disconnects before they stop, after the listeners under way have sent their acks."""

    async def connection(_app: web.Application) -> AsyncIterator[None]:
        handler = AsyncSocketModeHandler(bolt, app_token)
        try:
            # Asked here rather than inside connect(), which retries every error for ever:
            # a refused token stops start-up with one line.
            handler.client.wss_uri = await handler.client.issue_new_wss_url()
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in REFUSED_TOKEN_ERRORS:
                await handler.close_async()  # type: ignore[no-untyped-call]
                raise ConfigError(f"Slack refused SLACK_APP_TOKEN ({error})") from None
            log.warning("apps.connections.open failed at start-up (%s); retrying", error)
        except (OSError, TimeoutError) as exc:
            log.warning("apps.connections.open failed at start-up (%r); retrying", exc)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("connected to Slack over Socket Mode")
        yield
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                await in_flight.idle()
        except TimeoutError:
            log.warning("closing the socket with requests still in flight; Slack will retry them")
        await handler.close_async()  # type: ignore[no-untyped-call]

    return connection
