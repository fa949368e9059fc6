"""`POST /hooks/alertmanager`: Alertmanager's webhook, behind a bearer token."""

from __future__ import annotations

import hmac

from aiohttp import web

from bot.alert_service import AlertService
from bot.alerts import MAX_BODY, notification_key, parse_notification
from bot.config import Settings
from bot.errors import UsageError

ALERT_PATH = "/hooks/alertmanager"


class AlertRoutes:
    def __init__(self, *, settings: Settings, alerts: AlertService) -> None:
        self.settings = settings
        self.alerts = alerts

    def register(self, app: web.Application) -> None:
        app.router.add_post(ALERT_PATH, self.handle_alertmanager_webhook)

    async def handle_alertmanager_webhook(self, request: web.Request) -> web.Response:
        token = self.settings.warroom_alert_token
        if not token:
            raise web.HTTPForbidden(
                text="The alert webhook is off: WARROOM_ALERT_TOKEN is not set.\n"
            )
        header = request.headers.get("Authorization", "")
        if not (header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip(), token)):
            raise web.HTTPUnauthorized(
                text="Send Authorization: Bearer <WARROOM_ALERT_TOKEN>.\n",
                headers={"WWW-Authenticate": 'Bearer realm="warroom-alerts"'},
            )
        # Read one byte past the limit: enough to tell an oversized body without holding it.
        body = await request.content.read(MAX_BODY + 1)
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
