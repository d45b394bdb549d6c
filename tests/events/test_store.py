"""EventStore: written as a sink (batches, once per id, malformed events set
aside), statistics with known answers, retention, export; reads never write.

Every test runs on each backend (the ``database`` fixture: SQLite, then
PostgreSQL), except those marked SQLite-only: file locks and WAL."""

from __future__ import annotations

import contextlib
import csv
import datetime
import io
import json
import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import typing as t

import pytest
from flask_mailtrack import email_opened
from flask_mailtrack import EventStore
from flask_mailtrack import link_clicked
from flask_mailtrack import TrackingResult
from flask_mailtrack.events import CSV_COLUMNS
from flask_mailtrack.events._encoding import encode_event
from flask_mailtrack.events._sinks import EventRecord
from flask_mailtrack.events._sinks import Sink

T = 1_700_000_000  # 2023-11-14T22:13:20Z
A = "https://example.com/a"
B = "https://example.com/b"


def opened(at: int, machine: str | None = None, **metadata: t.Any) -> TrackingResult:
    return TrackingResult(
        is_open_tracking=True,
        metadata=metadata,
        timestamp=at,
        machine=machine,
        machine_reasons=[machine] if machine else [],
        request_data={"user_agent": "UA", "user_ip": "192.0.2.0", "method": "GET"},
    )


def clicked(
    at: int, url: str, machine: str | None = None, **metadata: t.Any
) -> TrackingResult:
    return TrackingResult(
        is_click_tracking=True,
        tracked_url=url,
        metadata=metadata,
        timestamp=at,
        machine=machine,
        machine_reasons=[machine] if machine else [],
    )


def record_of(result: TrackingResult) -> EventRecord:
    """``result`` as the worker hands it to a sink: journaled, read back."""
    body = encode_event(result.to_json_dict())
    return EventRecord(result.event_id, body, json.loads(body))


def records(*results: TrackingResult) -> list[EventRecord]:
    return [record_of(result) for result in results]


#: The fixed event set the expected figures below are computed from.
EVENTS = [
    opened(T, recipient="alice", campaign="spring"),
    opened(T + 5, "apple-mpp", recipient="alice", campaign="spring"),
    opened(T + 10, recipient="alice", campaign="spring"),
    clicked(T + 20, A, recipient="alice", campaign="spring"),
    clicked(T + 30, A, recipient="alice", campaign="spring"),
    clicked(T + 40, B, recipient="alice", campaign="spring"),
    opened(T + 100, "apple-mpp", recipient="bob", campaign="spring"),
    clicked(T + 101, A, "scanner", recipient="bob", campaign="spring"),
    opened(T + 200, recipient="carol", campaign="fall", vip=True, tier=2),
    # No identity key: the whole metadata identifies the recipient.
    opened(T + 300, campaign="spring", list="x"),
]


def query(database: str, sql: str) -> list[tuple[t.Any, ...]]:
    """The rows of ``sql`` in ``database``, read with the database's own
    driver, not through the store."""
    if "://" in database:
        import psycopg

        with psycopg.connect(database) as connection:
            return [tuple(row) for row in connection.execute(sql).fetchall()]
    with contextlib.closing(sqlite3.connect(database)) as db:
        return db.execute(sql).fetchall()


def counts(
    total: int, unique: int, human: tuple[int, int], machine: tuple[int, int]
) -> dict[str, t.Any]:
    return {
        "total": total,
        "unique": unique,
        "human": {"total": human[0], "unique": human[1]},
        "machine": {"total": machine[0], "unique": machine[1]},
    }


@pytest.fixture
def store(database: str) -> t.Iterator[EventStore]:
    s = EventStore(database)
    s.write(records(*EVENTS))
    yield s
    s.close()


def test_stats_of_a_campaign(store: EventStore) -> None:
    stats = store.stats(campaign="spring")
    assert stats["opens"] == counts(5, 3, human=(3, 2), machine=(2, 2))
    assert stats["clicks"] == counts(4, 2, human=(3, 1), machine=(1, 1))
    assert stats["links"] == [
        {"url": A, **counts(3, 2, human=(2, 1), machine=(1, 1))},
        {"url": B, **counts(1, 1, human=(1, 1), machine=(0, 0))},
    ]
    assert stats["click_through_rate"] == {
        "total": pytest.approx(2 / 3),
        "human": pytest.approx(1 / 2),
        "machine": pytest.approx(1 / 2),
    }
    assert stats["machine_labels"] == {"apple-mpp": 2, "scanner": 1}
    assert stats["filters"] == {"campaign": "spring"}
    json.dumps(stats)  # JSON-ready


def test_stats_of_everything(store: EventStore) -> None:
    stats = store.stats()
    assert stats["opens"] == counts(6, 4, human=(4, 3), machine=(2, 2))
    assert stats["clicks"] == counts(4, 2, human=(3, 1), machine=(1, 1))


@pytest.mark.parametrize(
    ("since", "until", "opens", "clicks"),
    [
        pytest.param(T + 100, T + 300, 2, 1, id="numbers"),
        pytest.param(
            datetime.datetime.fromtimestamp(T + 100, datetime.timezone.utc),
            datetime.datetime.fromtimestamp(T + 300, datetime.timezone.utc),
            2,
            1,
            id="aware-datetimes",
        ),
        pytest.param(
            datetime.datetime(2023, 11, 14, 22, 15, 0),  # naive: UTC, T + 100
            None,
            3,
            1,
            id="naive-datetime-since",
        ),
        pytest.param(None, T + 20, 3, 0, id="until-is-exclusive"),
        pytest.param(T + 301, None, 0, 0, id="nothing"),
    ],
)
def test_stats_time_range(
    store: EventStore, since: t.Any, until: t.Any, opens: int, clicks: int
) -> None:
    stats = store.stats(since=since, until=until)
    assert stats["opens"]["total"] == opens
    assert stats["clicks"]["total"] == clicks


@pytest.mark.parametrize(
    ("filters", "opens"),
    [
        pytest.param({"recipient": "alice"}, 3, id="string"),
        pytest.param({"vip": True}, 1, id="bool"),
        pytest.param({"tier": 2}, 1, id="int"),
        pytest.param({"tier": 3}, 0, id="int-no-match"),
        pytest.param({"tier": "2"}, 1, id="text-finds-int"),
        pytest.param({"recipient": "ALICE"}, 0, id="case-sensitive"),
        pytest.param({"campaign": "spring", "recipient": "bob"}, 1, id="two-keys"),
        pytest.param({"list": None}, 5, id="missing-key-is-null"),
        pytest.param({"a.b": "x"}, 0, id="dotted-key"),
    ],
)
def test_stats_metadata_filters(
    store: EventStore, filters: dict[str, t.Any], opens: int
) -> None:
    assert store.stats(**filters)["opens"]["total"] == opens


@pytest.mark.parametrize(
    "filters",
    [
        pytest.param({"campaign": {"x": 1}}, id="dict-value"),
        pytest.param({"campaign": [1]}, id="list-value"),
        pytest.param({'bad"key': 1}, id="quote-in-key"),
    ],
)
def test_stats_bad_filters(store: EventStore, filters: dict[str, t.Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        store.stats(**filters)


def test_empty_store_has_no_rate(database: str) -> None:
    with EventStore(database) as store:
        stats = store.stats()
        assert stats["opens"] == counts(0, 0, (0, 0), (0, 0))
        assert stats["click_through_rate"] == {
            "total": None,
            "human": None,
            "machine": None,
        }
        assert stats["open_rate"] == stats["click_through_rate"]
        assert stats["engaged"] == {"total": 0, "human": 0, "machine": 0}
        assert stats["links"] == []
        no_rate = {"total": None, "human": None, "machine": None}
        assert stats["sent"] == {
            "total": 0,
            "open_rate": no_rate,
            "click_rate": no_rate,
        }


def test_rates_cannot_exceed_one_with_clicks_without_opens(database: str) -> None:
    # Images blocked: ann clicks twice and no open is recorded; cy's only
    # open is Apple's proxy. Divided by the openers, people clicked 200%.
    with EventStore(database) as store:
        store.record(clicked(T, A, recipient="ann"))
        store.record(clicked(T + 1, B, recipient="ann"))
        store.record(opened(T + 2, recipient="ben"))
        store.record(clicked(T + 3, A, recipient="ben"))
        store.record(opened(T + 4, "apple-mpp", recipient="cy"))
        stats = store.stats()
    assert stats["engaged"] == {"total": 3, "human": 2, "machine": 1}
    assert stats["click_through_rate"] == {
        "total": pytest.approx(2 / 3),
        "human": 1.0,
        "machine": 0.0,
    }
    assert stats["open_rate"] == {
        "total": pytest.approx(2 / 3),
        "human": 0.5,
        "machine": 1.0,
    }


def sent(at: int, **metadata: t.Any) -> EventRecord:
    """An ``email.sent`` event, as :mod:`flask_mailtrack.outgoing` journals
    one per recipient."""
    data = opened(at, **metadata).to_json_dict()
    data.update(type="email.sent", is_open_tracking=False, request_data=None)
    body = encode_event(data)
    return EventRecord(data["id"], body, json.loads(body))


def test_rates_per_email_sent(database: str) -> None:
    # Four sent; alice opens and clicks, bob's only open is Apple's proxy,
    # cy and dee do nothing. Another campaign's send is not counted.
    spring = [
        sent(T, recipient=r, campaign="spring") for r in ("alice", "bob", "cy", "dee")
    ]
    with EventStore(database) as store:
        store.write(spring + [sent(T, recipient="eve", campaign="fall")])
        store.record(opened(T + 10, recipient="alice", campaign="spring"))
        store.record(opened(T + 11, "apple-mpp", recipient="bob", campaign="spring"))
        store.record(clicked(T + 20, A, recipient="alice", campaign="spring"))
        from_rollups = store.stats(campaign="spring")
        from_events = store.stats(since=T, campaign="spring")
        everything = store.stats()
    expected = {
        "total": 4,
        "open_rate": {"total": 0.5, "human": 0.25, "machine": 0.25},
        "click_rate": {"total": 0.25, "human": 0.25, "machine": 0.0},
    }
    assert from_rollups["sent"] == expected
    assert from_events == {**from_rollups, "since": T}
    assert everything["sent"]["total"] == 5
    assert everything["sent"]["open_rate"]["total"] == 2 / 5
    # Sends are neither opens nor engagement.
    assert from_rollups["opens"]["total"] == 2
    assert from_rollups["engaged"] == {"total": 2, "human": 1, "machine": 1}


def test_identity_keys_are_configurable(database: str) -> None:
    with EventStore(database, identity_keys=("campaign",)) as store:
        store.write(records(*EVENTS))
        # Unique per campaign now: spring and fall.
        assert store.stats()["opens"]["unique"] == 2


def test_duplicate_event_ids_are_stored_once(store: EventStore) -> None:
    assert not store.record(EVENTS[0])
    # An event received by a webhook (a dict) is recorded the same way.
    assert not store.record(EVENTS[1].to_json_dict())
    fresh = opened(T + 400, recipient="dan")
    assert store.record(json.loads(json.dumps(fresh.to_json_dict())))
    assert store.count() == len(EVENTS) + 1


def test_events_newest_first(store: EventStore) -> None:
    events = store.events(limit=3)
    assert [e["id"] for e in events] == [r.event_id for r in EVENTS[::-1][:3]]
    assert events[0] == EVENTS[-1].to_json_dict()
    clicks = store.events(type="link.clicked", recipient="alice", limit=None)
    assert [e["tracked_url"] for e in clicks] == [B, A, A]
    assert store.events(since=T + 200, limit=None) == [
        EVENTS[-1].to_json_dict(),
        EVENTS[-2].to_json_dict(),
    ]


def bucket(
    start: int, *, opens: tuple[int, int], clicks: tuple[int, int]
) -> dict[str, int]:
    """A timeline item: ``opens`` and ``clicks`` as (all, by machines)."""
    return {
        "start": start,
        "opens": opens[0],
        "clicks": clicks[0],
        "machine": opens[1] + clicks[1],
        "opens_machine": opens[1],
        "clicks_machine": clicks[1],
    }


def test_timeline(store: EventStore) -> None:
    buckets = store.timeline(bucket_seconds=100, since=T, until=T + 400)
    start = T // 100 * 100
    assert buckets == [
        bucket(start, opens=(3, 1), clicks=(3, 0)),
        bucket(start + 100, opens=(1, 1), clicks=(1, 1)),
        bucket(start + 200, opens=(1, 0), clicks=(0, 0)),
        bucket(start + 300, opens=(1, 0), clicks=(0, 0)),
    ]
    assert len(store.timeline(bucket_seconds=1, since=T, until=T + 400)) == 400
    # Capped, keeping the most recent buckets.
    capped = store.timeline(bucket_seconds=1, since=0, until=T + 400, max_buckets=10)
    assert [b["start"] for b in capped] == list(range(T + 390, T + 400))
    assert store.timeline(bucket_seconds=60, campaign="nope") == []
    with pytest.raises(ValueError):
        store.timeline(bucket_seconds=0)


@pytest.mark.parametrize(
    "older_than",
    [
        pytest.param(
            datetime.datetime.fromtimestamp(T + 100, datetime.timezone.utc),
            id="datetime",
        ),
        pytest.param("age", id="seconds"),
        pytest.param("timedelta", id="timedelta"),
    ],
)
def test_purge(store: EventStore, older_than: t.Any) -> None:
    age = time.time() - (T + 99.5)
    if older_than == "age":
        older_than = age
    elif older_than == "timedelta":
        older_than = datetime.timedelta(seconds=age)
    assert store.purge(older_than) == 6
    assert store.count() == 4
    assert store.stats()["opens"]["total"] == 3
    assert store.purge(older_than) == 0


def test_export_jsonl(store: EventStore) -> None:
    out = io.StringIO()
    assert store.export_jsonl(out) == len(EVENTS)
    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [r.to_json_dict() for r in EVENTS]
    out = io.StringIO()
    assert store.export_jsonl(out, campaign="fall") == 1


def test_export_csv(store: EventStore) -> None:
    out = io.StringIO(newline="")
    assert store.export_csv(out, since=T + 100) == 4
    out.seek(0)
    rows = list(csv.DictReader(out))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [row["id"] for row in rows] == [r.event_id for r in EVENTS[6:]]
    first = rows[0]
    assert first["type"] == "email.opened"
    assert first["occurred_at"] == "2023-11-14T22:15:00Z"
    assert first["machine"] == "apple-mpp"
    assert first["user_ip"] == "192.0.2.0"
    assert json.loads(first["metadata"]) == {"recipient": "bob", "campaign": "spring"}
    assert rows[1]["tracked_url"] == A


def test_export_pages_through_large_stores(database: str) -> None:
    with EventStore(database) as store:
        batch = records(*(opened(T + n, recipient=str(n)) for n in range(1234)))
        store.write(batch)
        out = io.StringIO()
        assert store.export_jsonl(out) == 1234
        timestamps = [json.loads(line)["timestamp"] for line in out.getvalue().split()]
        assert timestamps == list(range(T, T + 1234))


def test_the_same_batch_twice_stores_each_id_once(database: str) -> None:
    # A worker killed after committing a batch, before noting it, offers the
    # whole batch again; a later batch may overlap it too.
    with EventStore(database) as store:
        batch = records(*EVENTS)
        store.write(batch)
        store.write(batch)
        extra = opened(T + 400, recipient="dan")
        store.write([*batch[5:], record_of(extra)])
        assert store.count() == len(EVENTS) + 1
        ids = [event["id"] for event in store.events(limit=None)]
        assert sorted(ids) == sorted({r.event_id for r in [*EVENTS, extra]})
        assert store.stats(campaign="spring")["opens"]["total"] == 5


def malformed(change: t.Callable[[dict[str, t.Any]], object]) -> EventRecord:
    data = opened(T, recipient="mallory").to_json_dict()
    change(data)
    body = json.dumps(data).encode()
    return EventRecord(data.get("id", "evt_none"), body, json.loads(body))


def not_utf8() -> EventRecord:
    good = record_of(opened(T, recipient="mallory"))
    return good._replace(body=good.body.replace(b"mallory", b"mall\xffory"))


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        pytest.param(malformed(lambda d: d.pop("type")), "'type'", id="no-type"),
        pytest.param(malformed(lambda d: d.pop("timestamp")), "timestamp", id="no-ts"),
        pytest.param(
            malformed(lambda d: d.update(timestamp="1700000000")),
            "timestamp",
            id="text-timestamp",
        ),
        pytest.param(
            malformed(lambda d: d.update(timestamp=True)), "timestamp", id="bool-ts"
        ),
        pytest.param(
            malformed(lambda d: d.update(timestamp=10**30)),
            "cannot store|outside the years",  # SQLite | PostgreSQL
            id="huge-timestamp",
        ),
        pytest.param(
            malformed(lambda d: d.update(metadata=["x"])), "metadata", id="list-meta"
        ),
        pytest.param(malformed(lambda d: d.update(type=7)), "'type'", id="int-type"),
        pytest.param(
            malformed(lambda d: d.update(machine=["bot"])), "machine", id="list-machine"
        ),
        pytest.param(
            malformed(lambda d: d.update(metadata={"recipient": "\ud800"})),
            "cannot store",
            id="lone-surrogate",
        ),
        pytest.param(
            EventRecord("evt_other", *record_of(opened(T))[1:]), "id", id="other-id"
        ),
        pytest.param(not_utf8(), "UTF-8", id="not-utf8"),
    ],
)
def test_a_malformed_event_is_set_aside_and_the_others_written(
    database: str, caplog: pytest.LogCaptureFixture, event: EventRecord, reason: str
) -> None:
    batch = records(*EVENTS)
    with EventStore(database) as store:
        store.write([*batch[:4], event, *batch[4:]])  # does not raise
        assert store.count() == len(EVENTS)
        assert store.stats()["opens"]["total"] == 6
        store.write([event])  # offered again: still set aside once
    assert event.id in caplog.text
    assert "not stored" in caplog.text
    rows = query(database, "SELECT event_id, body, reason FROM mailtrack_rejected")
    assert len(rows) == 1
    assert rows[0][:2] == (event.id, event.body)
    assert re.search(reason, rows[0][2])


def test_record_refuses_a_malformed_event(database: str) -> None:
    data = opened(T).to_json_dict()
    del data["timestamp"]
    with EventStore(database) as store:
        with pytest.raises(ValueError, match="timestamp"):
            store.record(data)
        assert store.count() == 0


# -- SQLite only: file locks, WAL, a database in memory ---------------------------


def test_an_in_memory_store_lives_with_the_object() -> None:
    with EventStore(":memory:") as store:
        store.write(records(*EVENTS))
        assert store.stats(campaign="spring")["opens"]["total"] == 5
        assert store.path == ":memory:"
    with EventStore("sqlite://") as store:
        assert store.count() == 0


def test_reads_do_not_write(tmp_path: t.Any) -> None:
    path = tmp_path / "e.sqlite3"
    with EventStore(path) as writer:
        writer.write(records(*EVENTS))
    observer = sqlite3.connect(path, isolation_level=None)

    def data_version() -> int:
        # Changes when another connection commits to the file.
        return int(observer.execute("PRAGMA data_version").fetchone()[0])

    try:
        before = data_version()
        # Another writer holds the lock throughout, with an uncommitted row;
        # a read that wrote would wait for it and fail.
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("DELETE FROM mailtrack_events")
        with EventStore(path, busy_timeout=0.05) as reader:
            assert reader.count() == len(EVENTS)
            assert reader.stats()["opens"]["total"] == 6
            assert reader.timeline(bucket_seconds=100, since=T, until=T + 400)
            assert len(reader.events(limit=None)) == len(EVENTS)
            assert reader.export_jsonl(io.StringIO()) == len(EVENTS)
            assert reader.export_csv(io.StringIO(newline="")) == len(EVENTS)
        holder.execute("ROLLBACK")
        holder.close()
        assert data_version() == before
        with EventStore(path) as writer:
            writer.write([record_of(opened(T + 500))])
        assert data_version() != before  # the observer does see writes
    finally:
        observer.close()


def test_write_raises_while_the_database_is_locked(tmp_path: t.Any) -> None:
    path = tmp_path / "e.sqlite3"
    with EventStore(path, busy_timeout=0.05) as store:
        store.write(records(*EVENTS[:3]))
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                store.write(records(*EVENTS))
            # The stats still answer, from before the failed batch.
            assert store.stats()["opens"]["total"] == 3
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        store.write(records(*EVENTS))  # offered again once the lock is gone
        assert store.count() == len(EVENTS)


def test_the_store_is_a_sink(database: str) -> None:
    with EventStore(database) as store:
        assert isinstance(store, Sink)
        assert store.name == "store"
        store.write([])
        assert store.count() == 0


def test_buffering_options_and_flush_are_deprecated(database: str) -> None:
    for option, value in [
        ("buffered", False),
        ("max_buffer", 1),
        ("flush_interval", 1),
    ]:
        with pytest.warns(DeprecationWarning, match=option):
            EventStore(database, **{option: value}).close()
    with EventStore(database) as store:
        store.write(records(*EVENTS[:2]))
        with pytest.warns(DeprecationWarning, match="flush"):
            assert store.flush() == 0
        assert store.count() == 2


def test_connect_records_signals(database: str) -> None:
    # connect() goes through a journal and a worker of the store's own.
    pytest.importorskip("flask_mailtrack.events._pipeline")
    mine, other = object(), object()
    with EventStore(database) as store:
        store.connect(mine)
        email_opened.send(mine, result=opened(T, recipient="a"), request=None)
        link_clicked.send(mine, result=clicked(T, A, recipient="a"), request=None)
        email_opened.send(other, result=opened(T, recipient="b"), request=None)
        deadline = time.monotonic() + 30
        while store.count() < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        store.disconnect()
        email_opened.send(mine, result=opened(T, recipient="a"), request=None)
        assert store.count() == 2
        assert {e["metadata"]["recipient"] for e in store.events()} == {"a"}


def test_threads_share_a_store(database: str) -> None:
    with EventStore(database) as store:

        def work(n: int) -> None:
            for i in range(10):
                batch = [opened(T + i, recipient=f"{n}-{i}-{j}") for j in range(5)]
                store.write(records(*batch))
                store.stats()

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert store.count() == 400
        assert store.stats()["opens"]["unique"] == 400


def test_processes_share_a_store(database: str) -> None:
    path = database
    EventStore(path).close()
    code = textwrap.dedent(
        """
        import json, sys
        from flask_mailtrack import EventStore, TrackingResult
        from flask_mailtrack.events._encoding import encode_event
        from flask_mailtrack.events._sinks import EventRecord
        store = EventStore(sys.argv[1])
        for start in range(0, 200, 20):
            batch = []
            for i in range(start, start + 20):
                result = TrackingResult(is_open_tracking=True, timestamp=i,
                                        metadata={"recipient": sys.argv[2]})
                body = encode_event(result.to_json_dict())
                batch.append(EventRecord(result.event_id, body, json.loads(body)))
            store.write(batch)
            store.record(TrackingResult(is_open_tracking=True, timestamp=start,
                                        metadata={"recipient": sys.argv[2]}))
        store.close()
        """
    )
    children = [
        subprocess.Popen([sys.executable, "-c", code, path, name]) for name in "ab"
    ]
    assert [child.wait(60) for child in children] == [0, 0]
    with EventStore(path) as store:
        assert store.count() == 420
        assert store.stats()["opens"]["unique"] == 2


def test_closed_store_refuses(database: str) -> None:
    store = EventStore(database)
    store.close()
    with pytest.raises(RuntimeError):
        store.record(opened(T))
    with pytest.raises(RuntimeError):
        store.write(records(opened(T)))


def test_other_event_types_are_kept_but_not_charted(database: str) -> None:
    # The store takes whatever the journal holds; charts count opens and
    # clicks only.
    sent = malformed(lambda d: d.update(type="email.sent", id="evt_" + "5" * 32))
    with EventStore(database) as store:
        store.write([sent, *records(opened(T), clicked(T + 1, A))])
        assert store.count() == 3
        assert store.events(type="email.sent") == [sent.data]
        assert store.timeline(bucket_seconds=60) == [
            bucket(T // 60 * 60, opens=(1, 0), clicks=(1, 0))
        ]
        stats = store.stats()
        assert (stats["opens"]["total"], stats["clicks"]["total"]) == (1, 1)
