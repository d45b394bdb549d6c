"""Read the tracking events that ``mailtrack worker`` appends to a Redis
stream (``MAILTRACK_REDIS_URL``), here into an SQLite table of your own.

Several copies may run at once, on one machine or several: they share the
work through a *consumer group*. Each reads new entries (``XREADGROUP``),
handles them and acknowledges them (``XACK``). An entry read by a consumer
that crashed before acknowledging it stays pending; after ``--claim-idle``
seconds another consumer takes it over (``XAUTOCLAIM``) and handles it.

An event can therefore be handled twice, and the stream itself may hold an
event twice (delivery is at least once): deduplicating on the event ``id``
is the consumer's job. Here the table's primary key does it.

Run it from the project root::

    pip install -e '.[redis]'
    python examples/redis_consumer.py redis://localhost:6379/0 --name worker-1

and stop it with Ctrl-C or SIGTERM: it finishes the entries in hand and
exits within a second.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sqlite3
import threading
import typing as t

import redis

GROUP = "mailtrack-example"
#: Entries per read.
BATCH = 100


def ensure_group(client: redis.Redis, stream: str, group: str = GROUP) -> None:
    """Create the consumer group (and the stream, if the worker has not yet
    written it). A new group starts with the oldest entry still in the
    stream; use ``id="$"`` to start with the next new one instead."""
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as e:
        if not str(e).startswith("BUSYGROUP"):  # it exists already: fine
            raise


def store(database: sqlite3.Connection, event: dict[str, t.Any]) -> None:
    """Your work. It must be idempotent on ``event["id"]``: the same event
    may come twice. ``INSERT OR IGNORE`` on the primary key makes it so."""
    with database:
        database.execute(
            "INSERT OR IGNORE INTO events (id, type, occurred_at, body)"
            " VALUES (?, ?, ?, ?)",
            (event["id"], event["type"], event["occurred_at"], json.dumps(event)),
        )


def handle(
    client: redis.Redis,
    stream: str,
    entries: t.Iterable[tuple[bytes, dict[bytes, bytes]]],
    database: sqlite3.Connection,
    group: str = GROUP,
) -> int:
    """Handle each entry, then acknowledge it; return how many."""
    count = 0
    for entry_id, fields in entries:
        store(database, json.loads(fields[b"event"]))
        # After the work, never before: a crash in between leaves the entry
        # pending, to be handled again, not lost.
        client.xack(stream, group, entry_id)
        count += 1
    return count


def consume_once(
    client: redis.Redis,
    stream: str,
    consumer: str,
    database: sqlite3.Connection,
    *,
    group: str = GROUP,
    claim_idle_ms: int = 60_000,
    block_ms: int = 5_000,
) -> int:
    """One round: take over entries that another consumer has held for
    ``claim_idle_ms`` without acknowledging them, then read new entries
    (waiting up to ``block_ms`` for some). Return how many were handled."""
    handled = 0
    start = "0-0"
    while True:
        # Entries trimmed away (MAXLEN) while pending come back as deleted
        # ids, and Redis drops them from the pending list.
        start, claimed, _deleted = client.xautoclaim(
            stream, group, consumer, claim_idle_ms, start_id=start, count=BATCH
        )
        handled += handle(client, stream, claimed, database, group)
        if start in (b"0-0", "0-0"):
            break
    for _stream, entries in client.xreadgroup(
        group, consumer, {stream: ">"}, count=BATCH, block=block_ms
    ):
        handled += handle(client, stream, entries, database, group)
    return handled


def resume(
    client: redis.Redis,
    stream: str,
    consumer: str,
    database: sqlite3.Connection,
    group: str = GROUP,
) -> int:
    """Handle the entries this consumer (by its name) read before it
    stopped and did not acknowledge: its pending list, read from ``0``."""
    handled = 0
    while True:
        reply = client.xreadgroup(group, consumer, {stream: "0"}, count=BATCH)
        entries = reply[0][1] if reply else []
        if not entries:
            return handled
        handled += handle(client, stream, entries, database, group)


def open_database(path: str) -> sqlite3.Connection:
    database = sqlite3.connect(path)
    database.execute(
        "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, type TEXT,"
        " occurred_at TEXT, body TEXT)"
    )
    return database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", default="redis://localhost:6379/0")
    parser.add_argument("--stream", default="mailtrack:events")
    parser.add_argument("--group", default=GROUP)
    parser.add_argument(
        "--name",
        default=socket.gethostname(),
        help="this consumer's name in the group; keep it across restarts",
    )
    parser.add_argument("--database", default="events.sqlite3")
    parser.add_argument("--claim-idle", type=float, default=60.0, metavar="SECONDS")
    args = parser.parse_args()

    client = redis.Redis.from_url(args.url)
    database = open_database(args.database)
    ensure_group(client, args.stream, args.group)
    total = resume(client, args.stream, args.name, database, args.group)

    # Ctrl-C and SIGTERM ask the loop to stop between rounds, so that the
    # entries in hand are stored and acknowledged first; each round waits
    # at most a second for new entries.
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(f"{args.name}: consuming {args.stream} as group {args.group}", flush=True)
    try:
        while not stopping.is_set():
            total += consume_once(
                client,
                args.stream,
                args.name,
                database,
                group=args.group,
                claim_idle_ms=int(args.claim_idle * 1000),
                block_ms=1_000,
            )
    finally:
        database.close()
        client.close()
    print(f"{args.name}: handled {total} entries", flush=True)


if __name__ == "__main__":
    main()
