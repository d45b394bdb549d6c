"""Reading the SQLite event store: filters, statistics (from the rollups or
from the events), timelines, events.

Functions of a connection or a :class:`~flask_mailtrack.events._sqlite.
ConnectionPool` and a :class:`~flask_mailtrack.events._store_backend.Query`;
they only read. :class:`~flask_mailtrack.EventStore` documents what each
answer means, ``_store_backend`` how filters match.
"""

from __future__ import annotations

import json
import sqlite3
import typing as t

from ._sqlite import ConnectionPool
from ._store_backend import check_filter_name as check_filter_name
from ._store_backend import CLICKED
from ._store_backend import OPENED
from ._store_backend import Query
from ._store_backend import QUERY_PARAMETERS as QUERY_PARAMETERS
from ._store_campaigns import campaign_figures
from ._store_campaigns import CampaignFigures
from ._store_campaigns import DAY
from ._store_scan import read_events as scan_events
from ._store_scan import runner
from ._store_scan import stats_from_events as scan_stats
from ._store_scan import timeline_from_events
from ._store_stats import add_recipient_counts
from ._store_stats import SIDES
from ._store_stats import StatsFigures

#: Events read per query while paging through the store.
_PAGE = 500


class Where:
    """A ``WHERE`` clause of ``mailtrack_events`` for a :class:`Query`."""

    def __init__(self, query: Query) -> None:
        self.parts: list[str] = []
        self.params: list[t.Any] = []
        if query.since is not None:
            self.add("occurred_at >= ?", query.since)
        if query.until is not None:
            self.add("occurred_at < ?", query.until)
        if query.type is not None:
            self.add("type = ?", query.type)
        for key, value in query.filters:
            path = f'$."{key}"'
            if value is None:
                self.add("json_extract(metadata, ?) IS NULL", path)
            elif isinstance(value, str):
                # Text matches integers too, as filters from a query string
                # or the command line are text: "42" finds 42 and "42".
                self.add(
                    "json_type(metadata, ?) IN ('text', 'integer')"
                    " AND CAST(json_extract(metadata, ?) AS TEXT) = ?",
                    path,
                    path,
                    value,
                )
            elif isinstance(value, bool):
                # json_extract() makes true 1: ask for the JSON type instead.
                kind = "true" if value else "false"
                self.add("json_type(metadata, ?) = ?", path, kind)
            else:
                self.add(
                    "json_type(metadata, ?) IN ('integer', 'real')"
                    " AND json_extract(metadata, ?) = ?",
                    path,
                    path,
                    value,
                )

    def add(self, clause: str, *params: t.Any) -> None:
        self.parts.append(clause)
        self.params.extend(params)

    def sql(self, *extra: str) -> str:
        parts = self.parts + list(extra)
        return " WHERE " + " AND ".join(parts) if parts else ""


def stats_from_events(connection: sqlite3.Connection, query: Query) -> StatsFigures:
    """The figures of the events matching ``query``, by a scan of them."""
    return scan_stats(runner(connection), Where(query), "?")


#: The nine recipient counts of :func:`~flask_mailtrack.events._store_stats.
#: add_recipient_counts`, as ``SELECT`` columns of ``mailtrack_recipients``:
#: the recipients with a time at or after ``:since`` (``1``: any time, as
#: ``0`` means never).
RECIPIENT_COUNTS = """
    SUM(opened_human >= :since OR opened_machine >= :since),
    SUM(opened_human >= :since),
    SUM(opened_machine >= :since),
    SUM(clicked_human >= :since OR clicked_machine >= :since),
    SUM(clicked_human >= :since),
    SUM(clicked_machine >= :since),
    SUM(opened_human >= :since OR opened_machine >= :since
        OR clicked_human >= :since OR clicked_machine >= :since),
    SUM(opened_human >= :since OR clicked_human >= :since),
    SUM(opened_machine >= :since OR clicked_machine >= :since)
"""

_RECIPIENTS = (
    f"SELECT {RECIPIENT_COUNTS} FROM mailtrack_recipients"
    " WHERE dimension = :dimension AND value = :value"
)


def stats_from_rollups(
    connection: sqlite3.Connection,
    dimension: str,
    value: str,
    since: float | None = None,
) -> StatsFigures:
    """The figures of the events of ``dimension`` = ``value`` (``""``,
    ``""``: every event), at or after ``since`` (a whole hour after the
    epoch, or ``None``), from the rollup tables alone."""
    figures = StatsFigures()
    key = {
        "dimension": dimension,
        "value": value,
        "since": max(int(since or 1), 1),
        "hour": -(2**62) if since is None else int(since),
        "clicked": CLICKED,
    }
    rows = "FROM mailtrack_hourly WHERE dimension = :dimension AND value = :value"
    rows += " AND hour >= :hour"
    for kind, machine, total in connection.execute(
        f"SELECT type, machine <> '', SUM(n) {rows} GROUP BY 1, 2", key
    ):
        figures.totals[kind, SIDES[machine]] = total
    for url, machine, total in connection.execute(
        f"SELECT url, machine <> '', SUM(n) {rows} AND type = :clicked GROUP BY 1, 2",
        key,
    ):
        figures.link_totals[url or None, SIDES[machine]] = total
    for label, total in connection.execute(
        f"SELECT machine, SUM(n) {rows} AND machine <> '' GROUP BY 1", key
    ):
        figures.labels[label] = total
    add_recipient_counts(figures, connection.execute(_RECIPIENTS, key).fetchone())
    for url, unique, human, machine in connection.execute(
        "SELECT url, SUM(human >= :since OR machine >= :since), SUM(human >= :since),"
        " SUM(machine >= :since) FROM mailtrack_link_recipients"
        " WHERE dimension = :dimension AND value = :value GROUP BY 1",
        key,
    ):
        if not unique:
            continue  # every click of the link before ``since``
        url = url or None
        figures.link_uniques[url, "all"] = unique
        figures.link_uniques[url, "human"] = human
        figures.link_uniques[url, "machine"] = machine
    return figures


def read_campaign_figures(
    connection: sqlite3.Connection,
    dimension: str,
    since_day: int,
    value: str | None = None,
) -> dict[str, CampaignFigures]:
    """See :meth:`~flask_mailtrack.events._store_backend.StoreBackend.
    campaign_figures`: two grouped reads of the dimension's rollups."""
    where = "WHERE dimension = :dimension"
    if value is not None:
        where += " AND value = :value"
    params = {"dimension": dimension, "value": value, "since": 1}
    hourly = connection.execute(
        "SELECT value, type, machine, CASE WHEN hour >= :day"
        " THEN hour - hour % :length END, SUM(n), MIN(hour), MAX(hour)"
        f" FROM mailtrack_hourly {where} GROUP BY 1, 2, 3, 4",
        dict(params, day=since_day, length=DAY),
    ).fetchall()
    recipients = connection.execute(
        f"SELECT value, {RECIPIENT_COUNTS} FROM mailtrack_recipients {where}"
        " GROUP BY 1",
        params,
    ).fetchall()
    return campaign_figures(hourly, recipients)


def read_timeline_counts(
    connection: sqlite3.Connection,
    query: Query,
    bucket_seconds: int,
    target: tuple[str, str] | None,
) -> list[tuple[int, str, bool, int]]:
    """See :meth:`~flask_mailtrack.events._store_backend.StoreBackend.
    timeline_counts`; from ``mailtrack_hourly`` for a ``target``."""
    if target is not None:
        sql = (
            "SELECT hour, type, machine <> '', SUM(n) FROM mailtrack_hourly"
            " WHERE dimension = ? AND value = ? AND type IN (?, ?)"
        )
        params: list[t.Any] = [*target, OPENED, CLICKED]
        if query.since is not None:
            sql += " AND hour >= ?"
            params.append(query.since)
        if query.until is not None:
            sql += " AND hour < ?"
            params.append(query.until)
        rows = connection.execute(sql + " GROUP BY 1, 2, 3", params).fetchall()
        return [
            (hour // bucket_seconds * bucket_seconds, kind, bool(machine), n)
            for hour, kind, machine, n in rows
        ]
    return timeline_from_events(runner(connection), Where(query), "?", bucket_seconds)


def read_events(
    db: ConnectionPool, query: Query, limit: int | None
) -> list[dict[str, t.Any]]:
    """The events of ``query``, newest first, at most ``limit``."""
    return scan_events(db, Where(query), "?", limit)


def read_related_events(
    db: ConnectionPool, event_id: str, limit: int | None
) -> list[dict[str, t.Any]]:
    """The events of the identity of ``event_id``, oldest first, at most
    ``limit``; by the index ``mailtrack_events_identity``."""
    sql = (
        "SELECT data FROM mailtrack_events WHERE identity ="
        " (SELECT identity FROM mailtrack_events WHERE event_id = ?)"
        " ORDER BY occurred_at, id"
    )
    params: list[t.Any] = [event_id]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    with db.connection() as connection:
        rows = connection.execute(sql, params).fetchall()
    return [json.loads(row[0]) for row in rows]


def count_events(db: ConnectionPool) -> int:
    """The number of stored events."""
    with db.connection() as connection:
        row = connection.execute("SELECT COUNT(*) FROM mailtrack_events").fetchone()
    return int(row[0])


def iter_events(db: ConnectionPool, query: Query) -> t.Iterator[dict[str, t.Any]]:
    """The events of ``query``, oldest first, read a page at a time, so
    memory stays flat whatever the size of the store."""
    where = Where(query)
    after = (-(2**63), 0)
    while True:
        with db.connection() as connection:
            rows = connection.execute(
                "SELECT occurred_at, id, data FROM mailtrack_events"
                + where.sql("(occurred_at, id) > (?, ?)")
                + " ORDER BY occurred_at, id LIMIT ?",
                [*where.params, *after, _PAGE],
            ).fetchall()
        for row in rows:
            yield json.loads(row[2])
        if len(rows) < _PAGE:
            return
        after = (rows[-1][0], rows[-1][1])
