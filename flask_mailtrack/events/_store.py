"""The event store: :class:`EventStore`.

Every open and click, kept in a SQLite file (the embedded default) or a
PostgreSQL database (shared by several machines), with the statistics a
sender wants: opens and clicks, unique per recipient, per link,
click-through, and each split between people and machines (mail privacy
proxies, link scanners)::

    store = EventStore("mailtrack.sqlite3")
    # or EventStore("postgresql://mailtrack:secret@db.internal/mailtrack")
    ...
    store.stats(campaign="spring-sale", since=datetime(2026, 3, 1))

The store is a :class:`~flask_mailtrack.events._sinks.Sink`: the worker
(``mailtrack worker``, or a thread of the serving process) writes it in
batches from the journal, so a tracking request never touches it. Reading it
(statistics, timelines, exports) never writes: a stats page waits for a
database lock at worst, a tracking hit never. An SQLite file suits one
server (or several processes of one server sharing it); PostgreSQL, any
number.

One row per event id
--------------------

The event id is unique in the table and a write skips the ids already
stored: a batch offered twice (a worker killed after committing it, before
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

Rollups: which reads scan the events
------------------------------------

Each batch also updates, in its transaction and for the events it newly
inserted only, counts per hour (type, link, machine label) and, per
recipient, the last time they opened or clicked (each link), for every
event and per value of each of the store's ``dimensions`` (by default
``campaign``). These answer, without reading the events:

- :meth:`~EventStore.stats` with no ``until``, no ``since`` or one on a
  whole hour (UTC), and at most one filter, on a dimension, with a str
  value;
- :meth:`~EventStore.timeline` with the same filters, buckets of whole
  hours, and ``since`` and ``until`` on whole hours (or unset);
- :meth:`~EventStore.campaigns`, always.

Anything else (a time range, another metadata key, several filters, a value
that is not a str) reads the matching events, as exact, slower on a large
store. A dimension's rollups count the events whose value for it is a str,
or an integer (not a bool, within 64 bits) counted as its decimal text: the
filter ``campaign="42"`` finds ``42`` and ``"42"``, whichever way it is
read. Dimensions added later are rolled up from the stored events when a
store declaring them opens the database (or by ``mailtrack db upgrade``).

The schema has a version; a store brings it up to date when it opens the
database, unless made with ``migrate=False`` (for operators who migrate by
hand with ``mailtrack db upgrade``).
"""

from __future__ import annotations

import datetime
import logging
import os
import time
import typing as t
import warnings
from collections.abc import Mapping

from blinker import ANY

from ..result import TrackingResult
from ._encoding import dumps
from ._sinks import EventRecord
from ._sqlite import to_timestamp
from ._store_backend import check_filter_name
from ._store_backend import check_forget
from ._store_backend import make_query
from ._store_backend import Rejection
from ._store_backend import StoredEvent
from ._store_database import open_backend
from ._store_reading import DEFAULT_CAMPAIGN_KEY
from ._store_reading import StoreReader
from ._store_rows import DEFAULT_IDENTITY_KEYS
from ._store_rows import event_row
from ._store_rows import identity
from ._store_rows import record_row
from ._store_rows import RejectedEvent

_DEPRECATED_OPTIONS = ("buffered", "max_buffer", "flush_interval")

logger = logging.getLogger("flask_mailtrack.store")

Event = t.Union[TrackingResult, Mapping[str, t.Any]]

#: Metadata keys rolled up by default (see :class:`EventStore`).
DEFAULT_DIMENSIONS = (DEFAULT_CAMPAIGN_KEY,)


class EventStore(StoreReader):
    """Keeps tracking events in SQLite or PostgreSQL and answers statistics
    about them.

    A :class:`~flask_mailtrack.events._sinks.Sink` named ``"store"``: the
    worker writes it with :meth:`write`. Safe to share between threads, and
    between processes using the same database (SQLite in WAL mode: writers
    wait for each other, readers wait for no one).

    :param database: The SQLite file, created (with its schema) when
        missing, ``":memory:"`` for a store that lives as long as the object,
        or a URL: ``sqlite:///relative/path``, ``sqlite:////absolute/path``,
        ``postgresql://user:password@host:port/dbname`` (needs the
        ``postgres`` extra).
    :param identity_keys: Metadata keys that identify a recipient, for unique
        counts (see the module documentation).
    :param dimensions: Metadata keys whose statistics come from rollups
        (see the module documentation).
    :param busy_timeout: Seconds a write waits for another writer's lock
        before failing (the worker then offers the batch again later):
        SQLite's busy timeout (:exc:`sqlite3.OperationalError`), PostgreSQL's
        ``lock_timeout`` (:exc:`psycopg.errors.LockNotAvailable`).
    :param migrate: Bring the database's schema up to date when opening it
        (and roll up new ``dimensions``). When false, a database that is
        behind raises :exc:`~flask_mailtrack.ConfigurationError`: run
        ``mailtrack db upgrade``.
    :param buffered: Ignored.
    :param max_buffer: Ignored.
    :param flush_interval: Ignored.

    .. versionadded:: 0.1

    .. versionchanged:: 0.2
        A sink written by the worker (:meth:`write`); reads never write.
        Added ``busy_timeout``. ``database`` (was ``path``) may be a URL,
        PostgreSQL's among them. Added ``dimensions`` and ``migrate``.

    .. deprecated:: 0.2
        ``buffered``, ``max_buffer`` and ``flush_interval``: no process
        buffers events for the store any more (the journal does); they will
        be removed in 0.3.
    """

    #: The sink's name in the worker's progress and logs.
    name = "store"

    def __init__(
        self,
        database: str | os.PathLike[str],
        *,
        identity_keys: t.Sequence[str] = DEFAULT_IDENTITY_KEYS,
        dimensions: t.Sequence[str] = DEFAULT_DIMENSIONS,
        busy_timeout: float = 30.0,
        migrate: bool = True,
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
        for dimension in dimensions:
            check_filter_name(dimension)
        #: Metadata keys that identify a recipient.
        self.identity_keys = tuple(identity_keys)
        #: Metadata keys rolled up.
        self.dimensions = tuple(dict.fromkeys(dimensions))
        self._backend = open_backend(
            database,
            dimensions=self.dimensions,
            migrate=migrate,
            busy_timeout=busy_timeout,
        )
        self._read_rollups = True
        self._connected = False

    @property
    def path(self) -> str:
        """The database file (or ``":memory:"``); for PostgreSQL its URL
        without the password."""
        return self._backend.location

    @property
    def kind(self) -> str:
        """The database: ``"sqlite"`` or ``"postgresql"``.

        .. versionadded:: 0.2
        """
        return self._backend.kind

    def schema_version(self) -> int:
        """The version of the database's schema.

        .. versionadded:: 0.2
        """
        return self._backend.schema_version()

    def upgrade(self) -> int:
        """Migrate the database's schema to the latest version and roll up
        the ``dimensions`` not rolled up yet (``mailtrack db upgrade``).

        :return: The schema version.

        .. versionadded:: 0.2
        """
        return self._backend.upgrade()

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
        :raise Exception: the database failed (:exc:`sqlite3.Error`: locked
            beyond the busy timeout, disk full; :exc:`psycopg.Error`: the
            server is down): nothing of the batch was written.

        .. versionadded:: 0.2
        """
        accepted: list[StoredEvent] = []
        rejected: list[Rejection] = []
        for event in events:
            try:
                accepted.append(self._record_row(event))
            except RejectedEvent as e:
                rejected.append(Rejection(event.id, event.body, str(e)))
        result = self._backend.write(accepted, rejected)
        for rejection in [*rejected, *result.rejected]:
            logger.warning(
                "Event %r not stored: %s.", rejection.event_id, rejection.reason
            )

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
        return identity(metadata, self.identity_keys)

    def record(self, event: Event) -> bool:
        """Store one event at once: a :class:`TrackingResult`, or an event
        dict of schema 1 (as received by a webhook).

        :return: ``False`` when an event with the same id is already stored
            (webhook redeliveries are deduplicated).
        :raise ValueError: an event the store cannot take (no id, type or
            timestamp, a value of the wrong type).
        """
        data = event.to_json_dict() if isinstance(event, TrackingResult) else event
        row = self._row(data, dumps(data))
        result = self._backend.write([row], [])
        if result.rejected:
            raise RejectedEvent(result.rejected[0].reason)
        return result.inserted == 1

    def _record_row(self, event: EventRecord) -> StoredEvent:
        return record_row(event, self.identity_keys)

    def _row(self, data: Mapping[str, t.Any], body: str) -> StoredEvent:
        return event_row(data, body, self.identity_keys)

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
        return self._backend.purge(cutoff)

    def forget(self, **metadata_filters: t.Any) -> int:
        """Delete every event (sends, opens, clicks) whose metadata matches
        all the filters, as :meth:`stats` matches them: to erase a person's
        events, ``store.forget(recipient="ann@example.com")`` (or the
        :func:`~flask_mailtrack.outgoing.hash_recipient` of the address).

        The statistics, from the rollups too, then count the events left
        only. Writes of the worker wait meanwhile.

        :param metadata_filters: At least one, not all ``None``.
        :return: The number of events deleted.
        :raise ValueError: no filter: ``forget()`` never deletes every event.

        .. versionadded:: 0.2
        """
        query = make_query(filters=metadata_filters)
        check_forget(query)
        return self._backend.forget(query)

    def close(self) -> None:
        """Stop recording (see :meth:`connect`), close the database."""
        if self._connected:
            self.disconnect()
        self._backend.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
