"""The comms ledger: how an incident's customer updates kept to its severity's cadence.

`due` is how many cadence intervals passed while the incident was open:
floor((end - declared) / every). Deadlines run from the last update: the first update is due
`every` after declaration, each later one `every` after the update before it. A deadline is
missed when no update came by it; a gap of `k * every` (or a little more) misses `k` deadlines,
and the gap from the last update to the end counts too. An update exactly on its deadline is
on time. Missed never exceeds due (a sum of floors is at most the floor of the sum)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise


@dataclass(frozen=True)
class CommsLedger:
    """When the first customer update went out, how many went out, and how many deadlines
    fell and were missed."""

    first_update_at: datetime | None
    first_update_after_seconds: int | None
    updates: int
    due: int
    missed: int
    longest_gap_seconds: int

    @property
    def on_time_ratio(self) -> float | None:
        """Deadlines met over deadlines due; None when none was due."""
        if self.due == 0:
            return None
        return round((self.due - self.missed) / self.due, 4)


def comms_ledger(
    *,
    declared_at: datetime,
    ended_at: datetime,
    every: timedelta | None,
    update_times: Iterable[datetime],
) -> CommsLedger:
    """The ledger of an incident open from `declared_at` to `ended_at` (its end, or now), whose
    severity wants an update `every` (None: no cadence, so nothing is ever due)."""
    times = sorted(t for t in update_times if declared_at <= t <= ended_at)
    marks = [declared_at, *times, ended_at]
    gaps = [later - earlier for earlier, later in pairwise(marks)]
    due = missed = 0
    if every is not None and every > timedelta(0):
        due = max(ended_at - declared_at, timedelta(0)) // every
        previous = declared_at
        for update in times:
            missed += _deadlines_passed(previous, update, every)
            previous = update
        # Deadlines after the last update that fell while the incident was open went unmet.
        missed += _deadlines_passed(previous, ended_at, every, inclusive=True)
    first = times[0] if times else None
    return CommsLedger(
        first_update_at=first,
        first_update_after_seconds=int((first - declared_at).total_seconds()) if first else None,
        updates=len(times),
        due=due,
        missed=missed,
        longest_gap_seconds=int(max(gaps).total_seconds()) if gaps else 0,
    )


def _deadlines_passed(
    start: datetime, end: datetime, every: timedelta, *, inclusive: bool = False
) -> int:
    """How many of the deadlines start+every, start+2*every, ... came strictly before `end`
    (or at or before it, when `inclusive`): an update exactly on its deadline is on time."""
    span = end - start
    count = span // every
    if not inclusive and count > 0 and span % every == timedelta(0):
        count -= 1
    return max(count, 0)
