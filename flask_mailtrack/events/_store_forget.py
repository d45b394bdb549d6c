"""Forgetting events in the SQLite event store: deleting every event of a
person (``EventStore.forget``) with the rollups kept exact.

:meth:`~flask_mailtrack.events._store_backend.StoreBackend.forget` says
what is done, :class:`~flask_mailtrack.events._store_rollups.Erasure` how
the rollups change. Lists of ids and identities are bound as one JSON array
(``json_each``), whatever SQLite's limit on parameters.
"""

from __future__ import annotations

import json
import sqlite3

from ._store_backend import CLICKED
from ._store_backend import OPENED
from ._store_backend import Query
from ._store_queries import Where
from ._store_rollups import Erasure
from ._store_sqlite import apply_rollup
from ._store_sqlite import COLUMNS
from ._store_sqlite import stored_event

#: Events read and deleted per statement.
_PAGE = 1000

_HOURLY_KEY = (
    "dimension = ? AND value = ? AND hour = ? AND type = ? AND url = ? AND machine = ?"
)


def forget_events(
    connection: sqlite3.Connection, query: Query, dimensions: set[str]
) -> int:
    """Delete the events matching ``query`` and take them out of the
    rollups of ``dimensions`` (those recorded), in the current write
    transaction.

    :return: The number of events deleted.
    """
    where = Where(query)
    ids = [
        row[0]
        for row in connection.execute(
            "SELECT id FROM mailtrack_events" + where.sql(), where.params
        )
    ]
    erasure = Erasure(dimensions)
    for start in range(0, len(ids), _PAGE):
        page = json.dumps(ids[start : start + _PAGE])
        in_page = " WHERE id IN (SELECT value FROM json_each(?))"
        rows = connection.execute(
            f"SELECT {COLUMNS} FROM mailtrack_events" + in_page, (page,)
        ).fetchall()
        erasure.remove(map(stored_event, rows))
        connection.execute("DELETE FROM mailtrack_events" + in_page, (page,))
    if ids:
        _erase_rollups(connection, erasure)
    return len(ids)


def _erase_rollups(connection: sqlite3.Connection, erasure: Erasure) -> None:
    hourly = erasure.removed.hourly_rows()
    connection.executemany(
        f"UPDATE mailtrack_hourly SET n = n - ? WHERE {_HOURLY_KEY}",
        [(row[-1], *row[:-1]) for row in hourly],
    )
    connection.executemany(
        f"DELETE FROM mailtrack_hourly WHERE {_HOURLY_KEY} AND n <= 0",
        [row[:-1] for row in hourly],
    )
    connection.executemany(
        "DELETE FROM mailtrack_recipients"
        " WHERE dimension = ? AND value = ? AND identity = ?",
        sorted(erasure.removed.recipients),
    )
    connection.executemany(
        "DELETE FROM mailtrack_link_recipients"
        " WHERE dimension = ? AND value = ? AND url = ? AND identity = ?",
        sorted(erasure.removed.link_recipients),
    )
    identities = json.dumps(erasure.identities())
    last = 0
    while True:
        rows = connection.execute(
            f"SELECT id, {COLUMNS} FROM mailtrack_events WHERE id > ?"
            " AND type IN (?, ?) AND identity IN (SELECT value FROM json_each(?))"
            " ORDER BY id LIMIT ?",
            (last, OPENED, CLICKED, identities, _PAGE),
        ).fetchall()
        if not rows:
            break
        erasure.restore(stored_event(row[1:]) for row in rows)
        last = rows[-1][0]
    apply_rollup(connection, erasure.restored)
