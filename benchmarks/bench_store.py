"""The SQLite event store as a sink: how fast the worker can write it.

- ``EventStore.write`` in batches of 1,000 realistic events (``_events``,
  as ``bench_postgres.py`` writes them), with their rollups, into a fresh
  file and into a file already holding 200,000 events, where the unique
  event-id index is large. WAL mode, ``synchronous=NORMAL``, as the store's
  connection pool sets them. The worker's journal-to-SQLite path targets
  10,000 events/s, so the store alone should be well above that.
- The same batches offered again (one row per event id: nothing written).
- ``EventStore.stats()`` over 200,000 events, for the record.

(Issue 12 also compared a unique index with a progress row for
idempotence; the index won and the store keeps it. PostgreSQL has
``bench_postgres.py``.)

Run: ``python benchmarks/bench_store.py`` (about a minute; run it twice).
"""

from __future__ import annotations

import pathlib
import sqlite3
import sys
import tempfile
import time
import typing as t

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _common  # noqa: E402
from _events import records  # noqa: E402
from flask_mailtrack import EventStore  # noqa: E402
from flask_mailtrack.events._sinks import EventRecord  # noqa: E402
from flask_mailtrack.events._sqlite import ConnectionPool  # noqa: E402

BATCH = 1000
TIMED_BATCHES = 50
PREFILL = 200_000


def batches(events: list[EventRecord]) -> t.Iterator[list[EventRecord]]:
    for i in range(0, len(events), BATCH):
        yield events[i : i + BATCH]


def events_per_second(writer: EventStore, events: list[EventRecord]) -> float:
    started = time.perf_counter()
    for batch in batches(events):
        writer.write(batch)
    return len(events) / (time.perf_counter() - started)


def measure(
    timed: list[EventRecord], prefill: list[EventRecord]
) -> tuple[float, float]:
    """events/s into a fresh file, and into one holding ``prefill``."""
    with tempfile.TemporaryDirectory() as directory:
        writer = EventStore(f"{directory}/fresh.sqlite3")
        fresh = events_per_second(writer, timed)
        writer.close()
        writer = EventStore(f"{directory}/full.sqlite3")
        for batch in batches(prefill):
            writer.write(batch)
        full = events_per_second(writer, timed)
        writer.close()
    return fresh, full


def main() -> None:
    print("Preparing events...", file=sys.stderr)
    prefill = records(0, PREFILL)
    timed = records(PREFILL, BATCH * TIMED_BATCHES)
    with tempfile.TemporaryDirectory() as directory:
        pool = ConnectionPool(f"{directory}/probe.sqlite3", "")
        with pool.connection() as connection:
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
            sync = connection.execute("PRAGMA synchronous").fetchone()[0]
        pool.close()
    print(
        f"SQLite {sqlite3.sqlite_version}, journal_mode={mode}, synchronous={sync}"
        f" (1 = NORMAL); batches of {BATCH}, {len(timed):,} events timed",
    )
    print()
    print(f"{'events/s':<52}{'fresh file':>12}{'200k events':>14}")
    fresh, full = measure(timed, prefill)
    label = "EventStore.write (with rollups)"
    print(f"{label:<52}{fresh:>12,.0f}{full:>14,.0f}")
    with tempfile.TemporaryDirectory() as directory:
        store = EventStore(f"{directory}/stats.sqlite3")
        for batch in batches(prefill):
            store.write(batch)
        again = events_per_second(store, prefill[: BATCH * 10])
        seconds = _common.best_seconds(store.stats, number=1, repeat=3)
        campaign = _common.best_seconds(
            lambda: store.stats(campaign="spring-3"), number=1, repeat=3
        )
        store.close()
    print()
    print(f"Offered again (all 10,000 already stored): {again:,.0f} events/s")
    print(f"stats() over {PREFILL:,} events: {seconds * 1000:,.0f} ms")
    print(f"stats(campaign=...) over {PREFILL:,} events: {campaign * 1000:,.0f} ms")


if __name__ == "__main__":
    main()
