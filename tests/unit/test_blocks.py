"""Block Kit builders (pure functions): within Slack's limits, long text cut with an ellipsis
rather than refused, user text never a broadcast mention."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.config import SEVERITIES, WarroomConfig
from bot.exports.templating import build_environment
from bot.ids import ActionId, BlockId, CallbackId
from bot.incidents.readmodels import IncidentView, Person, RoleView
from bot.slack.blocks.common import (
    HEADER_LIMIT,
    MESSAGE_BLOCKS,
    MODAL_BLOCKS,
    SECTION_LIMIT,
    button,
    context,
    header_actions,
    header_blocks,
    plain_text,
    section,
    truncate,
    within_limit,
)
from bot.slack.blocks.modals import (
    MODAL_TITLE_LIMIT,
    declare_modal,
    field_message,
    form_values,
    modal,
    read_declare_metadata,
    resolve_modal,
    role_modal,
    status_modal,
    update_draft,
    update_modal,
)
from bot.slack.text import slack_encoded
from tests.support.factories import incident_view

TEMPLATES = build_environment(None)
CONFIG = WarroomConfig()

LIVE_BROADCAST = re.compile(r"<!(?:channel|here|everyone)\b|@(?:channel|here|everyone)\b", re.I)
AT = datetime(2026, 11, 25, 14, 2, tzinfo=UTC)
LONG = "Checkout API returning 500s for enterprise customers in every region " * 80
TITLES = [
    pytest.param("Checkout down", id="short"),
    pytest.param(LONG, id="long"),
    pytest.param(":fire: :rotating_light: Checkout 🔥🔥🔥 " * 40, id="emoji"),
    pytest.param("<!channel> <!here> @everyone & <@U0BO> <#C1|x>", id="broadcast"),
    # Made inert, a broadcast word grows (a zero-width joiner): still at most 150 characters.
    pytest.param("x" * 130 + " @here <!channel> @everyone", id="broadcast-at-the-limit"),
]


def incident(
    *,
    title: str = "Checkout down",
    number: int = 7,
    status: str = "investigating",
    severity: str = "sev1",
    resolvers: int = 0,
) -> IncidentView:
    roles = [RoleView("commander", Person("U0ANA", "ana"), AT, None)]
    roles += [
        RoleView("resolver", Person(f"U{i:04d}", f"r{i}"), AT, None) for i in range(resolvers)
    ]
    return incident_view(
        number=number,
        title=title,
        severity=severity,
        status=status,
        channel_id="C0ROOM",
        declared_at=AT,
        header_ts="1700000001.000100",
        roles=tuple(roles),
    )


def texts(value: Any) -> list[str]:
    """Every `text` string in a block structure."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                found.append(item)
            else:
                found += texts(item)
    elif isinstance(value, list):
        for item in value:
            found += texts(item)
    return found


def assert_within_limits(blocks: list[dict[str, Any]], *, max_blocks: int) -> None:
    assert len(blocks) <= max_blocks
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= HEADER_LIMIT
        if block["type"] in ("section", "context"):
            assert all(len(t) <= SECTION_LIMIT for t in texts(block))


def assert_modal_within_limits(view: dict[str, Any]) -> None:
    assert view["type"] == "modal"
    assert 0 < len(view["title"]["text"]) <= MODAL_TITLE_LIMIT
    assert len(view["submit"]["text"]) <= 24 and len(view["close"]["text"]) <= 24
    assert len(view["private_metadata"]) <= 3000
    assert_within_limits(view["blocks"], max_blocks=MODAL_BLOCKS)
    for block in view["blocks"]:
        element = block.get("element") or {}
        if "initial_value" in element:
            assert len(element["initial_value"]) <= element["max_length"]
    json.dumps(view)  # serialisable as it is sent


# -- small builders ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly10!", 10, "exactly10!"),
        ("eleven char", 10, "eleven ch…"),
        ("🔥" * 30, 24, "🔥" * 23 + "…"),
        ("", 5, ""),
    ],
)
def test_truncate_keeps_within_the_limit_with_an_ellipsis(
    text: str, limit: int, expected: str
) -> None:
    assert truncate(text, limit) == expected
    assert len(truncate(text, limit)) <= limit


@pytest.mark.parametrize("length", [0, 1, SECTION_LIMIT, SECTION_LIMIT + 1, 50_000])
def test_a_section_is_never_over_3000_characters(length: int) -> None:
    block = section("x" * length)
    assert len(block["text"]["text"]) == min(length, SECTION_LIMIT)
    if length > SECTION_LIMIT:
        assert block["text"]["text"].endswith("…")


def test_context_and_plain_text_are_cut_too() -> None:
    assert len(context("y" * 5000)["elements"][0]["text"]) <= 2000
    assert len(plain_text("z" * 5000)["text"]) <= SECTION_LIMIT
    assert len(plain_text("z" * 100, 24)["text"]) == 24


@pytest.mark.parametrize("text", ["<!channel> now", "@here look", "<!everyone>", "@channel"])
def test_plain_text_never_fires_a_broadcast(text: str) -> None:
    assert not LIVE_BROADCAST.search(plain_text(text)["text"])


def test_a_button_has_its_action_value_and_style() -> None:
    assert button("Resolve", ActionId.HEADER_RESOLVE, "7", style="primary") == {
        "type": "button",
        "text": {"type": "plain_text", "text": "Resolve", "emoji": True},
        "action_id": "header_resolve",
        "value": "7",
        "style": "primary",
    }
    assert "style" not in button("Assign role", ActionId.HEADER_ASSIGN_ROLE, "7")


@pytest.mark.parametrize("count", [0, 1, MESSAGE_BLOCKS, MESSAGE_BLOCKS + 1, 500])
def test_within_limit_keeps_at_most_50_blocks_and_says_what_is_left_out(count: int) -> None:
    blocks = [section(f"line {i}") for i in range(count)]
    kept = within_limit(blocks)
    assert len(kept) == min(count, MESSAGE_BLOCKS)
    if count > MESSAGE_BLOCKS:
        assert (
            kept[-1]["elements"][0]["text"] == f"…and {count - MESSAGE_BLOCKS + 1} more not shown."
        )
    assert len(within_limit(blocks, MODAL_BLOCKS)) == min(count, MODAL_BLOCKS)


# -- the header ----------------------------------------------------------------------------


@pytest.mark.parametrize("title", TITLES)
def test_the_header_stays_within_slacks_limits(title: str) -> None:
    blocks = header_blocks(incident(title=title, resolvers=400), now=AT, config=CONFIG)
    assert_within_limits(blocks, max_blocks=MESSAGE_BLOCKS)
    assert blocks[0]["text"]["text"].startswith("INC-7: ")
    if len(title) + 7 > HEADER_LIMIT:
        assert blocks[0]["text"]["text"].endswith("…")
    assert not any(LIVE_BROADCAST.search(t) for t in texts(blocks))


def test_the_header_carries_the_buttons_with_the_incident_number() -> None:
    blocks = header_blocks(incident(), now=AT, config=CONFIG)
    actions = [b for b in blocks if b["type"] == "actions"]
    assert len(actions) == 1 and actions[0]["block_id"] == BlockId.HEADER_ACTIONS
    assert [(e["action_id"], e["value"]) for e in actions[0]["elements"]] == [
        (ActionId.HEADER_ASSIGN_ROLE, "7"),
        (ActionId.HEADER_POST_UPDATE, "7"),
        (ActionId.HEADER_CHANGE_STATUS, "7"),
        (ActionId.HEADER_RESOLVE, "7"),
    ]


@pytest.mark.parametrize("status", ["investigating", "identified", "monitoring"])
def test_an_open_incident_offers_every_button(status: str) -> None:
    assert len(header_actions(incident(status=status))["elements"]) == 4


def test_a_resolved_incident_offers_only_roles_and_updates() -> None:
    elements = header_actions(incident(status="resolved"))["elements"]
    assert [e["action_id"] for e in elements] == [
        ActionId.HEADER_ASSIGN_ROLE,
        ActionId.HEADER_POST_UPDATE,
    ]


# -- the modals ----------------------------------------------------------------------------


def all_modals(view: IncidentView) -> list[dict[str, Any]]:
    return [
        declare_modal(
            severities=SEVERITIES, severity="sev3", user_id="U0ANA", origin_channel_id="C1"
        ),
        role_modal(view),
        update_modal(
            view, draft=update_draft(TEMPLATES, view, cadence="30m"), last_update=view.title
        ),
        status_modal(view, severities=SEVERITIES),
        resolve_modal(view),
    ]


@pytest.mark.parametrize("title", TITLES)
@pytest.mark.parametrize("number", [7, 123_456_789])
def test_every_modal_stays_within_slacks_limits(title: str, number: int) -> None:
    view = incident(title=title, number=number)
    for built in all_modals(view):
        assert_modal_within_limits(built)
        assert not any(LIVE_BROADCAST.search(t) for t in texts(built["blocks"]))


@pytest.mark.parametrize(
    ("title", "shown"),
    [
        ("Declare an incident", "Declare an incident"),
        ("Customer update: INC-123456789", "Customer update: INC-12…"),
        ("🔥" * 40, "🔥" * 23 + "…"),
    ],
)
def test_a_modal_title_is_cut_to_24_characters(title: str, shown: str) -> None:
    assert modal(title, CallbackId.ROLE_MODAL, [], submit="Save")["title"]["text"] == shown


@pytest.mark.parametrize("number", [1, 1000, 99_999])
def test_every_modal_title_shows_the_whole_incident_number(number: int) -> None:
    view = incident(number=number)
    for built in all_modals(view)[1:]:
        assert built["title"]["text"].endswith(f"INC-{number}"), built["title"]["text"]


def test_a_modal_with_too_many_blocks_keeps_100() -> None:
    built = modal("Many", CallbackId.ROLE_MODAL, [section("x")] * 250, submit="Save")
    assert len(built["blocks"]) == MODAL_BLOCKS


def test_each_modal_carries_its_callback_and_incident() -> None:
    view = incident()
    callbacks = [(m["callback_id"], m["private_metadata"]) for m in all_modals(view)[1:]]
    assert callbacks == [
        (CallbackId.ROLE_MODAL, "7"),
        (CallbackId.UPDATE_MODAL, "7"),
        (CallbackId.STATUS_MODAL, "7"),
        (CallbackId.RESOLVE_MODAL, "7"),
    ]


def test_the_status_modal_starts_at_the_current_state() -> None:
    built = status_modal(incident(status="identified", severity="sev2"), severities=SEVERITIES)
    initial = {
        b["block_id"]: b["element"]["initial_option"]["value"]
        for b in built["blocks"]
        if b["type"] == "input"
    }
    assert initial == {BlockId.STATUS: "identified", BlockId.SEVERITY: "sev2"}
    statuses = next(b for b in built["blocks"] if b.get("block_id") == BlockId.STATUS)
    assert "resolved" not in [o["value"] for o in statuses["element"]["options"]]


def test_the_update_modal_quotes_the_last_update_escaped() -> None:
    built = update_modal(incident(), draft="draft", last_update="<!channel> line one\nline two")
    shown = json.dumps(built["blocks"])
    assert "&lt;!channel&gt; line one\\n>line two" in shown
    text = next(b for b in built["blocks"] if b.get("block_id") == BlockId.UPDATE_TEXT)
    assert text["element"]["initial_value"] == "<!channel> line one\nline two"
    assert "root cause" in shown


@pytest.mark.parametrize(
    ("status", "cadence", "expected"),
    [
        ("investigating", "30m", "We are investigating: Checkout down.\n"),
        ("identified", None, "We have identified the cause of: Checkout down.\n"),
        ("monitoring", "2h", "A fix is in place and we are monitoring: Checkout down.\n"),
    ],
)
def test_the_update_draft_follows_the_status(
    status: str, cadence: str | None, expected: str
) -> None:
    draft = update_draft(TEMPLATES, incident(status=status), cadence=cadence)
    assert draft.startswith(expected)
    assert ("Next update within" in draft) == (cadence is not None)


def test_a_long_last_update_is_cut_to_the_input_limit() -> None:
    built = update_modal(incident(), draft="d", last_update="w" * 10_000)
    assert_modal_within_limits(built)


# -- reading submissions -------------------------------------------------------------------


def test_form_values_reads_each_kind_of_element() -> None:
    state: dict[str, dict[str, dict[str, Any]]] = {
        "title": {"title": {"type": "plain_text_input", "value": "Down"}},
        "summary": {"summary": {"type": "plain_text_input", "value": None}},
        "severity": {"severity": {"type": "static_select", "selected_option": {"value": "sev2"}}},
        "status": {"status": {"type": "static_select", "selected_option": None}},
        "commander": {"commander": {"type": "users_select", "selected_user": "U0BO"}},
        "responders": {"responders": {"type": "multi_users_select", "selected_users": ["U1"]}},
        "none": {"none": {"type": "multi_users_select"}},
    }
    assert form_values(state) == {
        "title": "Down",
        "summary": None,
        "severity": "sev2",
        "status": None,
        "commander": "U0BO",
        "responders": ["U1"],
        "none": [],
    }


@pytest.mark.parametrize(
    ("metadata", "channel"),
    [('{"channel": "C1"}', "C1"), ('{"channel": null}', None), ("", None), ("junk", None)],
)
def test_declare_metadata_reads_safely(metadata: str, channel: str | None) -> None:
    assert read_declare_metadata(metadata).channel_id == channel


@pytest.mark.parametrize(
    ("typed", "encoded"),
    [("A & B", "A &amp; B"), ("<!channel>", "&lt;!channel&gt;"), ("plain", "plain")],
)
def test_form_text_is_encoded_like_a_slash_command(typed: str, encoded: str) -> None:
    assert slack_encoded(typed) == encoded


def test_a_field_message_is_plain_and_short() -> None:
    assert field_message("Usage: `/incident update &lt;text&gt;`") == (
        "Usage: /incident update <text>"
    )
    assert len(field_message("x" * 500)) == 150
