"""Text that breaks stores or misleads readers, through the real server on both databases:
control characters (a NUL fails PostgreSQL's insert) are dropped at the edge, tabs and newlines
kept, and bidi overrides shown as their code point instead of reordering what follows."""

from __future__ import annotations

import json

from sqlmodel import Session, select

from storage.models import Incident
from tests.support.warroom import WarroomFactory

HOSTILE_TITLE = "Checkout\x00 down\x07 \u202egnp.exe\x1b[2J sev2"


async def test_a_nul_in_a_title_or_message_is_dropped_not_a_failed_insert(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    room = await make_warroom(database_url=database_url)
    reply = await room.command(f"declare {HOSTILE_TITLE}")
    assert reply.status == 200, reply.text
    await room.settle()
    with Session(room.services.db.engine) as session:
        [incident] = session.exec(select(Incident)).all()
    assert incident.title == "Checkout down [U+202E]gnp.exe[2J"
    assert incident.channel_id

    sent = await room.event(
        {
            "type": "message",
            "channel": incident.channel_id,
            "user": "U0BO",
            "text": "rolled\x00 back\ttwice\r\nnow \u2066fine\ud800",
            "ts": "1700000100.000100",
            "event_ts": "1700000100.000100",
            "channel_type": "channel",
        }
    )
    assert sent.status == 200, sent.text
    [message] = [e for e in room.timeline(1) if e.kind == "message"]
    assert message.text == "rolled back\ttwice\nnow [U+2066]fine\ufffd"
    # What Slack was sent shows the override, inert.
    said = json.dumps([c.args for c in room.slack.calls], ensure_ascii=False)
    assert "[U+202E]gnp.exe" in said and "\u202e" not in said and "\x00" not in said
