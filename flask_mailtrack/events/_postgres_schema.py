"""The event store's tables on PostgreSQL: creation, migrations, partitions.

The tables are those of the SQLite store (``mailtrack_events``, the rollups
``mailtrack_hourly``, ``mailtrack_recipients`` and
``mailtrack_link_recipients``, ``mailtrack_rejected``, the version in
``mailtrack_schema``) in the first schema of the connection's
``search_path``, with PostgreSQL's types and two differences:

- ``mailtrack_events`` is partitioned by ``occurred_at``, one partition per
  UTC month (``mailtrack_events_p202605``), created by the writer when an
  event of a new month comes (:func:`ensure_partitions`) and dropped whole by
  ``purge``. Its unique key is ``(event_id, occurred_at)``, as a unique key
  of a partitioned table must hold the partition key; an event offered again
  has the same ``occurred_at``, so this is one row per event id.
- ``metadata`` is ``jsonb``, for filters; the event as received stays in
  ``data``, as text.

Text keys use the ``"C"`` collation: byte order, the same as SQLite's and
whatever the database's locale, and the cheapest to compare.

Migrations run under a transaction-level advisory lock, so several workers
starting at once on several machines migrate once; the others wait for the
lock, then find the schema current.
"""

from __future__ import annotations

import calendar
import time
import typing as t

if t.TYPE_CHECKING:  # pragma: no cover
    import psycopg

from ._store_backend import SCHEMA_VERSION as VERSION

#: First key of the advisory locks (``'mt'``); the second is a hash of the
#: schema the tables are in, so stores in different schemas do not wait for
#: each other.
_LOCK_CLASS = 0x6D74
_LOCK_SCHEMA = "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))"

#: The whole schema at :data:`VERSION`, for an empty database. PostgreSQL has
#: no version 1: the SQLite store's version 1 predates this backend.
CREATE = """
CREATE TABLE IF NOT EXISTS mailtrack_schema (version integer NOT NULL);
CREATE SEQUENCE IF NOT EXISTS mailtrack_events_id_seq AS bigint;
CREATE TABLE IF NOT EXISTS mailtrack_events (
    id bigint NOT NULL DEFAULT nextval('mailtrack_events_id_seq'),
    event_id text COLLATE "C" NOT NULL,
    type text COLLATE "C" NOT NULL,
    occurred_at bigint NOT NULL,
    machine text COLLATE "C",
    tracked_url text COLLATE "C",
    identity text COLLATE "C" NOT NULL,
    metadata jsonb NOT NULL,
    data text NOT NULL,
    CONSTRAINT mailtrack_events_event_id UNIQUE (event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);
ALTER SEQUENCE mailtrack_events_id_seq OWNED BY mailtrack_events.id;
CREATE INDEX IF NOT EXISTS mailtrack_events_time
    ON mailtrack_events (occurred_at, id);
CREATE INDEX IF NOT EXISTS mailtrack_events_identity
    ON mailtrack_events ((md5(identity)::uuid), occurred_at, id);
CREATE TABLE IF NOT EXISTS mailtrack_dimensions (name text COLLATE "C" PRIMARY KEY);
CREATE TABLE IF NOT EXISTS mailtrack_hourly (
    dimension text COLLATE "C" NOT NULL,
    value text COLLATE "C" NOT NULL,
    hour bigint NOT NULL,
    type text COLLATE "C" NOT NULL,
    url text COLLATE "C" NOT NULL,
    machine text COLLATE "C" NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (dimension, value, hour, type, url, machine)
) WITH (fillfactor = 85);
CREATE TABLE IF NOT EXISTS mailtrack_recipients (
    dimension text COLLATE "C" NOT NULL,
    value text COLLATE "C" NOT NULL,
    identity text COLLATE "C" NOT NULL,
    opened_human bigint NOT NULL DEFAULT 0,
    opened_machine bigint NOT NULL DEFAULT 0,
    clicked_human bigint NOT NULL DEFAULT 0,
    clicked_machine bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (dimension, value, identity)
) WITH (fillfactor = 85);
CREATE TABLE IF NOT EXISTS mailtrack_link_recipients (
    dimension text COLLATE "C" NOT NULL,
    value text COLLATE "C" NOT NULL,
    url text COLLATE "C" NOT NULL,
    identity text COLLATE "C" NOT NULL,
    human bigint NOT NULL DEFAULT 0,
    machine bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (dimension, value, url, identity)
) WITH (fillfactor = 85);
CREATE TABLE IF NOT EXISTS mailtrack_rejected (
    event_id text PRIMARY KEY,
    body bytea NOT NULL,
    reason text NOT NULL,
    rejected_at double precision NOT NULL
);
"""

#: Migrations from version ``n`` (the key) to ``n + 1``, run in order. The
#: first PostgreSQL schema is version 2, made whole by :data:`CREATE`.
MIGRATIONS: dict[int, str] = {
    # 3: the events of one recipient, oldest first (related_events). On a
    # hash of the identity, which may be longer than a B-tree entry can be
    # (the whole metadata when it has no identity key).
    2: """
CREATE INDEX IF NOT EXISTS mailtrack_events_identity
    ON mailtrack_events ((md5(identity)::uuid), occurred_at, id)
""",
}

#: Staging tables of one connection, for COPY: rows of the batch in hand,
#: emptied by every commit. ``id`` takes its value from the events' sequence
#: in the order of the batch, so stored events keep the worker's order.
STAGING = """
CREATE TEMP TABLE IF NOT EXISTS mailtrack_staged_events (
    id bigint NOT NULL DEFAULT nextval('mailtrack_events_id_seq'),
    event_id text COLLATE "C", type text COLLATE "C", occurred_at bigint,
    machine text COLLATE "C", tracked_url text COLLATE "C",
    identity text COLLATE "C", metadata text, data text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS mailtrack_staged_hourly
    (LIKE mailtrack_hourly) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS mailtrack_staged_recipients
    (LIKE mailtrack_recipients) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS mailtrack_staged_link_recipients
    (LIKE mailtrack_link_recipients) ON COMMIT DELETE ROWS;
"""


def lock_schema(connection: psycopg.Connection[t.Any], *, shared: bool = False) -> None:
    """Take the migration lock of the tables' schema until the end of the
    transaction: exclusive to migrate, shared to write a batch (so that a
    backfill running at the same time cannot miss it)."""
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    connection.execute(
        f"SELECT {function}(%s, hashtext(current_schema()))", (_LOCK_CLASS,)
    )


def version(connection: psycopg.Connection[t.Any]) -> int:
    """The schema version: 0 for a database without the store's tables, 1
    for ``mailtrack_events`` without ``mailtrack_schema``.

    The tables are looked for in the schema they are created in (the first
    of the ``search_path`` that exists), in one statement: one snapshot,
    whatever another process is creating meanwhile.
    """
    rows = connection.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = ("
        " SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
        " AND relname IN ('mailtrack_schema', 'mailtrack_events')"
    ).fetchall()
    tables = {row[0] for row in rows}
    if "mailtrack_schema" not in tables:
        return 1 if "mailtrack_events" in tables else 0
    row = connection.execute("SELECT max(version) FROM mailtrack_schema").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def recorded_dimensions(connection: psycopg.Connection[t.Any]) -> set[str]:
    """The dimensions whose rollups are complete."""
    rows = connection.execute("SELECT name FROM mailtrack_dimensions").fetchall()
    return {row[0] for row in rows}


def create(connection: psycopg.Connection[t.Any]) -> None:
    """Create every table at :data:`VERSION`, in the current transaction
    (which holds the migration lock)."""
    connection.execute(CREATE)
    connection.execute("INSERT INTO mailtrack_schema (version) VALUES (%s)", (VERSION,))


def migrate(connection: psycopg.Connection[t.Any], before: int) -> None:
    """Run the migrations from version ``before`` (at least 2) to
    :data:`VERSION`, in the current transaction."""
    for number in range(before, VERSION):
        connection.execute(MIGRATIONS[number])
    connection.execute("UPDATE mailtrack_schema SET version = %s", (VERSION,))


# -- month partitions ----------------------------------------------------------


#: ``occurred_at`` bounds of the months a partition can hold: years 1 to 9999.
EARLIEST = calendar.timegm((1, 1, 1, 0, 0, 0))
LATEST = calendar.timegm((9999, 12, 31, 0, 0, 0)) + 86400


def month_of(occurred_at: int) -> int:
    """The month of ``occurred_at`` (UTC) as ``year * 100 + month``, the
    suffix of its partition's name; for a time in years 1 to 9999."""
    tm = time.gmtime(occurred_at)
    return tm.tm_year * 100 + tm.tm_mon


def month_bounds(month: int) -> tuple[int, int]:
    """The first second of ``month`` and of the next one."""
    year, number = divmod(month, 100)
    start = calendar.timegm((year, number, 1, 0, 0, 0))
    if month == 999912:
        return start, LATEST
    year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    return start, calendar.timegm((year, number, 1, 0, 0, 0))


def partition_name(month: int) -> str:
    """The name of ``month``'s partition: ``mailtrack_events_p202605``."""
    return f"mailtrack_events_p{month:06d}"


def partitions(connection: psycopg.Connection[t.Any]) -> dict[int, str]:
    """The partitions of ``mailtrack_events``, by month."""
    rows = connection.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'mailtrack_events'::regclass"
    ).fetchall()
    found: dict[int, str] = {}
    prefix = partition_name(0)[:-6]
    for (name,) in rows:
        suffix = name[len(prefix) :]
        if name.startswith(prefix) and suffix.isdigit():
            found[int(suffix)] = name
    return found


def lock_partitions(connection: psycopg.Connection[t.Any]) -> None:
    """Take the lock of partition changes (creation, purge) until the end
    of the transaction."""
    connection.execute(_LOCK_SCHEMA, (_LOCK_CLASS + 1,))


def ensure_partitions(
    connection: psycopg.Connection[t.Any], months: t.Iterable[int]
) -> None:
    """Create the partitions of ``months`` that are missing, in a transaction
    of their own (the connection must be outside one).

    Race-safe: creators take an advisory lock (per schema) and look again
    once they hold it, so two workers never create the same partition.
    """
    with connection.transaction():
        lock_partitions(connection)
        existing = partitions(connection)
        for month in sorted(set(months) - set(existing)):
            start, end = month_bounds(month)
            connection.execute(
                f"CREATE TABLE {partition_name(month)} PARTITION OF"
                f" mailtrack_events FOR VALUES FROM ({start}) TO ({end})"
            )
