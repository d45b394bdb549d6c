"""Writing the PostgreSQL event store: a batch of events and its rollups in
one transaction.

The fastest idempotent way measured (``benchmarks/bench_postgres.py``):
``COPY`` the batch (binary) into a temporary staging table, then ``INSERT ...
SELECT ... ON CONFLICT DO NOTHING RETURNING event_id`` into the events, so
that only the events this transaction inserted are rolled up; their rollup
changes (``_store_rollups``) are staged by ``COPY`` too and upserted. The
rollups are computed while the server inserts (pipeline mode), for the
whole batch, as a batch is usually all new. A
writer offering an event another writer has inserted but not committed
waits for that transaction: it skips the event if the other commits and
stores it if the other rolls back, so two workers offering the same batch
at once count it once. Keys go in sorted, so two writers cannot deadlock.
"""

from __future__ import annotations

import json
import time
import typing as t

from . import _postgres_schema as schema
from ._store_backend import Rejection
from ._store_backend import StoredEvent
from ._store_rollups import Rollup
from ._store_rollups import rollup

if t.TYPE_CHECKING:  # pragma: no cover
    import psycopg

COLUMNS = "event_id, type, occurred_at, machine, tracked_url, identity, metadata, data"

#: The columns of :func:`stored_event`.
SELECT = (
    "event_id, type, occurred_at, machine, tracked_url, identity, metadata::text, data"
)

# Binary: the event's JSON goes as it is, not escaped by psycopg and
# unescaped by the server (measured: 3.7 instead of 6.1 us per event).
_COPY_EVENTS = f"COPY mailtrack_staged_events ({COLUMNS}) FROM STDIN (FORMAT BINARY)"
_EVENT_TYPES = ("text", "text", "int8", "text", "text", "text", "text", "text")

# Sorted by id: locks on the unique index are taken in the same order by
# every writer, and ids (given in batch order) stay in batch order.
_INSERT_EVENTS = (
    f"INSERT INTO mailtrack_events (id, {COLUMNS})"
    " SELECT id, event_id, type, occurred_at, machine, tracked_url, identity,"
    " metadata::jsonb, data FROM mailtrack_staged_events ORDER BY event_id"
    " ON CONFLICT DO NOTHING RETURNING event_id"
)

_HOURLY_KEY = "dimension, value, hour, type, url, machine"
RECIPIENT_TIMES = ("opened_human", "opened_machine", "clicked_human", "clicked_machine")
LINK_TIMES = ("human", "machine")


def _upsert_latest(table: str, key: str, times: tuple[str, ...]) -> str:
    """Insert the staged rows of ``table``, or keep the later of each time;
    rows that would not change are left alone (no new row version)."""
    sets = ", ".join(f"{c} = GREATEST(t.{c}, excluded.{c})" for c in times)
    later = " OR ".join(f"excluded.{c} > t.{c}" for c in times)
    staging = table.replace("mailtrack_", "mailtrack_staged_", 1)
    return (
        f"INSERT INTO {table} AS t SELECT * FROM {staging}"
        f" ORDER BY {key} ON CONFLICT ({key}) DO UPDATE SET {sets} WHERE {later}"
    )


#: Staging table, rows of :class:`Rollup`, their types, upsert.
_UPSERTS = (
    (
        "mailtrack_staged_hourly",
        "hourly_rows",
        ("text", "text", "int8", "text", "text", "text", "int8"),
        "INSERT INTO mailtrack_hourly AS t SELECT * FROM mailtrack_staged_hourly"
        f" ORDER BY {_HOURLY_KEY} ON CONFLICT ({_HOURLY_KEY})"
        " DO UPDATE SET n = t.n + excluded.n",
    ),
    (
        "mailtrack_staged_recipients",
        "recipient_rows",
        ("text", "text", "text", "int8", "int8", "int8", "int8"),
        _upsert_latest(
            "mailtrack_recipients", "dimension, value, identity", RECIPIENT_TIMES
        ),
    ),
    (
        "mailtrack_staged_link_recipients",
        "link_recipient_rows",
        ("text", "text", "text", "text", "int8", "int8"),
        _upsert_latest(
            "mailtrack_link_recipients", "dimension, value, url, identity", LINK_TIMES
        ),
    ),
)

_REJECT = (
    "INSERT INTO mailtrack_rejected (event_id, body, reason, rejected_at)"
    " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING"
)


def stored_event(row: t.Sequence[t.Any]) -> StoredEvent:
    """A :class:`StoredEvent` from a row of ``SELECT {SELECT}``.

    The values come from the event as received (``data``), not from
    ``jsonb``, which writes numbers its own way (``1e+16`` as
    ``10000000000000000``, an integer to Python): rollups recomputed from
    stored events see what the write saw.
    """
    event_id, kind, occurred_at, machine, url, identity, metadata, data = row
    values = json.loads(data).get("metadata") or {}
    return StoredEvent(
        event_id, kind, occurred_at, machine, url, identity, metadata, data, values
    )


def clean_text(text: str) -> str:
    """``text`` as PostgreSQL can store it: no NUL, no lone surrogate."""
    text = text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def write_batch(
    connection: psycopg.Connection[t.Any],
    events: list[StoredEvent],
    rejected: t.Sequence[Rejection],
) -> int:
    """Store ``events`` (distinct ids) and ``rejected`` in one transaction,
    with the rollups of the events newly inserted. The connection's staging
    tables must exist (:data:`~._postgres_schema.STAGING`).

    :return: How many events were inserted.
    :raise psycopg.errors.DataError: an event PostgreSQL cannot store
        (:func:`unstorable` finds which); nothing was written.
    :raise UnicodeEncodeError: the same, found by psycopg.
    """
    inserted: list[StoredEvent] = []
    with connection.transaction():
        schema.lock_schema(connection, shared=True)
        if events:
            dimensions = schema.recorded_dimensions(connection)
            cursor = connection.cursor()
            with cursor.copy(_COPY_EVENTS) as copy:
                copy.set_types(_EVENT_TYPES)
                for event in events:
                    copy.write_row(event[:8])
            with connection.pipeline():
                # Sent, not waited for: the server inserts while the rollups
                # of the whole batch, usually all new, are computed.
                cursor.execute(_INSERT_EVENTS)
                changes = rollup(events, dimensions)
                new = {row[0] for row in cursor.fetchall()}
            if len(new) == len(events):
                inserted = events
            else:
                inserted = [event for event in events if event.event_id in new]
                changes = rollup(inserted, dimensions)
        if inserted:
            apply_rollup(connection, changes)
        if rejected:
            now = time.time()
            connection.cursor().executemany(
                _REJECT,
                [
                    (clean_text(r.event_id), r.body, clean_text(r.reason), now)
                    for r in rejected
                ],
            )
    return len(inserted)


def apply_rollup(
    connection: psycopg.Connection[t.Any], changes: Rollup, *, again: bool = False
) -> None:
    """Add ``changes`` to the rollup tables, in the current transaction.

    :param again: Empty the staging tables afterwards, for another call in
        the same transaction (commits empty them anyway).
    """
    cursor = connection.cursor()
    for staging, rows_of, types, upsert in _UPSERTS:
        rows = getattr(changes, rows_of)()
        if not rows:
            continue
        with cursor.copy(f"COPY {staging} FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
        cursor.execute(upsert)
        if again:
            cursor.execute(f"DELETE FROM {staging}")


def unstorable(connection: psycopg.Connection[t.Any], event: StoredEvent) -> str | None:
    """Why PostgreSQL cannot store ``event``, or ``None`` when it can; asks
    the server about the metadata (in a savepoint: the connection must be
    outside a failed transaction)."""
    for value in event[:8]:
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            return "a NUL character, which PostgreSQL cannot store"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            return f"a value PostgreSQL cannot store ({e})"
    import psycopg

    try:
        with connection.transaction():
            connection.execute("SELECT %s::jsonb", (event.metadata,))
    except psycopg.DataError as e:
        return f"metadata PostgreSQL cannot store ({e.diag.message_primary})"
    return None
