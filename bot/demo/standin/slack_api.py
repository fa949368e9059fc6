"""A stand-in for Slack's Web API: a real aiohttp server that answers with Slack's shapes and
error codes, records every call, and can be told to be slow or to fail (429 with Retry-After,
500)."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

BOT_USER = "UBOT0001"
# The bot-token scope each Web API method needs, from Slack's method pages (public channels;
# private ones take groups:write instead of channels:manage). Methods not listed need none.
METHOD_SCOPES = {
    "conversations.create": "channels:manage",
    "conversations.invite": "channels:manage",
    "conversations.setTopic": "channels:manage",
    "conversations.archive": "channels:manage",
    "conversations.unarchive": "channels:manage",
    "conversations.info": "channels:read",
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "pins.add": "pins:write",
    "users.info": "users:read",
    "users.list": "users:read",
    "usergroups.users.list": "usergroups:read",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "conversations.history": "channels:history",
    "conversations.replies": "channels:history",
}
# In a private channel, these take groups:write where a public one takes channels:manage.
PRIVATE_METHOD_SCOPES = {
    "conversations.create": "groups:write",
    "conversations.invite": "groups:write",
    "conversations.setTopic": "groups:write",
    "conversations.archive": "groups:write",
    "conversations.unarchive": "groups:write",
    "conversations.info": "groups:read",
    "conversations.history": "groups:history",
    "conversations.replies": "groups:history",
}
_VALID_NAME = re.compile(r"^[a-z0-9_-]+$")


@dataclass
class Call:
    """One Web API call the stand-in received: the method, its arguments, and when it arrived."""

    method: str
    args: dict[str, Any]
    # When the request arrived (time.monotonic()), before the configured latency.
    at: float = field(default_factory=time.monotonic)


@dataclass
class Fault:
    """A failure set up for a method: an HTTP status or Slack error, for the next `times` calls."""

    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    times: int = 1


@dataclass
class Channel:
    """A channel as the stand-in keeps it: name, members, topic and pinned messages."""

    id: str
    name: str
    members: set[str] = field(default_factory=set)
    topic: str = ""
    pins: list[str] = field(default_factory=list)
    is_private: bool = False
    is_archived: bool = False
    # #general: Slack refuses to archive it.
    is_general: bool = False


class FakeSlack:
    """Slack's Web API on loopback. With `granted_scopes`, a method whose scope was not granted
    answers `missing_scope`, as Slack does; with None, every method may be called."""

    def __init__(self, *, granted_scopes: Iterable[str] | None = None) -> None:
        self.granted_scopes = None if granted_scopes is None else frozenset(granted_scopes)
        self.calls: list[Call] = []
        self.responses: list[dict[str, Any]] = []
        # Files uploaded through files.getUploadURLExternal + POST + completeUploadExternal.
        self.uploads: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.channels: dict[str, Channel] = {}
        # Every message in a channel (or DM, by user id), in the order posted: the bot's posts
        # and what people say (`user_says`); conversations.history and .replies read it.
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.faults: dict[str, list[Fault]] = {}
        self.latency = 0.0
        # Random faults: this share of calls (to `fault_methods`, or to any method but
        # auth.test when None) answers 429 with `fault_retry_after` or 500, half each.
        self.fault_rate = 0.0
        self.fault_retry_after = 1
        self.fault_methods: set[str] | None = None
        self.fault_rng = random.Random(7)
        # Modals opened (views.open / views.push / views.update) by view id, and each user's
        # App Home (views.publish).
        self.views: dict[str, dict[str, Any]] = {}
        self.homes: dict[str, dict[str, Any]] = {}
        self.used_triggers: set[str] = set()
        # The WebSocket URL `apps.connections.open` hands out (a FakeSocketMode's url).
        self.socket_mode_url: str | None = None
        # What conversations.unarchive answers a bot token with (Slack often refuses bots:
        # `not_authorized`); None lets the unarchive through.
        self.unarchive_error: str | None = None
        self._ids = itertools.count(1)
        self._ts = itertools.count(1)
        self._last_user_ts = Decimal(0)
        self._runner: web.AppRunner | None = None
        self.base_url: str | None = None
        self.add_user(BOT_USER, "warroom", is_bot=True)

    # -- set-up ---------------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        display_name: str = "",
        is_bot: bool = False,
    ) -> None:
        """Make a user (or bot) that `users.info` and `users.list` will answer with."""
        self.users[user_id] = {
            "id": user_id,
            "name": name,
            "real_name": name.title(),
            "is_bot": is_bot,
            "deleted": False,
            "profile": {"display_name": display_name, "real_name": name.title()},
        }

    def add_channel(self, channel_id: str, name: str, *, members: set[str] | None = None) -> None:
        """Make a channel; without `members`, only the bot is in it."""
        self.channels[channel_id] = Channel(channel_id, name, members or {BOT_USER})

    def fail(
        self,
        method: str,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of `method` fail with an HTTP status or a Slack error."""
        self.faults.setdefault(method, []).append(Fault(status, error, retry_after, times))

    @property
    def api_url(self) -> str:
        """The stand-in's Web API base URL, for the app's client; it must be started."""
        return self._url("/api/")

    def response_url(self, key: str = "r1") -> str:
        """A `response_url` on the stand-in; what is posted to it is recorded under `key`."""
        return self._url(f"/respond/{key}")

    def _url(self, path: str) -> str:
        assert self.base_url is not None, "the stand-in is not started"
        return self.base_url + path

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on `host`:`port` (port 0: a free one), and set `base_url` to where it listens."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_post("/respond/{key}", self._respond)
        app.router.add_post("/upload/{file_id}", self._upload)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        # Bound here rather than by aiohttp, so that port 0 yields a port we can name.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        await web.SockSite(self._runner, listener).start()
        self.base_url = f"http://{host}:{listener.getsockname()[1]}"

    async def close(self) -> None:
        """Stop serving; does nothing when not started."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- what was asked ----------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        """The calls to `method`, in the order they came."""
        return [c for c in self.calls if c.method == method]

    def channel_named(self, name: str) -> Channel:
        """The channel called `name`; fails an assertion when there is none."""
        matches = [c for c in self.channels.values() if c.name == name]
        assert matches, f"no channel named {name}; have {[c.name for c in self.channels.values()]}"
        return matches[0]

    # -- people talking (what Slack keeps whether or not warroom hears of it) ---------------

    def next_user_ts(self) -> str:
        """A fresh message ts from the wall clock, later than every one handed out before."""
        now = Decimal(f"{time.time():.6f}")
        self._last_user_ts = max(now, self._last_user_ts + Decimal("0.000001"))
        return f"{self._last_user_ts:.6f}"

    def user_says(
        self,
        channel_id: str,
        user_id: str,
        text: str,
        *,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
        ts: str | None = None,
    ) -> dict[str, Any]:
        """Keep a message `user_id` posts in `channel_id` (a thread reply with `thread_ts`), as
        Slack keeps it; the `message` event Slack would send for it, to deliver or not. `ts`
        backdates it (a test's way of being down for half an hour)."""
        self._channel(channel_id)
        ts = ts or self.next_user_ts()
        message: dict[str, Any] = {"type": "message", "user": user_id, "text": text, "ts": ts}
        if files:
            message.update(subtype="file_share", files=files)
        if thread_ts is not None:
            parent = self._message(channel_id, thread_ts)
            message["thread_ts"] = thread_ts
            parent["thread_ts"] = thread_ts
            parent["reply_count"] = parent.get("reply_count", 0) + 1
            parent["latest_reply"] = ts
            users = parent.setdefault("reply_users", [])
            if user_id not in users:
                users.append(user_id)
        self.messages.setdefault(channel_id, []).append(message)
        return {**_event_copy(message), "channel": channel_id, "event_ts": ts}

    def user_edits(self, channel_id: str, ts: str, text: str) -> dict[str, Any]:
        """Change a kept message's text, as its author's edit does; the `message_changed` event
        Slack would send for it."""
        message = self._message(channel_id, ts)
        previous = _event_copy(message)
        edited_ts = self.next_user_ts()
        message["text"] = text
        message["edited"] = {"user": message.get("user"), "ts": edited_ts}
        return {
            "type": "message",
            "subtype": "message_changed",
            "channel": channel_id,
            "hidden": True,
            "ts": edited_ts,
            "event_ts": edited_ts,
            "message": _event_copy(message),
            "previous_message": previous,
        }

    def _message(self, channel_id: str, ts: str) -> dict[str, Any]:
        for message in self.messages.get(channel_id, []):
            if message["ts"] == ts:
                return message
        raise SlackError("message_not_found")

    # A deadline for the polling loop, not a cancellation scope: ASYNC109 does not apply.
    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until `predicate` holds (polling the recorded state), or fail the test."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("the fake Slack never saw what the test waited for")
            await asyncio.sleep(0.01)

    # -- the server -------------------------------------------------------------------

    async def _respond(self, request: web.Request) -> web.Response:
        self.responses.append(await request.json())
        return web.Response(text="ok")

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="no such upload")
        upload["content"] = await request.read()
        return web.Response(text="OK - ok")

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(dict(await request.post()))
        self.calls.append(Call(method, args))
        if self.latency:
            await asyncio.sleep(self.latency)
        needed = self._scope_for(method, args)
        if self.granted_scopes is not None and needed and needed not in self.granted_scopes:
            return web.json_response(
                {
                    "ok": False,
                    "error": "missing_scope",
                    "needed": needed,
                    "provided": ",".join(sorted(self.granted_scopes)),
                }
            )
        if self._random_fault(method):
            if self.fault_rng.random() < 0.5:
                return web.json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": str(self.fault_retry_after)},
                )
            return web.Response(status=500, text="upstream failure")
        faults = self.faults.get(method)
        if faults:
            fault = faults[0]
            fault.times -= 1
            if fault.times <= 0:
                faults.pop(0)
            if fault.status == 429:
                return web.json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": str(fault.retry_after or 1)},
                )
            if fault.status >= 500:
                return web.Response(status=fault.status, text="upstream failure")
            if fault.error:
                return web.json_response({"ok": False, "error": fault.error})
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        try:
            body = handler(args)
        except SlackError as exc:
            return web.json_response({"ok": False, "error": exc.code})
        return web.json_response({"ok": True, **body})

    def _scope_for(self, method: str, args: dict[str, Any]) -> str | None:
        """The scope `method` needs with these arguments: private channels take groups:*."""
        private = method in PRIVATE_METHOD_SCOPES and (
            _truthy(args.get("is_private"))
            if method == "conversations.create"
            else getattr(self.channels.get(str(args.get("channel", ""))), "is_private", False)
        )
        return PRIVATE_METHOD_SCOPES[method] if private else METHOD_SCOPES.get(method)

    def visible_channel_names(self, user_id: str) -> list[str]:
        """The channels `user_id` can find in Slack: every public one, and private ones they
        are in."""
        return [c.name for c in self.channels.values() if not c.is_private or user_id in c.members]

    def _random_fault(self, method: str) -> bool:
        if not self.fault_rate:
            return False
        if self.fault_methods is None and method == "auth.test":
            return False
        if self.fault_methods is not None and method not in self.fault_methods:
            return False
        return self.fault_rng.random() < self.fault_rate

    def _channel(self, channel_id: str) -> Channel:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise SlackError("channel_not_found")
        return channel

    def _auth_test(self, _args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://test.slack.com/",
            "team": "Test",
            "user": "warroom",
            "team_id": "T0TEST",
            "user_id": BOT_USER,
            "bot_id": "B0BOT",
        }

    def _conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        name = args.get("name", "")
        if not name:
            raise SlackError("invalid_name_required")
        if len(name) > 80:
            raise SlackError("invalid_name_maxlength")
        if not _VALID_NAME.match(name):
            raise SlackError("invalid_name_specials")
        if any(c.name == name for c in self.channels.values()):
            raise SlackError("name_taken")
        private = _truthy(args.get("is_private"))
        # Slack gives private channels ids starting with G in older workspaces, C now.
        channel_id = f"C{next(self._ids):08d}"
        self.channels[channel_id] = Channel(channel_id, name, {BOT_USER}, is_private=private)
        return {
            "channel": {
                "id": channel_id,
                "name": name,
                "is_channel": not private,
                "is_group": private,
                "is_private": private,
                "created": 1700000000,
                "creator": BOT_USER,
            }
        }

    def _conversations_archive(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel", ""))
        if channel.is_archived:
            raise SlackError("already_archived")
        if channel.is_general:
            raise SlackError("cant_archive_general")
        if BOT_USER not in channel.members:
            raise SlackError("not_in_channel")
        channel.is_archived = True
        return {}

    def _conversations_unarchive(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel", ""))
        if not channel.is_archived:
            raise SlackError("not_archived")
        if self.unarchive_error:
            raise SlackError(self.unarchive_error)
        channel.is_archived = False
        return {}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel", ""))
        return {
            "channel": {
                "id": channel.id,
                "name": channel.name,
                "is_private": channel.is_private,
                "is_archived": channel.is_archived,
                "is_general": channel.is_general,
                "topic": {"value": channel.topic},
            }
        }

    def _conversations_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel", ""))
        if channel.is_archived:
            raise SlackError("is_archived")
        if BOT_USER not in channel.members:
            raise SlackError("not_in_channel")
        users = [u for u in str(args.get("users", "")).split(",") if u]
        for user in users:
            if user == BOT_USER:
                raise SlackError("cant_invite_self")
            if user not in self.users:
                raise SlackError("user_not_found")
            if user in channel.members:
                raise SlackError("already_in_channel")
        channel.members.update(users)
        return {"channel": {"id": channel.id, "name": channel.name}}

    def _conversations_setTopic(self, args: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        channel = self._channel(args.get("channel", ""))
        if channel.is_archived:
            raise SlackError("is_archived")
        topic = args.get("topic", "")
        if len(topic) > 250:
            raise SlackError("too_long")
        channel.topic = topic
        return {"channel": {"id": channel.id, "topic": {"value": topic}}}

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        target = args.get("channel", "")
        if target not in self.users:
            channel = self._channel(target)
            if channel.is_archived:
                raise SlackError("is_archived")
            if BOT_USER not in channel.members:
                raise SlackError("not_in_channel")
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if blocks is not None and len(blocks) > 50:
            raise SlackError("invalid_blocks")
        ts = f"1700000{next(self._ts):03d}.000100"
        message = {
            "type": "message",
            "user": BOT_USER,
            "bot_id": "B0BOT",
            "ts": ts,
            "text": args.get("text", ""),
            "blocks": blocks,
        }
        self.messages.setdefault(target, []).append(message)
        return {"channel": target, "ts": ts, "message": message}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel", ""))
        for message in self.messages.get(channel.id, []):
            if message["ts"] == args.get("ts"):
                message["text"] = args.get("text", "")
                blocks = args.get("blocks")
                message["blocks"] = json.loads(blocks) if isinstance(blocks, str) else blocks
                return {"channel": channel.id, "ts": message["ts"]}
        raise SlackError("message_not_found")

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        channel = self._channel(args.get("channel", ""))
        if args.get("user") not in channel.members:
            raise SlackError("user_not_in_channel")
        return {"message_ts": f"1700000{next(self._ts):03d}.000200"}

    def _pins_add(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel", ""))
        if args.get("timestamp") in channel.pins:
            raise SlackError("already_pinned")
        channel.pins.append(args.get("timestamp", ""))
        return {}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(args.get("user", ""))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user}

    def _users_list(self, _args: dict[str, Any]) -> dict[str, Any]:
        return {"members": list(self.users.values()), "response_metadata": {"next_cursor": ""}}

    def _files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        if not args.get("filename") or not args.get("length"):
            raise SlackError("invalid_arguments")
        file_id = f"F{next(self._ids):08d}"
        self.uploads[file_id] = {
            "filename": args["filename"],
            "length": int(args["length"]),
            "content": None,
            "channel": None,
            "title": None,
        }
        return {"upload_url": self._url(f"/upload/{file_id}"), "file_id": file_id}

    def _files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        files = args.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        done = []
        for item in files or []:
            upload = self.uploads.get(item.get("id", ""))
            if upload is None or upload["content"] is None:
                raise SlackError("file_not_found")
            channel = args.get("channel_id")
            if channel and self._channel(channel).is_archived:
                raise SlackError("is_archived")
            upload.update(
                channel=channel, title=item.get("title"), comment=args.get("initial_comment")
            )
            done.append({"id": item["id"], "title": item.get("title"), "name": upload["filename"]})
        return {"files": done}

    def _check_view(self, view: Any, *, max_blocks: int = 100) -> dict[str, Any]:
        if isinstance(view, str):
            view = json.loads(view)
        if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
            raise SlackError("invalid_arguments")
        blocks = view.get("blocks") or []
        if len(blocks) > max_blocks:
            raise SlackError("invalid_arguments")
        if view["type"] == "modal":
            title = (view.get("title") or {}).get("text", "")
            if not title or len(title) > 24:
                raise SlackError("invalid_arguments")
        for block in blocks:
            text = (block.get("text") or {}).get("text", "")
            if block.get("type") == "section" and len(text) > 3000:
                raise SlackError("invalid_arguments")
        return view

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger = args.get("trigger_id", "")
        if not trigger:
            raise SlackError("invalid_arguments")
        # A trigger_id works once (it also expires after 3 s, which the fake doesn't model).
        if trigger in self.used_triggers:
            raise SlackError("expired_trigger_id")
        view = self._check_view(args.get("view"))
        self.used_triggers.add(trigger)
        view_id = f"V{next(self._ids):08d}"
        stored = {**view, "id": view_id, "hash": f"h{view_id}", "state": {"values": {}}}
        self.views[view_id] = stored
        return {"view": stored}

    def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._views_open(args)

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id = args.get("view_id", "")
        external = args.get("external_id", "")
        match = self.views.get(view_id) or next(
            (v for v in self.views.values() if external and v.get("external_id") == external),
            None,
        )
        if match is None:
            raise SlackError("not_found")
        view = self._check_view(args.get("view"))
        stored = {**view, "id": match["id"], "hash": f"h{match['id']}x", "state": {"values": {}}}
        self.views[match["id"]] = stored
        return {"view": stored}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user = args.get("user_id", "")
        if user not in self.users:
            raise SlackError("user_not_found")
        view = self._check_view(args.get("view"))
        if view.get("type") != "home":
            raise SlackError("invalid_arguments")
        stored = {**view, "id": f"V{next(self._ids):08d}"}
        self.homes[user] = stored
        return {"view": stored}

    def _apps_connections_open(self, _args: dict[str, Any]) -> dict[str, Any]:
        if self.socket_mode_url is None:
            raise SlackError("not_allowed_token_type")
        return {"url": self.socket_mode_url}

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel", ""))
        # The channel's own messages, newest first: thread replies stay in their threads
        # unless also sent to the channel.
        top = [
            m
            for m in self.messages.get(channel.id, [])
            if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"
        ]
        kept = sorted(_in_range(top, args), key=lambda m: Decimal(m["ts"]), reverse=True)
        return _page(kept, args, default_limit=100)

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel", ""))
        parent = next(
            (m for m in self.messages.get(channel.id, []) if m["ts"] == args.get("ts")), None
        )
        if parent is None:
            raise SlackError("thread_not_found")
        replies = [
            m
            for m in self.messages.get(channel.id, [])
            if m.get("thread_ts") == parent["ts"] and m["ts"] != parent["ts"]
        ]
        kept = sorted(_in_range(replies, args), key=lambda m: Decimal(m["ts"]))
        page = _page(kept, args, default_limit=10)
        # The parent comes first on the first page, whatever `oldest` says.
        if not args.get("cursor"):
            page["messages"].insert(0, _event_copy(parent))
        return page

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = args.get("usergroup", "")
        if group not in self.usergroups:
            raise SlackError("no_such_subteam")
        return {"users": self.usergroups[group]}


def _event_copy(message: dict[str, Any]) -> dict[str, Any]:
    """A message as Slack hands it out: a copy, without the bot-post-only `blocks` when None."""
    copy = {k: v for k, v in message.items() if not (k == "blocks" and v is None)}
    if "reply_users" in copy:
        copy["reply_users"] = list(copy["reply_users"])
    return copy


def _in_range(messages: list[dict[str, Any]], args: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages between `oldest` and `latest`, inclusive only when `inclusive` is set."""
    inclusive = str(args.get("inclusive", "")).lower() in ("1", "true")
    oldest = Decimal(str(args["oldest"])) if args.get("oldest") else None
    latest = Decimal(str(args["latest"])) if args.get("latest") else None
    kept = []
    for message in messages:
        ts = Decimal(message["ts"])
        if oldest is not None and (ts < oldest or (ts == oldest and not inclusive)):
            continue
        if latest is not None and (ts > latest or (ts == latest and not inclusive)):
            continue
        kept.append(message)
    return kept


def _page(
    messages: list[dict[str, Any]], args: dict[str, Any], *, default_limit: int
) -> dict[str, Any]:
    """One page of `messages` from the `cursor` on, with Slack's `has_more` and next cursor."""
    limit = max(1, min(int(args.get("limit") or default_limit), 1000))
    cursor = str(args.get("cursor") or "")
    start = int(cursor.removeprefix("page:")) if cursor.startswith("page:") else 0
    if cursor and not cursor.startswith("page:"):
        raise SlackError("invalid_cursor")
    chunk = messages[start : start + limit]
    more = start + limit < len(messages)
    return {
        "messages": [_event_copy(m) for m in chunk],
        "has_more": more,
        "response_metadata": {"next_cursor": f"page:{start + limit}" if more else ""},
    }


def _truthy(value: Any) -> bool:
    """A Web API boolean as it arrives: JSON true, or the form strings "true" and "1"."""
    return value is True or str(value).lower() in ("true", "1")


class SlackError(Exception):
    """Raised by a method's handler to answer `{"ok": false, "error": code}`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
