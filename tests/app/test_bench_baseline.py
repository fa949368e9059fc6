"""The benchmarks' bare Bolt baseline is built like warroom's Bolt app: the same options and the
same built-in middleware, so a ratio between them measures warroom's own work."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from benchmarks.bench_ack import bare_bolt
from bot.app import build_bolt_app
from bot.config import Settings
from tests.support.warroom import Warroom


def built_in(app: AsyncApp) -> tuple[object, ...]:
    """What Bolt runs on every request regardless of listeners. warroom's own middleware is
    left out, and so is how each authorizes (warroom from the identity it loaded at start, the
    baseline from Bolt's single-team token check): both answer from memory after the first."""
    names = [type(m).__name__ for m in app._async_middleware_list if _bolts(m)]
    middleware = tuple(n for n in names if not n.endswith("Authorization"))
    return (
        middleware,
        app._process_before_response,
        app._attaching_conversation_kwargs_enabled,
    )


def _bolts(middleware: object) -> bool:
    return type(middleware).__module__.startswith("slack_bolt")


async def test_the_baseline_runs_what_warroom_runs(warroom: Warroom) -> None:
    settings = Settings(_env_file=None, slack_bot_token="xoxb-x", slack_signing_secret="s")
    ours = build_bolt_app(settings, warroom.services)
    baseline = bare_bolt(warroom.slack.api_url)
    assert built_in(baseline) == built_in(ours)
    assert ours._attaching_conversation_kwargs_enabled is False, "the comparison has teeth"
