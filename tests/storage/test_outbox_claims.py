"""An owed message is claimed by one sender at a time, on a real SQLite file and on PostgreSQL:
eight threads race for it and one wins; the lease holds it, a failure gives it back, a post
settles it. (Replicas posting it through real servers: tests/app/test_replicas.py.)"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from storage import outbox as outbox_store
from storage.db import Database


def test_an_owed_message_is_claimed_by_one_sender_at_a_time(database_url: str) -> None:
    db = Database(database_url)
    try:
        _claim_race(db)
    finally:
        db.close()


def _claim_race(db: Database) -> None:
    now = datetime.now(UTC)
    lease = timedelta(minutes=5)
    with db.unit_of_work() as session:
        message_id = outbox_store.enqueue(
            session, channel_id="C0X", text="owed", at=now, incident_id=None
        ).id
    assert message_id is not None
    racers = 8
    barrier = threading.Barrier(racers)
    won: list[str] = []

    def claim(name: str) -> None:
        barrier.wait()
        with db.unit_of_work() as session:
            taken = outbox_store.claim(
                session, message_id=message_id, by=name, now=now, lease=lease
            )
            if taken is not None:
                won.append(name)

    threads = [threading.Thread(target=claim, args=(f"sender{n}",)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1, won

    with db.unit_of_work() as session:
        # Held: nobody else gets it until the lease runs out, then someone may.
        assert (
            outbox_store.claim(session, message_id=message_id, by="late", now=now, lease=lease)
            is None
        )
        later = now + lease + timedelta(seconds=1)
        taken = outbox_store.claim(
            session, message_id=message_id, by="late", now=later, lease=lease
        )
        assert taken is not None and taken.claimed_by == "late"
        # A failure gives it back at once; once posted, it is nobody's again.
        outbox_store.mark_failed(session, message_id=message_id, error="HTTP 500", by="late")
        taken = outbox_store.claim(session, message_id=message_id, by="next", now=now, lease=lease)
        assert taken is not None and taken.attempts == 1
        outbox_store.mark_posted(session, message_id=message_id, ts="1.2", at=now)
        assert (
            outbox_store.claim(session, message_id=message_id, by="x", now=later, lease=lease)
            is None
        )
