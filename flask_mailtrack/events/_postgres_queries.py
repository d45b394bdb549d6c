"""Reading the PostgreSQL event store: filters, statistics (from the
rollups or from the events), timelines, events.

The same questions as ``_store_queries`` asks SQLite, in PostgreSQL's
dialect, with the same answers: ``_store_backend`` says how filters match.
Functions of a connection (or a pool) and a
:class:`~flask_mailtrack.events._store_backend.Query`; they only read.

Where the two databases could differ, the SQL here follows SQLite:

- ``occurred_at`` is compared with whole seconds (the ceiling of a
  fractional ``since`` or ``until``, the same events), so the time index and
  partition pruning apply;
- a ``str`` filter matches a JSON string, or a JSON number written as an
  integer within 64 bits; ``jsonb`` keeps a number's digits as written, except that it
  writes exponents out, so a float stored in exponent form that equals an
  integer of 17 digits or more (``1e+16``) matches the integer's digits
  here and not on SQLite;
- numbers compare as decimals of their shortest form, which is how Python
  writes them, so ``0.1`` finds ``0.1``.
"""

from __future__ import annotations

import json
import math
import re
import typing as t

from ._store_backend import CLICKED
from ._store_backend import OPENED
from ._store_backend import Query
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

if t.TYPE_CHECKING:  # pragma: no cover
    import psycopg

    from ._postgres import PostgresPool

#: Events read per query while paging through the store.
_PAGE = 1000


_BIGINT = (-(2**63), 2**63 - 1)

#: How Python writes an integer: what a ``str`` filter may match a number by.
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)\Z")


def whole_seconds(value: float) -> int:
    """The least integer at or after ``value``, within ``bigint``: an
    integer ``occurred_at`` is ``>=`` (or ``<``) ``value`` exactly when it is
    ``>=`` (``<``) this."""
    if math.isnan(value):
        raise ValueError("A time cannot be NaN.")
    if value <= _BIGINT[0]:
        return _BIGINT[0]
    if value >= _BIGINT[1]:
        return _BIGINT[1]
    return math.ceil(value)


def _number(value: int | float) -> str:
    """A filter number as ``numeric`` text: Python's shortest form."""
    return str(value) if isinstance(value, int) else repr(value)


class Where:
    """A ``WHERE`` clause of ``mailtrack_events`` for a :class:`Query`."""

    def __init__(self, query: Query) -> None:
        self.parts: list[str] = []
        self.params: list[t.Any] = []
        if query.since is not None:
            self.add("occurred_at >= %s", whole_seconds(query.since))
        if query.until is not None:
            self.add("occurred_at < %s", whole_seconds(query.until))
        if query.type is not None:
            self.add("type = %s", query.type)
        for key, value in query.filters:
            if value is None:
                self.add("metadata ->> %s IS NULL", key)
            elif isinstance(value, str):
                clause = "metadata -> %s = to_jsonb(%s::text)"
                params = [key, value]
                if _INTEGER.match(value) and _BIGINT[0] <= int(value) <= _BIGINT[1]:
                    # Text matches integers too, as filters from a query
                    # string or the command line are text: "42" finds 42.
                    clause = (
                        f"({clause} OR jsonb_typeof(metadata -> %s) = 'number'"
                        " AND metadata ->> %s = %s)"
                    )
                    params += [key, key, value]
                self.add(clause, *params)
            elif isinstance(value, bool):
                self.add(
                    "metadata -> %s = %s::jsonb", key, "true" if value else "false"
                )
            else:
                # CASE, not AND: PostgreSQL may cast before it tests.
                self.add(
                    "CASE WHEN jsonb_typeof(metadata -> %s) = 'number'"
                    " THEN (metadata -> %s)::numeric END = %s::numeric",
                    key,
                    key,
                    _number(value),
                )

    def add(self, clause: str, *params: t.Any) -> None:
        self.parts.append(clause)
        self.params.extend(params)

    def sql(self, *extra: str) -> str:
        parts = self.parts + list(extra)
        return " WHERE " + " AND ".join(parts) if parts else ""


def snapshot(connection: psycopg.Connection[t.Any]) -> None:
    """Make the transaction just begun read one snapshot, and only read."""
    connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def stats_from_events(
    connection: psycopg.Connection[t.Any], query: Query
) -> StatsFigures:
    """The figures of the events matching ``query``, by a scan of them."""
    return scan_stats(runner(connection), Where(query), "%s")


#: The nine recipient counts of :func:`~flask_mailtrack.events._store_stats.
#: add_recipient_counts`, as ``SELECT`` columns of ``mailtrack_recipients``:
#: the recipients with a time at or after ``%(since)s`` (``1``: any time, as
#: ``0`` means never).
RECIPIENT_COUNTS = """
    COUNT(*) FILTER (WHERE opened_human >= %(since)s OR opened_machine >= %(since)s),
    COUNT(*) FILTER (WHERE opened_human >= %(since)s),
    COUNT(*) FILTER (WHERE opened_machine >= %(since)s),
    COUNT(*) FILTER (WHERE clicked_human >= %(since)s
        OR clicked_machine >= %(since)s),
    COUNT(*) FILTER (WHERE clicked_human >= %(since)s),
    COUNT(*) FILTER (WHERE clicked_machine >= %(since)s),
    COUNT(*) FILTER (WHERE opened_human >= %(since)s OR opened_machine >= %(since)s
        OR clicked_human >= %(since)s OR clicked_machine >= %(since)s),
    COUNT(*) FILTER (WHERE opened_human >= %(since)s OR clicked_human >= %(since)s),
    COUNT(*) FILTER (WHERE opened_machine >= %(since)s
        OR clicked_machine >= %(since)s)
"""

_RECIPIENTS = (
    f"SELECT {RECIPIENT_COUNTS} FROM mailtrack_recipients"
    " WHERE dimension = %(dimension)s AND value = %(value)s"
)


def stats_from_rollups(
    connection: psycopg.Connection[t.Any],
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
        "hour": _BIGINT[0] if since is None else int(since),
    }
    # One pass over the hourly rows gives totals, links and labels.
    for kind, url, machine, total in connection.execute(
        "SELECT type, url, machine, SUM(n)::bigint FROM mailtrack_hourly"
        " WHERE dimension = %(dimension)s AND value = %(value)s"
        " AND hour >= %(hour)s GROUP BY 1, 2, 3",
        key,
    ):
        side = SIDES[machine != ""]
        figures.totals[kind, side] = figures.totals.get((kind, side), 0) + total
        if kind == CLICKED:
            link = (url or None, side)
            figures.link_totals[link] = figures.link_totals.get(link, 0) + total
        if machine:
            figures.labels[machine] = figures.labels.get(machine, 0) + total
    row = connection.execute(_RECIPIENTS, key).fetchone()
    assert row is not None
    add_recipient_counts(figures, row)
    for url, unique, human, machine in connection.execute(
        "SELECT url, COUNT(*) FILTER (WHERE human >= %(since)s"
        " OR machine >= %(since)s), COUNT(*) FILTER (WHERE human >= %(since)s),"
        " COUNT(*) FILTER (WHERE machine >= %(since)s)"
        " FROM mailtrack_link_recipients"
        " WHERE dimension = %(dimension)s AND value = %(value)s GROUP BY 1",
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
    connection: psycopg.Connection[t.Any],
    dimension: str,
    since_day: int,
    value: str | None = None,
) -> dict[str, CampaignFigures]:
    """See :meth:`~flask_mailtrack.events._store_backend.StoreBackend.
    campaign_figures`: two grouped reads of the dimension's rollups."""
    where = "WHERE dimension = %(dimension)s"
    if value is not None:
        where += " AND value = %(value)s"
    params = {"dimension": dimension, "value": value, "since": 1}
    hourly = connection.execute(
        "SELECT value, type, machine, CASE WHEN hour >= %(day)s"
        " THEN hour - hour %% %(length)s END, SUM(n)::bigint, MIN(hour), MAX(hour)"
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
    connection: psycopg.Connection[t.Any],
    query: Query,
    bucket_seconds: int,
    target: tuple[str, str] | None,
) -> list[tuple[int, str, bool, int]]:
    """See :meth:`~flask_mailtrack.events._store_backend.StoreBackend.
    timeline_counts`; from ``mailtrack_hourly`` for a ``target``."""
    if target is not None:
        sql = (
            "SELECT hour, type, machine <> '', SUM(n)::bigint FROM mailtrack_hourly"
            " WHERE dimension = %s AND value = %s AND type IN (%s, %s)"
        )
        params: list[t.Any] = [*target, OPENED, CLICKED]
        if query.since is not None:
            sql += " AND hour >= %s"
            params.append(whole_seconds(query.since))
        if query.until is not None:
            sql += " AND hour < %s"
            params.append(whole_seconds(query.until))
        rows = connection.execute(sql + " GROUP BY 1, 2, 3", params).fetchall()
        return [
            (hour // bucket_seconds * bucket_seconds, kind, bool(machine), n)
            for hour, kind, machine, n in rows
        ]
    return timeline_from_events(runner(connection), Where(query), "%s", bucket_seconds)


def read_events(
    db: PostgresPool, query: Query, limit: int | None
) -> list[dict[str, t.Any]]:
    """The events of ``query``, newest first, at most ``limit``."""
    return scan_events(db, Where(query), "%s", limit)


def read_related_events(
    db: PostgresPool, event_id: str, limit: int | None
) -> list[dict[str, t.Any]]:
    """The events of the identity of ``event_id``, oldest first, at most
    ``limit``; by the index ``mailtrack_events_identity``, on a hash of the
    identity (an identity may be longer than a B-tree entry can be)."""
    with db.connection() as connection:
        found = connection.execute(
            "SELECT identity FROM mailtrack_events WHERE event_id = %s LIMIT 1",
            (event_id,),
        ).fetchone()
        if found is None:
            return []
        sql = (
            "SELECT data FROM mailtrack_events"
            " WHERE md5(identity)::uuid = md5(%s)::uuid AND identity = %s"
            " ORDER BY occurred_at, id"
        )
        params: list[t.Any] = [found[0], found[0]]
        if limit is not None:
            sql += " LIMIT %s"
            params.append(limit)
        rows = connection.execute(sql, params).fetchall()
    return [json.loads(row[0]) for row in rows]


def count_events(db: PostgresPool) -> int:
    """The number of stored events."""
    with db.connection() as connection:
        row = connection.execute("SELECT COUNT(*) FROM mailtrack_events").fetchone()
    assert row is not None
    return int(row[0])


def iter_events(db: PostgresPool, query: Query) -> t.Iterator[dict[str, t.Any]]:
    """The events of ``query``, oldest first, read a page at a time (a
    connection per page, none held between them), so memory stays flat
    whatever the size of the store."""
    where = Where(query)
    after: tuple[int, int] = (_BIGINT[0], 0)
    first = True
    while True:
        # The first page includes the smallest time: the row comparison is
        # strict.
        bound = (
            "(occurred_at, id) >= (%s, %s)" if first else "(occurred_at, id) > (%s, %s)"
        )
        with db.connection() as connection:
            rows = connection.execute(
                "SELECT occurred_at, id, data FROM mailtrack_events"
                + where.sql(bound)
                + " ORDER BY occurred_at, id LIMIT %s",
                [*where.params, *after, _PAGE],
            ).fetchall()
        for row in rows:
            yield json.loads(row[2])
        if len(rows) < _PAGE:
            return
        after = (rows[-1][0], rows[-1][1])
        first = False
