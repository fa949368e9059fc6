"""The App Home tab through the real path: a signed `app_home_opened` event into the real server,
the Home read from a real database, and the view the fake Slack received through views.publish
(which holds it to Slack's limits). The Block Kit builders alone: tests/unit/test_home_blocks.py."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from bot.ids import ActionId
from bot.slack.blocks.home import (
    HOME_BLOCK_LIMIT,
    OTHERS,
    YOURS,
)
from bot.slack.text import slack_date
from storage import incidents as incident_store
from tests.support.home import Clock, ClockedFactory, open_home
from tests.support.warroom import Warroom

# -- reading what was published -------------------------------------------------------------


def texts(home: dict[str, Any]) -> list[str]:
    """Each block's text, in order: headers and sections by their text, context by its parts."""
    found = []
    for block in home["blocks"]:
        if "text" in block:
            found.append(block["text"]["text"])
        for element in block.get("elements", []):
            if "text" in element and isinstance(element["text"], str):
                found.append(element["text"])
    return found


def sections(home: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in home["blocks"] if b["type"] == "section"]


def buttons(home: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in home["blocks"] if b["type"] == "actions" for e in b["elements"]]


async def published_home(room: Warroom, user: str) -> dict[str, Any]:
    """Open `user`'s Home tab as Slack would and return the view warroom published."""
    reply = await open_home(room, user)
    assert reply.status == 200, reply.text
    await room.settle()
    assert user in room.slack.homes, "warroom published no Home tab"
    return room.slack.homes[user]


# -- the real path ---------------------------------------------------------------------------


async def test_home_lists_open_incidents_the_viewers_first_with_age_roles_and_a_declare_button(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, database_url=database_url)
    checkout = await room.declare("Checkout API returning 500s sev2", user="U0ANA")
    clock.advance(timedelta(minutes=30))
    search = await room.declare("Search is slow sev1", user="U0CY")
    clock.advance(timedelta(minutes=10))
    # As Slack sends it: a typed @here arrives as <!here>, a typed & and < as entities.
    payments = await room.declare("Payments <!here> down &amp; &lt;b&gt;oops sev3", user="U0ADMIN")
    reply = await room.command("role comms <@U0BO|bo>", user="U0ADMIN", channel=payments.channel_id)
    assert reply.status == 200
    clock.advance(timedelta(hours=2))

    home = await published_home(room, "U0BO")

    assert home["type"] == "home"
    assert texts(home)[0] == "Open incidents (3)"
    [declare] = buttons(home)
    assert declare["action_id"] == ActionId.DECLARE_OPEN.value
    assert declare["text"]["text"] == "Declare an incident"
    headings = [b["text"]["text"] for b in home["blocks"] if b["type"] == "header"]
    assert headings == ["Open incidents (3)", YOURS, OTHERS]
    # Bo's incident first, then the rest by severity: the SEV1 before the older SEV2.
    mine, first_other, second_other = sections(home)
    assert mine.startswith(f"*INC-{payments.number}* ")
    assert first_other.startswith(f"*INC-{search.number}* Search is slow")
    assert second_other.startswith(f"*INC-{checkout.number}* Checkout API returning 500s")
    assert "Your role: Comms" in mine
    assert "*Comms:* <@U0BO>" in mine and "*Commander:* <@U0ADMIN>" in mine
    assert "*Resolver:* _nobody_" in mine
    # Severity, status, age from the injected clock, and the war room's channel.
    # When it was declared, as a date token: each viewer sees it in their own time zone.
    assert (
        f"SEV1 · Investigating · open 2h 10m (since {slack_date(search.declared_at)}) "
        f"· <#{search.channel_id}>"
    ) in first_other
    assert (
        f"SEV2 · Investigating · open 2h 40m (since {slack_date(checkout.declared_at)}) "
        f"· <#{checkout.channel_id}>"
    ) in second_other
    assert f"open 2h (since {slack_date(payments.declared_at)}) ·" in mine
    assert "Your role" not in first_other + second_other
    # The title is shown escaped and inert: no broadcast fires, no markup is read.
    assert "&amp; &lt;b&gt;oops" in mine
    assert "<!here>" not in json.dumps(home) and "<b>" not in mine
    assert "@\u2060here" in mine


async def test_each_viewer_sees_their_own_incidents_first(
    make_clocked_warroom: ClockedFactory,
) -> None:
    room = await make_clocked_warroom(Clock())
    first = await room.declare("Ana's incident sev3", user="U0ANA")
    second = await room.declare("Cy's incident sev3", user="U0CY")

    ana = sections(await published_home(room, "U0ANA"))
    cy = sections(await published_home(room, "U0CY"))

    assert [s.split()[0] for s in ana] == [f"*INC-{first.number}*", f"*INC-{second.number}*"]
    assert [s.split()[0] for s in cy] == [f"*INC-{second.number}*", f"*INC-{first.number}*"]
    assert "Your role: Commander" in ana[0] and "Your role: Commander" in cy[0]


async def test_resolved_incidents_leave_the_home_tab(
    make_clocked_warroom: ClockedFactory,
) -> None:
    room = await make_clocked_warroom(Clock())
    incident = await room.declare("Brief blip sev4", user="U0ANA")
    reply = await room.command("resolve it passed", user="U0ANA", channel=incident.channel_id)
    assert reply.status == 200
    await room.settle()

    home = await published_home(room, "U0ANA")

    assert texts(home)[:1] == ["Open incidents"]
    assert sections(home) == ["No open incidents. :white_check_mark:"]
    assert [b["action_id"] for b in buttons(home)] == [ActionId.DECLARE_OPEN.value]


async def test_only_the_home_tab_is_published(make_clocked_warroom: ClockedFactory) -> None:
    room = await make_clocked_warroom(Clock())

    reply = await open_home(room, "U0ANA", tab="messages")
    await room.settle()

    assert reply.status == 200
    assert room.slack.calls_to("views.publish") == []
    assert room.slack.homes == {}


async def test_more_incidents_than_fit_end_with_a_count_and_slack_accepts_the_view(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, database_url=database_url)
    with room.services.db.unit_of_work() as session:
        add_incidents(session, 130, at=clock.now, title="x" * 200)

    home = await published_home(room, "U0ANA")

    # The fake refuses a Home view over 100 blocks or with a section over 3,000 characters.
    assert len(home["blocks"]) <= HOME_BLOCK_LIMIT
    shown = len(sections(home))
    assert shown >= 40
    assert texts(home)[-1] == f"…and {130 - shown} more — see `/incident list`"


async def test_a_failed_publish_is_logged_and_slack_still_gets_its_200(
    make_clocked_warroom: ClockedFactory, caplog: pytest.LogCaptureFixture
) -> None:
    room = await make_clocked_warroom(Clock())
    room.slack.fail("views.publish", error="invalid_arguments")

    reply = await open_home(room, "U0ANA")
    await room.settle()

    assert reply.status == 200
    assert room.slack.homes == {}
    assert "background work failed" in caplog.text
    # The next visit publishes.
    assert (await published_home(room, "U0ANA"))["type"] == "home"


def add_incidents(session: Session, count: int, *, at: datetime, title: str) -> None:
    """Open incidents written straight to storage (declaring 130 through Slack is slow)."""
    for _ in range(count):
        incident_store.create_incident(
            session,
            number=incident_store.next_incident_number(session),
            title=title,
            severity="sev2",
            declared_at=at,
            declared_by_id="U0ANA",
            declared_by_name="ana",
            origin_channel_id="C0GENERAL",
        )
