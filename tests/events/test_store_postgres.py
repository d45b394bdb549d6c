"""What only the PostgreSQL event store does: month partitions, advisory
locks between processes, its connection pool, the extra and the password.
Every other store test runs on PostgreSQL too (``database`` fixture)."""

from __future__ import annotations

import datetime
import json
import logging
import sys
import threading
import time
import typing as t
import urllib.parse

import pytest
from flask_mailtrack import ConfigurationError
from flask_mailtrack import EventStore
from flask_mailtrack.events._sinks import EventRecord

psycopg = pytest.importorskip("psycopg")

#: 2024-01-15T00:00:00Z
JANUARY = 1_705_276_800
DAY = 86400
PASSWORD = "s3cr%t-pa:ss"


def event(n: int, when: float, **extra: t.Any) -> EventRecord:
    data: dict[str, t.Any] = {
        "schema": 1,
        "id": f"evt_{n:032x}",
        "type": "email.opened" if n % 3 else "link.clicked",
        "timestamp": when,
        "metadata": {"campaign": f"c{n % 2}", "recipient": f"r{n % 5}"},
        "tracked_url": None if n % 3 else "https://example.com/",
        "machine": None,
    }
    data.update(extra)
    # ASCII JSON: a lone surrogate travels as its escape, as it may in a
    # journal.
    body = json.dumps(data).encode("ascii")
    return EventRecord(data["id"], body, json.loads(body))


def months_apart(count: int, per_month: int = 4) -> list[EventRecord]:
    """``per_month`` events in each of ``count`` months from January 2024."""
    return [
        event(m * per_month + i, JANUARY + m * 31 * DAY + i * 3600)
        for m in range(count)
        for i in range(per_month)
    ]


def partitions(url: str) -> list[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'mailtrack_events'::regclass ORDER BY 1"
        ).fetchall()
    return [row[0] for row in rows]


def test_a_partition_per_month_made_on_demand(postgres_url: str) -> None:
    with EventStore(postgres_url) as store:
        assert partitions(postgres_url) == []
        store.write(months_apart(3))
        assert partitions(postgres_url) == [
            "mailtrack_events_p202401",
            "mailtrack_events_p202402",
            "mailtrack_events_p202403",
        ]
        store.write(months_apart(3))  # known months: nothing new
        assert len(partitions(postgres_url)) == 3
        assert store.count() == 12


def test_purge_drops_whole_months_and_deletes_in_the_one_it_splits(
    postgres_url: str, tmp_path: t.Any
) -> None:
    events = months_apart(4)
    # Into March (the third month), after its first two events.
    cutoff = events[9].data["timestamp"]
    with EventStore(postgres_url) as store, EventStore(tmp_path / "e.db") as lite:
        store.write(events)
        lite.write(events)
        when = datetime.datetime.fromtimestamp(cutoff, datetime.timezone.utc)
        assert store.purge(when) == 9 == lite.purge(when)
        assert partitions(postgres_url) == [
            "mailtrack_events_p202403",
            "mailtrack_events_p202404",
        ]
        assert store.count() == 7
        for filters in ({}, {"campaign": "c1"}, {"recipient": "r2"}):
            assert store.stats(**filters) == lite.stats(**filters)
        assert store.events(limit=None) == lite.events(limit=None)


def test_a_month_purged_by_another_store_is_made_again(postgres_url: str) -> None:
    events = months_apart(2)
    with EventStore(postgres_url) as writer, EventStore(postgres_url) as purger:
        writer.write(events[:4])
        purger.purge(datetime.datetime(2024, 3, 1))
        assert partitions(postgres_url) == []
        # The writer believes January's partition exists; it is gone.
        writer.write(events)
        assert writer.count() == 8
        assert writer.stats()["opens"]["total"] == 5


def take_migration_lock(connection: t.Any) -> None:
    connection.execute(
        "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", (0x6D74,)
    )


def wait_for_waiters(url: str, count: int) -> None:
    """Until ``count`` sessions wait for an advisory lock (no time limit:
    the test's timeout is the limit)."""
    with psycopg.connect(url, autocommit=True) as connection:
        while True:
            row = connection.execute(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND NOT granted AND objid = hashtext(current_schema())::oid"
            ).fetchone()
            if row[0] >= count:
                return
            time.sleep(0.01)


def run_at_once(functions: list[t.Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def run(function: t.Callable[[], None]) -> None:
        try:
            function()
        except BaseException as e:  # pragma: no cover - reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=run, args=(f,)) for f in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_stores_migrating_at_once_wait_for_one_another(postgres_url: str) -> None:
    # The lock is taken before any store looks: they all find the database
    # empty, queue for the lock, and all but the first find it done.
    stores: list[EventStore] = []
    with psycopg.connect(postgres_url) as holder:
        with holder.transaction():
            take_migration_lock(holder)
            opening = threading.Thread(
                target=lambda: run_at_once(
                    [lambda: stores.append(EventStore(postgres_url))] * 4
                )
            )
            opening.start()
            wait_for_waiters(postgres_url, 4)
        opening.join()
    assert len(stores) == 4
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SELECT * FROM mailtrack_schema").fetchall() == [(3,)]
    stores[0].write(months_apart(1))
    for store in stores:
        assert store.count() == 4
        store.close()


def test_two_writers_offering_a_batch_at_once_count_it_once(
    postgres_url: str, tmp_path: t.Any
) -> None:
    events = [event(n, JANUARY + n * 60) for n in range(300)]
    with EventStore(postgres_url) as one, EventStore(postgres_url) as two:
        # Both block on the migration lock (writers take it shared), then
        # insert the same rows at the same time.
        with psycopg.connect(postgres_url) as holder:
            with holder.transaction():
                take_migration_lock(holder)
                writing = threading.Thread(
                    target=lambda: run_at_once(
                        [lambda: one.write(events), lambda: two.write(events)]
                    )
                )
                writing.start()
                wait_for_waiters(postgres_url, 2)
            writing.join()
        with EventStore(tmp_path / "e.db") as lite:
            lite.write(events)
            assert one.count() == 300
            for filters in ({}, {"campaign": "c0"}):
                assert one.stats(**filters) == lite.stats(**filters)
                assert two.timeline(**filters) == lite.timeline(**filters)


def test_an_event_inserted_by_an_open_transaction_is_waited_for(
    postgres_url: str,
) -> None:
    events = [event(n, JANUARY + n) for n in range(10)]
    with EventStore(postgres_url) as store:
        store.write(events[:1])  # the partition and the tables
        with psycopg.connect(postgres_url) as other:
            # Another writer has inserted event 5 (and counted it) but not
            # committed yet.
            other.execute(
                "INSERT INTO mailtrack_events (event_id, type, occurred_at,"
                " identity, metadata, data) VALUES (%s, 'email.opened', %s,"
                " 'x', '{}', '{}')",
                (events[5].id, int(events[5].data["timestamp"])),
            )
            writing = threading.Thread(target=store.write, args=(events,))
            writing.start()
            with psycopg.connect(postgres_url, autocommit=True) as watcher:
                while not watcher.execute(
                    "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'transactionid'"
                    " AND NOT granted"
                ).fetchone()[0]:
                    time.sleep(0.01)
            other.commit()
            writing.join()
        # The writer skipped it, and did not count it.
        assert store.count() == 10
        assert store.stats()["opens"]["total"] + store.stats()["clicks"]["total"] == (9)


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        pytest.param({"metadata": {"campaign": "a\u0000b"}}, "metadata", id="nul-json"),
        pytest.param({"tracked_url": "https://x/\u0000"}, "NUL", id="nul-text"),
        pytest.param({"metadata": {"campaign": "\ud800"}}, "cannot", id="surrogate"),
        pytest.param({"timestamp": -9e13}, "years 1 to 9999", id="year-0"),
        pytest.param({"timestamp": 9e13}, "years 1 to 9999", id="year-10000"),
    ],
)
def test_an_event_postgresql_cannot_store_is_set_aside(
    postgres_url: str, extra: dict[str, t.Any], reason: str
) -> None:
    events = [event(n, JANUARY + n) for n in range(5)]
    bad = event(99, JANUARY, **extra)
    with EventStore(postgres_url) as store:
        store.write([*events[:2], bad, *events[2:]])
        assert store.count() == 5
        with psycopg.connect(postgres_url) as connection:
            rows = connection.execute(
                "SELECT event_id, reason FROM mailtrack_rejected"
            ).fetchall()
        assert [row[0] for row in rows] == [bad.id]
        assert reason in rows[0][1]


def test_a_connection_the_server_closed_is_replaced(postgres_url: str) -> None:
    with EventStore(postgres_url) as store:
        store.write(months_apart(1))
        pool = store._backend.db  # type: ignore[attr-defined]
        pool.check_after = 0.0
        pids = [connection.info.backend_pid for connection, _ in pool._idle]
        assert pids
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert store.count() == 4
        store.write(months_apart(2))
        assert store.count() == 8


def test_without_psycopg_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg fails
    with pytest.raises(ConfigurationError, match=r"flask-mailtrack\[postgres\]"):
        EventStore("postgresql://mailtrack@db.invalid/mail")


def with_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    user = parts.username or "postgres"
    netloc = f"{user}:{urllib.parse.quote(PASSWORD, safe='')}@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def assert_hidden(text: str) -> None:
    for form in (PASSWORD, urllib.parse.quote(PASSWORD, safe="")):
        assert form not in text


def test_the_password_never_shows(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = with_password(postgres_url)  # the test server trusts any password
    with EventStore(url) as store:
        store.write(months_apart(1))
        backend = store._backend  # type: ignore[attr-defined]
        assert_hidden(repr(store))
        for text in (repr(backend), store.path):
            assert_hidden(text)
            assert "***" in text
    broken = [
        url.replace(str(urllib.parse.urlsplit(url).port), "1"),  # refused
        url.split("?")[0] + "_nothere",  # no such database
        url.replace("@", "@[", 1),  # libpq quotes a malformed URL whole
    ]
    for bad in broken:
        with pytest.raises(Exception) as caught:
            EventStore(bad)
        for error in (caught.value, caught.value.__cause__, caught.value.__context__):
            if error is not None:
                assert_hidden(str(error))
                assert_hidden(repr(error))
    assert_hidden(caplog.text)
