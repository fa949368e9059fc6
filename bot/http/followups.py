"""HTTP routes for follow-ups across incidents: an HTML page and Markdown, CSV and JSON, behind
the same access as the exports (the export token, or a signed link)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

from aiohttp import web
from sqlmodel import Session

from bot.errors import UsageError
from bot.exports.export import MEDIA_TYPES
from bot.exports.followups import LIST_FORMATS, listed_followups, parse_filter, render_listing
from bot.followups.rules import today_in
from bot.http.exports import BehindExportAccess, page_headers

_YES = frozenset({"1", "true", "yes", "on"})
_NO = frozenset({"", "0", "false", "no", "off"})


class FollowUpRoutes(BehindExportAccess):
    """`GET /followups` and `/followups.{md,csv,json}`, filtered by status, owner and overdue."""

    noun = "follow-up"

    def register(self, app: web.Application) -> None:
        """Add the follow-up routes to `app`."""
        app.router.add_get("/followups", self.handle_page)
        app.router.add_get(r"/followups.{fmt:[a-z]+}", self.handle_listing)

    async def handle_page(self, request: web.Request) -> web.StreamResponse:
        """The HTML page of follow-ups (open ones unless `?status=` says otherwise)."""
        return await self._listing(request, "html")

    async def handle_listing(self, request: web.Request) -> web.StreamResponse:
        """The follow-ups as Markdown, CSV or JSON; 404 for any other format."""
        return await self._listing(request, self.text_format(request, LIST_FORMATS))

    async def _listing(self, request: web.Request, fmt: str) -> web.StreamResponse:
        self.exports.check_access(request)
        query = request.query
        try:
            overdue = query.get("overdue", "").strip().lower()
            if overdue not in _YES | _NO:
                raise UsageError(f"overdue must be 1 or 0, not {overdue[:20]!r}")
            wanted = parse_filter(
                status=query.get("status"), owner=query.get("owner"), overdue=overdue in _YES
            )
        except UsageError as exc:
            raise web.HTTPBadRequest(text=exc.message + "\n") from None
        now = self.clock()
        nonce = secrets.token_urlsafe(16)

        def _render(session: Session) -> str:
            items = listed_followups(session, wanted, today_in(self.config.zone, now))
            return "".join(
                render_listing(
                    items,
                    fmt,
                    wanted=wanted,
                    templates=self.templates,
                    zone=self.config.zone,
                    now=now,
                    nonce=nonce,
                    link=self.exports.link if fmt == "html" else None,
                )
            )

        body = await asyncio.to_thread(self._read, _render)
        if fmt == "html":
            headers = page_headers(nonce)
        else:
            headers = {
                "X-Content-Type-Options": "nosniff",
                "Content-Disposition": f'inline; filename="followups.{fmt}"',
            }
        return web.Response(
            body=body.encode(), headers={"Content-Type": MEDIA_TYPES[fmt], **headers}
        )

    def _read(self, work: Callable[[Session], str]) -> str:
        with self.db.reading() as session:
            return work(session)
