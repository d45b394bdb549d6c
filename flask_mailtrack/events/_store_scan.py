"""Statistics by a scan of the events that match a query: the same SQL on
SQLite and PostgreSQL but for the parameter placeholder, run by each
backend on its own connection (in one read transaction)."""

from __future__ import annotations

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
