"""Block Kit for the App Home tab. Pure functions, held to Slack's limits: 100 blocks a Home
tab, 3,000 characters a section, 150 a header. Long text is cut with an ellipsis, never refused."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from bot.durations import format_duration
from bot.followups.rules import FollowUpView
from bot.home.page import HomePage
from bot.ids import ActionId
from bot.incidents.enums import Role, Severity
from bot.incidents.readmodels import IncidentView, Person
from bot.slack.blocks.common import (
    HEADER_LIMIT,
    ROLE_LABELS,
    button,
    context,
    plain_text,
    section,
    truncate,
)
from bot.slack.text import channel_link, escape, mention, slack_date

HOME_BLOCK_LIMIT = 100
# Title of the whole tab; what the viewer holds gets a heading of its own.
TITLE = "Open incidents"
YOURS = "Where you hold a role"
OTHERS = "Other open incidents"
YOUR_FOLLOWUPS = "Your follow-ups"
# Follow-ups listed on the tab; the rest are counted (Slack allows 100 blocks in all).
FOLLOWUPS_SHOWN = 15
SEVERITY_MARKS = {
    Severity.SEV1: ":red_circle:",
    Severity.SEV2: ":large_orange_circle:",
    Severity.SEV3: ":large_yellow_circle:",
}
# A title in the list is one line's worth; the channel has the rest.
TITLE_LIMIT = 200


def header_block(text: str) -> dict[str, Any]:
    """A header block, its text cut to Slack's 150 characters."""
    return {"type": "header", "text": plain_text(text, HEADER_LIMIT)}


def declare_button_block() -> dict[str, Any]:
    """The "Declare an incident" button, which opens the declare modal."""
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Declare an incident"},
                "style": "primary",
                "action_id": ActionId.DECLARE_OPEN.value,
            }
        ],
    }


def age_text(declared_at: datetime, now: datetime) -> str:
    """How long an incident has been open: `2h 5m`; never negative (clocks drift)."""
    return format_duration(max(now - declared_at, timedelta(0)))


def _people(people: list[Person]) -> str:
    if not people:
        return "_nobody_"
    return ", ".join(mention(p.id) if p.id else escape(p.label) for p in people)


def incident_text(incident: IncidentView, *, now: datetime, viewer_roles: list[Role]) -> str:
    """One incident as a section: ref and title, severity, status, age, channel, role holders."""
    title = escape(truncate(incident.title, TITLE_LIMIT))
    where = channel_link(incident.channel_id) if incident.channel_id else "_war room opening_"
    mark = SEVERITY_MARKS.get(incident.severity, ":white_circle:")
    facts = (
        f"{mark} {incident.severity.upper()} · {incident.status.capitalize()} · "
        f"open {age_text(incident.declared_at, now)} (since {slack_date(incident.declared_at)}) · "
        f"{where}"
    )
    roles = "   ".join(
        f"*{label}:* {_people(incident.holders(role))}" for role, label in ROLE_LABELS.items()
    )
    lines = [f"*{incident.ref}* {title}", facts, roles]
    if viewer_roles:
        held = list(dict.fromkeys(viewer_roles))
        yours = ", ".join(ROLE_LABELS.get(r, r) for r in held)
        lines.append(f":bust_in_silhouette: Your role{'s' if len(held) > 1 else ''}: {yours}")
    return "\n".join(lines)


def incident_blocks(
    incident: IncidentView, *, now: datetime, viewer_roles: list[Role]
) -> list[dict[str, Any]]:
    """One incident on the Home tab: its section, then a divider."""
    return [
        section(incident_text(incident, now=now, viewer_roles=viewer_roles)),
        {"type": "divider"},
    ]


def followup_text(followup: FollowUpView, today: date | None) -> str:
    """One of the viewer's follow-ups: id, text, incident, due day (and overdue)."""
    lines = [f"*{followup.ref}* {escape(truncate(followup.text, TITLE_LIMIT))}"]
    facts = [followup.incident_ref]
    if followup.due:
        late = today is not None and followup.overdue(today)
        facts.append(f"due {followup.due.isoformat()}" + (" · :warning: *overdue*" if late else ""))
    lines.append(" · ".join(facts))
    return "\n".join(lines)


def followup_blocks(page: HomePage) -> list[dict[str, Any]]:
    """ "Your follow-ups": each with a Done button, overdue first; past FOLLOWUPS_SHOWN, a count."""
    if not page.followups:
        return []
    blocks: list[dict[str, Any]] = [header_block(f"{YOUR_FOLLOWUPS} ({len(page.followups)})")]
    for followup in page.followups[:FOLLOWUPS_SHOWN]:
        block = section(followup_text(followup, page.today))
        block["accessory"] = button(
            "Done", ActionId.FOLLOWUP_DONE.value, str(followup.number), style="primary"
        )
        blocks.append(block)
    more = len(page.followups) - FOLLOWUPS_SHOWN
    if more > 0:
        blocks.append(context(f"…and {more} more — see `/incident followups mine`"))
    blocks.append({"type": "divider"})
    return blocks


def home_blocks(page: HomePage, *, limit: int = HOME_BLOCK_LIMIT) -> list[dict[str, Any]]:
    """The Home tab's blocks: at most `limit`; incidents that do not fit are counted instead."""
    count = len(page.incidents)
    blocks = [
        header_block(f"{TITLE} ({count})" if count else TITLE),
        declare_button_block(),
        *followup_blocks(page),
    ]
    if not count:
        blocks.append(section("No open incidents. :white_check_mark:"))
        return blocks
    mine = [i for i in page.incidents if page.roles_of_viewer(i)]
    # Headings only split the viewer's incidents from the rest; with none of theirs, no heading.
    split = bool(mine) and len(mine) < count
    # Room for the headings and the closing "and N more" line, whatever happens.
    reserved = (1 if mine else 0) + (1 if split else 0) + 1
    room = limit - len(blocks) - reserved
    shown = 0
    for index, incident in enumerate(page.incidents):
        roles = page.roles_of_viewer(incident)
        heading: list[dict[str, Any]] = []
        if index == 0 and roles:
            heading = [header_block(YOURS)]
        elif split and not roles and index and page.roles_of_viewer(page.incidents[index - 1]):
            heading = [header_block(OTHERS)]
        body = incident_blocks(incident, now=page.now, viewer_roles=roles)
        if len(body) > room:
            break
        blocks.extend(heading)
        blocks.extend(body)
        room -= len(body)
        shown += 1
    if shown < count:
        blocks.append(context(f"…and {count - shown} more — see `/incident list`"))
    return blocks


def home_view(page: HomePage) -> dict[str, Any]:
    """The view `views.publish` takes for the viewer's Home tab."""
    return {"type": "home", "blocks": home_blocks(page)}
