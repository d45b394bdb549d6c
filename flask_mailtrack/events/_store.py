"""The embedded event store: :class:`EventStore`.

Every open and click, kept in a SQLite file, with the statistics a sender
wants: opens and clicks, unique per recipient, per link, click-through, and
each split between people and machines (mail privacy proxies, link
scanners)::

    store = EventStore("mailtrack.sqlite3")
    ...
    store.stats(campaign="spring-sale", since=datetime(2026, 3, 1))

The store is a :class:`~flask_mailtrack.events._sinks.Sink`: the worker
(``mailtrack worker``, or a thread of the serving process) writes it in
batches from the journal, so a tracking request never touches it. Reading it
(statistics, timelines, exports) never writes: a stats page waits for a
database lock at worst, a tracking hit never. It suits one server (or
several processes of one server sharing the file).

One row per event id
--------------------

The event id is unique in the table and every write is ``INSERT OR
IGNORE``: a batch offered twice (a worker killed after committing it, before
noting so) adds nothing the second time. An event the store can never take
(no id, type or timestamp, a value of the wrong type) is logged and kept in
the table ``mailtrack_rejected`` with its raw body and the reason, so one bad
record never holds back the events behind it.

Unique counts
-------------

An open or a click is *unique* per recipient: several opens of the same
email by the same person count once. Who the recipient is comes from the
metadata the links were made with: the values of the ``identity_keys``
present in it (by default ``message_id``, ``recipient``, ``email``,
``user_id``, ``customer_id``, ``subscriber_id``, ``contact_id``), all of
them together. When none is present, the whole metadata identifies the
recipient. Put a per-recipient value in the metadata to get meaningful
unique counts. The identity is computed when an event is recorded, so
changing ``identity_keys`` affects new events only.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import sqlite3
import time
import typing as t
import warnings
from collections.abc import Mapping

from blinker import ANY

from ..result import TrackingResult
from ._encoding import dumps
from ._sinks import EventRecord
from ._sqlite import ConnectionPool
from ._sqlite import TimeInput
from ._sqlite import to_timestamp
from ._store_export import write_csv
from ._store_export import write_jsonl
from ._store_queries import count_events
from ._store_queries import iter_events
from ._store_queries import read_events
from ._store_queries import read_stats
from ._store_queries import read_timeline
from ._store_queries import Where

#: Metadata keys that identify a recipient, for unique counts.
DEFAULT_IDENTITY_KEYS = (
    "message_id",
    "recipient",
    "email",
    "user_id",
    "customer_id",
    "subscriber_id",
    "contact_id",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mailtrack_events (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    machine TEXT,
    tracked_url TEXT,
    identity TEXT NOT NULL,
    metadata TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mailtrack_events_time
    ON mailtrack_events (occurred_at);
"""

_INSERT = (
    "INSERT OR IGNORE INTO mailtrack_events (event_id, type, occurred_at,"
    " machine, tracked_url, identity, metadata, data)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

# Created by the first batch with a rejected event, not with the store: a
# database that never saw one keeps its schema, and opening it writes nothing.
_REJECTED_SCHEMA = """
CREATE TABLE IF NOT EXISTS mailtrack_rejected (
    event_id TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    reason TEXT NOT NULL,
    rejected_at REAL NOT NULL
)
"""

_REJECT = (
    "INSERT OR IGNORE INTO mailtrack_rejected (event_id, body, reason,"
    " rejected_at) VALUES (?, ?, ?, ?)"
)

#: What SQLite cannot bind: a string with a lone surrogate (valid JSON,
#: ``"\ud800"``), an integer beyond 64 bits. Faults of one event, not of the
#: database.
_UNBINDABLE = (UnicodeEncodeError, OverflowError)

_DEPRECATED_OPTIONS = ("buffered", "max_buffer", "flush_interval")

logger = logging.getLogger("flask_mailtrack.store")

Event = t.Union[TrackingResult, Mapping[str, t.Any]]
Row = tuple[t.Any, ...]


class RejectedEvent(ValueError):
    """An event the store can never take; the message says why."""


def _text(data: Mapping[str, t.Any], key: str, *, required: bool = False) -> t.Any:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise RejectedEvent(f"{key!r} is not a non-empty string")
    return value


class EventStore:
    """Keeps tracking events in SQLite and answers statistics about them.

    A :class:`~flask_mailtrack.events._sinks.Sink` named ``"store"``: the
    worker writes it with :meth:`write`. Safe to share between threads, and
    between processes using the same file (WAL mode; writers wait for each
    other, readers wait for no one).

    :param path: The SQLite file, created (with its schema) when missing.
        ``":memory:"`` for a store that lives as long as the object.
    :param identity_keys: Metadata keys that identify a recipient, for unique
        counts (see the module documentation).
    :param busy_timeout: Seconds a write waits for another writer's lock
        before raising :exc:`sqlite3.OperationalError` (the worker then offers
        the batch again later).
    :param buffered: Ignored.
    :param max_buffer: Ignored.
    :param flush_interval: Ignored.

    .. versionadded:: 0.1

    .. versionchanged:: 0.2
        A sink written by the worker (:meth:`write`); reads never write.
        Added ``busy_timeout``.

    .. deprecated:: 0.2
        ``buffered``, ``max_buffer`` and ``flush_interval``: no process
        buffers events for the store any more (the journal does); they will
        be removed in 0.3.
    """

    #: The sink's name in the worker's progress and logs.
    name = "store"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        identity_keys: t.Sequence[str] = DEFAULT_IDENTITY_KEYS,
        busy_timeout: float = 30.0,
        buffered: bool | None = None,
        max_buffer: int | None = None,
        flush_interval: float | None = None,
    ) -> None:
        given = dict(
            buffered=buffered, max_buffer=max_buffer, flush_interval=flush_interval
        )
        for option in _DEPRECATED_OPTIONS:
            if given[option] is not None:
                warnings.warn(
                    f"EventStore({option}=...) is deprecated and ignored: the"
                    " worker writes the store from the journal. It will be"
                    " removed in 0.3.",
                    DeprecationWarning,
                    stacklevel=2,
                )
        self._db = ConnectionPool(path, _SCHEMA, busy_timeout=busy_timeout)
        #: Metadata keys that identify a recipient.
        self.identity_keys = tuple(identity_keys)
        self._connected = False

    @property
    def path(self) -> str:
        """The database file (or ``":memory:"``)."""
        return self._db.path

    # -- recording --------------------------------------------------------------

    def connect(self, sender: t.Any = ANY) -> EventStore:
        """Record every :data:`~flask_mailtrack.email_opened` and
        :data:`~flask_mailtrack.link_clicked` event, through a journal and
        worker of this store's own (``<path>-store-events``).

        :param sender: Only events from this sender; all by default.
        :return: ``self``.
        """
        from ._pipeline import connect_sink

        connect_sink(self, sender)
        self._connected = True
        return self

    def disconnect(self) -> None:
        """Stop recording events; those already journaled are written first."""
        from ._pipeline import disconnect_sink

        disconnect_sink(self)
        self._connected = False

    def write(self, events: t.Sequence[EventRecord]) -> None:
        """Store ``events`` in one transaction, each id once.

        Events already stored are skipped, so a batch may be offered again.
        An event the store can never take is logged, kept in the table
        ``mailtrack_rejected`` and skipped; the others are written.

        :param events: Journaled events, as the worker reads them.
        :raise sqlite3.Error: the database failed (locked beyond the busy
            timeout, disk full): nothing of the batch was written.

        .. versionadded:: 0.2
        """
        accepted: list[tuple[EventRecord, Row]] = []
        rejected: list[tuple[EventRecord, str]] = []
        for event in events:
            try:
                accepted.append((event, self._record_row(event)))
            except RejectedEvent as e:
                rejected.append((event, str(e)))
        with self._db.transaction() as connection:
            try:
                connection.executemany(_INSERT, [row for _, row in accepted])
            except _UNBINDABLE:
                # The rows before the bad one are in; INSERT OR IGNORE makes
                # going through them all again one at a time harmless.
                for event, row in accepted:
                    try:
                        connection.execute(_INSERT, row)
                    except _UNBINDABLE as e:
                        rejected.append((event, f"a value SQLite cannot store ({e})"))
            if rejected:
                connection.execute(_REJECTED_SCHEMA)
                now = time.time()
                connection.executemany(
                    _REJECT,
                    [(event.id, event.body, reason, now) for event, reason in rejected],
                )
        for event, reason in rejected:
            logger.warning("Event %r not stored: %s.", event.id, reason)
        try:
            self._db.checkpoint()
        except sqlite3.Error:
            # The batch is committed; the next write checkpoints.
            logger.debug("WAL checkpoint failed", exc_info=True)

    def flush(self) -> int:
        """Do nothing: events reach the store through the journal and the
        worker, never through a queue of this object.

        :return: ``0``.

        .. deprecated:: 0.2
            Will be removed in 0.3.
        """
        warnings.warn(
            "EventStore.flush() is deprecated and does nothing: the worker"
            " writes the store from the journal. It will be removed in 0.3.",
            DeprecationWarning,
            stacklevel=2,
        )
        return 0

    def identity(self, metadata: Mapping[str, t.Any]) -> str:
        """The recipient identity of ``metadata``, for unique counts."""
        present = [
            [key, metadata[key]] for key in self.identity_keys if key in metadata
        ]
        return dumps(present if present else metadata, sort_keys=True)

    def record(self, event: Event) -> bool:
        """Store one event at once: a :class:`TrackingResult`, or an event
        dict of schema 1 (as received by a webhook).

        :return: ``False`` when an event with the same id is already stored
            (webhook redeliveries are deduplicated).
        :raise ValueError: an event the store cannot take (no id, type or
            timestamp, a value of the wrong type).
        """
        data = event.to_json_dict() if isinstance(event, TrackingResult) else event
        return self._db.write(_INSERT, self._row(data, dumps(data))) == 1

    def _record_row(self, event: EventRecord) -> Row:
        if event.data.get("id") != event.id:
            raise RejectedEvent("its id is not the id of its record")
        try:
            body = event.body.decode("utf-8")
        except UnicodeDecodeError:
            raise RejectedEvent("its body is not UTF-8") from None
        return self._row(event.data, body)

    def _row(self, data: Mapping[str, t.Any], body: str) -> Row:
        """The table row of the event ``data`` whose JSON is ``body``.

        :raise RejectedEvent: ``data`` lacks what the table needs.
        """
        if not isinstance(data, Mapping):
            raise RejectedEvent("not a JSON object")
        timestamp = data.get("timestamp")
        if (
            not isinstance(timestamp, (int, float))
            or isinstance(timestamp, bool)
            or not math.isfinite(timestamp)
        ):
            raise RejectedEvent("'timestamp' is not a number of seconds")
        metadata = data.get("metadata")
        if metadata is None:
            metadata = {}
        elif not isinstance(metadata, Mapping):
            raise RejectedEvent("'metadata' is not an object")
        return (
            _text(data, "id", required=True),
            _text(data, "type", required=True),
            int(timestamp),
            _text(data, "machine"),
            _text(data, "tracked_url"),
            self.identity(metadata),
            dumps(metadata),
            body,
        )

    # -- reading ----------------------------------------------------------------

    def stats(
        self,
        *,
        since: TimeInput = None,
        until: TimeInput = None,
        **metadata_filters: t.Any,
    ) -> dict[str, t.Any]:
        """Statistics of the events in a time range matching the filters.

        :param since: Only events at or after this time (a datetime, naive
            meaning UTC, or seconds since the epoch).
        :param until: Only events before this time.
        :param metadata_filters: Only events whose metadata has these values,
            e.g. ``campaign="spring"``.
        :return: A JSON-ready dict::

                {
                  "opens": COUNTS, "clicks": COUNTS,
                  "links": [{"url": ..., **COUNTS}, ...],  # most clicked first
                  "engaged": {"total": n, "human": n, "machine": n},
                  "click_through_rate": {"total": r, "human": r, "machine": r},
                  "open_rate": {"total": r, "human": r, "machine": r},
                  "machine_labels": {"apple-mpp": n, ...},
                  "since": ..., "until": ..., "filters": {...},
                }

            where ``COUNTS`` is ``{"total": n, "unique": n, "human": {"total":
            n, "unique": n}, "machine": {"total": n, "unique": n}}``.
            ``engaged`` counts the unique recipients who opened or clicked.
            The click-through rate is the unique recipients who clicked
            divided by ``engaged``, and the open rate the unique recipients
            who opened divided by ``engaged``, in total, for people and for
            machines; ``None`` when ``engaged`` is 0. Neither can exceed 1,
            even when clicks come without a recorded open (images blocked,
            or the open counted as a machine's). The store does not know how
            many emails were sent, so these are not rates per email sent.
        """
        where = Where(since, until, metadata_filters)
        return read_stats(self._db, where, since, until, metadata_filters)

    def timeline(
        self,
        *,
        bucket_seconds: int = 3600,
        since: TimeInput = None,
        until: TimeInput = None,
        max_buckets: int = 1000,
        **metadata_filters: t.Any,
    ) -> list[dict[str, int]]:
        """Event counts per time bucket, oldest first, for charts.

        Each item is ``{"start": epoch seconds, "opens": n, "clicks": n,
        "machine": n}`` (``machine`` counts both kinds). Empty buckets
        between the first and the last (or ``since`` and ``until``) are
        included; at most ``max_buckets``, the most recent.
        """
        if bucket_seconds < 1:
            raise ValueError("bucket_seconds must be at least 1.")
        where = Where(since, until, metadata_filters)
        return read_timeline(self._db, where, bucket_seconds, since, until, max_buckets)

    def events(
        self,
        *,
        since: TimeInput = None,
        until: TimeInput = None,
        type: str | None = None,
        limit: int | None = 100,
        **metadata_filters: t.Any,
    ) -> list[dict[str, t.Any]]:
        """The most recent events, newest first, as schema-1 dicts.

        :param type: ``"email.opened"`` or ``"link.clicked"``; both by default.
        :param limit: At most this many; ``None`` for all.
        """
        where = Where(since, until, metadata_filters, type)
        return read_events(self._db, where, limit)

    def count(self) -> int:
        """The number of stored events."""
        return count_events(self._db)

    def _iter_events(
        self, since: TimeInput, until: TimeInput, metadata: Mapping[str, t.Any]
    ) -> t.Iterator[dict[str, t.Any]]:
        where = Where(since, until, metadata)
        yield from iter_events(self._db, where)

    def export_jsonl(
        self,
        file: t.TextIO,
        *,
        since: TimeInput = None,
        until: TimeInput = None,
        **metadata_filters: t.Any,
    ) -> int:
        """Write the events, oldest first, one schema-1 JSON object per line.

        :return: The number of events written.
        """
        return write_jsonl(file, self._iter_events(since, until, metadata_filters))

    def export_csv(
        self,
        file: t.TextIO,
        *,
        since: TimeInput = None,
        until: TimeInput = None,
        **metadata_filters: t.Any,
    ) -> int:
        """Write the events, oldest first, as CSV with a header row.

        Columns are :data:`CSV_COLUMNS`; ``metadata`` is a JSON object and
        ``machine_reasons`` is space-separated. Open the file with
        ``newline=""``.

        :return: The number of events written.
        """
        return write_csv(file, self._iter_events(since, until, metadata_filters))

    # -- retention --------------------------------------------------------------

    def purge(self, older_than: float | datetime.timedelta | datetime.datetime) -> int:
        """Delete old events.

        :param older_than: An age (a :class:`~datetime.timedelta` or seconds)
            or an absolute :class:`~datetime.datetime`: events that occurred
            before it are deleted.
        :return: The number of events deleted.
        """
        if isinstance(older_than, datetime.timedelta):
            cutoff = time.time() - older_than.total_seconds()
        elif isinstance(older_than, datetime.datetime):
            cutoff = t.cast(float, to_timestamp(older_than))
        else:
            cutoff = time.time() - float(older_than)
        with self._db.connection() as connection:
            cursor = connection.execute(
                "DELETE FROM mailtrack_events WHERE occurred_at < ?", (cutoff,)
            )
        return int(cursor.rowcount)

    def close(self) -> None:
        """Stop recording (see :meth:`connect`), close the database."""
        if self._connected:
            self.disconnect()
        self._db.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
