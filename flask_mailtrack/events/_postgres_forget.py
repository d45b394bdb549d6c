"""Forgetting events in the PostgreSQL event store: deleting every event of
a person (``EventStore.forget``) with the rollups kept exact.

:meth:`~flask_mailtrack.events._store_backend.StoreBackend.forget` says
what is done, :class:`~flask_mailtrack.events._store_rollups.Erasure` how
the rollups change. The events are found by one scan, then deleted a page
at a time by their unique key (``event_id, occurred_at``), each ``DELETE``
returning the rows it deleted: what the rollups lose is what this
transaction took away. The rollup keys go through the connection's staging
tables, as a batch's do.
"""

from __future__ import annotations

import typing as t

from . import _postgres_schema as schema
from ._postgres_queries import Where
from ._postgres_write import apply_rollup
from ._postgres_write import SELECT
from ._postgres_write import stored_event
from ._store_backend import CLICKED
from ._store_backend import OPENED
from ._store_backend import Query
from ._store_rollups import Erasure

if t.TYPE_CHECKING:  # pragma: no cover
    import psycopg

#: Events deleted, or read again, per statement.
_PAGE = 1000

#: Each rollup table's staging table and key columns.
_KEYS = (
    (
        "mailtrack_hourly",
        "mailtrack_staged_hourly",
        ("dimension", "value", "hour", "type", "url", "machine"),
    ),
    (
        "mailtrack_recipients",
        "mailtrack_staged_recipients",
        ("dimension", "value", "identity"),
    ),
    (
        "mailtrack_link_recipients",
        "mailtrack_staged_link_recipients",
        ("dimension", "value", "url", "identity"),
    ),
)


def forget_events(connection: psycopg.Connection[t.Any], query: Query) -> int:
    """Delete the events matching ``query`` and take them out of the
    rollups, in the current transaction, which holds the migration lock
    exclusively (no batch is written meanwhile). The connection's staging
    tables must exist.

    :return: The number of events deleted.
    """
    where = Where(query)
    keys = connection.execute(
        "SELECT event_id, occurred_at FROM mailtrack_events" + where.sql(),
        where.params,
    ).fetchall()
    erasure = Erasure(schema.recorded_dimensions(connection))
    deleted = 0
    for start in range(0, len(keys), _PAGE):
        page = keys[start : start + _PAGE]
        rows = connection.execute(
            "DELETE FROM mailtrack_events WHERE (event_id, occurred_at) IN"
            " (SELECT * FROM unnest(%s::text[], %s::bigint[]))"
            f" RETURNING {SELECT}",
            ([key[0] for key in page], [key[1] for key in page]),
        ).fetchall()
        deleted += len(rows)
        erasure.remove(map(stored_event, rows))
    if deleted:
        _erase_rollups(connection, erasure)
    return deleted


def _erase_rollups(connection: psycopg.Connection[t.Any], erasure: Erasure) -> None:
    cursor = connection.cursor()
    removed = erasure.removed
    rows = (
        removed.hourly_rows(),
        removed.recipient_rows(),
        removed.link_recipient_rows(),
    )
    for (table, staging, key), staged in zip(_KEYS, rows):
        if not staged:
            continue
        with cursor.copy(f"COPY {staging} FROM STDIN") as copy:
            for row in staged:
                copy.write_row(row)
        match = " AND ".join(f"r.{column} = s.{column}" for column in key)
        if table == "mailtrack_hourly":
            cursor.execute(
                f"UPDATE {table} AS r SET n = r.n - s.n FROM {staging} AS s"
                f" WHERE {match}"
            )
            match += " AND r.n <= 0"
        cursor.execute(f"DELETE FROM {table} AS r USING {staging} AS s WHERE {match}")
        cursor.execute(f"DELETE FROM {staging}")
    identities = erasure.identities()
    after = (-(2**63), -(2**63))
    while True:
        found = connection.execute(
            f"SELECT occurred_at, id, {SELECT} FROM mailtrack_events"
            " WHERE type IN (%s, %s) AND identity = ANY(%s)"
            " AND (occurred_at, id) > (%s, %s) ORDER BY occurred_at, id LIMIT %s",
            (OPENED, CLICKED, identities, *after, _PAGE),
        ).fetchall()
        if not found:
            break
        erasure.restore(stored_event(row[2:]) for row in found)
        after = (found[-1][0], found[-1][1])
    apply_rollup(connection, erasure.restored)
