"""``EventStore.forget``: a person's events erased, every type, and the
statistics from the rollups still those of a scan of the events left; on
every backend."""

from __future__ import annotations

import threading
import time
import typing as t

import pytest
from flask_mailtrack import EventStore
from flask_mailtrack.events._encoding import encode_event
from flask_mailtrack.events._sinks import EventRecord
from test_store_rollups import assert_rollups_match
from test_store_rollups import FILTERS
from test_store_rollups import random_events
from test_store_rollups import scanned

T0 = 1_706_724_000


def record(kind: str, n: int, recipient: str, **extra: t.Any) -> EventRecord:
    data: dict[str, t.Any] = {
        "schema": 1,
        "id": f"evt_{recipient}_{kind}_{n}",
        "type": kind,
        "timestamp": T0 + n * 600,
        "occurred_at": "2024-01-31T18:00:00Z",
        "metadata": {"campaign": "spring", "recipient": recipient},
        "machine": None,
        "machine_reasons": [],
        **extra,
    }
    body = encode_event(data)
    return EventRecord(data["id"], body, data)


def mailing(recipient: str) -> list[EventRecord]:
    """One send, two opens and a click of ``recipient``."""
    return [
        record("email.sent", 0, recipient),
        record("email.opened", 1, recipient),
        record("email.opened", 2, recipient, machine="apple-mpp"),
        record("link.clicked", 3, recipient, tracked_url="https://example.com/a"),
    ]


def test_forget_erases_one_persons_events_of_every_type(database: str) -> None:
    with EventStore(database) as store:
        store.write([*mailing("ann"), *mailing("bob"), *mailing("cid")])
        before = store.stats(campaign="spring")
        assert before["sent"]["total"] == 3 and before["opens"]["unique"] == 3
        assert store.forget(recipient="ann") == 4
        assert store.events(limit=None, recipient="ann") == []
        left = store.events(limit=None)
        assert len(left) == 8
        assert {e["metadata"]["recipient"] for e in left} == {"bob", "cid"}
        stats = store.stats(campaign="spring")
        assert stats == scanned(store, "stats", campaign="spring")
        assert stats == {**store.stats(since=0, campaign="spring"), "since": None}
        assert stats["sent"]["total"] == 2
        assert stats["opens"]["total"] == 4 and stats["opens"]["unique"] == 2
        assert stats["opens"]["machine"] == {"total": 2, "unique": 2}
        assert stats["clicks"]["unique"] == 2 and stats["engaged"]["total"] == 2
        assert stats["links"][0]["unique"] == 2
        assert stats["sent"]["open_rate"]["total"] == 1.0
        assert store.stats() == scanned(store, "stats")
        assert store.timeline() == scanned(store, "timeline")


@pytest.mark.parametrize(
    "filters",
    [
        pytest.param({"recipient": "r1"}, id="recipient"),
        # Recipients with events in other campaigns: their recipient rows
        # are rolled up again from the events left.
        pytest.param({"campaign": "spring"}, id="campaign"),
        pytest.param({"campaign": 42}, id="int"),
        pytest.param({"campaign": "42"}, id="str-finds-int"),
        pytest.param({"campaign": True}, id="bool"),
        pytest.param({"list": "x"}, id="no-identity-key"),
        pytest.param({"recipient": "r2", "campaign": "fall"}, id="two-filters"),
        pytest.param({"recipient": "r3", "campaign": None}, id="and-none"),
    ],
)
def test_forget_keeps_rollups_exact(
    database: str, tmp_path: t.Any, filters: dict[str, t.Any]
) -> None:
    events = random_events(11)
    dimensions = ("campaign", "recipient")
    with EventStore(database, dimensions=dimensions) as store:
        store.write(events)
        gone = {e["id"] for e in store.events(limit=None, **filters)}
        assert gone
        assert store.forget(**filters) == len(gone)
        assert store.count() == len(events) - len(gone)
        assert store.events(limit=None, **filters) == []
        assert_rollups_match(store)
        kept = [e for e in events if e.id not in gone]
        with EventStore(tmp_path / "kept.sqlite3", dimensions=dimensions) as fresh:
            fresh.write(kept)
            for query in [*FILTERS, {"recipient": "r1"}, {"recipient": "r2"}]:
                assert store.stats(**query) == fresh.stats(**query), query
                assert store.timeline(**query) == fresh.timeline(**query)
            assert store.forget(**filters) == 0


def test_forget_needs_a_filter(database: str) -> None:
    with EventStore(database) as store:
        store.write(mailing("ann"))
        for filters in ({}, {"recipient": None}):
            with pytest.raises(ValueError, match="at least one metadata filter"):
                store.forget(**filters)
        with pytest.raises(TypeError):
            store.forget(recipient=["ann"])
        assert store.count() == 4


def test_forget_of_nothing_changes_nothing(database: str) -> None:
    with EventStore(database) as store:
        store.write(random_events(12))
        before = store.stats()
        assert store.forget(recipient="nobody") == 0
        assert store.forget(campaign="spring", recipient="nobody") == 0
        assert store.stats() == before
        assert_rollups_match(store)


def test_forget_while_another_writer_writes(database: str, tmp_path: t.Any) -> None:
    events = random_events(13, 800)
    with EventStore(database) as store, EventStore(database) as writer:
        store.write(events[:200])
        started = threading.Barrier(2)

        def write() -> None:
            started.wait()
            for start in range(200, len(events), 25):
                writer.write(events[start : start + 25])

        thread = threading.Thread(target=write)
        thread.start()
        started.wait()
        forgotten = 0
        while thread.is_alive():
            forgotten += store.forget(recipient="r1")
            time.sleep(0.005)  # let the writer take SQLite's lock too
        thread.join()
        forgotten += store.forget(recipient="r1")
        assert forgotten == sum(
            e.data["metadata"].get("recipient") == "r1" for e in events
        )
        assert_rollups_match(store)
        left = {e["id"] for e in store.events(limit=None)}
        assert len(left) == len(events) - forgotten
        with EventStore(tmp_path / "kept.sqlite3") as fresh:
            fresh.write([e for e in events if e.id in left])
            for filters in FILTERS:
                assert store.stats(**filters) == fresh.stats(**filters), filters


def test_forget_waits_for_the_batches_being_written(postgres_url: str) -> None:
    import psycopg
    from flask_mailtrack.events._postgres_schema import lock_schema

    waiting = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND database = (SELECT oid FROM pg_database"
        " WHERE datname = current_database())"
        " AND objid::bigint = (hashtext(current_schema())::bigint + 4294967296)"
        " % 4294967296"
    )
    with EventStore(postgres_url) as store:
        store.write(mailing("ann"))
        with psycopg.connect(postgres_url) as writer:
            # What a worker's batch holds until it commits.
            lock_schema(writer, shared=True)
            deleted: list[int] = []
            thread = threading.Thread(
                target=lambda: deleted.append(store.forget(recipient="ann"))
            )
            thread.start()
            waited = False
            while thread.is_alive() and not waited:
                row = writer.execute(waiting).fetchone()
                waited = row is not None and row[0] > 0
                time.sleep(0.01)
            assert store.count() == 4
            writer.rollback()
            thread.join()
        assert waited and deleted == [4]
        assert store.count() == 0


def test_forget_pages_through_thousands_of_events(database: str) -> None:
    # More events, and identities, than a page: one per message sent.
    many = [
        record(kind, n, "ann", metadata={"recipient": "ann", "message_id": f"m{n}"})
        for n in range(1200)
        for kind in ("email.sent", "email.opened")
    ]
    with EventStore(database) as store:
        store.write([*many, *mailing("bob")])
        assert store.forget(recipient="ann") == 2400
        assert store.count() == 4
        assert_rollups_match(store)
        assert store.stats()["sent"]["total"] == 1
        assert store.stats()["opens"]["unique"] == 1
