"""Wiring: build the services, the Bolt app and the aiohttp server from settings. Nothing here
runs at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web, web_response
from jinja2 import Environment
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts.service import AlertService
from bot.archive.service import ArchiveService
from bot.backfill.service import BackfillService
from bot.clock import utc_now
from bot.commands.forms import FormService
from bot.commands.service import CommandService
from bot.config import Settings, WarroomConfig
from bot.exports.review import ReviewService
from bot.exports.templating import build_environment
from bot.followups.rules import today_in
from bot.followups.service import FollowUpService
from bot.home.service import HomeService
from bot.http.alerts import AlertRoutes
from bot.http.exports import ExportRoutes
from bot.http.followups import FollowUpRoutes
from bot.http.health import HealthRoutes
from bot.http.insights import InsightsRoutes
from bot.incidents.lifecycle import LifecycleService
from bot.incidents.people import People
from bot.incidents.service import IncidentService
from bot.metrics import Metrics, request_type
from bot.outbox.sender import FLUSH_EVERY_SECONDS, OutboxSender
from bot.reminders.leader import SchedulerElection
from bot.reminders.scheduler import Clocks
from bot.slack.fast_path import MessageFastPath
from bot.slack.gateway import SlackGateway, build_web_client
from bot.slack.identity import BotIdentity
from bot.slack.listeners import register_listeners
from bot.slack.signing import SlackSigning, is_ssl_check
from bot.slack.socket_mode import socket_mode_connection
from bot.tasks import BackgroundTasks, InFlight, cancel_and_wait
from bot.timeline.service import TimelineService
from bot.webhooks.sender import WebhookSender
from storage.db import Database, is_sqlite

log = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
SERVER_NAME = "warroom"
# How often the leader looks for war rooms left unopened (their claims last a minute).
RESUME_EVERY_SECONDS = 30.0
# After shutdown_grace, how long cancelled work may take to end (giving owed posts back).
CANCEL_SECONDS = 5.0


@dataclass
class Services:
    """Everything a request may need, built once per process."""

    metrics: Metrics
    in_flight: InFlight
    db: Database
    client: AsyncWebClient
    identity: BotIdentity
    gateway: SlackGateway
    tasks: BackgroundTasks
    people: People
    incidents: IncidentService
    clocks: Clocks
    outbox: OutboxSender
    webhooks: WebhookSender
    lifecycle: LifecycleService
    timeline: TimelineService
    commands: CommandService
    forms: FormService
    alerts: AlertService
    templates: Environment
    clock: Callable[[], datetime]
    config: WarroomConfig
    home: HomeService
    followups: FollowUpService
    backfill: BackfillService
    archive: ArchiveService


SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
FAST_PATH: web.AppKey[MessageFastPath] = web.AppKey("fast_path", MessageFastPath)


def build_services(
    settings: Settings,
    config: WarroomConfig,
    *,
    clock: Callable[[], datetime] = utc_now,
    outbox_every: float = FLUSH_EVERY_SECONDS,
) -> Services:
    """Every service, built once on one database, Slack client and clock (needs the bot token)."""
    assert settings.slack_bot_token is not None
    db = Database(settings.database_url)
    metrics = Metrics()
    client = build_web_client(settings.slack_bot_token, settings.api_url, metrics=metrics)
    gateway = SlackGateway(client)
    tasks = BackgroundTasks()
    people = People(db=db, gateway=gateway, clock=clock)
    templates = build_environment(config.templates_dir)
    outbox = OutboxSender(db=db, gateway=gateway, clock=clock)
    webhooks = WebhookSender(db=db, webhooks=config.webhooks, clock=clock)
    clocks = Clocks(
        db=db,
        outbox=outbox,
        webhooks=webhooks,
        config=config,
        clock=clock,
        outbox_every=outbox_every,
        metrics=metrics,
    )
    metrics.watch(db, lambda: clocks.running, lambda: today_in(config.zone, clock()))
    metrics.watch_incidents(db, config, clock)
    incidents = IncidentService(
        db=db,
        gateway=gateway,
        config=config,
        templates=templates,
        tasks=tasks,
        people=people,
        clocks=clocks,
        clock=clock,
        metrics=metrics,
    )
    lifecycle = LifecycleService(
        db=db,
        incidents=incidents,
        clocks=clocks,
        outbox=outbox,
        config=config,
        templates=templates,
        tasks=tasks,
        clock=clock,
    )
    followups = FollowUpService(
        db=db,
        incidents=incidents,
        people=people,
        clocks=clocks,
        config=config,
        tasks=tasks,
        clock=clock,
    )
    identity = BotIdentity(client, settings.slack_bot_token)
    timeline = TimelineService(db=db, people=people, tasks=tasks)
    review = ReviewService(
        settings=settings, config=config, db=db, gateway=gateway, templates=templates, clock=clock
    )
    archive = ArchiveService(db=db, gateway=gateway, review=review, config=config, clock=clock)
    clocks.archive_sweep = archive.sweep
    commands = CommandService(
        incidents=incidents,
        followups=followups,
        lifecycle=lifecycle,
        review=review,
        gateway=gateway,
        config=config,
        tasks=tasks,
    )
    return Services(
        metrics=metrics,
        in_flight=InFlight(),
        db=db,
        client=client,
        identity=identity,
        gateway=gateway,
        tasks=tasks,
        people=people,
        incidents=incidents,
        clocks=clocks,
        outbox=outbox,
        webhooks=webhooks,
        lifecycle=lifecycle,
        timeline=timeline,
        alerts=AlertService(
            db=db,
            incidents=incidents,
            clocks=clocks,
            outbox=outbox,
            config=config,
            tasks=tasks,
            clock=clock,
        ),
        templates=templates,
        clock=clock,
        config=config,
        home=HomeService(
            db=db, clock=clock, gateway=gateway, zone=config.zone, admins=config.admins
        ),
        followups=followups,
        backfill=BackfillService(
            db=db,
            gateway=gateway,
            timeline=timeline,
            own_ids=identity.own_ids,
            window=config.backfill_window,
            clock=clock,
            metrics=metrics,
        ),
        commands=commands,
        archive=archive,
        forms=FormService(
            commands=commands,
            followups=followups,
            incidents=incidents,
            people=people,
            gateway=gateway,
            templates=templates,
            db=db,
            config=config,
            tasks=tasks,
        ),
    )


class ProvideServices(AsyncMiddleware):
    """Puts the services where listeners find them, and counts and times every Slack request.
    A middleware class rather than a decorated function: Bolt calls a class directly, without
    building its injected keyword arguments on every request."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        """Put the services in the request's context, run the listener, count and time it."""
        services = self.services
        req.context["commands"] = services.commands
        req.context["forms"] = services.forms
        req.context["timeline"] = services.timeline
        req.context["archive"] = services.archive
        req.context["home"] = services.home
        req.context["tasks"] = services.tasks
        req.context["gateway"] = services.gateway
        req.context["config"] = services.config
        # Counted here rather than in the HTTP route, so that Socket Mode is counted too.
        started = time.perf_counter()
        with services.in_flight:
            response = await next()
        status = response.status if isinstance(response, BoltResponse) else 200
        services.metrics.count_request(
            request_type(req.body),
            "ok" if status < 400 else str(status),
            time.perf_counter() - started,
        )
        return response


def _bolt_logger() -> logging.Logger:
    """Bolt's base logger, kept at WARNING whoever set up logging (not only configure_logging):
    nothing Bolt writes below that level is safe to keep."""
    logger = logging.getLogger("slack_bolt")
    logger.setLevel(logging.WARNING)
    return logger


def build_bolt_app(settings: Settings, services: Services) -> AsyncApp:
    """The Bolt app with every listener, answering Slack only once the listener is done."""
    app = AsyncApp(
        signing_secret=settings.slack_signing_secret,
        client=services.client,
        authorize=services.identity.authorizer(),
        # Answer Slack only when the listener is done, so the 200 follows the commit.
        process_before_response=True,
        raise_error_for_unhandled_request=False,
        # Off: they prepare per-request helpers for Slack's AI-assistant threads and workflow
        # functions, which warroom does not use, on every event it is sent.
        attaching_conversation_kwargs_enabled=False,
        attaching_function_token_enabled=False,
        # Every Bolt logger takes this one's level: below WARNING Bolt logs request bodies, and
        # a body holds a response_url.
        logger=_bolt_logger(),
    )

    app.use(ProvideServices(services))
    register_listeners(app)
    return app


def build_web_app(
    settings: Settings,
    config: WarroomConfig,
    *,
    services: Services | None = None,
    socket_mode: bool = False,
) -> web.Application:
    """The aiohttp application serving Slack's requests and the health route. In Socket Mode
    Slack's requests come over the WebSocket (SLACK_APP_TOKEN) and HTTP serves the rest."""
    services = services or build_services(settings, config)
    bolt = build_bolt_app(settings, services)

    metrics = services.metrics

    async def on_elected() -> None:
        # The leader alone reads back what war rooms said while warroom was down: in the
        # background, so that neither the election nor any ack waits on Slack's history.
        await services.backfill.start(still_leading=lambda: election.leading)
        # One replica resumes war rooms, not every replica that starts while others serve. A
        # lone SQLite process that just started knows that nobody else is opening one.
        await services.incidents.resume_unopened_war_rooms(after_restart=is_sqlite(services.db.url))

    # Which replica runs the scheduler (on SQLite: this one).
    election = SchedulerElection(
        db=services.db,
        clocks=services.clocks,
        every=settings.warroom_election_every,
        on_elected=on_elected,
    )

    async def retry_unopened_war_rooms() -> None:
        """While leading, try again on war rooms that Slack or a crash left unopened."""
        while True:
            await asyncio.sleep(RESUME_EVERY_SECONDS)
            if not election.leading:
                continue
            try:
                await services.incidents.resume_unopened_war_rooms()
            except Exception as exc:
                log.warning("resuming unopened war rooms: %s: %s", type(exc).__name__, exc)

    metrics.watch_leadership(lambda: election.leading)

    signing = SlackSigning(settings.slack_signing_secret or "")
    fast_path = MessageFastPath(
        timeline=services.timeline,
        identity=services.identity,
        metrics=metrics,
        in_flight=services.in_flight,
    )

    async def slack_events(request: web.Request) -> web.Response:
        started = time.perf_counter()
        body = await request.read()
        refusal, payload = signing.checked(body, request.headers)
        if refusal is not None and not (refusal.status == 401 and is_ssl_check(body)):
            # Nothing of the body is logged: only what the request is, and why it is refused.
            log.info(
                "refused %s %s (%d bytes): %s",
                request.method,
                request.path,
                len(body),
                refusal.reason,
            )
            kind = "unsigned" if refusal.status == 401 else "malformed"
            metrics.count_request(kind, str(refusal.status), time.perf_counter() - started)
            return web.Response(status=refusal.status, text=f"{refusal.reason}\n")
        if payload is not None:
            # War-room messages, nearly all the load, skip Bolt (see bot/slack/fast_path.py).
            answered = await fast_path.answer(payload, started)
            if answered is not None:
                return answered
        bolt_request = await to_bolt_request(request)
        bolt_response = await bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    grace = config.shutdown_grace.total_seconds()
    stop_began: list[float] = []

    async def note_stop(_app: web.Application) -> None:
        # The stop's clock starts here, before aiohttp waits for the requests in flight: the
        # whole stop fits in shutdown_grace.
        stop_began.append(asyncio.get_running_loop().time())

    @contextlib.asynccontextmanager
    async def services_running() -> AsyncIterator[None]:
        await services.identity.load()
        # The timeline's batch writes past SQLAlchemy (see Database.write_directly).
        await services.db.open_direct_writes()
        retrying: asyncio.Task[None] | None = None
        try:
            await election.start()
            retrying = asyncio.get_running_loop().create_task(retry_unopened_war_rooms())
            yield
        except (Exception, asyncio.CancelledError):
            # Start-up failed (Socket Mode refused its token, say): no request was taken, so
            # nothing was promised; what was under way stops now and stays owed.
            await stop_services(retrying, grace=0.0)
            raise
        else:
            began = stop_began[0] if stop_began else asyncio.get_running_loop().time()
            await stop_services(retrying, grace=grace - (asyncio.get_running_loop().time() - began))

    async def stop_services(retrying: asyncio.Task[None] | None, *, grace: float) -> None:
        if retrying is not None:
            await cancel_and_wait(retrying)
        await services.backfill.stop()
        # Stops the clocks, then lets go of the scheduler lock for the next replica.
        await election.stop(drain=False)
        # Let work that was promised to users finish before the database goes, for as long as
        # shutdown_grace allows: with Slack down it would retry for minutes. What is cut off
        # stays owed (the outbox, war rooms not yet opened) for the next start or the leader.
        await finish_or_cancel(services, grace)
        await services.client.session.close() if services.client.session else None
        await services.db.close_direct_writes()
        services.db.close()

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        # One context, so that a start-up stopped by Socket Mode unwinds the services it had
        # started (aiohttp's run_app leaves the cleanup contexts already entered as they are).
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(services_running())
            if socket_mode:
                assert settings.slack_app_token is not None
                # After the services start, before they stop.
                connection = socket_mode_connection(
                    bolt, settings.slack_app_token, services.in_flight
                )
                await stack.enter_async_context(contextlib.asynccontextmanager(connection)(app))
            yield

    # `Server: warroom` rather than aiohttp's and Python's versions, on every answer: aiohttp
    # answers a malformed request itself, before any application hook could set the header.
    web_response.SERVER_SOFTWARE = SERVER_NAME  # type: ignore[attr-defined]
    web_app = web.Application(client_max_size=1024**2)
    web_app[SERVICES] = services
    web_app[FAST_PATH] = fast_path
    if not socket_mode:
        web_app.router.add_post(SLACK_PATH, slack_events)
    HealthRoutes(
        db=services.db,
        metrics=metrics,
        role=lambda: election.role,
        scheduling_missing=lambda: election.leading and not services.clocks.running,
        metrics_token=settings.warroom_metrics_token,
    ).register(web_app)
    AlertRoutes(settings=settings, alerts=services.alerts).register(web_app)
    exports = ExportRoutes(
        settings=settings,
        config=config,
        db=services.db,
        templates=services.templates,
        clock=services.clock,
    )
    exports.register(web_app)
    for routes in (FollowUpRoutes, InsightsRoutes):
        routes(
            exports=exports,
            config=config,
            db=services.db,
            templates=services.templates,
            clock=services.clock,
        ).register(web_app)
    web_app.on_shutdown.append(note_stop)
    web_app.cleanup_ctx.append(lifecycle)
    return web_app


async def finish_or_cancel(services: Services, grace: float) -> None:
    """Wait up to `grace` seconds for the posts and background work under way, then cancel
    what is left (each owed post gives its message back to the outbox as it ends)."""
    if not services.tasks.pending and not services.outbox.posting:
        return
    work = asyncio.get_running_loop().create_task(_finish(services))
    done, _ = await asyncio.wait({work}, timeout=max(0.0, grace))
    if done:
        return
    log.warning(
        "stopping: cutting off the work still under way; "
        "what is owed stays in the outbox for the next start"
    )
    work.cancel()
    cancelling = asyncio.get_running_loop().create_task(_cancel(services))
    done, _ = await asyncio.wait({work, cancelling}, timeout=CANCEL_SECONDS)
    if len(done) < 2:
        log.warning("stopping: background work did not end when cancelled; left behind")


async def _finish(services: Services) -> None:
    await services.outbox.drain()
    await services.tasks.join()


async def _cancel(services: Services) -> None:
    await services.tasks.cancel()
    await services.outbox.cancel()
