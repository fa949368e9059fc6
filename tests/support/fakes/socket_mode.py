"""A fake Slack Socket Mode server: a real WebSocket on 127.0.0.1 that says hello, delivers
envelopes as Slack does and records the acks the app sends back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer


class FakeSocketMode:
    def __init__(self) -> None:
        self.acks: list[dict[str, Any]] = []
        self.server: TestServer | None = None
        self._socket: web.WebSocketResponse | None = None
        self._connected = asyncio.Event()
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    @property
    def url(self) -> str:
        """What `apps.connections.open` hands out."""
        assert self.server is not None
        return str(self.server.make_url("/link")).replace("http://", "ws://", 1)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/link", self._link)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self.server is not None:
            await self.server.close()

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake-socket-mode", "approximate_connection_time": 18060},
                "connection_info": {"app_id": "A0WARROOM"},
            }
        )
        self._socket = socket
        self._connected.set()
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue
            ack = json.loads(message.data)
            self.acks.append(ack)
            waiter = self._waiting.pop(str(ack.get("envelope_id")), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(ack)
        return socket

    async def deliver(
        self,
        envelope: dict[str, Any],
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Send one envelope and return the app's ack for it."""
        await asyncio.wait_for(self._connected.wait(), timeout)
        assert self._socket is not None
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[envelope["envelope_id"]] = waiter
        await self._socket.send_json(envelope)
        return await asyncio.wait_for(waiter, timeout)
