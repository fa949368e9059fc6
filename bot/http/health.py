"""Liveness, readiness and Prometheus metrics, for load balancers and monitoring."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.http.auth import bearer_matches
from bot.metrics import Metrics
from storage.db import Database

log = logging.getLogger(__name__)


class HealthRoutes:
    """`/healthz`, `/readyz` and `/metrics`."""

    def __init__(
        self,
        *,
        db: Database,
        metrics: Metrics,
        role: Callable[[], str],
        scheduling_missing: Callable[[], bool],
        metrics_token: str | None = None,
    ) -> None:
        self.db = db
        self.metrics = metrics
        # This replica's part in the scheduler election, and whether it should be scheduling
        # (a leader) but is not.
        self.role = role
        self.scheduling_missing = scheduling_missing
        self.metrics_token = metrics_token

    def register(self, app: web.Application) -> None:
        """Add the routes to `app`."""
        app.router.add_get("/healthz", self.handle_healthz)
        app.router.add_get("/readyz", self.handle_readyz)
        app.router.add_get("/metrics", self.handle_metrics)

    async def handle_healthz(self, _request: web.Request) -> web.Response:
        """Alive while the process answers."""
        return web.json_response({"status": "ok"})

    async def handle_readyz(self, _request: web.Request) -> web.Response:
        """Ready while the database answers and, on the leader, the scheduler runs."""
        problems = []
        try:
            await asyncio.to_thread(self.db.ping)
        except Exception as exc:
            log.warning("readiness: database unreachable: %s", type(exc).__name__)
            problems.append("database unreachable")
        # A follower takes requests like any replica; only a leader must be scheduling.
        if self.scheduling_missing():
            problems.append("scheduler not running")
        status = 503 if problems else 200
        return web.json_response(
            {"ready": not problems, "problems": problems, "role": self.role()}, status=status
        )

    async def handle_metrics(self, request: web.Request) -> web.Response:
        """Prometheus' text format; the stored counts are read now, off the event loop. With
        WARROOM_METRICS_TOKEN set, only for a scraper that sends it."""
        token = self.metrics_token
        if token and not bearer_matches(request.headers.get("Authorization", ""), token):
            raise web.HTTPUnauthorized(
                text="Send Authorization: Bearer <WARROOM_METRICS_TOKEN>.\n",
                headers={"WWW-Authenticate": 'Bearer realm="warroom-metrics"'},
            )
        body = await asyncio.to_thread(generate_latest, self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
