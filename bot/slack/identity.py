"""Who the bot is, learned once at start-up so that no request waits on `auth.test`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError
from bot.slack.gateway import REFUSED_TOKEN_ERRORS, slack_error

log = logging.getLogger(__name__)

# Start-up waits this long for Slack (its retries included) before serving without an answer.
STARTUP_WAIT_SECONDS = 15.0
# A request that finds start-up's answer missing waits this long for it, within Slack's 3 s.
AUTHORIZE_WAIT_SECONDS = 2.0


class UnknownIdentityError(Exception):
    """Slack has not said who the bot is yet. Not a SlackApiError on purpose: Bolt answers
    those with a 200, and Slack would not send the event again; this one gets a 500."""


class BotIdentity:
    """Who the bot is, from `auth.test`: asked once at start-up, kept for every request."""

    def __init__(
        self, client: AsyncWebClient, token: str, *, startup_wait: float = STARTUP_WAIT_SECONDS
    ) -> None:
        self.client = client
        self.token = token
        self.startup_wait = startup_wait
        self._result: AuthorizeResult | None = None
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Ask Slack once; a refused token stops start-up, a network failure only postpones."""
        try:
            async with asyncio.timeout(self.startup_wait):
                await self._fetch()
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in REFUSED_TOKEN_ERRORS:
                raise ConfigError(f"Slack refused SLACK_BOT_TOKEN ({error})") from None
            log.warning("auth.test failed at start-up (%s); will retry on first request", error)
        except (OSError, TimeoutError, aiohttp.ClientError) as exc:
            log.warning("auth.test failed at start-up (%r); will retry on first request", exc)

    @property
    def known(self) -> bool:
        """Whether Slack has said who the bot is."""
        return self._result is not None

    @property
    def result(self) -> AuthorizeResult | None:
        """Slack's answer to `auth.test`, once it has been given."""
        return self._result

    async def own_ids(self) -> frozenset[str]:
        """The bot's user id and bot id: messages carrying either are warroom's own."""
        result = await self._fetch()
        return frozenset(i for i in (result.bot_user_id, result.bot_id) if i)

    async def _fetch(self) -> AuthorizeResult:
        async with self._lock:
            if self._result is None:
                response = await self.client.auth_test(token=self.token)
                self._result = AuthorizeResult.from_auth_test_response(
                    bot_token=self.token, auth_test_response=response
                )
            return self._result

    def authorizer(self) -> StartupAuthorize:
        """Bolt's `authorize`: the answer from start-up (fetched now only if start-up missed)."""
        return StartupAuthorize(self)


class StartupAuthorize(AsyncAuthorize):
    """An `AsyncAuthorize` rather than a plain function: Bolt calls it directly instead of
    inspecting and building its arguments on every request."""

    def __init__(self, identity: BotIdentity) -> None:
        self.identity = identity

    async def __call__(self, **_kwargs: Any) -> AuthorizeResult:
        """The bot's identity; UnknownIdentityError when Slack cannot say within the wait."""
        known = self.identity._result
        if known is not None:
            return known
        try:
            async with asyncio.timeout(AUTHORIZE_WAIT_SECONDS):
                return await self.identity._fetch()
        except (SlackApiError, OSError, TimeoutError, aiohttp.ClientError) as exc:
            raise UnknownIdentityError(f"auth.test failed: {exc!r}") from exc
