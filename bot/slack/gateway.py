"""The one door to Slack's Web API: retries, rate limits, recoverable errors, escaping."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.errors import SlackCallError, ViewNotOpenedError, WarroomError
from bot.metrics import Metrics
from bot.slack.pacing import ChannelPacer, Lane, tier3_pacer
from bot.slack.text import printable

log = logging.getLogger(__name__)
# slack_sdk's webhook client logs the URL it posts to (at DEBUG, and its retries at INFO); a
# response_url is a credential, so that client gets a logger of its own that only speaks up
# from WARNING, whatever the process's logging says.
_WEBHOOK_LOG = logging.getLogger("bot.slack.gateway.response_url")
_WEBHOOK_LOG.setLevel(logging.WARNING)

TOPIC_LIMIT = 250
# Messages per page of conversations.history and .replies (Slack's advice: 200 at most).
HISTORY_PAGE = 200
# A 429 whose Retry-After is longer than the client waits out (SlackRetryPolicy's
# max_retry_after) is waited out here this many times: history is read in the background.
LONG_RATE_LIMIT_WAITS = 3
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


P = ParamSpec("P")
R = TypeVar("R")


def speaks_warroom(
    call: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """A gateway method whose Slack errors leave it as SlackCallError: Slack's own exception
    types stay inside the Slack edge."""

    @functools.wraps(call)
    async def translated(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await call(*args, **kwargs)
        except SlackApiError as exc:
            method = str(getattr(exc.response, "api_url", "")).rsplit("/", 1)[-1]
            raise SlackCallError(method, slack_error(exc)) from exc

    return translated


class CountedWebClient(AsyncWebClient):
    """The Web API client, counting every call by method and outcome for /metrics."""

    def __init__(self, *, metrics: Metrics | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics

    async def api_call(self, api_method: str, **kwargs: Any) -> Any:
        """Make the call, and count it by method and outcome (ok, Slack's error code, exception)."""
        if self.session is None or self.session.closed:
            # One HTTP session for the client's life, made on the loop that uses it: without
            # one, slack_sdk opens a session, a connection and a TLS handshake for every call
            # and closes them after it (measured: most of a war room's opening CPU). Whoever
            # built the client closes it (the server when it stops).
            self.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                trust_env=self.trust_env_in_session,
            )
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


RATELIMITED = "ratelimited"
SERVER_ERROR = "server_error"
CONNECTION_ERROR = "connection_error"
SERVER_ERROR_STATUSES = frozenset({500, 502, 503, 504})
# views.open and views.push spend a trigger id that Slack honours for 3 s, before the ack: their
# retries may wait this long in all, no longer.
TRIGGER_METHODS = frozenset({"views.open", "views.push"})
TRIGGER_RETRY_SECONDS = 1.0
# views.open as a whole: the trigger id is dead after 3 s, and the ack has to follow.
OPEN_VIEW_SECONDS = 2.5


# Failures of the connection itself (refused, reset, dropped mid-answer) and timeouts.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientConnectionError, TimeoutError)


class SlackRetryPolicy(AsyncRetryHandler):
    """When and after how long a failed Web API call is tried again, for every method.

    - 429: after Slack's Retry-After (plus a little jitter, so that waiting posts do not come
      back all at once), up to `ratelimited_retries` times; a Retry-After above
      `max_retry_after` is not waited out here: the error goes up, and whoever owns the work
      (the outbox, the next refresh) tries again later.
    - 5xx and connection errors: exponential backoff from `backoff` seconds, capped at
      `max_backoff`, with jitter, up to `server_error_retries` times.
    - views.open and views.push run before the ack on a trigger id that lives 3 s: their
      retries wait `TRIGGER_RETRY_SECONDS` in all at most.

    Which calls are safe to repeat: a 429 or a refused connection means Slack did nothing, so
    every method is repeated. A 5xx or a connection dropped mid-answer may follow work Slack
    did. For setTopic, chat.update, pins.add (already_pinned), conversations.invite
    (already_in_channel) and every read, a repeat is harmless. For chat.postMessage,
    chat.postEphemeral and conversations.create it can, rarely, make a second message or an
    extra channel. They are repeated all the same: in a war room a lost header, briefing or
    reminder costs more than a rare duplicate, Slack's 5xx almost always mean the work was not
    done, and the outbox (bot/outbox/sender.py) already repeats a post after any failure, so
    the bot posts at least once rather than at most once. The budget for 5xx is kept small because
    each repeat of an uncertain call is another chance of a duplicate."""

    def __init__(
        self,
        *,
        metrics: Metrics | None = None,
        ratelimited_retries: int = 5,
        server_error_retries: int = 3,
        max_retry_after: float = 30.0,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(max_retry_count=ratelimited_retries + server_error_retries)
        self.metrics = metrics
        self.budgets = {
            RATELIMITED: ratelimited_retries,
            SERVER_ERROR: server_error_retries,
            CONNECTION_ERROR: server_error_retries,
        }
        self.max_retry_after = max_retry_after
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.rng = rng or random.Random()

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        """Whether to try again: budget left for this kind of failure, and a wait worth making."""
        failure = failure_kind(response, error)
        if failure is None:
            return False
        retries = _retries(state)
        used = retries.used
        # 5xx and connection errors share one budget: both are Slack having a bad moment.
        spent = used.get(failure, 0)
        if failure == CONNECTION_ERROR:
            spent += used.get(SERVER_ERROR, 0)
        elif failure == SERVER_ERROR:
            spent += used.get(CONNECTION_ERROR, 0)
        if spent >= self.budgets[failure]:
            return False
        if failure == RATELIMITED and retry_after(response) > self.max_retry_after:
            return False
        retries.next_delay = self._delay(failure, response, used)
        if method_of(request) in TRIGGER_METHODS:
            return retries.waited + retries.next_delay <= TRIGGER_RETRY_SECONDS
        return True

    def _delay(self, failure: str, response: HttpResponse | None, used: dict[str, int]) -> float:
        if failure == RATELIMITED:
            return retry_after(response) + self.rng.uniform(0, 0.5)
        tried = used.get(SERVER_ERROR, 0) + used.get(CONNECTION_ERROR, 0)
        ceiling = min(self.max_backoff, self.backoff * 2**tried)
        return self.rng.uniform(ceiling / 2, ceiling)

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        """Count the retry, then wait the delay `can_retry_async` chose."""
        failure = failure_kind(response, error)
        assert failure is not None
        retries = _retries(state)
        delay = retries.next_delay
        retries.used[failure] = retries.used.get(failure, 0) + 1
        retries.waited += delay
        if self.metrics is not None:
            outcome = RATELIMITED if failure == RATELIMITED else f"retried_{failure}"
            self.metrics.web_api_calls.labels(method=method_of(request), outcome=outcome).inc()
        state.next_attempt_requested = True
        await self.sleep(delay)
        state.increment_current_attempt()


def failure_kind(response: HttpResponse | None, error: Exception | None) -> str | None:
    """What went wrong with one attempt, if it is worth another: a 429, a 5xx, a connection."""
    if response is not None:
        if response.status_code == 429:
            return RATELIMITED
        if response.status_code in SERVER_ERROR_STATUSES:
            return SERVER_ERROR
        return None
    if error is not None and isinstance(error, CONNECTION_ERRORS):
        return CONNECTION_ERROR
    return None


def retry_after(response: HttpResponse | None) -> float:
    """Slack's Retry-After in seconds (whole seconds; 1 when missing or unreadable)."""
    if response is None:
        return 1.0
    for name, values in response.headers.items():
        if name.lower() == "retry-after":
            value = values[0] if isinstance(values, list) else values
            try:
                return max(0.0, float(value))
            except ValueError:
                return 1.0
    return 1.0


def method_of(request: HttpRequest) -> str:
    """The Web API method a request calls; `file_upload` or `response_url` for the others."""
    path = str(request.url).split("?", 1)[0].rstrip("/")
    if "/api/" in path:
        return path.rsplit("/", 1)[-1]
    return "file_upload" if "/upload/" in path else "response_url"


@dataclass
class _Retries:
    """One call's retries so far: how many of each kind, and how long they waited."""

    used: dict[str, int] = field(default_factory=dict)
    waited: float = 0.0
    next_delay: float = 0.0


def _retries(state: RetryState) -> _Retries:
    if state.custom_values is None:
        state.custom_values = {}
    retries = state.custom_values.setdefault("warroom", _Retries())
    assert isinstance(retries, _Retries)
    return retries


def build_web_client(
    token: str,
    base_url: str,
    *,
    metrics: Metrics | None = None,
    retry_policy: SlackRetryPolicy | None = None,
) -> AsyncWebClient:
    """A Web API client that rides out 429s (after Retry-After), 5xx and dropped connections."""
    client = CountedWebClient(token=token, base_url=base_url, timeout=10, metrics=metrics)
    client.retry_handlers = [retry_policy or SlackRetryPolicy(metrics=metrics)]
    return client


@dataclass(frozen=True)
class SlackProfile:
    """A Slack user as warroom keeps them: id, display name, handle, and whether a bot."""

    user_id: str
    name: str
    handle: str | None
    is_bot: bool = False


@dataclass(frozen=True)
class CreatedChannel:
    """A channel Slack created: its id and the name it got."""

    channel_id: str
    name: str


class SlackGateway:
    """What the domain asks of Slack, in its own words; no Bolt types cross this line."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        pacer: ChannelPacer | None = None,
        read_pacer: ChannelPacer | None = None,
    ) -> None:
        self.client = client
        self.retry_handlers = list(client.retry_handlers or [])
        metrics = getattr(client, "metrics", None)
        on_wait = metrics.post_wait_seconds.observe if isinstance(metrics, Metrics) else None
        # Messages into a channel wait their turn here (Slack's limit is about one a second
        # per channel for chat.postMessage; chat.update and chat.postEphemeral have method
        # limits of 50 and 100 a minute instead). Nothing on an ack path posts (acks reply
        # with their own text, posts run in bot/tasks.py), so the wait never holds up Slack.
        self.pacer = pacer or ChannelPacer(on_wait=on_wait)
        # History reads (Tier 3) are paced per method, apart from posts: a back-fill never
        # holds up a post, and stays within the method's own limit.
        self.read_pacer = read_pacer or tier3_pacer()
        # How a long Retry-After on a read is waited out (tests record it instead).
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        # One edit at a time per topic or message, in the order asked: an edit held up by a
        # 429 must not land after, and undo, a newer one.
        self._edit_turns: dict[str, asyncio.Lock] = {}

    def _edit_turn(self, key: str) -> asyncio.Lock:
        """The lock that keeps edits to one thing in order (a few per incident: kept)."""
        return self._edit_turns.setdefault(key, asyncio.Lock())

    @speaks_warroom
    async def create_channel(
        self, candidates: Iterable[str], *, private: bool = False
    ) -> CreatedChannel:
        """Create the first free name among `candidates` (a private channel if `private`); a
        taken name moves on to the next."""
        last_error = "no channel name to try"
        for name in candidates:
            try:
                response = await self.client.conversations_create(name=name, is_private=private)
            except SlackApiError as exc:
                if slack_error(exc) == "name_taken":
                    last_error = f"{name} is taken"
                    continue
                raise
            channel = response["channel"]
            return CreatedChannel(channel_id=channel["id"], name=channel["name"])
        raise WarroomError(f"Could not find a free channel name ({last_error}).")

    @speaks_warroom
    async def invite(self, channel_id: str, user_ids: Sequence[str]) -> list[str]:
        """Invite people; those already in, or who cannot be invited, are passed over. Returns
        who is in the channel now of those asked for (invited, or in already)."""
        unique = list(dict.fromkeys(user_ids))
        present: list[str] = []
        for start in range(0, len(unique), INVITE_BATCH):
            batch = unique[start : start + INVITE_BATCH]
            try:
                await self.client.conversations_invite(channel=channel_id, users=",".join(batch))
                present.extend(batch)
            except SlackApiError as exc:
                if slack_error(exc) not in _SKIPPABLE_INVITE_ERRORS:
                    raise
                if len(batch) > 1:
                    # One bad id fails the whole batch; invite the rest one by one.
                    found = await asyncio.gather(*(self.invite(channel_id, [u]) for u in batch))
                    present.extend(user for each in found for user in each)
                elif slack_error(exc) == "already_in_channel":
                    present.extend(batch)
                else:
                    log.warning("not invited %s: %s", batch[0], slack_error(exc))
        return present

    async def usergroup_members(self, usergroup_id: str) -> list[str]:
        """The members of a user group; none (and a warning logged) when Slack will not say."""
        try:
            response = await self.client.usergroups_users_list(usergroup=usergroup_id)
        except SlackApiError as exc:
            log.warning("user group %s not expanded: %s", usergroup_id, slack_error(exc))
            return []
        return list(response.get("users", []))

    @speaks_warroom
    async def set_topic(self, channel_id: str, topic: str) -> None:
        """Set the channel's topic, cut to Slack's 250 characters, after any earlier topic edit."""
        if len(topic) > TOPIC_LIMIT:
            topic = topic[: TOPIC_LIMIT - 1] + "…"
        async with self._edit_turn(f"topic:{channel_id}"):
            await self.client.conversations_setTopic(channel=channel_id, topic=topic)

    async def post_message(
        self,
        channel_id: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        incident_id: int | None = None,
    ) -> str:
        """Post once the channel's turn comes (routine lane); the message's ts."""
        ts = await self.post_message_if(channel_id, text, blocks, incident_id=incident_id)
        assert ts is not None
        return ts

    @speaks_warroom
    async def post_message_if(
        self,
        channel_id: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        still_wanted: Callable[[], Awaitable[bool]] | None = None,
        lane: Lane = Lane.ROUTINE,
        incident_id: int | None = None,
    ) -> str | None:
        """Post once the channel's turn comes, if `still_wanted()` then says so (None if not):
        a check made after the wait, which can be long while Slack is rate-limiting. An
        urgent `lane` goes before routine posts waiting for the channel (`incident_id` keeps
        an incident's own posts in order)."""
        async with self.pacer.turn(channel_id, lane=lane, incident_id=incident_id):
            if still_wanted is not None and not await still_wanted():
                return None
            response = await self.client.chat_postMessage(
                channel=channel_id, text=text, blocks=blocks, unfurl_links=False
            )
        return str(response["ts"])

    @speaks_warroom
    async def update_message(
        self, channel_id: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        """Replace a message's text and blocks, in turn with other edits to it."""
        async with self._edit_turn(f"message:{channel_id}:{ts}"):
            await self.client.chat_update(channel=channel_id, ts=ts, text=text, blocks=blocks)

    @speaks_warroom
    async def pin(self, channel_id: str, ts: str) -> None:
        """Pin a message; one already pinned is fine."""
        try:
            await self.client.pins_add(channel=channel_id, timestamp=ts)
        except SlackApiError as exc:
            if slack_error(exc) != "already_pinned":
                raise

    @speaks_warroom
    async def post_ephemeral(self, channel_id: str, user_id: str, text: str) -> None:
        """Show `text` to `user_id` alone, in the channel."""
        await self.client.chat_postEphemeral(channel=channel_id, user=user_id, text=text)

    async def respond(self, response_url: str, text: str) -> None:
        """An ephemeral reply to a slash command after its ack (response_url)."""
        # The same retries as the Web API: Slack's response_url endpoints fail the same ways.
        webhook = AsyncWebhookClient(
            response_url,
            timeout=10,
            retry_handlers=self.retry_handlers or None,
            logger=_WEBHOOK_LOG,
        )
        response = await webhook.send(text=text, response_type="ephemeral")
        if response.status_code >= 400:
            # Logged, not raised: the work the reply reports on is done, and a user who misses
            # the reply sees the outcome in the channel. The URL is a credential: not logged.
            log.warning("response_url reply refused: HTTP %s", response.status_code)

    @speaks_warroom
    async def archive_channel(self, channel_id: str) -> None:
        """Archive a channel; one archived already is fine."""
        try:
            await self.client.conversations_archive(channel=channel_id)
        except SlackApiError as exc:
            if slack_error(exc) != "already_archived":
                raise

    @speaks_warroom
    async def unarchive_channel(self, channel_id: str) -> None:
        """Bring an archived channel back; one not archived is fine."""
        try:
            await self.client.conversations_unarchive(channel=channel_id)
        except SlackApiError as exc:
            if slack_error(exc) != "not_archived":
                raise

    @speaks_warroom
    async def upload_file(self, channel_id: str, path: Path, *, title: str, comment: str) -> None:
        """Upload a file with Slack's current API (getUploadURLExternal, then complete)."""
        await self.client.files_upload_v2(
            channel=channel_id,
            file=str(path),
            filename=path.name,
            title=title,
            initial_comment=comment,
        )

    @speaks_warroom
    async def user_profile(self, user_id: str) -> SlackProfile | None:
        """Look a user up; None when Slack has no such user."""
        try:
            response = await self.client.users_info(user=user_id)
        except SlackApiError as exc:
            if slack_error(exc) in ("user_not_found", "users_not_found"):
                return None
            raise
        return _profile(response["user"])

    @speaks_warroom
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

    @speaks_warroom
    async def channel_history(
        self, channel_id: str, *, oldest: str, limit: int = HISTORY_PAGE
    ) -> list[dict[str, Any]]:
        """The channel's messages since `oldest` (inclusive), every page of them, newest first;
        thread parents carry `reply_count` and `latest_reply`, replies stay in their threads."""
        return await self._read_pages(
            "conversations.history", channel=channel_id, oldest=oldest, inclusive=True, limit=limit
        )

    @speaks_warroom
    async def thread_replies(
        self, channel_id: str, thread_ts: str, *, oldest: str, limit: int = HISTORY_PAGE
    ) -> list[dict[str, Any]]:
        """A thread's parent, then its replies since `oldest` (inclusive), oldest first."""
        return await self._read_pages(
            "conversations.replies",
            channel=channel_id,
            ts=thread_ts,
            oldest=oldest,
            inclusive=True,
            limit=limit,
        )

    async def _read_pages(self, method: str, **args: Any) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = await self._paced_read(method, {**args, "cursor": cursor} if cursor else args)
            messages.extend(page.get("messages") or [])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page.get("has_more") or cursor is None:
                return messages

    async def _paced_read(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """One Tier 3 read in its method's turn; a Retry-After too long for the client's own
        retries is waited out here (outside the turn) a few times before giving up."""
        waits = 0
        while True:
            async with self.read_pacer.turn(method):
                try:
                    response = await self.client.api_call(method, http_verb="GET", params=args)
                except SlackApiError as exc:
                    if exc.response.status_code != 429 or waits >= LONG_RATE_LIMIT_WAITS:
                        raise
                    delay = _retry_after_header(exc.response.headers)
                else:
                    return dict(response.data) if isinstance(response.data, dict) else {}
            waits += 1
            log.info("%s rate-limited: waiting %.0fs as Slack asks", method, delay)
            await self.sleep(delay)

    async def open_view(self, trigger_id: str, view: dict[str, Any]) -> str:
        """Open a modal with a trigger id (it lives 3 s and works once); the view's id.
        Bounded as a whole, retries included: it runs before the ack. ViewNotOpenedError says why
        it did not open."""
        try:
            async with asyncio.timeout(OPEN_VIEW_SECONDS):
                response = await self.client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            raise ViewNotOpenedError(f"Slack said `{slack_error(exc)}`") from exc
        except TimeoutError:
            raise ViewNotOpenedError("Slack did not answer in time") from None
        return str(response["view"]["id"])

    @speaks_warroom
    async def publish_home(self, user_id: str, view: dict[str, Any]) -> None:
        """Replace what `user_id` sees on warroom's Home tab."""
        await self.client.views_publish(user_id=user_id, view=view)


def _retry_after_header(headers: Any) -> float:
    """Retry-After from a response's headers, in seconds (1 when missing or unreadable)."""
    for name, value in dict(headers or {}).items():
        if str(name).lower() == "retry-after":
            value = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return 1.0
    return 1.0


def _profile(user: dict[str, Any]) -> SlackProfile:
    profile = user.get("profile") or {}
    name = (
        profile.get("display_name")
        or profile.get("real_name")
        or user.get("real_name")
        or user.get("name")
        or user["id"]
    )
    handle = user.get("name")
    return SlackProfile(
        user_id=user["id"],
        name=printable(name),
        handle=printable(handle) if handle else handle,
        is_bot=bool(user.get("is_bot")),
    )
