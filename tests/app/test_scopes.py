"""The fake Slack checks scopes the way Slack does, against what manifest.yml asks for, so a
scope the manifest forgets fails a test here as it would fail in a real workspace."""

from __future__ import annotations

import aiohttp

from tests.support.fakes.slack_api import METHOD_SCOPES, FakeSlack, manifest_bot_scopes


async def test_a_method_whose_scope_was_not_granted_answers_missing_scope() -> None:
    slack = FakeSlack(granted_scopes=manifest_bot_scopes() - {"pins:write"})
    await slack.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                slack.api_url + "pins.add", data={"channel": "C1", "timestamp": "1.2"}
            ) as response:
                refused = await response.json()
            async with http.post(slack.api_url + "auth.test") as response:
                answered = await response.json()
    finally:
        await slack.close()
    assert refused["ok"] is False and refused["error"] == "missing_scope"
    assert refused["needed"] == "pins:write"
    assert "pins:write" not in refused["provided"].split(",")
    assert answered["ok"] is True, "a method that needs no scope is answered"


def test_the_manifest_grants_every_scope_the_app_calls_for() -> None:
    """Every Web API method warroom calls needs a scope the manifest asks for."""
    missing = {m: s for m, s in METHOD_SCOPES.items() if s not in manifest_bot_scopes()}
    assert missing == {}
