"""Rollups of the event store: the statistics they answer are those of a
scan of the events, after writes offered twice or at once, migrations and
purges; on every backend."""

from __future__ import annotations

import datetime
import json
import random
import sqlite3
import threading
import typing as t

import pytest
from flask_mailtrack import ConfigurationError
from flask_mailtrack import EventStore
from flask_mailtrack.events._encoding import encode_event
from flask_mailtrack.events._sinks import EventRecord

from _store_v1 import version_1_file

#: 2024-01-31T18:00:00Z: the random events cross a month boundary.
T0 = 1_706_724_000
HOUR = 3600

CAMPAIGNS: list[t.Any] = ["spring", "fall", 42, "42", True, 4.5, None, 2**70]
URLS = ["https://example.com/a", "https://example.com/b", None]
LABELS = [None, None, None, "apple-mpp", "scanner"]


def random_events(seed: int, n: int = 400) -> list[EventRecord]:
    """``n`` events of every kind, as the worker reads them from the journal:
    opens, clicks and another type, people and machines, campaigns of every
    JSON type or none, over three days."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        kind = rng.choices(["email.opened", "link.clicked", "email.sent"], [5, 4, 1])[0]
        metadata: dict[str, t.Any] = {"recipient": f"r{rng.randrange(12)}"}
        campaign = rng.choice(CAMPAIGNS + ["missing"])
        if campaign != "missing":
            metadata["campaign"] = campaign
        if rng.random() < 0.2:
            del metadata["recipient"]  # the whole metadata identifies
            metadata["list"] = rng.choice(["x", "y"])
        machine = rng.choice(LABELS)
        data: dict[str, t.Any] = {
            "schema": 1,
            "id": f"evt_{seed:08x}{i:024x}",
            "type": kind,
            "timestamp": T0 + rng.randrange(3 * 24 * HOUR) + rng.random(),
            "occurred_at": "2024-01-31T18:00:00Z",
            "metadata": metadata,
            "machine": machine,
            "machine_reasons": [machine] if machine else [],
        }
        if kind == "link.clicked":
            data["tracked_url"] = rng.choice(URLS)
        body = encode_event(data)
        records.append(EventRecord(data["id"], body, json.loads(body)))
    return records


#: Filters answered from rollups (the str ones) and by a scan.
FILTERS: list[dict[str, t.Any]] = [
    {},
    {"campaign": "spring"},
    {"campaign": "42"},  # the int 42 and the str "42"
    {"campaign": "nothing"},
    {"campaign": "1"},  # not true
    {"campaign": "4.5"},  # not the float
    {"campaign": str(2**70)},  # beyond 64 bits: not rolled up, not found
    {"campaign": 42},
    {"campaign": True},
    {"campaign": 4.5},
    {"campaign": None},
    {"recipient": "r1"},
    {"campaign": "spring", "recipient": "r1"},
]


def scanned(store: EventStore, method: str, **kwargs: t.Any) -> t.Any:
    """``store.<method>(**kwargs)`` read from the events, not the rollups."""
    store._read_rollups = False
    try:
        return getattr(store, method)(**kwargs)
    finally:
        store._read_rollups = True


def assert_rollups_match(store: EventStore) -> None:
    for filters in FILTERS:
        assert store.stats(**filters) == scanned(store, "stats", **filters), filters
        # From a whole hour on: the rollups answer that too.
        for since in (T0 + 5 * HOUR, T0 + 40 * HOUR, T0 + 99 * HOUR):
            recent = dict(filters, since=since)
            assert store.stats(**recent) == scanned(store, "stats", **recent), recent
        for bucket in (HOUR, 6 * HOUR, 24 * HOUR):
            kwargs = dict(filters, bucket_seconds=bucket)
            assert store.timeline(**kwargs) == scanned(store, "timeline", **kwargs)
    whole_hours = dict(since=T0 + 5 * HOUR, until=T0 + 30 * HOUR, bucket_seconds=HOUR)
    assert store.timeline(**whole_hours) == scanned(store, "timeline", **whole_hours)


def test_stats_since_a_whole_hour_read_the_rollups(database: str) -> None:
    events = random_events(12)
    with EventStore(database) as store:
        store.write(events)
        since = T0 + 30 * HOUR
        expected = store.stats(since=since, campaign="spring")
        assert expected["opens"]["total"] > 0
        # Without the events, the rollups still answer; a scan finds none.
        if "://" in database:
            import psycopg

            with psycopg.connect(database) as connection:
                connection.execute("DELETE FROM mailtrack_events")
        else:
            with sqlite3.connect(database) as db:
                db.execute("DELETE FROM mailtrack_events")
            db.close()
        assert store.stats(since=since, campaign="spring") == expected
        assert store.stats(since=since + 1, campaign="spring")["opens"]["total"] == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollups_answer_as_a_scan(database: str, seed: int) -> None:
    with EventStore(database) as store:
        store.write(random_events(seed))
        assert_rollups_match(store)
        stats = store.stats()
        assert stats["opens"]["total"] > 0 and stats["links"]


def test_a_batch_offered_twice_counts_once(database: str) -> None:
    batch = random_events(4, 200)
    with EventStore(database) as store:
        store.write(batch)
        once = store.stats()
        store.write(batch)
        store.write([*batch[150:], *batch[:10]])
        assert store.stats() == once
        assert store.count() == len(batch)
        assert_rollups_match(store)


def test_two_writers_at_once_count_once(database: str) -> None:
    batch = random_events(5, 300)
    with EventStore(database) as reference:
        reference.write(batch)
        expected = reference.stats(campaign="spring")
        stores = [EventStore(database) for _ in range(3)]
        barrier = threading.Barrier(len(stores))

        def write(store: EventStore) -> None:
            barrier.wait()
            for start in range(0, len(batch), 50):
                store.write(batch[start : start + 50])

        threads = [threading.Thread(target=write, args=(s,)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for store in stores:
            store.close()
        assert reference.count() == len(batch)
        assert reference.stats(campaign="spring") == expected
        assert_rollups_match(reference)


@pytest.mark.parametrize(
    "offset",
    [
        pytest.param(20 * HOUR + 1234.5, id="within-an-hour"),
        pytest.param(30 * HOUR, id="whole-hour"),
        pytest.param(-HOUR, id="nothing-older"),
        pytest.param(4 * 24 * HOUR, id="everything"),
    ],
)
def test_purge_keeps_rollups_exact(
    database: str, tmp_path: t.Any, offset: float
) -> None:
    events = random_events(6)
    cutoff = T0 + offset
    kept = [e for e in events if int(e.data["timestamp"]) >= cutoff]
    with EventStore(database) as store:
        store.write(events)
        assert store.purge(datetime_of(cutoff)) == len(events) - len(kept)
        assert store.count() == len(kept)
        assert_rollups_match(store)
        with EventStore(tmp_path / "kept.sqlite3") as fresh:
            fresh.write(kept)
            for filters in FILTERS:
                assert store.stats(**filters) == fresh.stats(**filters)
                assert store.timeline(**filters) == fresh.timeline(**filters)


def datetime_of(timestamp: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)


def test_every_backend_gives_the_same_answers(
    postgres_url: str, tmp_path: t.Any
) -> None:
    events = random_events(7)
    with EventStore(tmp_path / "e.sqlite3") as lite, EventStore(postgres_url) as pg:
        for store in (lite, pg):
            for start in range(0, len(events), 64):
                store.write(events[start : start + 64])
        for filters in FILTERS:
            assert lite.stats(**filters) == pg.stats(**filters), filters
            assert lite.timeline(**filters) == pg.timeline(**filters)
            assert scanned(lite, "stats", **filters) == scanned(pg, "stats", **filters)
            assert lite.events(limit=None, **filters) == pg.events(
                limit=None, **filters
            )


def test_a_new_dimension_is_backfilled(database: str) -> None:
    events = random_events(8)
    with EventStore(database, dimensions=()) as store:
        store.write(events[:200])
    with pytest.raises(ConfigurationError, match="db upgrade"):
        EventStore(database, dimensions=("recipient",), migrate=False)
    with EventStore(database, dimensions=("recipient",)) as store:
        # A store that does not declare it keeps it exact all the same.
        with EventStore(database, dimensions=()) as other:
            other.write(events[200:])
        for recipient in ("r1", "r2", "nobody"):
            stats = store.stats(recipient=recipient)
            assert stats == scanned(store, "stats", recipient=recipient)


# -- migrations (SQLite: PostgreSQL never had version 1) -------------------------


def test_a_version_1_file_is_migrated_with_its_rollups(tmp_path: t.Any) -> None:
    path = tmp_path / "old.sqlite3"
    events = random_events(9)
    version_1_file(path, events)
    with pytest.raises(ConfigurationError, match="mailtrack db upgrade"):
        EventStore(path, migrate=False)
    with EventStore(path) as store:
        assert store.schema_version() == 3
        assert store.count() == len(events)
        assert_rollups_match(store)
        with EventStore(tmp_path / "new.sqlite3") as fresh:
            fresh.write(events)
            assert store.stats(campaign="fall") == fresh.stats(campaign="fall")
            assert store.stats() == fresh.stats()
    with EventStore(path, migrate=False) as store:
        assert store.upgrade() == 3


def test_stores_migrating_at_once_migrate_once(tmp_path: t.Any) -> None:
    path = tmp_path / "old.sqlite3"
    events = random_events(10)
    version_1_file(path, events)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_store() -> None:
        barrier.wait()
        try:
            EventStore(path).close()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with EventStore(path) as store:
        assert store.stats()["opens"]["total"] == sum(
            e.data["type"] == "email.opened" for e in events
        )
        assert_rollups_match(store)


def test_new_stores_opening_at_once_create_one_schema(database: str) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_store() -> None:
        barrier.wait()
        try:
            with EventStore(database) as store:
                store.write(random_events(11, 50))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with EventStore(database) as store:
        assert store.schema_version() == 3
        assert store.count() == 50
        assert_rollups_match(store)


def test_a_newer_schema_is_refused(tmp_path: t.Any) -> None:
    path = tmp_path / "future.sqlite3"
    EventStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE mailtrack_schema SET version = 99")
    db.close()
    with pytest.raises(ConfigurationError, match="99"):
        EventStore(path)


def test_migrate_false_refuses_an_empty_database(database: str) -> None:
    with pytest.raises(ConfigurationError, match="mailtrack db upgrade"):
        EventStore(database, migrate=False)
