"""Statistics and timelines from a backend's figures, in pure Python.

A backend answers :class:`StatsFigures` (from rollups or from a scan of the
events, it does not matter here) and timeline counts; :func:`assemble_stats`
and :func:`assemble_timeline` make the dicts :class:`~flask_mailtrack.
EventStore` returns, the same for every backend and both read paths.
"""

from __future__ import annotations

import dataclasses
import typing as t

from ._store_backend import CLICKED
from ._store_backend import OPENED
from ._store_backend import Query
from ._store_backend import SENT

#: The two halves of every count: events with no machine label (people) and
#: with one.
SIDES = ("human", "machine")


@dataclasses.dataclass
class StatsFigures:
    """What a backend counts for :meth:`EventStore.stats
    <flask_mailtrack.EventStore.stats>`. A missing key counts ``0``.

    ``side`` is ``"human"`` (no machine label) or ``"machine"``, and in the
    unique counts also ``"all"`` (either: a recipient counted by both sides
    counts once). Unique means distinct ``identity``.
    """

    #: ``(type, side)``: events; every type may appear, opens and clicks
    #: are read.
    totals: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    #: ``(type, side)``: distinct recipients, for opens and clicks.
    uniques: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    #: ``(url, side)``: clicks of each link (``url`` is ``None`` for clicks
    #: without one).
    link_totals: dict[tuple[str | None, str], int] = dataclasses.field(
        default_factory=dict
    )
    #: ``(url, side)``: distinct recipients who clicked each link.
    link_uniques: dict[tuple[str | None, str], int] = dataclasses.field(
        default_factory=dict
    )
    #: Machine label: events of any type with it.
    labels: dict[str, int] = dataclasses.field(default_factory=dict)
    #: ``side``: distinct recipients who opened or clicked.
    engaged: dict[str, int] = dataclasses.field(default_factory=dict)


def add_recipient_counts(figures: StatsFigures, counts: t.Sequence[int | None]) -> None:
    """Set the unique counts and ``engaged`` of ``figures`` from the nine
    counts of a rollup read of ``mailtrack_recipients``, in this order:
    recipients who opened (either side, people, machines), who clicked
    (the same three), who opened or clicked (the same three). ``None``
    (the ``SUM`` of no rows) counts ``0``."""
    row = [n or 0 for n in counts]
    for i, kind in enumerate((OPENED, CLICKED)):
        for j, side in enumerate(("all", *SIDES)):
            figures.uniques[kind, side] = row[3 * i + j]
    figures.engaged.update(all=row[6], human=row[7], machine=row[8])


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _counts(
    totals: t.Mapping[t.Any, int], uniques: t.Mapping[t.Any, int], key: t.Any
) -> dict[str, t.Any]:
    human = totals.get((key, "human"), 0)
    machine = totals.get((key, "machine"), 0)
    return {
        "total": human + machine,
        "unique": uniques.get((key, "all"), 0),
        "human": {"total": human, "unique": uniques.get((key, "human"), 0)},
        "machine": {"total": machine, "unique": uniques.get((key, "machine"), 0)},
    }


def assemble_stats(figures: StatsFigures, query: Query) -> dict[str, t.Any]:
    """The dict of :meth:`EventStore.stats <flask_mailtrack.EventStore.stats>`
    for ``figures`` of the events of ``query``."""
    opens = _counts(figures.totals, figures.uniques, OPENED)
    clicks = _counts(figures.totals, figures.uniques, CLICKED)
    urls = {url for url, _ in figures.link_totals}
    links = [
        {"url": url, **_counts(figures.link_totals, figures.link_uniques, url)}
        for url in urls
    ]
    links.sort(key=lambda link: (-link["total"], link["url"] or ""))
    engaged = {side: figures.engaged.get(side, 0) for side in SIDES}
    engaged_total = figures.engaged.get("all", 0)
    sent = figures.totals.get((SENT, "human"), 0)
    sent += figures.totals.get((SENT, "machine"), 0)
    labels = sorted(
        ((label, n) for label, n in figures.labels.items() if n),
        key=lambda item: (-item[1], item[0]),
    )
    return {
        "since": query.since,
        "until": query.until,
        "filters": dict(query.filters),
        "opens": opens,
        "clicks": clicks,
        "links": links,
        "engaged": {"total": engaged_total, **engaged},
        "click_through_rate": {
            "total": _rate(clicks["unique"], engaged_total),
            **{k: _rate(clicks[k]["unique"], engaged[k]) for k in SIDES},
        },
        "open_rate": {
            "total": _rate(opens["unique"], engaged_total),
            **{k: _rate(opens[k]["unique"], engaged[k]) for k in SIDES},
        },
        "machine_labels": dict(labels),
        "sent": {
            "total": sent,
            "open_rate": {
                "total": _rate(opens["unique"], sent),
                **{k: _rate(opens[k]["unique"], sent) for k in SIDES},
            },
            "click_rate": {
                "total": _rate(clicks["unique"], sent),
                **{k: _rate(clicks[k]["unique"], sent) for k in SIDES},
            },
        },
    }


def _empty_bucket(start: int) -> dict[str, int]:
    return {
        "start": start,
        "opens": 0,
        "clicks": 0,
        "machine": 0,
        "opens_machine": 0,
        "clicks_machine": 0,
    }


def assemble_timeline(
    counts: t.Iterable[tuple[int, str, bool, int]],
    query: Query,
    bucket_seconds: int,
    max_buckets: int,
) -> list[dict[str, int]]:
    """The list of :meth:`EventStore.timeline
    <flask_mailtrack.EventStore.timeline>` from a backend's ``(bucket start,
    type, machine, events)`` counts."""
    buckets: dict[int, dict[str, int]] = {}
    for bucket, kind, machine, n in counts:
        if kind not in (OPENED, CLICKED) or not n:
            continue
        item = buckets.setdefault(bucket, _empty_bucket(bucket))
        name = "opens" if kind == OPENED else "clicks"
        item[name] += n
        if machine:
            item["machine"] += n
            item[name + "_machine"] += n
    start, end = query.since, query.until
    first = min(buckets) if start is None and buckets else start
    last = max(buckets) if end is None and buckets else end
    if first is None or last is None:
        return [buckets[b] for b in sorted(buckets)]
    first_bucket = int(first) // bucket_seconds * bucket_seconds
    last_bucket = int(last) // bucket_seconds * bucket_seconds
    if end is not None and int(end) % bucket_seconds == 0:
        last_bucket -= bucket_seconds  # ``until`` is exclusive
    first_bucket = max(first_bucket, last_bucket - (max_buckets - 1) * bucket_seconds)
    return [
        buckets.get(b) or _empty_bucket(b)
        for b in range(first_bucket, last_bucket + 1, bucket_seconds)
    ]
