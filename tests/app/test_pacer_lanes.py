"""A flood of announcements does not hold up what matters (issue 12.6): through the real server,
a customer update accepted while the announcement channel has a queue of other incidents'
announcements goes out ahead of them. The pacer's clock is held: what waits, waits until the
test lets time run, however fast or slow the machine is."""

from __future__ import annotations

from bot.slack.pacing import ChannelPacer
from tests.support.clocks import HeldTime
from tests.support.warroom import WarroomFactory

ANNOUNCE = "C0ANNOUNCE"
FLOOD = 10
BURST = 3


async def test_a_customer_update_goes_out_before_a_flood_of_other_announcements(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom({"declare_limit": None})
    incident = await room.declare("Checkout down sev1")
    war_room = incident.channel_id or ""
    held = HeldTime()
    pacer = ChannelPacer(burst=BURST, rate=1.0, clock=held.clock, sleep=held.sleep)
    room.services.gateway.pacer = pacer
    started = len(room.slack.calls)

    async def until_waiting(count: int) -> None:
        # A bound on waiting for the server's background work, not a measure of it.
        await room.slack.wait_for(lambda: pacer.waiting(ANNOUNCE) >= count, timeout=30)

    # One person floods the announcement channel: the burst goes, the next post holds the
    # channel's turn waiting for the clock, and the rest queue up behind it.
    for n in range(FLOOD):
        reply = await room.command(f"declare Flood {n} sev4", user="U0BO")
        assert reply.status == 200 and "Declared" in reply.message, reply.text
    await until_waiting(FLOOD - BURST - 1)
    reply = await room.command("update Checkout is recovering", channel=war_room)
    assert reply.status == 200 and "Customer update" in reply.message, reply.text
    await until_waiting(FLOOD - BURST)

    held.run()
    await room.settle()
    announced = [
        str(c.args.get("text"))
        for c in room.slack.calls[started:]
        if c.method == "chat.postMessage" and c.args.get("channel") == ANNOUNCE
    ]
    assert len(announced) == FLOOD + 1, announced
    update = next(i for i, text in enumerate(announced) if "Checkout is recovering" in text)
    # Only the announcements already sent, and the one holding the turn, went before it.
    assert update == BURST + 1, announced
