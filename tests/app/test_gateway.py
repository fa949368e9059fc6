"""The gateway's retries and per-channel pacing: the retry policy against the fake Slack with an
injected sleep, and pacing end to end through the server (the pacer alone: tests/unit)."""

from __future__ import annotations

import asyncio
import random

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError

from bot.errors import SlackCallError
from bot.metrics import Metrics
from bot.slack.gateway import SlackGateway, SlackRetryPolicy, build_web_client, slack_error
from bot.slack.identity import AUTHORIZE_WAIT_SECONDS, BotIdentity
from bot.slack.pacing import ChannelPacer
from tests.support.clocks import HeldTime
from tests.support.fakes.held import HeldSlack
from tests.support.fakes.slack_api import FakeSlack
from tests.support.serving import free_port
from tests.support.warroom import Warroom, WarroomFactory

# -- the retry policy, against the fake Slack with an injected sleep ----------------------


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def policy(sleeps: Sleeps, metrics: Metrics | None = None) -> SlackRetryPolicy:
    return SlackRetryPolicy(sleep=sleeps, rng=random.Random(3), metrics=metrics)


async def post(slack: FakeSlack, retry_policy: SlackRetryPolicy, base_url: str = "") -> str:
    client = build_web_client(
        "xoxb-test", base_url or slack.api_url, retry_policy=retry_policy, metrics=None
    )
    gateway = SlackGateway(client, pacer=ChannelPacer(burst=100))
    return await gateway.post_message("C0GENERAL", "hello")


async def test_a_429_is_retried_after_its_retry_after(slack: FakeSlack) -> None:
    sleeps = Sleeps()
    slack.fail("chat.postMessage", status=429, retry_after=3)
    await post(slack, policy(sleeps))
    assert len(slack.calls_to("chat.postMessage")) == 2
    assert [m["text"] for m in slack.messages["C0GENERAL"]] == ["hello"]
    [delay] = sleeps.delays
    assert 3.0 <= delay <= 3.5


async def test_a_long_retry_after_is_not_waited_out(slack: FakeSlack) -> None:
    sleeps = Sleeps()
    slack.fail("chat.postMessage", status=429, retry_after=120)
    with pytest.raises(SlackCallError) as raised:
        await post(slack, policy(sleeps))
    assert raised.value.code == "ratelimited"
    assert len(slack.calls_to("chat.postMessage")) == 1 and sleeps.delays == []


async def test_server_errors_back_off_exponentially_and_give_up(slack: FakeSlack) -> None:
    sleeps = Sleeps()
    slack.fail("chat.postMessage", status=500, times=3)
    await post(slack, policy(sleeps))
    assert len(slack.calls_to("chat.postMessage")) == 4
    assert len(slack.messages["C0GENERAL"]) == 1
    for delay, ceiling in zip(sleeps.delays, (0.5, 1.0, 2.0), strict=True):
        assert ceiling / 2 <= delay <= ceiling

    slack.calls.clear()
    slack.fail("chat.postMessage", status=503, times=4)
    with pytest.raises(SlackCallError) as raised:
        await post(slack, policy(Sleeps()))
    assert raised.value.code == "http_503"
    assert len(slack.calls_to("chat.postMessage")) == 4, "one try and three retries"


async def test_rate_limits_do_not_spend_the_server_error_budget(slack: FakeSlack) -> None:
    sleeps = Sleeps()
    metrics = Metrics()
    slack.fail("chat.postMessage", status=429, retry_after=1, times=2)
    slack.fail("chat.postMessage", status=500, times=3)
    await post(slack, policy(sleeps, metrics))
    assert len(slack.calls_to("chat.postMessage")) == 6
    assert len(slack.messages["C0GENERAL"]) == 1

    def counted(outcome: str) -> float | None:
        return metrics.registry.get_sample_value(
            "warroom_slack_web_api_calls_total",
            {"method": "chat.postMessage", "outcome": outcome},
        )

    assert counted("ratelimited") == 2
    assert counted("retried_server_error") == 3


async def test_a_modal_is_not_held_past_its_trigger_by_retries(slack: FakeSlack) -> None:
    """views.open runs before the ack on a 3 s trigger: a short 5xx backoff is worth it, a
    Retry-After of 2 s is not."""
    sleeps = Sleeps()
    client = build_web_client("xoxb-test", slack.api_url, retry_policy=policy(sleeps))
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Declare"}, "blocks": []}
    slack.fail("views.open", status=500)
    await client.views_open(trigger_id="t1", view=view)
    assert len(slack.calls_to("views.open")) == 2 and len(slack.views) == 1
    assert sleeps.delays and sum(sleeps.delays) <= 1.0

    slack.fail("views.open", status=429, retry_after=2)
    with pytest.raises(SlackApiError) as raised:
        await client.views_open(trigger_id="t2", view=view)
    assert slack_error(raised.value) == "ratelimited"
    assert len(slack.calls_to("views.open")) == 3 and len(sleeps.delays) == 1


async def test_a_refused_connection_is_retried_then_raised(slack: FakeSlack) -> None:
    sleeps = Sleeps()
    nowhere = f"http://127.0.0.1:{free_port()}/api/"
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(slack, policy(sleeps), base_url=nowhere)
    assert len(sleeps.delays) == 3


# -- pacing through the real server ---------------------------------------------------------


async def test_posts_into_a_war_room_are_paced_and_acks_never_wait(
    make_warroom: WarroomFactory,
) -> None:
    # No announcement channel: every post paced here goes into the war room.
    room: Warroom = await make_warroom({"announce_channel": None})
    incident = await room.declare("Checkout down sev1")
    channel = incident.channel_id or ""
    burst, rate = 2, 4.0
    # The pacer's clock stands still until the test lets it run: a post that has to wait its
    # turn waits until then, however fast or slow the machine is.
    held = HeldTime()
    turns: list[float] = []  # when each post took its turn, on the pacer's clock
    room.services.gateway.pacer = ChannelPacer(
        burst=burst,
        rate=rate,
        clock=held.clock,
        sleep=held.sleep,
        on_wait=lambda _waited: turns.append(held.now - 1000.0),
    )
    started = len(room.slack.calls)

    def posted() -> list[str]:
        return [
            str(c.args.get("text"))
            for c in room.slack.calls[started:]
            if c.method == "chat.postMessage" and c.args.get("channel") == channel
        ]

    for n in range(6):
        # A bound on waiting, so that an ack held by the pacer fails rather than hangs.
        reply = await asyncio.wait_for(
            room.command(f"update Still degraded, step {n}", channel=channel), timeout=30
        )
        assert reply.status == 200 and "Customer update" in reply.message, reply.text
    # Every ack is back while the posts beyond the burst still wait for the clock: the acks
    # never waited for a post's turn.
    assert len(posted()) <= burst, posted()

    held.run()
    await room.settle()
    texts = [m["text"] for m in room.slack.messages[channel]]
    assert [sum(f"step {n}" in t for t in texts) for n in range(6)] == [1] * 6
    assert len(posted()) == 6
    # A token bucket: the burst at once, then one post every 1 / rate seconds.
    assert turns == pytest.approx([0, 0, 0.25, 0.5, 0.75, 1.0])


# -- who the bot is, when Slack would not say at start-up -----------------------------------


async def test_a_request_that_cannot_learn_who_the_bot_is_fails_fast_for_a_redelivery(
    slack: FakeSlack, make_warroom: WarroomFactory
) -> None:
    # Start-up's auth.test fails, and so does the first request's: Slack asks for a minute.
    slack.fail("auth.test", error="fatal_error")
    slack.fail("auth.test", status=429, retry_after=60)
    room = await make_warroom()
    event = {"type": "message", "channel": "C0GENERAL", "user": "U0BO", "text": "hi", "ts": "1.2"}

    # The Web API client's waits between tries, recorded rather than slept: what the request
    # waited on is read off them, not off a stopwatch.
    waits = Sleeps()
    [retry_policy] = room.services.client.retry_handlers
    assert isinstance(retry_policy, SlackRetryPolicy)
    retry_policy.sleep = waits

    refused = await room.event(event, event_id="EvWHO1")
    # Not a 2xx, so Slack sends it again; and well within Slack's 3 s: Slack's minute was not
    # waited out (no second try, no wait), and the request waits for auth.test no longer than
    # AUTHORIZE_WAIT_SECONDS.
    assert refused.status >= 500, refused
    assert len(slack.calls_to("auth.test")) == 2
    assert waits.delays == []
    assert AUTHORIZE_WAIT_SECONDS < 3

    again = await room.event(event, event_id="EvWHO1", retry=1)
    assert again.status == 200
    assert len(slack.calls_to("auth.test")) == 3
    # Learned once: later requests do not ask again.
    assert (await room.command("list")).status == 200
    assert len(slack.calls_to("auth.test")) == 3


async def test_start_up_does_not_wait_long_for_slack(held_slack: HeldSlack) -> None:
    slack = held_slack
    nowhere = f"http://127.0.0.1:{free_port()}/api/"
    unreachable = BotIdentity(
        build_web_client("xoxb-test", nowhere, retry_policy=policy(Sleeps())), "xoxb-test"
    )
    await unreachable.load()  # a refused connection postpones, it does not stop start-up
    assert not unreachable.known

    # Slack does not answer auth.test until told: `load()` returning while Slack is still
    # silent shows that start-up goes on without the answer (after its `startup_wait`).
    silent = slack.hold("auth.test")
    slow = BotIdentity(build_web_client("xoxb-test", slack.api_url), "xoxb-test", startup_wait=0.2)
    # A bound on waiting, not a stopwatch: far above the 0.2 s, far below what the client would
    # wait for an answer on its own (10 s).
    await asyncio.wait_for(slow.load(), timeout=5)
    assert not slow.known
    silent.release()
    result = await slow.authorizer()()
    assert result.bot_user_id == "UBOT0001"
