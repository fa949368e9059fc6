"""The App Home's pure parts: its order (the viewer's incidents first, then severity, then the
oldest), the age text, and the Block Kit it builds, within Slack's limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.home.page import HomePage, home_order
from bot.incidents.readmodels import IncidentView, Person, RoleView
from bot.slack.blocks import common as blocks
from bot.slack.blocks.common import HEADER_LIMIT, SECTION_LIMIT
from bot.slack.blocks.home import (
    HOME_BLOCK_LIMIT,
    OTHERS,
    YOURS,
    age_text,
    header_block,
    home_blocks,
    home_view,
    incident_text,
)
from tests.support.factories import incident_view

T0 = datetime(2026, 3, 5, 9, 0, tzinfo=UTC)


def view(
    number: int,
    *,
    severity: str = "sev2",
    declared_at: datetime = T0,
    title: str = "Checkout down",
    roles: tuple[tuple[str, str], ...] = (),
    relieved: tuple[tuple[str, str], ...] = (),
) -> IncidentView:
    """A read model as storage would hand it over: current `roles`, and `relieved` ones."""
    role_views = tuple(
        RoleView(role=r, user=Person(u, u.lower()), assigned_at=T0, relieved_at=None)
        for r, u in roles
    ) + tuple(
        RoleView(role=r, user=Person(u, u.lower()), assigned_at=T0, relieved_at=T0)
        for r, u in relieved
    )
    return incident_view(
        id=number,
        number=number,
        title=title,
        severity=severity,
        channel_id=f"C{number:04d}",
        channel_name=f"inc-{number}",
        declared_at=declared_at,
        roles=role_views,
    )


def test_home_order_puts_the_viewers_incidents_first_then_severity_then_oldest() -> None:
    old_sev3 = view(1, severity="sev3", declared_at=T0)
    new_sev1 = view(2, severity="sev1", declared_at=T0 + timedelta(hours=2))
    old_sev1 = view(3, severity="sev1", declared_at=T0 + timedelta(hours=1))
    mine_sev4 = view(4, severity="sev4", roles=(("resolver", "U0ME"),))
    was_mine = view(5, severity="sev2", relieved=(("commander", "U0ME"),))

    ordered = home_order([old_sev3, new_sev1, old_sev1, mine_sev4, was_mine], "U0ME")

    assert [i.number for i in ordered] == [4, 3, 2, 5, 1]


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(0, "0s"), (0.5, "30s"), (59, "59m"), (125, "2h 5m"), (60 * 26, "1d 2h"), (-5, "0s")],
)
def test_age_text(minutes: float, expected: str) -> None:
    assert age_text(T0, T0 + timedelta(minutes=minutes)) == expected


def test_long_text_is_cut_with_an_ellipsis_within_slacks_limits() -> None:
    header = header_block("h" * 400)["text"]["text"]
    section = blocks.section("s" * 5000)["text"]["text"]

    assert len(header) == HEADER_LIMIT and header.endswith("…")
    assert len(section) == SECTION_LIMIT and section.endswith("…")


def test_a_long_title_is_one_lines_worth_and_escaped() -> None:
    page = HomePage("U0ME", T0, (view(1, title="<@U0X> " + "t" * 4000),))

    [section] = [b for b in home_blocks(page) if b["type"] == "section"]

    assert len(section["text"]["text"]) < SECTION_LIMIT
    assert "…" in section["text"]["text"]
    assert "&lt;@U0X&gt;" in section["text"]["text"]


@pytest.mark.parametrize(("mine", "others"), [(0, 200), (200, 0), (30, 170), (60, 3), (2, 2)])
def test_blocks_never_pass_slacks_limit_and_count_what_is_left_out(mine: int, others: int) -> None:
    incidents = [view(n, roles=(("resolver", "U0ME"),)) for n in range(1, mine + 1)] + [
        view(n) for n in range(mine + 1, mine + others + 1)
    ]
    page = HomePage("U0ME", T0, tuple(home_order(incidents, "U0ME")))

    blocks = home_view(page)["blocks"]

    assert len(blocks) <= HOME_BLOCK_LIMIT
    shown = sum(1 for b in blocks if b["type"] == "section")
    assert 0 < shown <= mine + others
    left_out = mine + others - shown
    closing = blocks[-1]
    if left_out:
        assert closing["type"] == "context"
        assert closing["elements"][0]["text"] == f"…and {left_out} more — see `/incident list`"
    else:
        assert closing["type"] == "divider"
    headings = [b["text"]["text"] for b in blocks if b["type"] == "header"]
    expected = [YOURS] if mine else []
    if mine and shown > mine:
        expected.append(OTHERS)
    assert headings[1:] == expected


def test_an_incident_section_names_every_role_the_viewer_holds() -> None:
    incident = view(7, roles=(("commander", "U0ME"), ("resolver", "U0ME"), ("resolver", "U0CY")))

    text = incident_text(
        incident, now=T0 + timedelta(minutes=5), viewer_roles=["commander", "resolver"]
    )

    assert text.splitlines() == [
        "*INC-7* Checkout down",
        ":large_orange_circle: SEV2 · Investigating · open 5m "
        f"(since <!date^{int(T0.timestamp())}^{{date_short_pretty}} {{time}}|"
        f"{T0:%Y-%m-%d %H:%M} UTC>) · <#C0007>",
        "*Commander:* <@U0ME>   *Comms:* _nobody_   *Resolver:* <@U0ME>, <@U0CY>",
        ":bust_in_silhouette: Your roles: Commander, Resolver",
    ]
