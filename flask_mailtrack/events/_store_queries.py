"""Reading the event store: filters, statistics, timelines, events.

Functions of a :class:`~flask_mailtrack.events._sqlite.ConnectionPool` and a
:class:`Where` clause; they only read. :class:`~flask_mailtrack.EventStore`
documents what each one returns.
"""

from __future__ import annotations

import json
import typing as t
from collections.abc import Mapping

from ._sqlite import ConnectionPool
from ._sqlite import TimeInput
from ._sqlite import to_timestamp

OPENED = "email.opened"
CLICKED = "link.clicked"

#: Events read per query while paging through the store.
_PAGE = 500

#: Keyword parameters of the store's queries (:meth:`EventStore.stats
#: <flask_mailtrack.EventStore.stats>`, ``timeline``, ``events``, the
#: exports). Filters taken from a query string or a command line cannot use
#: these names: they would collide with the parameter, not filter metadata.
QUERY_PARAMETERS = frozenset(
    ("since", "until", "type", "limit", "bucket_seconds", "max_buckets")
)

#: Longest metadata filter name.
MAX_FILTER_NAME = 200


def check_filter_name(name: str) -> None:
    """Refuse a metadata key that cannot be a filter.

    The key goes into an SQLite JSON path (``$."key"``): a quote or a
    backslash would escape it, and a NUL byte or another control character
    makes SQLite fail or never match.

    :param name: The metadata key.
    :raise ValueError: with a message that says what is allowed.
    """
    if not name or len(name) > MAX_FILTER_NAME:
        raise ValueError(
            f"A metadata filter name has 1 to {MAX_FILTER_NAME} characters."
        )
    if not name.isprintable() or '"' in name or "\\" in name:
        raise ValueError(
            f"Unsupported metadata filter name {name!r}: no quotes, backslashes"
            " or control characters."
        )


class Where:
    """A ``WHERE`` clause built from the common filters."""

    def __init__(
        self,
        since: TimeInput,
        until: TimeInput,
        metadata: Mapping[str, t.Any],
        type: str | None = None,
    ) -> None:
        self.parts: list[str] = []
        self.params: list[t.Any] = []
        start, end = to_timestamp(since), to_timestamp(until)
        if start is not None:
            self.add("occurred_at >= ?", start)
        if end is not None:
            self.add("occurred_at < ?", end)
        if type is not None:
            self.add("type = ?", type)
        for key, value in metadata.items():
            check_filter_name(key)
            if isinstance(value, (dict, list, tuple)):
                raise TypeError(f"Filter {key!r} must be a string, number or bool.")
            if value is None:
                self.add("json_extract(metadata, ?) IS NULL", f'$."{key}"')
            elif isinstance(value, str):
                # Text matches numbers too, as filters from a query string or
                # the command line are text: "42" finds 42 and "42".
                self.add(
                    "CAST(json_extract(metadata, ?) AS TEXT) = ?", f'$."{key}"', value
                )
            else:
                # JSON true/false come back from json_extract as 1/0.
                param = int(value) if isinstance(value, bool) else value
                self.add("json_extract(metadata, ?) = ?", f'$."{key}"', param)

    def add(self, clause: str, *params: t.Any) -> None:
        self.parts.append(clause)
        self.params.extend(params)

    def sql(self, *extra: str) -> str:
        parts = self.parts + list(extra)
        return " WHERE " + " AND ".join(parts) if parts else ""


def _counts() -> dict[str, t.Any]:
    return {
        "total": 0,
        "unique": 0,
        "human": {"total": 0, "unique": 0},
        "machine": {"total": 0, "unique": 0},
    }


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def read_stats(
    db: ConnectionPool,
    where: Where,
    since: TimeInput,
    until: TimeInput,
    metadata_filters: Mapping[str, t.Any],
) -> dict[str, t.Any]:
    """See :meth:`~flask_mailtrack.EventStore.stats`."""
    result: dict[str, t.Any] = {
        "since": to_timestamp(since),
        "until": to_timestamp(until),
        "filters": dict(metadata_filters),
        "opens": _counts(),
        "clicks": _counts(),
    }
    groups = {OPENED: result["opens"], CLICKED: result["clicks"]}
    links: dict[str, dict[str, t.Any]] = {}
    labels: dict[str, int] = {}
    select = "SELECT {}, COUNT(*), COUNT(DISTINCT identity) FROM mailtrack_events"
    clicks_only = where.sql("type = ?")
    with db.connection() as connection:
        # One read transaction: every figure comes from the same snapshot.
        connection.execute("BEGIN")
        try:
            rows = connection.execute(
                select.format("type") + where.sql() + " GROUP BY 1", where.params
            ).fetchall()
            for kind, total, unique in rows:
                if kind in groups:
                    groups[kind].update(total=total, unique=unique)
            rows = connection.execute(
                select.format("type, machine IS NOT NULL")
                + where.sql()
                + " GROUP BY 1, 2",
                where.params,
            ).fetchall()
            for kind, machine, total, unique in rows:
                if kind in groups:
                    split = groups[kind]["machine" if machine else "human"]
                    split.update(total=total, unique=unique)
            rows = connection.execute(
                select.format("tracked_url") + clicks_only + " GROUP BY 1",
                [*where.params, CLICKED],
            ).fetchall()
            for url, total, unique in rows:
                links[url] = {"url": url, **_counts(), "total": total}
                links[url]["unique"] = unique
            rows = connection.execute(
                select.format("tracked_url, machine IS NOT NULL")
                + clicks_only
                + " GROUP BY 1, 2",
                [*where.params, CLICKED],
            ).fetchall()
            for url, machine, total, unique in rows:
                split = links[url]["machine" if machine else "human"]
                split.update(total=total, unique=unique)
            rows = connection.execute(
                "SELECT machine, COUNT(*) FROM mailtrack_events"
                + where.sql("machine IS NOT NULL")
                + " GROUP BY 1 ORDER BY 2 DESC, 1",
                where.params,
            ).fetchall()
            labels = {label: count for label, count in rows}
            # The recipients who opened or clicked, people and machines
            # apart: the denominator of the rates, so that clicks without
            # a recorded open (images blocked) cannot push a rate past 1.
            rows = connection.execute(
                "SELECT machine IS NOT NULL, COUNT(DISTINCT identity)"
                " FROM mailtrack_events" + where.sql("type IN (?, ?)") + " GROUP BY 1",
                [*where.params, OPENED, CLICKED],
            ).fetchall()
            engaged = {"human": 0, "machine": 0}
            for machine, unique in rows:
                engaged["machine" if machine else "human"] = unique
            row = connection.execute(
                "SELECT COUNT(DISTINCT identity) FROM mailtrack_events"
                + where.sql("type IN (?, ?)"),
                [*where.params, OPENED, CLICKED],
            ).fetchone()
            engaged_total = row[0]
        finally:
            connection.execute("COMMIT")
    opens, clicks = result["opens"], result["clicks"]
    result["links"] = sorted(
        links.values(), key=lambda link: (-link["total"], link["url"] or "")
    )
    result["engaged"] = {"total": engaged_total, **engaged}
    result["click_through_rate"] = {
        "total": _rate(clicks["unique"], engaged_total),
        **{k: _rate(clicks[k]["unique"], engaged[k]) for k in engaged},
    }
    result["open_rate"] = {
        "total": _rate(opens["unique"], engaged_total),
        **{k: _rate(opens[k]["unique"], engaged[k]) for k in engaged},
    }
    result["machine_labels"] = labels
    return result


def read_timeline(
    db: ConnectionPool,
    where: Where,
    bucket_seconds: int,
    since: TimeInput,
    until: TimeInput,
    max_buckets: int,
) -> list[dict[str, int]]:
    """See :meth:`~flask_mailtrack.EventStore.timeline`."""
    with db.connection() as connection:
        # Opens and clicks only: the store keeps whatever the journal holds.
        rows = connection.execute(
            "SELECT occurred_at / ? * ? AS bucket, type, machine IS NOT NULL,"
            " COUNT(*) FROM mailtrack_events"
            + where.sql("type IN (?, ?)")
            + " GROUP BY 1, 2, 3 ORDER BY 1",
            [bucket_seconds, bucket_seconds, *where.params, OPENED, CLICKED],
        ).fetchall()
    counts: dict[int, dict[str, int]] = {}
    for bucket, kind, machine, count in rows:
        item = counts.setdefault(
            bucket, {"start": bucket, "opens": 0, "clicks": 0, "machine": 0}
        )
        item["opens" if kind == OPENED else "clicks"] += count
        if machine:
            item["machine"] += count
    start, end = to_timestamp(since), to_timestamp(until)
    first = min(counts) if start is None and counts else start
    last = max(counts) if end is None and counts else end
    if first is None or last is None:
        return list(counts.values())
    first_bucket = int(first) // bucket_seconds * bucket_seconds
    last_bucket = int(last) // bucket_seconds * bucket_seconds
    if end is not None and int(end) % bucket_seconds == 0:
        last_bucket -= bucket_seconds  # ``until`` is exclusive
    first_bucket = max(first_bucket, last_bucket - (max_buckets - 1) * bucket_seconds)
    return [
        counts.get(b, {"start": b, "opens": 0, "clicks": 0, "machine": 0})
        for b in range(first_bucket, last_bucket + 1, bucket_seconds)
    ]


def read_events(
    db: ConnectionPool, where: Where, limit: int | None
) -> list[dict[str, t.Any]]:
    """See :meth:`~flask_mailtrack.EventStore.events`."""
    sql = "SELECT data FROM mailtrack_events" + where.sql() + " ORDER BY id DESC"
    params = list(where.params)
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


def iter_events(db: ConnectionPool, where: Where) -> t.Iterator[dict[str, t.Any]]:
    """The events matching ``where``, oldest first, read a page at a time, so
    memory stays flat whatever the size of the store."""
    last_id = 0
    while True:
        with db.connection() as connection:
            rows = connection.execute(
                "SELECT id, data FROM mailtrack_events"
                + where.sql("id > ?")
                + " ORDER BY id LIMIT ?",
                [*where.params, last_id, _PAGE],
            ).fetchall()
        for _, data in rows:
            yield json.loads(data)
        if len(rows) < _PAGE:
            return
        last_id = rows[-1][0]
