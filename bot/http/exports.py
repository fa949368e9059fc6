"""HTTP routes for reviewers: the incident list, the timeline page and the exports. Each
needs the export token as a bearer token, or a signed link that has not expired."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TypeVar

from aiohttp import web
from jinja2 import Environment
from sqlmodel import Session

from bot.config import Settings, WarroomConfig
from bot.errors import NotFoundError
from bot.exports.export import FORMATS, MEDIA_TYPES, export_chunks, load_incident
from bot.exports.links import signed_path, verify
from bot.http.auth import bearer_matches
from bot.incidents.readmodels import incident_view
from bot.incidents.refs import incident_number
from storage import incidents as incident_store
from storage.db import Database

T = TypeVar("T")
QUEUE_CHUNKS = 16
SEND_TIMEOUT = 60.0


def content_security_policy(nonce: str) -> str:
    """User text can never run: only our one inline script (by nonce) and inline styles."""
    return (
        "default-src 'none'; style-src 'unsafe-inline'; "
        f"script-src 'nonce-{nonce}'; img-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


class ExportRoutes:
    """The reviewers' routes: the incident list, an incident's page and its timeline exports."""

    def __init__(
        self,
        *,
        settings: Settings,
        config: WarroomConfig,
        db: Database,
        templates: Environment,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.config = config
        self.db = db
        self.templates = templates
        self.clock = clock

    def register(self, app: web.Application) -> None:
        """Add the incident list, page and timeline export routes to `app`."""
        app.router.add_get("/incidents", self.handle_incident_list)
        # ASCII digits: `\d` would take other scripts' digits too.
        app.router.add_get(r"/incidents/{number:[0-9]+}", self.handle_incident_page)
        app.router.add_get(
            r"/incidents/{number:[0-9]+}/timeline.{fmt:[a-z]+}", self.handle_timeline_export
        )

    # -- access --------------------------------------------------------------------------------

    def check_access(self, request: web.Request) -> bool:
        """True when the request may see exports; raises the right HTTP error otherwise."""
        token = self.settings.warroom_export_token
        if not token:
            raise web.HTTPForbidden(text="HTTP exports are off: WARROOM_EXPORT_TOKEN is not set.\n")
        if bearer_matches(request.headers.get("Authorization", ""), token):
            return True
        query = request.query
        if verify(
            token,
            request.path,
            expires=query.get("expires"),
            sig=query.get("sig"),
            redact=query.get("redact") == "1",
            now=self.clock(),
        ):
            return True
        raise web.HTTPUnauthorized(
            text="Send Authorization: Bearer <WARROOM_EXPORT_TOKEN>, or use a signed link "
            "that has not expired.\n",
            headers={"WWW-Authenticate": 'Bearer realm="warroom"'},
        )

    def link(self, path: str, *, redact: bool = False) -> str:
        """A signed, expiring link to `path` (relative to this server)."""
        assert self.settings.warroom_export_token is not None
        return signed_path(
            self.settings.warroom_export_token,
            path,
            now=self.clock(),
            ttl=self.config.export_link_ttl,
            redact=redact,
        )

    # -- routes --------------------------------------------------------------------------------

    async def handle_incident_list(self, request: web.Request) -> web.StreamResponse:
        """The HTML list of incidents, open ones first, each linking to its page."""
        self.check_access(request)
        nonce = secrets.token_urlsafe(16)

        def _render(session: Session) -> str:
            incidents = [
                incident_view(session, i) for i in incident_store.recent_incidents(session)
            ]
            return self.templates.get_template("exports/incidents.html.j2").render(
                incidents=incidents, zone=self.config.zone, nonce=nonce, link=self.link
            )

        body = await asyncio.to_thread(self._read, _render)
        return web.Response(text=body, content_type="text/html", headers=page_headers(nonce))

    async def handle_incident_page(self, request: web.Request) -> web.StreamResponse:
        """The incident's HTML timeline page; 404 when there is no such incident."""
        return await self._export(request, _number(request), "html")

    async def handle_timeline_export(self, request: web.Request) -> web.StreamResponse:
        """The timeline in its file name's format; 404 for an unknown format or incident."""
        fmt = request.match_info["fmt"]
        self.check_access(request)  # a stranger learns nothing, not even which formats exist
        if fmt not in FORMATS:
            raise web.HTTPNotFound(text=f"No export format {fmt!r}; use md, html, json or csv.\n")
        return await self._export(request, _number(request), fmt)

    async def _export(self, request: web.Request, number: int, fmt: str) -> web.StreamResponse:
        # Access before existence, so that nobody can probe which incidents exist.
        self.check_access(request)
        redact = request.query.get("redact") == "1"
        try:
            await asyncio.to_thread(self._read, lambda s: load_incident(s, number))
        except NotFoundError as exc:
            raise web.HTTPNotFound(text=exc.message + "\n") from None
        nonce = secrets.token_urlsafe(16)
        headers = page_headers(nonce) if fmt == "html" else {"X-Content-Type-Options": "nosniff"}
        if fmt != "html":
            suffix = "-redacted" if redact else ""
            headers["Content-Disposition"] = f'inline; filename="INC-{number}{suffix}.{fmt}"'
        response = web.StreamResponse(headers={"Content-Type": MEDIA_TYPES[fmt], **headers})
        await response.prepare(request)
        now = self.clock()

        def _chunks(session: Session) -> Iterator[str]:
            return export_chunks(
                session,
                number,
                fmt,
                config=self.config,
                templates=self.templates,
                redact=redact,
                now=now,
                nonce=nonce,
            )

        await self._stream(response, _chunks)
        await response.write_eof()
        return response

    async def _stream(
        self, response: web.StreamResponse, chunks: Callable[[Session], Iterator[str]]
    ) -> None:
        """Render in a worker thread (the database read blocks) and send as it goes, with a
        bounded queue between them so that a slow reader holds back the renderer."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=QUEUE_CHUNKS)
        stop = threading.Event()

        def _produce() -> None:
            try:
                with self.db.reading() as session:
                    for chunk in chunks(session):
                        if stop.is_set():
                            return
                        asyncio.run_coroutine_threadsafe(queue.put(chunk), loop).result(
                            SEND_TIMEOUT
                        )
            finally:
                asyncio.run_coroutine_threadsafe(queue.put(None), loop)

        producer = asyncio.ensure_future(asyncio.to_thread(_produce))
        try:
            while (chunk := await queue.get()) is not None:
                await response.write(chunk.encode())
        finally:
            stop.set()
            while not queue.empty():
                queue.get_nowait()
            await producer

    def _read(self, work: Callable[[Session], T]) -> T:
        with self.db.reading() as session:
            return work(session)


class BehindExportAccess:
    """Routes across incidents (follow-ups, insights) behind the exports' access: the export
    token or a signed link, as `ExportRoutes.check_access` decides."""

    noun = "listing"

    def __init__(
        self,
        *,
        exports: ExportRoutes,
        config: WarroomConfig,
        db: Database,
        templates: Environment,
        clock: Callable[[], datetime],
    ) -> None:
        self.exports = exports
        self.config = config
        self.db = db
        self.templates = templates
        self.clock = clock

    def text_format(self, request: web.Request, formats: tuple[str, ...] | frozenset[str]) -> str:
        """The `{fmt}` a text route asks for: md, csv or json among `formats`, else 404."""
        fmt = request.match_info["fmt"]
        self.exports.check_access(request)  # a stranger learns nothing, not even the formats
        if fmt not in formats or fmt == "html":
            raise web.HTTPNotFound(text=f"No {self.noun} format {fmt!r}; use md, csv or json.\n")
        return fmt


def page_headers(nonce: str) -> dict[str, str]:
    """Headers for an HTML page: only our script runs, nothing is sniffed, cached or referred."""
    return {
        "Content-Security-Policy": content_security_policy(nonce),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "private, no-store",
    }


def _number(request: web.Request) -> int:
    """The incident number in the path; 404 for one that no incident can have."""
    number = incident_number(request.match_info["number"])
    if number is None:
        raise web.HTTPNotFound(text="No such incident.\n")
    return number
