"""Operating warroom: health, readiness and Prometheus metrics through the real server."""

from __future__ import annotations

import asyncio

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.support.warroom import Warroom, WarroomFactory


async def _get(room: Warroom, path: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(room.server.make_url(path)) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_health_and_readiness(warroom: Warroom) -> None:
    status, _, body = await _get(warroom, "/healthz")
    assert status == 200 and '"ok"' in body
    status, _, body = await _get(warroom, "/readyz")
    assert status == 200 and '"ready": true' in body

    await warroom.services.clocks.stop()
    status, _, body = await _get(warroom, "/readyz")
    assert status == 503
    assert "scheduler not running" in body


async def test_metrics_count_what_happened(warroom: Warroom) -> None:
    incident = await warroom.declare("Checkout API returning 500s sev1")
    warroom.slack.fail("chat.postMessage", status=429, retry_after=1)
    await warroom.event(
        {
            "type": "message",
            "channel": incident.channel_id,
            "user": "U0BO",
            "text": "looking",
            "ts": "1700000100.000100",
        }
    )
    await warroom.command("note rolled back", channel=incident.channel_id)
    await warroom.command(
        "update Checkout is failing for some customers", channel=incident.channel_id
    )
    await warroom.settle()
    await warroom.slack.wait_for(
        lambda: any("Customer update" in m["text"] for m in warroom.slack.messages["C0ANNOUNCE"])
    )

    status, content_type, body = await _get(warroom, "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    samples = _samples(body)
    assert samples[("warroom_incidents", (("severity", "sev1"), ("status", "investigating")))] == 1
    assert samples[("warroom_timeline_events", (("kind", "message"),))] == 1
    assert samples[("warroom_timeline_events", (("kind", "note"),))] == 1
    assert samples[("warroom_slack_requests_total", (("outcome", "ok"), ("type", "command")))] == 3
    assert (
        samples[("warroom_slack_requests_total", (("outcome", "ok"), ("type", "event:message")))]
        == 1
    )
    assert samples[("warroom_slack_ack_seconds_count", (("type", "command"),))] == 3
    calls = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "warroom_slack_web_api_calls_total"
    }
    assert calls[(("method", "conversations.create"), ("outcome", "ok"))] == 1
    assert calls[(("method", "chat.postMessage"), ("outcome", "ratelimited"))] == 1
    assert samples[("warroom_scheduler_running", ())] == 1


async def test_unsigned_requests_are_counted_and_refused(warroom: Warroom) -> None:
    reply = await warroom.post(
        "command=%2Fincident&text=list",
        "application/x-www-form-urlencoded",
        signature="v0=" + "0" * 64,
    )
    assert reply.status == 401
    _, _, body = await _get(warroom, "/metrics")
    samples = _samples(body)
    unsigned = (("outcome", "401"), ("type", "unsigned"))
    assert samples[("warroom_slack_requests_total", unsigned)] == 1


async def test_a_metrics_token_keeps_metrics_from_those_without_it(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom(env={"warroom_metrics_token": "scrape-me-please"})
    await room.declare("Checkout API returning 500s sev1")
    url = room.server.make_url("/metrics")
    async with aiohttp.ClientSession() as http:
        for sent in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic x"}):
            async with http.get(url, headers=sent) as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
                assert "warroom_incidents" not in await response.text()
        headers = {"Authorization": "bearer scrape-me-please"}
        async with http.get(url, headers=headers) as response:
            assert response.status == 200
            assert "warroom_incidents" in await response.text()
        # Health stays open for load balancers.
        async with http.get(room.server.make_url("/readyz")) as response:
            assert response.status == 200


async def test_no_answer_names_the_servers_versions(warroom: Warroom) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/healthz", "/no-such-route", "/incidents/1"):
            async with http.get(warroom.server.make_url(path)) as response:
                assert response.headers["Server"] == "warroom", path
    # A request aiohttp cannot parse is answered by aiohttp itself, before the app.
    url = warroom.server.make_url("/")
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nNot A Header\r\n\r\n")
    await writer.drain()
    head = (await asyncio.wait_for(reader.read(4096), timeout=30)).split(b"\r\n\r\n")[0]
    writer.close()
    assert head.startswith(b"HTTP/1.0 400")
    assert b"\r\nServer: warroom\r\n" in head + b"\r\n"
    assert b"aiohttp" not in head and b"Python" not in head
