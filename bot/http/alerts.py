"""`POST /hooks/alertmanager`: Alertmanager's webhook, behind a bearer token."""

from __future__ import annotations

from aiohttp import web

from bot.alerts.alertmanager import MAX_BODY, notification_key, parse_notification
from bot.alerts.service import AlertService
from bot.config import Settings
from bot.errors import UsageError
from bot.http.auth import bearer_matches

ALERT_PATH = "/hooks/alertmanager"


class AlertRoutes:
    """The Alertmanager webhook route, behind the WARROOM_ALERT_TOKEN bearer token."""

    def __init__(self, *, settings: Settings, alerts: AlertService) -> None:
        self.settings = settings
        self.alerts = alerts

    def register(self, app: web.Application) -> None:
        """Add the webhook's route to `app`."""
        app.router.add_post(ALERT_PATH, self.handle_alertmanager_webhook)

    async def handle_alertmanager_webhook(self, request: web.Request) -> web.Response:
        """Check the token and body, store the notification, answer with the incident it joined."""
        token = self.settings.warroom_alert_token
        if not token:
            raise web.HTTPForbidden(
                text="The alert webhook is off: WARROOM_ALERT_TOKEN is not set.\n"
            )
        if not bearer_matches(request.headers.get("Authorization", ""), token):
            raise web.HTTPUnauthorized(
                text="Send Authorization: Bearer <WARROOM_ALERT_TOKEN>.\n",
                headers={"WWW-Authenticate": 'Bearer realm="warroom-alerts"'},
            )
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise web.HTTPBadRequest(
                text=f"body too large: {request.content_length} bytes, at most {MAX_BODY}\n"
            )
        body = await _read_at_most(request, MAX_BODY + 1)
        try:
            notification = parse_notification(body)
        except UsageError as exc:
            raise web.HTTPBadRequest(text=exc.message + "\n") from None
        outcome = await self.alerts.receive(notification, key=notification_key(body))
        return web.json_response(
            {
                "incident": outcome.incident_ref,
                "declared": outcome.declared,
                "recorded": outcome.recorded,
            }
        )


async def _read_at_most(request: web.Request, limit: int) -> bytes:
    """The body, or its first `limit` bytes: enough to tell an oversized body without holding
    it. One `read(n)` returns whatever has arrived so far, so read until the end or the limit."""
    body = bytearray()
    while len(body) < limit:
        chunk = await request.content.read(limit - len(body))
        if not chunk:
            break
        body += chunk
    return bytes(body)
