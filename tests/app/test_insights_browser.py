"""The insights page in a real headless chromium, opened from a signed link on the real server
over the seeded incidents: its three SVG charts drawn with bars and lines, no script error and
no content-security-policy violation, no request beyond the page, a screenshot kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.exports.links import signed_query
from tests.support.browser import launch_chromium
from tests.support.home import Clock
from tests.support.insights import PRIVATE_TITLE, SINCE, UNTIL, seed_incidents
from tests.support.warroom import Warroom, WarroomFactory

TOKEN = "insights-token"
NOW = datetime(2024, 3, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with launch_chromium() as launched:
        yield launched


@pytest.fixture
async def seeded(make_warroom: WarroomFactory) -> Warroom:
    room = await make_warroom(clock=Clock(now=NOW), env={"warroom_export_token": TOKEN})
    seed_incidents(room.services.db)
    return room


async def test_the_insights_page_draws_its_charts(
    browser: Any, seeded: Warroom, tmp_path: Path
) -> None:
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda request: requests.append(request.url))

    link = signed_query(TOKEN, "/insights", now=NOW, ttl=timedelta(hours=1), redact=False)
    url = str(
        seeded.server.make_url(f"/insights?{link}&{urlencode({'since': SINCE, 'until': UNTIL})}")
    )
    response = await page.goto(url)
    assert response is not None and response.status == 200
    assert await page.title() == "Incident insights · warroom"
    assert errors == [], "no script error, and no content-security-policy violation"
    assert len(requests) == 1, "no font, script or stylesheet fetched"

    charts = page.locator("svg.chart")
    assert await charts.count() == 3
    for n in range(3):
        box = await charts.nth(n).bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
    # One bar per severity, one incident each, all the same height; two lines for the weeks.
    heights = [
        (await bar.bounding_box() or {}).get("height", 0)
        for bar in await charts.nth(0).locator("rect.bar").all()
    ]
    assert len(heights) == 4 and min(heights) > 50 and max(heights) - min(heights) < 1
    assert await charts.nth(2).locator("polyline.line").count() == 2
    assert await page.text_content("#excluded") == "1 declined, 1 merged"
    assert await page.get_by_text(PRIVATE_TITLE).count() == 0

    screenshot = tmp_path / "insights.png"
    await page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.exists() and screenshot.stat().st_size > 10_000
    await context.close()
