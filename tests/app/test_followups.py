"""Follow-ups end to end: signed commands, the shortcut's form, the owner's reminders (on the
injected clock), App Home, the post-mortem gate and every listing, through the real server
against the fake Slack."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot.ids import ActionId, CallbackId
from storage.models import FollowUp, Reminder, TimelineEvent
from tests.support.cli import warroom_cli
from tests.support.home import Clock, ClockedFactory, interaction, open_home, shortcut_payload
from tests.support.interactions import Interactions
from tests.support.warroom import Warroom, WarroomFactory, ephemeral

TOKEN = "export-token"
FOLLOWUP_KEYS = (
    "id",
    "text",
    "owner",
    "due",
    "status",
    "reason",
    "created_at",
    "created_by",
    "closed_at",
    "source_ts",
)


def followups(room: Warroom) -> list[FollowUp]:
    with Session(room.services.db.engine) as session:
        return list(session.exec(select(FollowUp).order_by(col(FollowUp.id))).all())


def events(room: Warroom, kind: str) -> list[TimelineEvent]:
    return [e for e in room.timeline() if e.kind == kind]


async def test_a_followup_is_added_assigned_and_closed_by_command(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, database_url=database_url)
    first = await room.declare("Checkout down sev2")
    room_channel = first.channel_id or ""
    today = clock.now.date()

    reply = await room.command(
        "followup Add an alert on 5xx <@U0BO|bo> due 3d", channel=room_channel
    )
    assert ephemeral(reply) == (
        f":clipboard: Follow-up *FU-1* added to INC-1, owned by <@U0BO>, due "
        f"{(today + timedelta(days=3)).isoformat()}."
    )
    reply = await room.command("action Write the runbook", channel=room_channel)
    assert "*FU-2* added to INC-1." in ephemeral(reply)

    [one, two] = followups(room)
    assert (one.text, one.owner_id, one.owner_name, one.status) == (
        "Add an alert on 5xx",
        "U0BO",
        "Bo",
        "open",
    )
    assert (two.owner_id, two.due) == (None, None)
    [added, _] = events(room, "followup_added")
    assert added.data == {
        "id": "FU-1",
        "owner": {"id": "U0BO", "name": "Bo"},
        "due": (today + timedelta(days=3)).isoformat(),
    }

    # The incident's list, in the war room; yours, anywhere.
    listed = ephemeral(await room.command("followups", channel=room_channel))
    assert listed.splitlines()[0] == "*Follow-ups of INC-1*"
    assert listed.splitlines()[2] == "• *FU-2* Write the runbook — _no owner_"
    mine = ephemeral(await room.command("followups mine", user="U0BO", channel="C0GENERAL"))
    assert mine.splitlines()[1].startswith("• *FU-1* (INC-1) Add an alert on 5xx — <@U0BO>, due ")
    outside = ephemeral(await room.command("followups", channel="C0GENERAL"))
    assert outside.startswith("This is not an incident channel")

    # From any channel, by id.
    reply = await room.command("followup assign FU-2 <@U0CY|cy>", channel="C0GENERAL")
    assert ephemeral(reply) == "FU-2 is now <@U0CY>'s."
    reply = await room.command("followup done FU-2", user="U0CY", channel="C0GENERAL")
    assert ephemeral(reply) == ":white_check_mark: FU-2 is done."
    reply = await room.command("followup drop FU-1 covered by the SLO alert", user="U0BO")
    assert ephemeral(reply) == "FU-1 is dropped: covered by the SLO alert"

    [one, two] = followups(room)
    assert (one.status, one.reason) == ("dropped", "covered by the SLO alert")
    assert (two.status, two.owner_id) == ("done", "U0CY")
    assert one.closed_at is not None and two.closed_at is not None
    updates = [e.data for e in events(room, "followup_updated")]
    assert updates == [
        {"id": "FU-2", "changed": "owner", "from": None, "to": {"id": "U0CY", "name": "Cy"}},
        {"id": "FU-2", "changed": "status", "from": "open", "to": "done"},
        {
            "id": "FU-1",
            "changed": "status",
            "from": "open",
            "to": "dropped",
            "reason": "covered by the SLO alert",
        },
    ]


async def test_a_stranger_is_refused_and_bad_input_changes_nothing(
    make_clocked_warroom: ClockedFactory,
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock)
    channel = (await room.declare("Checkout down sev2")).channel_id or ""
    ephemeral(await room.command("followup Rotate the key <@U0BO|bo>", channel=channel))
    before = [f.model_dump() for f in followups(room)]
    kinds_before = room.kinds()

    # cy is neither the owner (bo), the commander (ana) nor an admin.
    refused = ephemeral(await room.command("followup done FU-1", user="U0CY"))
    assert refused == (
        "Only FU-1's owner (Bo), the commander of INC-1 (ana) or an admin can change it."
    )
    [record] = events(room, "command_refused")
    assert (record.actor_id, record.text) == ("U0CY", "/incident followup done FU-1")
    assert record.data == {"reason": refused}

    yesterday = (clock.now.date() - timedelta(days=1)).isoformat()
    for text, answer in (
        ("followup done FU-99", "There is no FU-99."),
        (
            "followup due FU-1 " + yesterday,
            f"{yesterday} has passed; give a due date from today on.",
        ),
        ("followup due FU-1 someday", "`someday` is not a due date; write it like 2026-12-24"),
        ("followup due FU-1 2026-02-30", "`2026-02-30` is not a real date."),
        ("followup drop FU-1", "Say why it is dropped"),
        ("followup " + "x" * 3001, "That follow-up is 3,001 characters; keep it to 3,000"),
        ("followup Check <@U0NOBODY>", "Slack has no user"),
    ):
        reply = await room.command(text, channel=channel)
        assert ephemeral(reply).startswith(answer), (text, reply.message)
    assert [f.model_dump() for f in followups(room)] == before
    added = room.kinds()[len(kinds_before) :]
    assert "followup_added" not in added and "followup_updated" not in added


async def test_a_replayed_request_adds_and_changes_nothing_twice(
    make_clocked_warroom: ClockedFactory,
) -> None:
    room = await make_clocked_warroom(Clock())
    channel = (await room.declare("Checkout down sev2")).channel_id or ""
    form = "application/x-www-form-urlencoded"
    add = room.sign(room.command_body("followup Add an alert", channel=channel), form)
    assert "FU-1" in ephemeral(await room.send(add))
    again = ephemeral(await room.send(add))
    assert again == "That request was handled already; it is not run twice."
    done = room.sign(room.command_body("followup done FU-1", channel=channel), form)
    ephemeral(await room.send(done))
    ephemeral(await room.send(done))
    assert [(f.id, f.status) for f in followups(room)] == [(1, "done")]
    assert len(events(room, "followup_added")) == 1
    assert len(events(room, "followup_updated")) == 1


def reminder(room: Warroom, kind: str) -> Reminder:
    with Session(room.services.db.engine) as session:
        return session.exec(select(Reminder).where(Reminder.kind == kind)).one()


async def fire(room: Warroom, kind: str) -> None:
    """What the scheduler's job does when the reminder's time comes (on the injected clock)."""
    row = reminder(room, kind)
    assert row.id is not None
    await room.services.clocks.fire(row.id, row.seq)
    await room.settle()


def dms(room: Warroom, user: str) -> list[str]:
    return [m["text"] for m in room.slack.messages.get(user, [])]


async def test_the_owner_is_reminded_on_the_due_day_then_while_it_is_overdue(
    make_clocked_warroom: ClockedFactory,
) -> None:
    clock = Clock()
    config = {"timezone": "Europe/Berlin", "followup_remind_every": "2d"}
    room = await make_clocked_warroom(clock, config)
    channel = (await room.declare("Checkout down sev2")).channel_id or ""
    berlin = ZoneInfo("Europe/Berlin")
    due = clock.now.astimezone(berlin).date() + timedelta(days=2)
    await room.command(f"followup Rotate the key <@U0BO|bo> due {due}", channel=channel)

    # 09:00 in the config's time zone on the due day.
    first = reminder(room, "fu:1")
    assert first.due_at == datetime.combine(due, time(9, 0), tzinfo=berlin)
    # The scheduler holds the job that will fire it (in its store, so a restart keeps it).
    await room.settle()
    job = room.services.clocks.scheduler.get_job(f"reminder:{first.incident_id}:fu:1")
    assert job is not None and job.next_run_time == first.due_at
    await fire(room, "fu:1")  # not due yet: nothing
    assert dms(room, "U0BO") == []

    clock.now = first.due_at + timedelta(minutes=1)
    await fire(room, "fu:1")
    await room.slack.wait_for(lambda: len(dms(room, "U0BO")) == 1)
    assert dms(room, "U0BO")[0].startswith(
        ":memo: Your follow-up *FU-1* from INC-1 is due today: Rotate the key\n"
    )
    again = reminder(room, "fu:1")
    assert again.due_at == first.due_at + timedelta(days=2) and again.active

    clock.now = again.due_at + timedelta(minutes=1)
    await fire(room, "fu:1")
    await room.slack.wait_for(lambda: len(dms(room, "U0BO")) == 2)
    assert "is *overdue* by 2 days" in dms(room, "U0BO")[1]
    [*_, noted] = [e for e in events(room, "reminder") if e.data["reminder"] == "fu:1"]
    assert noted.data["followup"] == "FU-1" and noted.data["sent_to"] == ["U0BO"]

    # Done: the clock stops, and a job still scheduled does nothing.
    stale = reminder(room, "fu:1")
    await room.command("followup done FU-1", user="U0BO")
    assert not reminder(room, "fu:1").active
    await room.settle()
    assert room.services.clocks.scheduler.get_job(f"reminder:{first.incident_id}:fu:1") is None
    clock.now += timedelta(days=30)
    assert stale.id is not None
    await room.services.clocks.fire(stale.id, stale.seq)
    await room.settle()
    assert len(dms(room, "U0BO")) == 2


async def test_unowned_followups_go_to_the_commander_and_hold_the_postmortem(
    make_clocked_warroom: ClockedFactory,
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock)
    channel = (await room.declare("Checkout down sev2")).channel_id or ""
    await room.command("followup Add an alert on 5xx", channel=channel)
    await room.command("followup Fix the retry storm <@U0BO|bo>", channel=channel)
    await room.command("resolve Rolled back", channel=channel)
    await room.settle()

    def put_to_commander() -> list[str]:
        return [m for m in posts(room, channel) if ":clipboard: <@U0ANA> INC-1" in m]

    await room.slack.wait_for(lambda: len(put_to_commander()) == 1)
    assert put_to_commander()[0] == (
        ":clipboard: <@U0ANA> INC-1 has follow-ups with no owner:\n"
        "• *FU-1* Add an alert on 5xx\n"
        "Give each an owner: `/incident followup assign FU-N @person`."
    )

    # Each post-mortem reminder puts them again.
    clock.advance(timedelta(hours=25))
    await fire(room, "postmortem")
    await room.slack.wait_for(lambda: len(put_to_commander()) == 2)

    # The post-mortem waits for owners, and says which follow-ups have none.
    refused = ephemeral(
        await room.command("postmortem done https://wiki.example/pm", channel=channel)
    )
    assert refused.startswith("INC-1's post-mortem stays open while follow-ups have no owner:\n")
    assert "• *FU-1* Add an alert on 5xx" in refused and "FU-2" not in refused
    assert room.stored(1).postmortem_done_at is None

    await room.command("followup assign FU-1 <@U0CY|cy>", channel=channel)
    done = ephemeral(await room.command("postmortem done https://wiki.example/pm", channel=channel))
    assert done == "Post-mortem for INC-1 recorded; its reminders have stopped."


async def test_the_postmortem_gate_can_be_turned_off(make_clocked_warroom: ClockedFactory) -> None:
    room = await make_clocked_warroom(Clock(), {"postmortem_requires_owners": False})
    channel = (await room.declare("Checkout down sev2")).channel_id or ""
    await room.command("followup Add an alert on 5xx", channel=channel)
    await room.command("resolve Rolled back", channel=channel)
    done = ephemeral(await room.command("postmortem done https://wiki.example/pm", channel=channel))
    assert done == "Post-mortem for INC-1 recorded; its reminders have stopped."


def posts(room: Warroom, channel: str) -> list[str]:
    return [m["text"] for m in room.slack.messages.get(channel, [])]


async def test_followups_are_listed_across_incidents_in_every_format(
    make_warroom: WarroomFactory, tmp_path: Path, database_url: str
) -> None:
    # Ten days ago, so that FU-1's due day has passed by the time it is listed.
    clock = Clock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=10))
    quiet = {"severities": {"sev2": {}}}  # no update reminders for the days skipped
    env = {"warroom_export_token": TOKEN}
    room = await make_warroom(quiet, database_url, clock=clock, env=env)
    first = (await room.declare("Checkout down sev2")).channel_id or ""
    second = (await room.declare("Search slow sev2")).channel_id or ""
    due = clock.now.date() + timedelta(days=1)
    await room.command(f"followup Add an alert <@U0BO|bo> due {due}", channel=first)
    # As Slack sends what a person typed: `<` and `>` escaped.
    await room.command("followup =cmd runbook &lt;script&gt;alert(1)&lt;/script&gt;", channel=first)
    await room.command("followup Cache the index <@U0BO|bo>", channel=second)
    await room.command("followup Shard it <@U0CY|cy>", channel=second)
    await room.command("followup done FU-3", user="U0BO")
    await room.command("followup drop FU-4 not worth it", user="U0CY")
    assert [(f.id, f.status) for f in followups(room)] == [
        (1, "open"),
        (2, "open"),
        (3, "done"),
        (4, "dropped"),
    ]
    clock.now = datetime.now(UTC)
    url = room.services.db.url

    # The CLI, beside the server: JSON, CSV and Markdown to a file.
    run = await warroom_cli("followups", "--format", "json", database_url=url, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    listed = run.json["followups"]
    assert [(f["id"], f["incident"]["id"], f["overdue"]) for f in listed] == [
        ("FU-1", "INC-1", True),
        ("FU-2", "INC-1", False),
    ]
    assert set(listed[0]) == set(FOLLOWUP_KEYS) | {"incident", "overdue"}
    run = await warroom_cli(
        "followups", "--status", "all", "--owner", "U0BO", "--format", "csv",
        database_url=url, cwd=tmp_path,
    )  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert [(r["id"], r["status"]) for r in rows] == [("FU-1", "open"), ("FU-3", "done")]
    run = await warroom_cli("followups", "--format", "csv", database_url=url, cwd=tmp_path)
    assert "'=cmd runbook" in run.stdout  # no formula for a spreadsheet to run
    out = tmp_path / "overdue.md"
    run = await warroom_cli(
        "followups", "--overdue", "-o", str(out), database_url=url, cwd=tmp_path
    )
    assert run.returncode == 0 and run.stdout == "", run.stderr
    text = out.read_text()
    assert "| FU-1 | INC-1 | Add an alert | Bo |" in text and "FU-2" not in text
    run = await warroom_cli("followups", "--owner", "bo", database_url=url, cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr == "warroom: owner must be a Slack user id like U0123ABC, not 'bo'\n"

    # The routes: the same filters, behind the export token.
    http = room.http
    base = str(room.server.make_url("/"))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with http.get(f"{base}followups") as response:
        assert response.status == 401
    async with http.get(f"{base}followups", headers=auth) as response:
        assert response.status == 200
        page = await response.text()
    assert "Content-Security-Policy" in response.headers
    assert "FU-1" in page and "FU-2" in page and "FU-3" not in page
    assert "<b>overdue</b>" in page
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    async with http.get(f"{base}followups.json?status=all&owner=U0BO", headers=auth) as response:
        document = await response.json(content_type=None)
    assert [f["id"] for f in document["followups"]] == ["FU-1", "FU-3"]
    async with http.get(f"{base}followups.csv?overdue=1", headers=auth) as response:
        rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [r["id"] for r in rows] == ["FU-1"]
    async with http.get(f"{base}followups.md?status=dropped", headers=auth) as response:
        text = await response.text()
    assert "| FU-4 | INC-2 | Shard it | Cy |" in text and "dropped: not worth it" in text
    async with http.get(f"{base}followups.json?status=bogus", headers=auth) as response:
        assert response.status == 400
        assert "status must be one of open, done, dropped, all" in await response.text()

    # /metrics counts them by status, and the overdue ones.
    async with http.get(f"{base}metrics") as response:
        scraped = await response.text()
    for line in (
        'warroom_followups{status="open"} 2.0',
        'warroom_followups{status="done"} 1.0',
        'warroom_followups{status="dropped"} 1.0',
        "warroom_followups_overdue 1.0",
    ):
        assert line in scraped.splitlines(), line


async def test_the_shortcut_makes_a_followup_from_a_war_room_message(
    make_clocked_warroom: ClockedFactory,
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock)
    channel = (await room.declare("Checkout down sev2")).channel_id or ""
    due = (clock.now.date() + timedelta(days=5)).isoformat()
    message = {
        "ts": "1700000500.000100",
        "user": "U0ANA",
        "text": f"<@U0CY> please add retries to the checkout client by {due} &amp; test them",
    }
    payload = shortcut_payload(room, channel=channel, message=message, user="U0BO")
    reply = await interaction(room, {**payload, "callback_id": CallbackId.MAKE_FOLLOWUP.value})
    assert reply.status == 200
    forms = Interactions(room)
    view = forms.opened(CallbackId.FOLLOWUP_MODAL)
    fields = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert fields["followup_text"]["initial_value"] == (
        f"@U0CY please add retries to the checkout client by {due} & test them"
    )
    assert fields["followup_owner"]["initial_user"] == "U0CY"
    assert fields["followup_due"]["initial_value"] == due

    # A due day in the past stays on the form, and nothing is added.
    reply = await forms.submit(view, {"followup_due": "2020-01-01"}, user="U0BO")
    assert reply.json["response_action"] == "errors"
    assert "2020-01-01 has passed" in reply.json["errors"]["followup_due"]
    assert followups(room) == []

    submission = forms.signed(forms.submission_payload(view, {}, user="U0BO"))
    assert (await room.send(submission)).status == 200
    assert (await room.send(submission)).status == 200  # submitted again: added once
    [made] = followups(room)
    assert (made.id, made.owner_id, made.due.isoformat() if made.due else None) == (1, "U0CY", due)
    assert made.source_ts == "1700000500.000100" and made.created_by_id == "U0BO"
    assert made.text.startswith("@U0CY please add retries") and "& test them" in made.text
    [added] = events(room, "followup_added")
    assert added.slack_ts == "1700000500.000100" and added.actor_id == "U0BO"

    # Outside a war room there is nothing to follow up: told privately, no form.
    opened = len(room.slack.views)
    payload = shortcut_payload(room, channel="C0GENERAL", message=message, response_key="out")
    await interaction(room, {**payload, "callback_id": CallbackId.MAKE_FOLLOWUP.value})
    await room.settle()
    assert len(room.slack.views) == opened
    assert room.slack.responses[-1]["text"].startswith("This is not an incident channel")


def home_followups(room: Warroom, user: str) -> list[str]:
    """The sections of `user`'s Home tab that carry a Done button, in order."""
    blocks = room.slack.homes[user]["blocks"]
    return [b["text"]["text"] for b in blocks if (b.get("accessory") or {}).get("text")]


async def test_app_home_lists_your_followups_overdue_first_with_a_done_button(
    make_clocked_warroom: ClockedFactory,
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock)
    channel = (await room.declare("Checkout down sev2")).channel_id or ""
    today = clock.now.date()
    await room.command(f"followup Add an alert <@U0BO|bo> due {today}", channel=channel)
    await room.command("followup Fix retries <@U0BO|bo>", channel=channel)
    await room.command("followup Shard the index <@U0BO|bo> due 3d", channel=channel)
    await room.command("followup Not bo's <@U0CY|cy>", channel=channel)
    clock.advance(timedelta(days=2))

    await open_home(room, "U0BO")
    await room.settle()
    assert [text.split("\n")[0] for text in home_followups(room, "U0BO")] == [
        "*FU-1* Add an alert",
        "*FU-3* Shard the index",
        "*FU-2* Fix retries",
    ]
    assert home_followups(room, "U0BO")[0].endswith(f"due {today} · :warning: *overdue*")
    headers = [
        b["text"]["text"] for b in room.slack.homes["U0BO"]["blocks"] if b["type"] == "header"
    ]
    assert "Your follow-ups (3)" in headers

    clicks = Interactions(room)
    await clicks.click(ActionId.FOLLOWUP_DONE.value, "1", user="U0BO")
    await room.settle()
    assert followups(room)[0].status == "done"
    assert len(home_followups(room, "U0BO")) == 2  # the tab is built again without it

    # Someone else's Done is refused, told by DM, and recorded.
    await clicks.click(ActionId.FOLLOWUP_DONE.value, "2", user="U0CY")
    await room.settle()
    assert followups(room)[1].status == "open"
    await room.slack.wait_for(lambda: bool(dms(room, "U0CY")))
    assert dms(room, "U0CY")[-1].startswith("Only FU-2's owner (Bo)")
    assert events(room, "command_refused")[-1].actor_id == "U0CY"


async def test_the_json_export_carries_the_followups_exactly(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    clock = Clock()
    room = await make_warroom(None, database_url, clock=clock, env={"warroom_export_token": TOKEN})
    channel = (await room.declare("Checkout down sev2")).channel_id or ""
    due = (clock.now.date() + timedelta(days=7)).isoformat()
    await room.command(f"followup Add an alert <@U0BO|bo> due {due}", channel=channel)
    made_at = clock.now
    clock.advance(timedelta(minutes=5))
    await room.command("followup Rewrite the deploy tool", user="U0CY", channel=channel)
    await room.command("followup drop FU-2 too big for now", channel=channel)
    stamp = clock.now

    def iso(at: datetime) -> str:
        return at.astimezone(UTC).isoformat().replace("+00:00", "Z")

    url = f"{room.server.make_url('/incidents/1/timeline.json')}"
    async with room.http.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as response:
        assert response.status == 200
        document = await response.json(content_type=None)
    assert list(document) == ["incident", "events", "followups"]
    assert document["followups"] == [
        {
            "id": "FU-1",
            "text": "Add an alert",
            "owner": {"id": "U0BO", "name": "Bo"},
            "due": due,
            "status": "open",
            "reason": None,
            "created_at": iso(made_at),
            "created_by": {"id": "U0ANA", "name": "ana"},
            "closed_at": None,
            "source_ts": None,
        },
        {
            "id": "FU-2",
            "text": "Rewrite the deploy tool",
            "owner": None,
            "due": None,
            "status": "dropped",
            "reason": "too big for now",
            "created_at": iso(stamp),
            "created_by": {"id": "U0CY", "name": "cy"},
            "closed_at": iso(stamp),
            "source_ts": None,
        },
    ]
    kinds = [e["kind"] for e in document["events"]]
    assert kinds.count("followup_added") == 2 and kinds.count("followup_updated") == 1
