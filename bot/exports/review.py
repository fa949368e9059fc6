"""`/incident export`: a signed link to the page when this server is reachable, otherwise the
file itself uploaded to the channel."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from jinja2 import Environment

from bot.config import Settings, WarroomConfig
from bot.errors import UsageError
from bot.exports.export import FORMATS, export_chunks
from bot.exports.links import signed_path
from bot.incidents.readmodels import IncidentView
from bot.slack.gateway import SlackGateway
from storage.db import Database


def export_path(number: int, fmt: str) -> str:
    """The web path of incident `number`'s export: the page for HTML, else its timeline file."""
    return f"/incidents/{number}" if fmt == "html" else f"/incidents/{number}/timeline.{fmt}"


def parse_export_format(args: str) -> str:
    """The format `/incident export` asked for (HTML when none); UsageError for an unknown one."""
    fmt = (args.strip().lower() or "html").removeprefix(".")
    if fmt == "markdown":
        fmt = "md"
    if fmt not in FORMATS:
        raise UsageError("Usage: `/incident export [md|html|json|csv]`")
    return fmt


class ReviewService:
    """`/incident export`: a signed link to the export, or the file uploaded to the channel."""

    def __init__(
        self,
        *,
        settings: Settings,
        config: WarroomConfig,
        db: Database,
        gateway: SlackGateway,
        templates: Environment,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.config = config
        self.db = db
        self.gateway = gateway
        self.templates = templates
        self.clock = clock

    @property
    def links_enabled(self) -> bool:
        """True when an export token and public URL are set, so links can be handed out."""
        return bool(self.settings.warroom_export_token and self.settings.warroom_public_url)

    def link(self, incident: IncidentView, fmt: str) -> str:
        """A signed link that expires after the configured `export_link_ttl`."""
        assert self.settings.warroom_export_token and self.settings.warroom_public_url
        signed = signed_path(
            self.settings.warroom_export_token,
            export_path(incident.number, fmt),
            now=self.clock(),
            ttl=self.config.export_link_ttl,
        )
        return self.settings.warroom_public_url.rstrip("/") + signed

    async def upload(self, incident: IncidentView, fmt: str, channel_id: str) -> None:
        """Render the export to a temporary file (it may be large) and upload it."""
        now = self.clock()
        with tempfile.TemporaryDirectory(prefix="warroom-export-") as folder:
            path = Path(folder) / f"{incident.ref}.{fmt}"
            await asyncio.to_thread(self._write, incident.number, fmt, path, now)
            await self.gateway.upload_file(
                channel_id,
                path,
                title=f"{incident.ref} timeline ({fmt})",
                comment=f"Timeline of *{incident.ref}* as {fmt.upper()}.",
            )

    def _write(self, number: int, fmt: str, path: Path, now: datetime) -> None:
        with self.db.reading() as session, path.open("w", encoding="utf-8") as out:
            for chunk in export_chunks(
                session,
                number,
                fmt,
                config=self.config,
                templates=self.templates,
                redact=False,
                now=now,
            ):
                out.write(chunk)
