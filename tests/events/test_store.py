"""EventStore: recording, statistics with known answers, retention, export."""

from __future__ import annotations

import csv
import datetime
import io
import json
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
def store(tmp_path: t.Any) -> t.Iterator[EventStore]:
    s = EventStore(tmp_path / "events.sqlite3")
    for result in EVENTS:
        assert s.record(result)
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


def test_empty_store_has_no_rate() -> None:
    with EventStore(":memory:") as store:
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


def test_rates_cannot_exceed_one_with_clicks_without_opens() -> None:
    # Images blocked: ann clicks twice and no open is recorded; cy's only
    # open is Apple's proxy. Divided by the openers, people clicked 200%.
    with EventStore(":memory:") as store:
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


def test_identity_keys_are_configurable(tmp_path: t.Any) -> None:
    with EventStore(tmp_path / "e.sqlite3", identity_keys=("campaign",)) as store:
        for result in EVENTS:
            store.record(result)
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


def test_timeline(store: EventStore) -> None:
    buckets = store.timeline(bucket_seconds=100, since=T, until=T + 400)
    start = T // 100 * 100
    assert buckets == [
        {"start": start, "opens": 3, "clicks": 3, "machine": 1},
        {"start": start + 100, "opens": 1, "clicks": 1, "machine": 2},
        {"start": start + 200, "opens": 1, "clicks": 0, "machine": 0},
        {"start": start + 300, "opens": 1, "clicks": 0, "machine": 0},
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


def test_export_pages_through_large_stores() -> None:
    with EventStore(":memory:") as store:
        for n in range(1234):
            store.record(opened(T + n, recipient=str(n)))
        out = io.StringIO()
        assert store.export_jsonl(out) == 1234
        timestamps = [json.loads(line)["timestamp"] for line in out.getvalue().split()]
        assert timestamps == list(range(T, T + 1234))


def test_connect_records_signals(tmp_path: t.Any) -> None:
    mine, other = object(), object()
    with EventStore(tmp_path / "e.sqlite3") as store:
        store.connect(mine)
        email_opened.send(mine, result=opened(T, recipient="a"), request=None)
        link_clicked.send(mine, result=clicked(T, A, recipient="a"), request=None)
        email_opened.send(other, result=opened(T, recipient="b"), request=None)
        assert store.count() == 2
        store.disconnect()
        email_opened.send(mine, result=opened(T, recipient="a"), request=None)
        assert store.count() == 2


def test_threads_share_a_store(tmp_path: t.Any) -> None:
    with EventStore(tmp_path / "e.sqlite3") as store:

        def work(n: int) -> None:
            for i in range(50):
                store.record(opened(T + i, recipient=f"{n}-{i}"))
                store.stats()

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert store.count() == 400
        assert store.stats()["opens"]["unique"] == 400


def test_processes_share_a_store(tmp_path: t.Any) -> None:
    path = str(tmp_path / "e.sqlite3")
    EventStore(path).close()
    code = textwrap.dedent(
        """
        import sys
        from flask_mailtrack import EventStore, TrackingResult
        store = EventStore(sys.argv[1])
        for i in range(200):
            store.record(TrackingResult(is_open_tracking=True, timestamp=i,
                                        metadata={"recipient": sys.argv[2]}))
        store.close()
        """
    )
    children = [
        subprocess.Popen([sys.executable, "-c", code, path, name]) for name in "ab"
    ]
    assert [child.wait(60) for child in children] == [0, 0]
    with EventStore(path) as store:
        assert store.count() == 400
        assert store.stats()["opens"]["unique"] == 2


def test_closed_store_refuses() -> None:
    store = EventStore(":memory:")
    store.close()
    with pytest.raises(RuntimeError):
        store.record(opened(T))


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "direct"])
def test_signal_events_reach_the_file(tmp_path: t.Any, buffered: bool) -> None:
    path = tmp_path / "e.sqlite3"
    store = EventStore(path, buffered=buffered).connect()
    try:
        for n in range(50):
            email_opened.send(None, result=opened(T + n, recipient=str(n)))
        # Another reader of the file sees them once flushed (reads by the
        # store itself flush first).
        store.flush()
        with EventStore(path) as reader:
            assert reader.count() == 50
    finally:
        store.close()


def test_close_writes_pending_events(tmp_path: t.Any) -> None:
    path = tmp_path / "e.sqlite3"
    store = EventStore(path).connect()
    for n in range(20):
        link_clicked.send(None, result=clicked(T + n, A, recipient=str(n)))
    store.close()
    with EventStore(path) as reader:
        assert reader.stats()["clicks"]["unique"] == 20


def test_full_buffer_is_written_by_the_receiving_thread(tmp_path: t.Any) -> None:
    path = tmp_path / "e.sqlite3"
    with EventStore(path, max_buffer=1) as store, EventStore(path) as reader:
        store.connect()
        for n in range(3):
            email_opened.send(None, result=opened(T + n, recipient=str(n)))
            # Written before send() returned, without waiting for the writer.
            assert reader.count() == n + 1


def test_close_does_not_wait_out_the_flush_interval(tmp_path: t.Any) -> None:
    store = EventStore(tmp_path / "events.sqlite3", flush_interval=3600).connect()
    try:
        email_opened.send(None, result=opened(T, recipient="alice"))
        # The writer thread is now waiting out its hour.
        closer = threading.Thread(target=store.close)
        closer.start()
        closer.join(60)
        assert not closer.is_alive(), "close() waited for the flush interval"
    finally:
        store.disconnect()
    with EventStore(tmp_path / "events.sqlite3") as reopened:
        assert reopened.count() == 1
