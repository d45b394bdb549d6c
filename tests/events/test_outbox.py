"""The webhook outbox's rows: claims under a lease, retries, dead letters,
each event queued once per URL."""

from __future__ import annotations

import contextlib
import sqlite3
import time
import typing as t

import pytest
from flask_mailtrack.events._outbox import Outbox
from flask_mailtrack.events._outbox import Retry


@pytest.fixture
def outbox(tmp_path: t.Any) -> t.Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.sqlite3")
    yield box
    box.db.close()


def test_a_claim_is_exclusive_until_released(outbox: Outbox) -> None:
    now = time.time()
    outbox.insert((f"evt_{n}", "http://127.0.0.1/hook", b"{}", now) for n in range(3))
    owner, rows = outbox.claim(batch_size=2, lease_seconds=60)
    assert [row.event_id for row in rows] == ["evt_0", "evt_1"]
    other, more = outbox.claim(batch_size=10, lease_seconds=60)
    assert [row.event_id for row in more] == ["evt_2"]
    assert other != owner
    outbox.release(owner, [row.id for row in rows])
    _, again = outbox.claim(batch_size=10, lease_seconds=60)
    assert [row.event_id for row in again] == ["evt_0", "evt_1"]


def test_a_rescheduled_event_waits(outbox: Outbox) -> None:
    outbox.insert([("evt_1", "http://127.0.0.1/hook", b"{}", time.time())])
    owner, (row,) = outbox.claim(batch_size=10, lease_seconds=60)
    later = time.time() + 3600
    outbox.reschedule("someone-else", [Retry(row.id, 1, 0.0, 500, "HTTP 500")])
    outbox.reschedule(owner, [Retry(row.id, 1, later, 503, "HTTP 503")])
    assert outbox.count() == 1
    assert outbox.count_due(time.time()) == 0
    assert outbox.next_attempt_at() == later
    assert outbox.claim(batch_size=10, lease_seconds=60)[1] == []


def test_dead_letters_need_the_lease_and_can_be_requeued(outbox: Outbox) -> None:
    row = ("evt_1", "http://127.0.0.1/hook", b'{"id":"evt_1"}', time.time())
    outbox.insert([row])
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


def test_each_event_is_queued_once_per_url(outbox: Outbox) -> None:
    now = time.time()
    rows = [(f"evt_{n}", "http://127.0.0.1/a", b"{}", now) for n in range(3)]
    assert outbox.insert(rows) == 3
    assert outbox.insert(rows[1:] + [("evt_1", "http://127.0.0.1/b", b"{}", now)]) == 1
    assert outbox.count() == 4


def test_an_outbox_of_0_1_is_migrated(tmp_path: t.Any) -> None:
    path = str(tmp_path / "old.sqlite3")
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.executescript(
            """
            CREATE TABLE webhook_outbox (
                id INTEGER PRIMARY KEY, event_id TEXT NOT NULL,
                url TEXT NOT NULL, body BLOB NOT NULL, created_at REAL NOT NULL,
                next_attempt_at REAL NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0, lease_owner TEXT,
                lease_until REAL NOT NULL DEFAULT 0, last_status INTEGER,
                last_error TEXT);
            CREATE TABLE webhook_journals (name TEXT PRIMARY KEY,
                imported INTEGER NOT NULL, imported_at REAL NOT NULL);
            INSERT INTO webhook_outbox (event_id, url, body, created_at,
                next_attempt_at) VALUES ('evt_1', 'http://h/', 'first', 1, 1),
                ('evt_1', 'http://h/', 'again', 2, 2),
                ('evt_2', 'http://h/', 'other', 3, 3);
            """
        )
    outbox = Outbox(path)
    try:
        _, rows = outbox.claim(batch_size=10, lease_seconds=60)
        assert [(r.event_id, r.body) for r in rows] == [
            ("evt_1", "first"),
            ("evt_2", "other"),
        ]
        assert outbox.insert([("evt_2", "http://h/", b"{}", time.time())]) == 0
    finally:
        outbox.db.close()
    with contextlib.closing(sqlite3.connect(path)) as connection:
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
    assert "webhook_journals" not in tables
    Outbox(path).db.close()  # opened again: nothing left to migrate
