"""EventStore.campaigns() and related_events(): every campaign's figures are those of
``stats(campaign=...)`` (from the rollups and from a scan of the events),
with the machine share, first and last event, a daily sparkline and rates
that never exceed 1; the events of one recipient, by an index that a
version 2 database gets when migrated; on every backend."""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
import time
import typing as t

import pytest
from flask_mailtrack import ConfigurationError
from flask_mailtrack import EventStore
from flask_mailtrack.events._encoding import encode_event
from flask_mailtrack.events._sinks import EventRecord

DAY = 86400
HOUR = 3600

#: Campaign values of every JSON type; 42 and "42" are one campaign, the
#: others that are not a str or an int are not rolled up.
CAMPAIGNS: list[t.Any] = ["spring", "fall", 42, "42", True, 4.5, None, "missing"]
LABELS = [None, None, None, "apple-mpp", "scanner"]


def event(
    event_id: str,
    kind: str,
    at: float,
    machine: str | None = None,
    url: str | None = None,
    **metadata: t.Any,
) -> EventRecord:
    data: dict[str, t.Any] = {
        "schema": 1,
        "id": event_id,
        "type": kind,
        "timestamp": at,
        "metadata": metadata,
        "machine": machine,
        "machine_reasons": [machine] if machine else [],
    }
    if url is not None:
        data["tracked_url"] = url
    body = encode_event(data)
    return EventRecord(event_id, body, json.loads(body))


def random_events(seed: int, now: int, n: int = 500) -> list[EventRecord]:
    """``n`` events of every kind over the last 20 days: sends, opens and
    clicks, people and machines, campaigns of every type or none."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = rng.choices(["email.opened", "link.clicked", "email.sent"], [5, 3, 2])[0]
        metadata: dict[str, t.Any] = {"recipient": f"r{rng.randrange(15)}"}
        campaign = rng.choice(CAMPAIGNS)
        if campaign != "missing":
            metadata["campaign"] = campaign
        if rng.random() < 0.1:
            del metadata["recipient"]  # the whole metadata identifies
        url = rng.choice(["https://example.com/a", None])
        out.append(
            event(
                f"evt_{seed:08x}{i:024x}",
                kind,
                now - rng.randrange(20 * DAY) + rng.random(),
                None if kind == "email.sent" else rng.choice(LABELS),
                url if kind == "link.clicked" else None,
                **metadata,
            )
        )
    return out


def name_of(record: EventRecord) -> str | None:
    """The campaign of an event as the rollups key it, or ``None``."""
    value = record.data["metadata"].get("campaign")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value)


def clamp(rate: float | None) -> float | None:
    return None if rate is None else min(rate, 1.0)


def check_item(item: dict[str, t.Any], stats: dict[str, t.Any]) -> None:
    """``item`` has the figures of ``stats``, its rates on the right basis."""
    assert item["sent"] == stats["sent"]["total"]
    for kind in ("opens", "clicks"):
        assert item[kind] == {
            "unique": stats[kind]["unique"],
            "human": stats[kind]["human"]["unique"],
            "machine": stats[kind]["machine"]["unique"],
        }
    assert item["engaged"] == stats["engaged"]
    if stats["sent"]["total"]:
        basis = "sent"
        opens, clicks = stats["sent"]["open_rate"], stats["sent"]["click_rate"]
    else:
        basis = "engaged"
        opens, clicks = stats["open_rate"], stats["click_through_rate"]
    for name, rates in (("open_rate", opens), ("click_rate", clicks)):
        assert item[name] == {
            "human": clamp(rates["human"]),
            "total": clamp(rates["total"]),
            "basis": basis,
        }
        for side in ("human", "total"):
            assert item[name][side] is None or 0 <= item[name][side] <= 1
    events = stats["opens"]["total"] + stats["clicks"]["total"]
    machines = stats["opens"]["machine"]["total"] + stats["clicks"]["machine"]["total"]
    assert item["machine_share"] == (machines / events if events else None)


def check_times(
    item: dict[str, t.Any], mine: list[EventRecord], days: int, today: range
) -> None:
    """``first``, ``last`` and ``daily`` of ``item`` are those of the events
    ``mine``; the last day of ``daily`` is in ``today``."""
    hours = [int(r.data["timestamp"]) // HOUR * HOUR for r in mine]
    assert (item["first"], item["last"]) == (min(hours), max(hours))
    starts = [day["start"] for day in item["daily"]]
    assert starts[-1] in today
    assert starts == [starts[-1] - (days - 1 - i) * DAY for i in range(days)]
    for day in item["daily"]:
        on_day = [
            r
            for r in mine
            if day["start"] <= int(r.data["timestamp"]) < day["start"] + DAY
        ]
        assert day["opens"] == sum(r.data["type"] == "email.opened" for r in on_day)
        assert day["clicks"] == sum(r.data["type"] == "link.clicked" for r in on_day)


@pytest.mark.parametrize("days", [1, 14])
def test_campaigns_are_their_stats(database: str, days: int) -> None:
    now = int(time.time())
    records = random_events(1, now)
    with EventStore(database) as store:
        store.write(records)
        before = time.time()
        campaigns = store.campaigns(days=days)
        (every,) = store.campaigns(None, days=days)
        today = range(int(before) // DAY * DAY, int(time.time()) // DAY * DAY + 1)
        scanned = EventStore(database)
        scanned._read_rollups = False
        try:
            assert {item["campaign"] for item in campaigns} == {"spring", "fall", "42"}
            for item in campaigns:
                stats = store.stats(campaign=item["campaign"])
                # The scan reads the events themselves.
                assert stats == scanned.stats(campaign=item["campaign"])
                check_item(item, stats)
                mine = [r for r in records if name_of(r) == item["campaign"]]
                check_times(item, mine, days, today)
            assert every["campaign"] is None
            check_item(every, scanned.stats())
            check_times(every, records, days, today)
        finally:
            scanned.close()
    # The most recent activity first.
    lasts = [item["last"] for item in campaigns]
    assert lasts == sorted(lasts, reverse=True)


def test_one_campaign_is_its_item(database: str) -> None:
    with EventStore(database) as store:
        store.write(random_events(2, int(time.time())))
        for item in store.campaigns():
            assert store.campaign(item["campaign"]) == item
        assert store.campaign(None) == store.campaigns(None)[0]
        nothing = store.campaign("nothing", days=2)
    assert nothing["campaign"] == "nothing" and nothing["sent"] == 0
    assert (nothing["first"], nothing["last"], len(nothing["daily"])) == (None, None, 2)


def test_rates_per_email_sent_or_per_engaged_recipient(database: str) -> None:
    at = int(time.time()) - 60
    spring = [
        # One email recorded as sent, three recipients open it (the list
        # was sent before tracking was set up): the rate stays at 1.
        event("evt_s1", "email.sent", at, recipient="a", campaign="spring"),
        event("evt_s2", "email.opened", at, recipient="a", campaign="spring"),
        event("evt_s3", "email.opened", at, recipient="b", campaign="spring"),
        event(
            "evt_s4", "email.opened", at, "apple-mpp", recipient="c", campaign="spring"
        ),
        event("evt_s5", "link.clicked", at, recipient="a", campaign="spring"),
    ]
    fall = [
        # Nothing sent: per engaged recipient. b only clicks (images off).
        event("evt_f1", "email.opened", at, recipient="a", campaign="fall"),
        event("evt_f2", "link.clicked", at, recipient="b", campaign="fall"),
        event(
            "evt_f3", "email.opened", at, "apple-mpp", recipient="c", campaign="fall"
        ),
    ]
    with EventStore(database) as store:
        store.write(spring + fall)
        by_name = {item["campaign"]: item for item in store.campaigns()}
    assert by_name["spring"]["sent"] == 1
    assert by_name["spring"]["open_rate"] == {
        "human": 1.0,
        "total": 1.0,
        "basis": "sent",
    }
    assert by_name["spring"]["click_rate"] == {
        "human": 1.0,
        "total": 1.0,
        "basis": "sent",
    }
    assert by_name["spring"]["machine_share"] == 1 / 4
    assert by_name["fall"]["sent"] == 0
    assert by_name["fall"]["engaged"] == {"total": 3, "human": 2, "machine": 1}
    assert by_name["fall"]["open_rate"] == {
        "human": 1 / 2,
        "total": 2 / 3,
        "basis": "engaged",
    }
    assert by_name["fall"]["click_rate"] == {
        "human": 1 / 2,
        "total": 1 / 3,
        "basis": "engaged",
    }
    assert by_name["fall"]["opens"] == {"unique": 2, "human": 1, "machine": 1}


def test_campaigns_of_an_empty_store(database: str) -> None:
    with EventStore(database) as store:
        assert store.campaigns() == []
        (every,) = store.campaigns(None, days=3)
    assert every["campaign"] is None and every["sent"] == 0
    assert every["opens"] == {"unique": 0, "human": 0, "machine": 0}
    assert every["open_rate"] == {"human": None, "total": None, "basis": "engaged"}
    assert every["machine_share"] is None
    assert (every["first"], every["last"]) == (None, None)
    assert [(d["opens"], d["clicks"]) for d in every["daily"]] == [(0, 0)] * 3


def test_campaigns_of_another_key(database: str) -> None:
    at = int(time.time())
    with EventStore(database, dimensions=("campaign_id",)) as store:
        store.write(
            [
                event("evt_1", "email.opened", at, recipient="a", campaign_id="x"),
                event("evt_2", "email.opened", at, recipient="a", campaign="y"),
            ]
        )
        assert [item["campaign"] for item in store.campaigns("campaign_id")] == ["x"]
        # Not rolled up: an error that says how to roll it up, not a scan.
        with pytest.raises(ValueError, match="MAILTRACK_DIMENSIONS"):
            store.campaigns()
        with pytest.raises(ValueError, match="days"):
            store.campaigns("campaign_id", days=0)


# -- the events of one recipient -------------------------------------------------


def test_related_events(database: str) -> None:
    at = 1_700_000_000
    alice = {"recipient": "alice", "campaign": "spring"}
    records = [
        event(
            "evt_a3", "link.clicked", at + 30, None, "https://example.com/a", **alice
        ),
        event("evt_a1", "email.sent", at, **alice),
        event("evt_b1", "email.opened", at + 5, recipient="bob", campaign="spring"),
        event("evt_a2", "email.opened", at + 10, "apple-mpp", **alice),
        # Another campaign: another email, the same recipient identity.
        event("evt_a4", "email.opened", at + 40, recipient="alice", campaign="fall"),
        # No identity key: the whole metadata identifies.
        event("evt_n1", "email.opened", at, list="x"),
        event("evt_n2", "email.opened", at + 1, list="x"),
    ]
    with EventStore(database) as store:
        store.write(records)
        ids = [e["id"] for e in store.related_events("evt_a3")]
        assert ids == ["evt_a1", "evt_a2", "evt_a3", "evt_a4"]
        assert store.related_events("evt_a1") == store.related_events("evt_a4")
        assert [e["id"] for e in store.related_events("evt_a2", limit=2)] == [
            "evt_a1",
            "evt_a2",
        ]
        assert [e["id"] for e in store.related_events("evt_b1")] == ["evt_b1"]
        assert [e["id"] for e in store.related_events("evt_n2")] == ["evt_n1", "evt_n2"]
        first = store.related_events("evt_a1")[0]
        assert first == records[1].data
        assert store.related_events("evt_unknown") == []
        assert store.related_events("") == []
        with pytest.raises(ValueError):
            store.related_events("evt_a1", limit=0)


def identity_index_used(database: str) -> bool:
    """Whether the database runs the query of related_events by the index
    (on PostgreSQL, each partition's index has a name of its own)."""
    if "://" not in database:
        with contextlib.closing(sqlite3.connect(database)) as db:
            rows = db.execute(
                "EXPLAIN QUERY PLAN SELECT data FROM mailtrack_events"
                " WHERE identity = ? ORDER BY occurred_at, id LIMIT 500",
                ("x",),
            ).fetchall()
        return "mailtrack_events_identity" in " ".join(str(row) for row in rows)
    import psycopg

    with psycopg.connect(database) as connection:
        # Tiny tables are scanned whatever the indexes: ask whether the
        # index can answer at all.
        connection.execute("SET enable_seqscan = off")
        rows = connection.execute(
            "EXPLAIN SELECT data FROM mailtrack_events"
            " WHERE md5(identity)::uuid = md5('x')::uuid AND identity = 'x'"
            " ORDER BY occurred_at, id LIMIT 500"
        ).fetchall()
    return "Index Cond: ((md5(identity))::uuid" in " ".join(row[0] for row in rows)


def test_a_version_2_database_gets_the_identity_index(database: str) -> None:
    at = 1_700_000_000
    with EventStore(database) as store:
        store.write([event("evt_1", "email.opened", at, recipient="a")])
    assert identity_index_used(database)
    # Back to version 2: the index did not exist.
    statements = [
        "DROP INDEX mailtrack_events_identity",
        "UPDATE mailtrack_schema SET version = 2",
    ]
    if "://" in database:
        import psycopg

        with psycopg.connect(database) as connection:
            for sql in statements:
                connection.execute(sql)
    else:
        with contextlib.closing(sqlite3.connect(database)) as db:
            for sql in statements:
                db.execute(sql)
            db.commit()
    assert not identity_index_used(database)
    with pytest.raises(ConfigurationError, match="mailtrack db upgrade"):
        EventStore(database, migrate=False)
    with EventStore(database) as store:
        assert store.schema_version() == 3
        assert [e["id"] for e in store.related_events("evt_1")] == ["evt_1"]
    assert identity_index_used(database)
