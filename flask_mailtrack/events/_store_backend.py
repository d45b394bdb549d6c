"""What :class:`~flask_mailtrack.EventStore` asks of a database: the
:class:`StoreBackend` protocol and the normalised :class:`Query` it passes
(``_store_database`` parses ``MAILTRACK_DATABASE`` and opens a backend).

The store validates events, computes recipient identities and assembles
statistics itself (``_store_stats``); a backend keeps rows and answers
queries. Two backends exist: SQLite (``_store_sqlite``, the embedded
default) and PostgreSQL (``_store_postgres``, imported only for a
``postgresql://`` URL).

The schema, the same tables on every backend
--------------------------------------------

``mailtrack_schema(version)``
    One row: :data:`SCHEMA_VERSION` once migrated. A database with
    ``mailtrack_events`` and no such table is version 1.
``mailtrack_events``
    One row per event id: ``event_id``, ``type``, ``occurred_at`` (whole
    seconds since the epoch), ``machine`` and ``tracked_url`` (``NULL`` when
    none), ``identity``, ``metadata`` (JSON), ``data`` (the event's JSON) and
    an insertion order (``id``). Indexed by ``occurred_at`` and, since
    version 3, by ``identity`` then ``occurred_at`` (PostgreSQL: by a hash
    of ``identity``), for the events of one recipient.
``mailtrack_dimensions(name)``
    The dimensions whose rollups are complete (every stored event counted).
    A dimension joins it in the transaction that backfills its rollups;
    writers roll up every dimension listed here, not only the ones their
    own store declares, so a process started with fewer dimensions keeps
    the others exact.
``mailtrack_hourly(dimension, value, hour, type, url, machine, n)``
    Events per hour (``hour`` = ``occurred_at // 3600 * 3600``), type, link
    and machine label; primary key on all but ``n``. ``dimension = value =
    ''`` counts every event; each listed dimension adds the rows of the
    events whose metadata value for it is a str or an int
    (:func:`~flask_mailtrack.events._store_rollups.dimension_value`).
    ``url = ''`` when none, ``machine = ''`` for people. Every event type.
``mailtrack_recipients(dimension, value, identity, opened_human, ...)``
    Columns ``opened_human``, ``opened_machine``, ``clicked_human``,
    ``clicked_machine``; primary key ``(dimension, value, identity)``; each
    column the last time (epoch seconds, at least 1) of that kind, ``0``
    for never. Opens and clicks only.
``mailtrack_link_recipients(dimension, value, url, identity, human, machine)``
    Primary key ``(dimension, value, url, identity)``; clicks only; last
    times as above.
``mailtrack_rejected(event_id, body, reason, rejected_at)``
    Events never stored, one row per id.

How filters match
-----------------

A :class:`Query` filter ``key = value`` matches the metadata value at
``key`` (top level) by these rules, on every backend and every read path:

- a ``str`` filter matches a str value equal to it, or an integer (not a
  bool, not a float) whose decimal form equals it: filters from a query
  string or a command line are text, so ``"42"`` finds ``42`` and ``"42"``;
- an ``int`` or ``float`` filter (not a bool) matches a number (integer or
  float) equal to it: ``2`` finds ``2`` and ``2.0``;
- a ``bool`` filter matches JSON ``true``/``false`` only, never ``1``/``0``;
- ``None`` matches a missing key and JSON ``null``.

Those rules make a str filter on a dimension answerable from the rollups,
which key values the same way.
"""

from __future__ import annotations

import dataclasses
import typing as t

from ._sqlite import TimeInput
from ._sqlite import to_timestamp

if t.TYPE_CHECKING:
    from ._store_campaigns import CampaignFigures
    from ._store_stats import StatsFigures

#: The schema version this code writes and reads.
SCHEMA_VERSION = 3

#: Seconds of a rollup bucket.
HOUR = 3600

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

OPENED = "email.opened"
CLICKED = "link.clicked"
#: An email sent to one recipient (:mod:`flask_mailtrack.outgoing`).
SENT = "email.sent"

#: A filter value: what :class:`Query` accepts.
FilterValue = t.Union[str, int, float, bool, None]

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


class StoredEvent(t.NamedTuple):
    """One valid event, ready for a table row."""

    event_id: str
    type: str
    #: Whole seconds since the epoch.
    occurred_at: int
    machine: str | None
    tracked_url: str | None
    #: The recipient identity, for unique counts.
    identity: str
    #: The metadata, as JSON text.
    metadata: str
    #: The whole event, as JSON text.
    data: str
    #: The metadata, decoded: what rollups read dimension values from.
    values: t.Mapping[str, t.Any]


class Rejection(t.NamedTuple):
    """An event set aside: kept in ``mailtrack_rejected``, never stored."""

    event_id: str
    body: bytes
    reason: str


@dataclasses.dataclass
class WriteResult:
    """What :meth:`StoreBackend.write` did."""

    #: Events newly stored by this write (not those already stored).
    inserted: int = 0
    #: Events the backend itself could not store and set aside (a value
    #: the database cannot encode), with the reason; not those it was given.
    rejected: list[Rejection] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Query:
    """The events a read is about: a time range, a type and metadata
    filters, normalised.

    :param since: Events at or after these seconds since the epoch.
    :param until: Events before these.
    :param type: Events of this type only.
    :param filters: ``(key, value)`` pairs matched as the module
        documentation says; keys are valid (:func:`check_filter_name`).
    """

    since: float | None = None
    until: float | None = None
    type: str | None = None
    filters: tuple[tuple[str, FilterValue], ...] = ()

    def rollup_target(self, dimensions: t.Collection[str]) -> tuple[str, str] | None:
        """The rollup rows that answer the statistics of this query:
        ``("", "")`` for every event, ``(dimension, value)`` for a str
        filter on one of ``dimensions``; ``None`` when only a scan of the
        events can (an ``until``, a ``since`` that is not a whole hour after
        the epoch, a type, several filters, another key, a value that is
        not a str).

        A ``since`` on a whole hour with no ``until`` is answered too: the
        hourly counts from that hour, and the recipients whose last time
        of a kind is at or after it, which are those with one such event
        at or after it."""
        if self.until is not None or self.type:
            return None
        if self.since is not None and (self.since <= 0 or self.since % HOUR):
            return None
        return self._filter_target(dimensions)

    def timeline_target(
        self, dimensions: t.Collection[str], bucket_seconds: int
    ) -> tuple[str, str] | None:
        """As :meth:`rollup_target` for a timeline, which hourly rollups
        answer when buckets are whole hours and ``since`` and ``until`` are
        whole hours or unset."""
        if bucket_seconds % HOUR or self.type:
            return None
        for bound in (self.since, self.until):
            if bound is not None and bound % HOUR:
                return None
        return self._filter_target(dimensions)

    def _filter_target(self, dimensions: t.Collection[str]) -> tuple[str, str] | None:
        if not self.filters:
            return ("", "")
        if len(self.filters) == 1:
            key, value = self.filters[0]
            if key in dimensions and isinstance(value, str):
                return (key, value)
        return None


def make_query(
    since: TimeInput = None,
    until: TimeInput = None,
    filters: t.Mapping[str, t.Any] | None = None,
    type: str | None = None,
) -> Query:
    """A :class:`Query` from the arguments of the store's methods.

    :raise ValueError: a filter name that cannot be one.
    :raise TypeError: a filter value that is not a str, number, bool or
        ``None``.
    """
    pairs: list[tuple[str, FilterValue]] = []
    for key, value in (filters or {}).items():
        check_filter_name(key)
        if value is not None and not isinstance(value, (str, int, float)):
            raise TypeError(f"Filter {key!r} must be a string, number or bool.")
        pairs.append((key, value))
    return Query(to_timestamp(since), to_timestamp(until), type, tuple(pairs))


def check_forget(query: Query) -> None:
    """Refuse a :class:`Query` that ``forget`` must not run: one without a
    filter, or whose filters are all ``None`` (that would delete every event
    without those keys: most of a store, all of it for an unused key), or
    with a time range or a type.

    :raise ValueError: saying what a forget needs.
    """
    if query.since is not None or query.until is not None or query.type:
        raise ValueError("forget() takes metadata filters only.")
    if all(value is None for _, value in query.filters):
        raise ValueError(
            "forget() needs at least one metadata filter with a value, such as"
            " recipient='ann@example.com': it never deletes every event."
        )


class StoreBackend(t.Protocol):
    """Storage of the event store, on one database.

    A backend is made with ``Backend(location, *, dimensions, migrate,
    **options)``:

    - ``location``: the second item of :func:`parse_database`;
    - ``dimensions``: the metadata keys this store rolls up (valid filter
      names, never ``""``);
    - ``migrate``: when true, bring the schema to :data:`SCHEMA_VERSION` and
      backfill the rollups of the ``dimensions`` not yet in
      ``mailtrack_dimensions`` (what :meth:`upgrade` does), once, safely
      when several processes on several machines start at once (SQLite:
      under ``BEGIN IMMEDIATE``; PostgreSQL: under
      ``pg_advisory_xact_lock``, then check the version again). When false,
      raise :exc:`~flask_mailtrack.ConfigurationError` naming ``mailtrack
      db upgrade`` if the schema is behind or a dimension is not rolled up
      yet. Either way raise it for a schema newer than this code knows.
      Opening a database that is up to date writes nothing.

    The PostgreSQL backend is ``PostgresBackend(url, *, dimensions,
    migrate)``; it imports psycopg in its constructor and raises
    :exc:`~flask_mailtrack.ConfigurationError` naming the extra
    (``pip install 'flask-mailtrack[postgres]'``) when it is missing.

    Every method is safe to call from several threads at once.
    """

    #: :data:`SQLITE` or :data:`POSTGRESQL`.
    kind: str
    #: The database, for messages: a file path, or a URL without password.
    location: str

    def write(
        self, events: t.Sequence[StoredEvent], rejected: t.Sequence[Rejection]
    ) -> WriteResult:
        """Store a batch, in ONE transaction: all of it or, on a database
        error, nothing.

        - Insert each of ``events`` whose ``event_id`` is not stored yet;
          skip the others silently, and a second occurrence of an id within
          the batch (the first wins). A batch offered twice, or by two
          writers at once, stores each id once.
        - Read ``mailtrack_dimensions`` in the same transaction (under the
          lock that migrations take, shared, so a backfill running at the
          same time cannot miss the batch) and apply
          :func:`~flask_mailtrack.events._store_rollups.rollup` of the events
          **newly inserted by this write only** (PostgreSQL: ``INSERT ... ON
          CONFLICT DO NOTHING RETURNING event_id``): ``n = n + delta`` on
          ``mailtrack_hourly``, the greater of the stored and the new time
          on each column of the recipient tables. Upsert in the order given
          (sorted keys), so that two writers cannot deadlock.
        - Insert ``rejected`` into ``mailtrack_rejected`` (created on demand
          or with the schema), ignoring ids already there.
        - An event the database cannot encode (a lone surrogate, a NUL
          character where the database refuses one, an integer out of
          range) is not an error of the batch: set it aside as the rejected
          ones (with a reason) and return it in :attr:`WriteResult.rejected`;
          write the others.

        :return: How many events this write inserted, and those set aside.
        :raise Exception: the driver's error when the database fails.
        """
        ...

    def stats_figures(self, query: Query, *, rollups: bool = True) -> StatsFigures:
        """The figures of :meth:`EventStore.stats
        <flask_mailtrack.EventStore.stats>` for the events matching ``query``
        (see :class:`~flask_mailtrack.events._store_stats.StatsFigures`),
        read in one snapshot.

        With ``rollups`` and a :meth:`Query.rollup_target` for the dimensions
        in ``mailtrack_dimensions``, read the rollup tables only; otherwise
        scan the matching events. Both give the same figures.
        """
        ...

    def timeline_counts(
        self, query: Query, bucket_seconds: int, *, rollups: bool = True
    ) -> list[tuple[int, str, bool, int]]:
        """``(bucket start, type, machine, events)`` of the opens and clicks
        matching ``query``, where bucket start is ``occurred_at //
        bucket_seconds * bucket_seconds`` and ``machine`` whether a machine
        label is set; rows with ``events > 0`` only, any order. From
        ``mailtrack_hourly`` with ``rollups`` and a
        :meth:`Query.timeline_target`, else from the events."""
        ...

    def campaign_figures(
        self, dimension: str, since_day: int, value: str | None = None
    ) -> dict[str, CampaignFigures]:
        """The figures of every value of ``dimension`` (``""``: of every
        event, as the value ``""``), from the rollups alone, in one snapshot:
        :func:`~flask_mailtrack.events._store_campaigns.campaign_figures` of
        ``mailtrack_hourly``'s rows of the dimension grouped by value, type,
        machine label and day (``hour - hour % 86400`` for the hours at or
        after ``since_day``, ``NULL`` before) with ``SUM(n)``, ``MIN(hour)``
        and ``MAX(hour)``, and ``mailtrack_recipients``' rows grouped by
        value with the nine recipient counts. With ``value``, of that value
        only (rows of the primary key's range).

        :raise ValueError: ``dimension`` is not in ``mailtrack_dimensions``
            (:func:`~flask_mailtrack.events._store_campaigns.check_rolled_up`).
        """
        ...

    def events(self, query: Query, limit: int | None) -> list[dict[str, t.Any]]:
        """The events (their ``data``, decoded) matching ``query``, newest
        first: by ``occurred_at`` descending, then the last inserted first;
        at most ``limit`` (``None``: all)."""
        ...

    def related_events(
        self, event_id: str, limit: int | None
    ) -> list[dict[str, t.Any]]:
        """The events (their ``data``, decoded) with the ``identity`` of the
        event ``event_id``, that one among them, oldest first (``occurred_at``,
        then insertion order); at most ``limit`` (``None``: all); ``[]``
        when no event has that id. By the index ``mailtrack_events_identity``
        (schema version 3), never a scan."""
        ...

    def iter_events(self, query: Query) -> t.Iterator[dict[str, t.Any]]:
        """The events matching ``query``, oldest first (``occurred_at``,
        then insertion order), read a page at a time so memory stays flat."""
        ...

    def count(self) -> int:
        """The number of stored events."""
        ...

    def purge(self, cutoff: float) -> int:
        """Delete the events with ``occurred_at < cutoff``, in one
        transaction, and keep the rollups exact: delete the hourly rows of
        the hours before ``cutoff``'s, recompute the hour that straddles it
        from the events left; in the recipient tables set each time older
        than ``cutoff`` to ``0`` and delete the rows left all ``0``.

        :return: The number of events deleted.
        """
        ...

    def forget(self, query: Query) -> int:
        """Delete every event (of any type) matching the filters of
        ``query``, which has at least one and no time range or type, in one
        transaction that no batch is written during (SQLite: the write
        lock; PostgreSQL: the migration lock, exclusive), and keep the
        rollups exact (:class:`~flask_mailtrack.events._store_rollups.
        Erasure`): subtract the deleted events' hourly counts, deleting the
        rows left at ``0``; delete the recipient rows they touched and roll
        those up again from the events left of the same identities. Read
        and delete a page at a time.

        :return: The number of events deleted.
        :raise ValueError: ``query`` has no filter.
        """
        ...

    def schema_version(self) -> int:
        """The version of the schema in the database: ``0`` for none,
        ``1`` for ``mailtrack_events`` without ``mailtrack_schema``."""
        ...

    def upgrade(self) -> int:
        """Migrate to :data:`SCHEMA_VERSION` and backfill the rollups of the
        backend's dimensions not yet in ``mailtrack_dimensions``, in one
        transaction, under the migration lock; a no-op when up to date.

        :return: The schema version, now.
        """
        ...

    def close(self) -> None:
        """Close every connection; later calls raise :exc:`RuntimeError`."""
        ...
