"""Campaigns from the rollups, in pure Python, for every backend.

:meth:`EventStore.campaigns <flask_mailtrack.EventStore.campaigns>` sums up
every value of a dimension at once. A backend answers two grouped reads of
the dimension's rollup rows (see :class:`~flask_mailtrack.events.
_store_backend.StoreBackend.campaign_figures`): ``mailtrack_hourly`` grouped
by value, type, machine label and recent day, and ``mailtrack_recipients``
grouped by value. :func:`campaign_figures` turns their rows into one
:class:`~flask_mailtrack.events._store_stats.StatsFigures` per value, which
:func:`~flask_mailtrack.events._store_stats.assemble_stats` makes into the
same statistics as ``stats(campaign=value)``; :func:`assemble_campaigns`
keeps what an overview shows.
"""

from __future__ import annotations

import dataclasses
import typing as t

from ._store_backend import CLICKED
from ._store_backend import OPENED
from ._store_backend import Query
from ._store_stats import add_recipient_counts
from ._store_stats import assemble_stats
from ._store_stats import StatsFigures

#: Seconds of a day of the sparklines (UTC).
DAY = 86400

#: ``(value, type, machine label or "", day start or None, events, first
#: hour, last hour)``: a row of the grouped read of ``mailtrack_hourly``, the
#: day given for the days at or after the first day asked for only.
HourlyRow = tuple[str, str, str, t.Optional[int], int, int, int]

#: A rate with what it is computed per.
Rates = dict[str, t.Union[float, str, None]]


@dataclasses.dataclass
class CampaignFigures:
    """What the rollups say of one campaign."""

    #: Totals per type and side, machine labels, uniques and engaged (no
    #: links: an overview does not list them).
    figures: StatsFigures = dataclasses.field(default_factory=StatsFigures)
    #: The hours of the first and the last event, of any type.
    first: int | None = None
    last: int | None = None
    #: ``(day start, type)``: events of the recent days.
    daily: dict[tuple[int, str], int] = dataclasses.field(default_factory=dict)


def check_rolled_up(dimension: str, recorded: t.Collection[str]) -> None:
    """Refuse a dimension that is not rolled up (``""``, every event, is).

    :raise ValueError: with a message that says how to roll it up.
    """
    if dimension and dimension not in recorded:
        raise ValueError(
            f"{dimension!r} is not rolled up: add it to the store's dimensions"
            " (MAILTRACK_DIMENSIONS, or MAILTRACK_CAMPAIGN_KEY)."
        )


def campaign_figures(
    hourly: t.Iterable[HourlyRow], recipients: t.Iterable[t.Sequence[t.Any]]
) -> dict[str, CampaignFigures]:
    """The figures of each value from a backend's rows.

    :param hourly: :data:`HourlyRow` rows.
    :param recipients: ``(value, *counts)`` rows, the nine counts of
        :func:`~flask_mailtrack.events._store_stats.add_recipient_counts`.
    """
    found: dict[str, CampaignFigures] = {}
    for value, kind, machine, day, n, first, last in hourly:
        item = found.setdefault(value, CampaignFigures())
        side = "machine" if machine else "human"
        totals = item.figures.totals
        totals[kind, side] = totals.get((kind, side), 0) + n
        if machine:
            labels = item.figures.labels
            labels[machine] = labels.get(machine, 0) + n
        if day is not None:
            item.daily[day, kind] = item.daily.get((day, kind), 0) + n
        item.first = first if item.first is None else min(item.first, first)
        item.last = last if item.last is None else max(item.last, last)
    for value, *counts in recipients:
        item = found.setdefault(value, CampaignFigures())
        add_recipient_counts(item.figures, counts)
    return found


def _clamp(rate: float | None) -> float | None:
    return None if rate is None else min(rate, 1.0)


def _rates(stats: t.Mapping[str, t.Any], sent_rate: str, engaged_rate: str) -> Rates:
    if stats["sent"]["total"]:
        rates, basis = stats["sent"][sent_rate], "sent"
    else:
        rates, basis = stats[engaged_rate], "engaged"
    return {
        "human": _clamp(rates["human"]),
        "total": _clamp(rates["total"]),
        "basis": basis,
    }


def campaign_item(
    campaign: str | None,
    stats: t.Mapping[str, t.Any],
    found: CampaignFigures,
    days: t.Sequence[int],
) -> dict[str, t.Any]:
    """One item of :meth:`EventStore.campaigns
    <flask_mailtrack.EventStore.campaigns>`.

    :param campaign: Its name (``None``: every event).
    :param stats: Its statistics, as ``stats()`` gives them.
    :param found: Its figures, for the times and the days.
    :param days: The starts of the days of the sparkline, oldest first.
    """
    opens, clicks = stats["opens"], stats["clicks"]
    engagements = opens["total"] + clicks["total"]
    by_machines = opens["machine"]["total"] + clicks["machine"]["total"]
    return {
        "campaign": campaign,
        "sent": stats["sent"]["total"],
        "opens": {
            "unique": opens["unique"],
            "human": opens["human"]["unique"],
            "machine": opens["machine"]["unique"],
        },
        "clicks": {
            "unique": clicks["unique"],
            "human": clicks["human"]["unique"],
            "machine": clicks["machine"]["unique"],
        },
        "engaged": dict(stats["engaged"]),
        "open_rate": _rates(stats, "open_rate", "open_rate"),
        "click_rate": _rates(stats, "click_rate", "click_through_rate"),
        "machine_share": by_machines / engagements if engagements else None,
        "first": found.first,
        "last": found.last,
        "daily": [
            {
                "start": day,
                "opens": found.daily.get((day, OPENED), 0),
                "clicks": found.daily.get((day, CLICKED), 0),
            }
            for day in days
        ],
    }


def assemble_campaigns(
    found: t.Mapping[str, CampaignFigures],
    key: str | None,
    *,
    first_day: int,
    days: int,
) -> list[dict[str, t.Any]]:
    """The list of :meth:`EventStore.campaigns
    <flask_mailtrack.EventStore.campaigns>`: one item per value of ``found``
    (the dimension ``key``), the most recent activity first; for ``key``
    ``None``, one item, of every event (``found`` has at most the value
    ``""``)."""
    starts = [first_day + i * DAY for i in range(days)]
    if key is None:
        every = found.get("", CampaignFigures())
        return [
            campaign_item(None, assemble_stats(every.figures, Query()), every, starts)
        ]
    items = []
    for value, figures in found.items():
        query = Query(filters=((key, value),))
        stats = assemble_stats(figures.figures, query)
        items.append(campaign_item(value, stats, figures, starts))
    items.sort(key=lambda item: item["campaign"])
    items.sort(key=lambda item: item["last"] or 0, reverse=True)
    return items
