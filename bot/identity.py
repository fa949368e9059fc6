"""Who the bot is, learned once at start-up so that no request waits on `auth.test`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError
from bot.gateway import REFUSED_TOKEN_ERRORS, slack_error

log = logging.getLogger(__name__)


class BotIdentity:
    def __init__(self, client: AsyncWebClient, token: str) -> None:
        self.client = client
        self.token = token
        self._result: AuthorizeResult | None = None
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Ask Slack once; a refused token stops start-up, a network failure only postpones."""
        try:
            await self._fetch()
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in REFUSED_TOKEN_ERRORS:
                raise ConfigError(f"Slack refused SLACK_BOT_TOKEN ({error})") from None
            log.warning("auth.test failed at start-up (%s); will retry on first request", error)
        except (OSError, TimeoutError) as exc:
            log.warning("auth.test failed at start-up (%r); will retry on first request", exc)

    async def _fetch(self) -> AuthorizeResult:
        async with self._lock:
            if self._result is None:
                response = await self.client.auth_test(token=self.token)
                self._result = AuthorizeResult.from_auth_test_response(
                    bot_token=self.token, auth_test_response=response
                )
            return self._result

    def authorizer(self) -> Callable[[], Awaitable[AuthorizeResult]]:
        """Bolt's `authorize`: the answer from start-up (fetched now only if start-up missed).
        A plain function, since Bolt passes arguments by the names it finds, `self` included."""

        async def authorize() -> AuthorizeResult:
            return self._result or await self._fetch()

        return authorize
