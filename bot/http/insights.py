"""`GET /insights`: the insights report as a page with inline SVG charts, and as Markdown,
CSV or JSON, behind the same access as the exports (the export token, or a signed link)."""

from __future__ import annotations

import asyncio
import secrets

from aiohttp import web

from bot.errors import UsageError
from bot.exports.export import MEDIA_TYPES
from bot.http.exports import BehindExportAccess, page_headers
from bot.insights.render import REPORT_FORMATS, render_report
from bot.insights.service import build_report, parse_window


class InsightsRoutes(BehindExportAccess):
    """`GET /insights?since=30d&until=2024-03-31` and `/insights.{md,csv,json}`."""

    noun = "insights"

    def register(self, app: web.Application) -> None:
        """Add the insights routes to `app`."""
        app.router.add_get("/insights", self.handle_page)
        app.router.add_get(r"/insights.{fmt:[a-z]+}", self.handle_report)

    async def handle_page(self, request: web.Request) -> web.StreamResponse:
        """The HTML insights page."""
        return await self._report(request, "html")

    async def handle_report(self, request: web.Request) -> web.StreamResponse:
        """The report as Markdown, CSV or JSON; 404 for any other format."""
        return await self._report(request, self.text_format(request, REPORT_FORMATS))

    async def _report(self, request: web.Request, fmt: str) -> web.StreamResponse:
        self.exports.check_access(request)
        now = self.clock()
        try:
            window = parse_window(request.query.get("since"), request.query.get("until"), now=now)
        except UsageError as exc:
            raise web.HTTPBadRequest(text=exc.message + "\n") from None
        nonce = secrets.token_urlsafe(16)

        def _render() -> str:
            with self.db.reading() as session:
                report = build_report(session, window, config=self.config, now=now)
            return render_report(report, fmt, templates=self.templates, nonce=nonce)

        body = await asyncio.to_thread(_render)
        if fmt == "html":
            headers = page_headers(nonce)
        else:
            headers = {
                "X-Content-Type-Options": "nosniff",
                "Content-Disposition": f'inline; filename="insights.{fmt}"',
            }
        return web.Response(
            body=body.encode(), headers={"Content-Type": MEDIA_TYPES[fmt], **headers}
        )
