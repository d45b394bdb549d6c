"""Reading the events that match a query (statistics and timelines by a
scan of them, the latest events): the same SQL on SQLite and PostgreSQL
but for the parameter placeholder, run by each backend on its own
connection."""

from __future__ import annotations

import json
import typing as t

from ._store_backend import CLICKED
from ._store_backend import OPENED
from ._store_stats import SIDES
from ._store_stats import StatsFigures


class Where(t.Protocol):
    """A backend's ``WHERE`` clause of a query's time range and filters."""

    params: list[t.Any]

    def sql(self, *extra: str) -> str:
        """`` WHERE ...`` with ``extra`` conditions added (or ``""``)."""


#: Runs a statement with its parameters and returns every row.
Run = t.Callable[[str, list[t.Any]], t.Sequence[t.Sequence[t.Any]]]


class _Connection(t.Protocol):
    def execute(self, sql: t.Any, params: t.Any) -> t.Any: ...


def runner(connection: _Connection) -> Run:
    """The :data:`Run` of a connection (SQLite's or psycopg's)."""

    def run(sql: str, params: list[t.Any]) -> t.Sequence[t.Sequence[t.Any]]:
        return t.cast("list[t.Any]", connection.execute(sql, params).fetchall())

    return run


def stats_from_events(run: Run, where: Where, mark: str) -> StatsFigures:
    """The figures of the events matching ``where``, by a scan of them.

    :param mark: The backend's parameter placeholder (``?`` or ``%s``).
    """
    figures = StatsFigures()
    kinds = where.sql(f"type IN ({mark}, {mark})")
    kinds_params = [*where.params, OPENED, CLICKED]
    clicks = where.sql(f"type = {mark}")
    clicks_params = [*where.params, CLICKED]
    events = " FROM mailtrack_events"
    for kind, machine, total, unique in run(
        "SELECT type, machine IS NOT NULL, COUNT(*), COUNT(DISTINCT identity)"
        + events
        + where.sql()
        + " GROUP BY 1, 2",
        where.params,
    ):
        figures.totals[kind, SIDES[machine]] = total
        if kind in (OPENED, CLICKED):
            figures.uniques[kind, SIDES[machine]] = unique
    for kind, unique in run(
        "SELECT type, COUNT(DISTINCT identity)" + events + kinds + " GROUP BY 1",
        kinds_params,
    ):
        figures.uniques[kind, "all"] = unique
    for url, machine, total, unique in run(
        "SELECT tracked_url, machine IS NOT NULL, COUNT(*), COUNT(DISTINCT identity)"
        + events
        + clicks
        + " GROUP BY 1, 2",
        clicks_params,
    ):
        figures.link_totals[url, SIDES[machine]] = total
        figures.link_uniques[url, SIDES[machine]] = unique
    for url, unique in run(
        "SELECT tracked_url, COUNT(DISTINCT identity)"
        + events
        + clicks
        + " GROUP BY 1",
        clicks_params,
    ):
        figures.link_uniques[url, "all"] = unique
    for label, total in run(
        "SELECT machine, COUNT(*)"
        + events
        + where.sql("machine IS NOT NULL")
        + " GROUP BY 1",
        where.params,
    ):
        figures.labels[label] = total
    # The recipients who opened or clicked, people and machines apart: the
    # denominator of the rates, so that clicks without a recorded open
    # (images blocked) cannot push a rate past 1.
    for machine, unique in run(
        "SELECT machine IS NOT NULL, COUNT(DISTINCT identity)"
        + events
        + kinds
        + " GROUP BY 1",
        kinds_params,
    ):
        figures.engaged[SIDES[machine]] = unique
    (row,) = run("SELECT COUNT(DISTINCT identity)" + events + kinds, kinds_params)
    figures.engaged["all"] = row[0]
    return figures


def timeline_from_events(
    run: Run, where: Where, mark: str, bucket_seconds: int
) -> list[tuple[int, str, bool, int]]:
    """``(bucket start, type, machine, events)`` of the opens and clicks
    matching ``where``, by a scan of them (the store keeps whatever the
    journal holds: other types are left out). Buckets start at multiples
    of ``bucket_seconds``, also before 1970: the remainder of a negative
    number is negative, on both databases.

    :param mark: The backend's parameter placeholder (``?`` or ``%s``).
    """
    # psycopg's placeholders make a literal % two.
    modulo = "%%" if mark == "%s" else "%"
    rows = run(
        f"SELECT occurred_at - ((occurred_at {modulo} {mark}) + {mark})"
        f" {modulo} {mark}, type, machine IS NOT NULL, COUNT(*)"
        " FROM mailtrack_events"
        + where.sql(f"type IN ({mark}, {mark})")
        + " GROUP BY 1, 2, 3",
        [bucket_seconds] * 3 + [*where.params, OPENED, CLICKED],
    )
    return [(bucket, kind, bool(machine), n) for bucket, kind, machine, n in rows]


class _Pool(t.Protocol):
    def connection(self) -> t.ContextManager[t.Any]: ...


def read_events(
    db: _Pool, where: Where, mark: str, limit: int | None
) -> list[dict[str, t.Any]]:
    """The events matching ``where``, newest first, at most ``limit``
    (``None``: all), as dicts.

    :param db: The backend's connection pool.
    :param mark: The backend's parameter placeholder (``?`` or ``%s``).
    """
    sql = (
        "SELECT data FROM mailtrack_events"
        + where.sql()
        + " ORDER BY occurred_at DESC, id DESC"
    )
    params = list(where.params)
    if limit is not None:
        sql += f" LIMIT {mark}"
        params.append(limit)
    with db.connection() as connection:
        rows = runner(connection)(sql, params)
    return [json.loads(row[0]) for row in rows]
