"""The webhook outbox's rows: claims under a lease, retries, dead letters."""

from __future__ import annotations

import time
import typing as t

import pytest
from flask_mailtrack.events._outbox import Outbox


@pytest.fixture
def outbox(tmp_path: t.Any) -> t.Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.sqlite3")
    yield box
    box.db.close()


def test_a_claim_is_exclusive_until_released(outbox: Outbox) -> None:
    now = time.time()
    for n in range(3):
        outbox.insert(f"evt_{n}", "http://127.0.0.1/hook", b"{}", now)
    owner, rows = outbox.claim(batch_size=2, lease_seconds=60)
    assert [row.event_id for row in rows] == ["evt_0", "evt_1"]
    other, more = outbox.claim(batch_size=10, lease_seconds=60)
    assert [row.event_id for row in more] == ["evt_2"]
    assert other != owner
    outbox.release(owner, [row.id for row in rows])
    _, again = outbox.claim(batch_size=10, lease_seconds=60)
    assert [row.event_id for row in again] == ["evt_0", "evt_1"]


def test_a_rescheduled_event_waits(outbox: Outbox) -> None:
    outbox.insert("evt_1", "http://127.0.0.1/hook", b"{}", time.time())
    owner, (row,) = outbox.claim(batch_size=10, lease_seconds=60)
    later = time.time() + 3600
    outbox.reschedule(owner, row, 1, later, 503, "HTTP 503")
    assert outbox.count() == 1
    assert outbox.count_due(time.time()) == 0
    assert outbox.next_attempt_at() == later
    assert outbox.claim(batch_size=10, lease_seconds=60)[1] == []


def test_dead_letters_need_the_lease_and_can_be_requeued(outbox: Outbox) -> None:
    outbox.insert("evt_1", "http://127.0.0.1/hook", b'{"id":"evt_1"}', time.time())
    owner, (row,) = outbox.claim(batch_size=10, lease_seconds=60)
    assert not outbox.dead_letter("someone-else", row, 1, "gone", 410, "HTTP 410")
    assert outbox.dead_letter(owner, row, 1, "gone", 410, "HTTP 410")
    assert outbox.count() == 0
    (letter,) = outbox.dead_letters(10)
    assert letter["payload"] == {"id": "evt_1"}
    assert (letter["reason"], letter["last_status"]) == ("gone", 410)
    assert outbox.requeue_dead_letters(time.time()) == 1
    assert outbox.dead_letters(10) == []
    assert outbox.count_due(time.time()) == 1
