"""The embedded event store: :class:`EventStore`.

Every open and click, kept in a SQLite file, with the statistics a sender
wants: opens and clicks, unique per recipient, per link, click-through, and
each split between people and machines (mail privacy proxies, link
scanners)::

    store = EventStore("mailtrack.sqlite3").connect()
    ...
    store.stats(campaign="spring-sale", since=datetime(2026, 3, 1))

It suits one server (or several processes of one server sharing the file).
When you outgrow it, connect your own receiver to the signals instead.

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

import atexit
import collections
import datetime
import logging
import os
import threading
import time
import typing as t
import weakref
from collections.abc import Mapping

from blinker import ANY

from ..result import TrackingResult
from ._connect import SignalConnections
from ._encoding import dumps
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

logger = logging.getLogger("flask_mailtrack.store")


def _flush_at_exit(reference: weakref.ref[EventStore]) -> None:
    store = reference()
    if store is not None and not store._closing.is_set():
        try:
            store.flush()
        except Exception:
            logger.exception("Could not write the last tracking events.")


Event = t.Union[TrackingResult, Mapping[str, t.Any]]


class EventStore:
    """Keeps tracking events in SQLite and answers statistics about them.

    Safe to share between threads, and between processes using the same
    file (WAL mode; writers wait for each other).

    :param path: The SQLite file, created when missing. ``":memory:"`` for a
        store that lives as long as the object.
    :param identity_keys: Metadata keys that identify a recipient, for unique
        counts (see the module documentation).
    :param buffered: Events received through the signals are written by a
        background thread, many per transaction, so a request never waits
        for the disk. Reads (:meth:`stats`, ...) write pending events first.
        A process killed abruptly loses the events of its last milliseconds;
        ``False`` writes each event in the request instead. (Webhook events
        never take this shortcut: see :class:`~flask_mailtrack.WebhookSender`.)
    :param max_buffer: Pending events above which the receiving thread
        writes them itself, so memory stays bounded when the disk is slow.
    :param flush_interval: Seconds the background writer lets events gather
        before writing them in one transaction.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        identity_keys: t.Sequence[str] = DEFAULT_IDENTITY_KEYS,
        buffered: bool = True,
        max_buffer: int = 10_000,
        flush_interval: float = 0.05,
    ) -> None:
        self._db = ConnectionPool(path, _SCHEMA)
        #: Metadata keys that identify a recipient.
        self.identity_keys = tuple(identity_keys)
        #: Whether signal events are written by a background thread.
        self.buffered = buffered
        #: Pending events above which the receiving thread writes them.
        self.max_buffer = max_buffer
        #: Seconds the writer lets events gather before a transaction.
        self.flush_interval = flush_interval
        self._signals = SignalConnections(self._receive)
        self._pending: collections.deque[Event] = collections.deque()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        # Set by close(): events are then written directly; the writer stops.
        self._closing = threading.Event()
        self._writer: threading.Thread | None = None
        self._writer_pid = 0
        self._start_lock = threading.Lock()
        atexit.register(_flush_at_exit, weakref.ref(self))

    @property
    def path(self) -> str:
        """The database file (or ``":memory:"``)."""
        return self._db.path

    # -- recording --------------------------------------------------------------

    def connect(self, sender: t.Any = ANY) -> EventStore:
        """Record every :data:`~flask_mailtrack.email_opened` and
        :data:`~flask_mailtrack.link_clicked` event.

        :param sender: Only events from this sender; all by default.
        :return: ``self``.
        """
        self._signals.connect(sender)
        return self

    def disconnect(self) -> None:
        """Stop recording events."""
        self._signals.disconnect()

    def _receive(self, result: TrackingResult) -> None:
        if not self.buffered or self._closing.is_set():
            self.record(result)
            return
        self._pending.append(result)
        if len(self._pending) >= self.max_buffer:
            self.flush()
        else:
            self._start_writer()
            if not self._wake.is_set():  # set() takes a lock; is_set() does not
                self._wake.set()

    def _start_writer(self) -> None:
        if self._writer_pid == os.getpid():
            return
        with self._start_lock:
            if self._writer_pid == os.getpid():
                return
            # Also after a fork: the parent's thread does not exist here.
            self._writer = threading.Thread(
                target=self._write_pending, name="mailtrack-store", daemon=True
            )
            self._writer_pid = os.getpid()
            self._writer.start()

    def _write_pending(self) -> None:
        while not self._closing.is_set():
            self._wake.wait(1.0)
            # Let events gather: one transaction for many is the point. (An
            # event, not a sleep: close() writes what is left at once.)
            if self._closing.wait(self.flush_interval):
                return
            self._wake.clear()
            try:
                self.flush()
                self._db.checkpoint()
            except Exception:
                logger.exception("Writing tracking events failed; retrying.")
                time.sleep(0.5)

    def flush(self) -> int:
        """Write the events received but not written yet (``buffered``).

        :return: How many were written (duplicates not counted).
        """
        if not self._pending:
            return 0
        with self._flush_lock:
            batch = []
            while self._pending:
                batch.append(self._pending.popleft())
            if not batch:
                return 0
            rows = [self._row(event) for event in batch]
            try:
                with self._db.transaction() as connection:
                    cursor = connection.executemany(_INSERT, rows)
            except BaseException:
                # Keep them for the next try, in order.
                self._pending.extendleft(reversed(batch))
                raise
        return int(cursor.rowcount)

    def identity(self, metadata: Mapping[str, t.Any]) -> str:
        """The recipient identity of ``metadata``, for unique counts."""
        present = [
            [key, metadata[key]] for key in self.identity_keys if key in metadata
        ]
        return dumps(present if present else metadata, sort_keys=True)

    def record(self, event: Event) -> bool:
        """Store one event: a :class:`TrackingResult`, or an event dict of
        schema 1 (as received by a webhook).

        :return: ``False`` when an event with the same id is already stored
            (webhook redeliveries are deduplicated).
        """
        return self._db.write(_INSERT, self._row(event)) == 1

    def _row(self, event: Event) -> tuple[t.Any, ...]:
        data = event.to_json_dict() if isinstance(event, TrackingResult) else event
        metadata = data.get("metadata") or {}
        return (
            data["id"],
            data["type"],
            int(data["timestamp"]),
            data.get("machine"),
            data.get("tracked_url"),
            self.identity(metadata),
            dumps(metadata),
            dumps(data),
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
        self.flush()
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
        self.flush()
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
        self.flush()
        return read_events(self._db, where, limit)

    def count(self) -> int:
        """The number of stored events."""
        self.flush()
        return count_events(self._db)

    def _iter_events(
        self, since: TimeInput, until: TimeInput, metadata: Mapping[str, t.Any]
    ) -> t.Iterator[dict[str, t.Any]]:
        where = Where(since, until, metadata)
        self.flush()
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
        self.flush()
        with self._db.connection() as connection:
            cursor = connection.execute(
                "DELETE FROM mailtrack_events WHERE occurred_at < ?", (cutoff,)
            )
        return int(cursor.rowcount)

    def close(self) -> None:
        """Stop recording, write pending events, close the database."""
        self.disconnect()
        self._closing.set()
        self._wake.set()
        writer = self._writer
        if writer is not None and self._writer_pid == os.getpid():
            writer.join()
        self.flush()
        self._db.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
