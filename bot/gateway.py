"""The one door to Slack's Web API: retries, rate limits, recoverable errors, escaping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.errors import WarroomError
from bot.metrics import Metrics

log = logging.getLogger(__name__)

TOPIC_LIMIT = 250
INVITE_BATCH = 1000
_SKIPPABLE_INVITE_ERRORS = {
    "already_in_channel",
    "cant_invite_self",
    "user_not_found",
    "user_is_deactivated",
    "cant_invite",
    "user_is_restricted",
}


# Errors that mean a token is wrong, not that Slack is having a bad moment: stop start-up.
REFUSED_TOKEN_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_allowed_token_type",
    }
)


def slack_error(exc: SlackApiError) -> str:
    """Slack's error code, or `http_<status>` when the answer was not Slack's JSON (a 5xx page)."""
    data = exc.response.data
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return f"http_{exc.response.status_code}"


class CountedWebClient(AsyncWebClient):
    """The Web API client, counting every call by method and outcome for /metrics."""

    def __init__(self, *, metrics: Metrics | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics

    async def api_call(self, api_method: str, **kwargs: Any) -> Any:
        try:
            response = await super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            self._count(api_method, slack_error(exc))
            raise
        except Exception:
            self._count(api_method, "exception")
            raise
        self._count(api_method, "ok")
        return response

    def _count(self, method: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.web_api_calls.labels(method=method, outcome=outcome).inc()


class CountedRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """Retries a 429 after its Retry-After, counting it (the retry hides it from api_call)."""

    def __init__(self, metrics: Metrics | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics

    async def _can_retry_async(self, **kwargs: Any) -> bool:
        retry = bool(await super()._can_retry_async(**kwargs))
        if retry and self.metrics is not None:
            method = str(kwargs["request"].url).rstrip("/").rsplit("/", 1)[-1]
            self.metrics.web_api_calls.labels(method=method, outcome="ratelimited").inc()
        return retry


def build_web_client(
    token: str, base_url: str, *, metrics: Metrics | None = None
) -> AsyncWebClient:
    """A Web API client that rides out 429s (after Retry-After), 5xx and dropped connections."""
    client = CountedWebClient(token=token, base_url=base_url, timeout=10, metrics=metrics)
    client.retry_handlers = [
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
        CountedRateLimitRetryHandler(metrics, max_retry_count=3),
        AsyncServerErrorRetryHandler(max_retry_count=2),
    ]
    return client


@dataclass(frozen=True)
class SlackProfile:
    user_id: str
    name: str
    handle: str | None
    is_bot: bool = False


@dataclass(frozen=True)
class CreatedChannel:
    channel_id: str
    name: str


class SlackGateway:
    """What the domain asks of Slack, in its own words; no Bolt types cross this line."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def create_channel(self, candidates: Iterable[str]) -> CreatedChannel:
        """Create the first free name among `candidates`; a taken name moves on to the next."""
        last_error = "no channel name to try"
        for name in candidates:
            try:
                response = await self.client.conversations_create(name=name, is_private=False)
            except SlackApiError as exc:
                if slack_error(exc) == "name_taken":
                    last_error = f"{name} is taken"
                    continue
                raise
            channel = response["channel"]
            return CreatedChannel(channel_id=channel["id"], name=channel["name"])
        raise WarroomError(f"Could not find a free channel name ({last_error}).")

    async def invite(self, channel_id: str, user_ids: Sequence[str]) -> None:
        """Invite people; those already in, or who cannot be invited, are passed over."""
        unique = list(dict.fromkeys(user_ids))
        for start in range(0, len(unique), INVITE_BATCH):
            batch = unique[start : start + INVITE_BATCH]
            try:
                await self.client.conversations_invite(channel=channel_id, users=",".join(batch))
            except SlackApiError as exc:
                if slack_error(exc) not in _SKIPPABLE_INVITE_ERRORS:
                    raise
                if len(batch) > 1:
                    # One bad id fails the whole batch; invite the rest one by one.
                    await asyncio.gather(*(self.invite(channel_id, [user]) for user in batch))
                elif slack_error(exc) != "already_in_channel":
                    log.warning("not invited %s: %s", batch[0], slack_error(exc))

    async def usergroup_members(self, usergroup_id: str) -> list[str]:
        try:
            response = await self.client.usergroups_users_list(usergroup=usergroup_id)
        except SlackApiError as exc:
            log.warning("user group %s not expanded: %s", usergroup_id, slack_error(exc))
            return []
        return list(response.get("users", []))

    async def set_topic(self, channel_id: str, topic: str) -> None:
        if len(topic) > TOPIC_LIMIT:
            topic = topic[: TOPIC_LIMIT - 1] + "…"
        await self.client.conversations_setTopic(channel=channel_id, topic=topic)

    async def post_message(
        self, channel_id: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> str:
        response = await self.client.chat_postMessage(
            channel=channel_id, text=text, blocks=blocks, unfurl_links=False
        )
        return str(response["ts"])

    async def update_message(
        self, channel_id: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        await self.client.chat_update(channel=channel_id, ts=ts, text=text, blocks=blocks)

    async def pin(self, channel_id: str, ts: str) -> None:
        try:
            await self.client.pins_add(channel=channel_id, timestamp=ts)
        except SlackApiError as exc:
            if slack_error(exc) != "already_pinned":
                raise

    async def post_ephemeral(self, channel_id: str, user_id: str, text: str) -> None:
        await self.client.chat_postEphemeral(channel=channel_id, user=user_id, text=text)

    async def respond(self, response_url: str, text: str) -> None:
        """An ephemeral reply to a slash command after its ack (response_url)."""
        webhook = AsyncWebhookClient(response_url, timeout=10)
        await webhook.send(text=text, response_type="ephemeral")

    async def upload_file(self, channel_id: str, path: Path, *, title: str, comment: str) -> None:
        """Upload a file with Slack's current API (getUploadURLExternal, then complete)."""
        await self.client.files_upload_v2(
            channel=channel_id,
            file=str(path),
            filename=path.name,
            title=title,
            initial_comment=comment,
        )

    async def user_profile(self, user_id: str) -> SlackProfile | None:
        """Look a user up; None when Slack has no such user."""
        try:
            response = await self.client.users_info(user=user_id)
        except SlackApiError as exc:
            if slack_error(exc) in ("user_not_found", "users_not_found"):
                return None
            raise
        return _profile(response["user"])

    async def find_user(self, handle: str) -> SlackProfile | None:
        """Find a user by @handle or display name (walks users.list; cache what it returns)."""
        wanted = handle.lower()
        cursor = None
        while True:
            response = await self.client.users_list(limit=200, cursor=cursor)
            members: list[dict[str, Any]] = response.get("members", [])
            for member in members:
                profile = _profile(member)
                names = {member.get("name", "").lower(), profile.name.lower()}
                if wanted in names and not member.get("deleted"):
                    return profile
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None


def _profile(user: dict[str, Any]) -> SlackProfile:
    profile = user.get("profile") or {}
    name = (
        profile.get("display_name")
        or profile.get("real_name")
        or user.get("real_name")
        or user.get("name")
        or user["id"]
    )
    return SlackProfile(
        user_id=user["id"], name=name, handle=user.get("name"), is_bot=bool(user.get("is_bot"))
    )
