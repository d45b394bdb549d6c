"""The PostgreSQL backend of the event store: one database shared by the
workers and servers of every machine.

``EventStore("postgresql://user:password@host/db")`` (or
``MAILTRACK_DATABASE``) uses it; psycopg 3 (the ``postgres`` extra) is
imported then and only then. ``_store_backend`` says what each method does,
``_postgres_schema`` what the tables look like, ``_postgres_queries`` how
they are read.

Writing a batch
---------------

One transaction per batch, in the fastest idempotent way measured
(``benchmarks/bench_postgres.py``): ``COPY`` into a temporary staging
table, then ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING
event_id`` into the events, so that only the events this transaction
inserted are rolled up; then the rollup changes of those, computed in
Python (``_store_rollups``), staged by ``COPY`` and upserted. A writer
offering an event that another writer has inserted but not committed waits
for that transaction: it skips the event if the other commits, stores it if
the other rolls back, so two workers offering the same batch at once count
it once. Keys are inserted in sorted order, so two writers cannot deadlock.

Each month's partition of ``mailtrack_events`` is created by the first
writer that needs it, under an advisory lock. An event PostgreSQL cannot
take (a NUL character, a lone surrogate, a ``\\u0000`` in its metadata, a
time outside the years 1 to 9999) is set aside in ``mailtrack_rejected``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import typing as t
import weakref

from ..exceptions import ConfigurationError
from . import _postgres_schema as schema
from ._postgres import PostgresPool
from ._postgres_queries import count_events
from ._postgres_queries import iter_events
from ._postgres_queries import read_events
from ._postgres_queries import read_timeline_counts
from ._postgres_queries import snapshot
from ._postgres_queries import stats_from_events
from ._postgres_queries import stats_from_rollups
from ._postgres_queries import whole_seconds
from ._store_backend import HOUR
from ._store_backend import POSTGRESQL
from ._store_backend import Query
from ._store_backend import Rejection
from ._store_backend import SCHEMA_VERSION
from ._store_backend import StoredEvent
from ._store_backend import WriteResult
from ._store_rollups import Rollup
from ._store_rollups import rollup

if t.TYPE_CHECKING:  # pragma: no cover
    import psycopg

    from ._store_stats import StatsFigures

logger = logging.getLogger("flask_mailtrack.store")

_COLUMNS = "event_id, type, occurred_at, machine, tracked_url, identity, metadata, data"

#: The columns of :func:`stored_event`.
_SELECT = (
    "event_id, type, occurred_at, machine, tracked_url, identity, metadata::text, data"
)

_INSERT_EVENTS = (
    f"INSERT INTO mailtrack_events (id, {_COLUMNS})"
    " SELECT id, event_id, type, occurred_at, machine, tracked_url, identity,"
    " metadata::jsonb, data FROM mailtrack_staged_events ORDER BY event_id"
    " ON CONFLICT DO NOTHING RETURNING event_id"
)

_HOURLY_KEY = "dimension, value, hour, type, url, machine"
_RECIPIENT_TIMES = (
    "opened_human",
    "opened_machine",
    "clicked_human",
    "clicked_machine",
)
_LINK_TIMES = ("human", "machine")


def _upsert_latest(table: str, key: str, times: tuple[str, ...]) -> str:
    """Insert the staged rows of ``table``, or keep the later of each time;
    rows that would not change are left alone (no new row version)."""
    sets = ", ".join(f"{c} = GREATEST(t.{c}, excluded.{c})" for c in times)
    later = " OR ".join(f"excluded.{c} > t.{c}" for c in times)
    return (
        f"INSERT INTO {table} AS t SELECT * FROM mailtrack_staged_{table[10:]}"
        f" ORDER BY {key} ON CONFLICT ({key}) DO UPDATE SET {sets} WHERE {later}"
    )


_UPSERTS = (
    (
        "mailtrack_staged_hourly",
        "hourly_rows",
        "INSERT INTO mailtrack_hourly AS t SELECT * FROM mailtrack_staged_hourly"
        f" ORDER BY {_HOURLY_KEY} ON CONFLICT ({_HOURLY_KEY})"
        " DO UPDATE SET n = t.n + excluded.n",
    ),
    (
        "mailtrack_staged_recipients",
        "recipient_rows",
        _upsert_latest(
            "mailtrack_recipients", "dimension, value, identity", _RECIPIENT_TIMES
        ),
    ),
    (
        "mailtrack_staged_link_recipients",
        "link_recipient_rows",
        _upsert_latest(
            "mailtrack_link_recipients", "dimension, value, url, identity", _LINK_TIMES
        ),
    ),
)

_REJECT = (
    "INSERT INTO mailtrack_rejected (event_id, body, reason, rejected_at)"
    " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING"
)

#: Events read per page while backfilling or recomputing rollups.
_BACKFILL_PAGE = 5000


def stored_event(row: t.Sequence[t.Any]) -> StoredEvent:
    """A :class:`StoredEvent` from a row of ``SELECT {_SELECT}``.

    The values come from the event as received (``data``), not from
    ``jsonb``, which writes numbers its own way (``1e+16`` as
    ``10000000000000000``, an integer to Python): rollups recomputed from
    stored events see what the write saw.
    """
    event_id, kind, occurred_at, machine, url, identity, metadata, data = row
    values = json.loads(data).get("metadata") or {}
    return StoredEvent(
        event_id, kind, occurred_at, machine, url, identity, metadata, data, values
    )


def _clean_text(text: str) -> str:
    """``text`` as PostgreSQL can store it: no NUL, no lone surrogate."""
    text = text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class PostgresBackend:
    """The event store's tables in a PostgreSQL database; see
    :class:`~flask_mailtrack.events._store_backend.StoreBackend`.

    :param url: ``postgresql://user:password@host:port/dbname``, with any
        libpq parameter in the query string (``?sslmode=require``,
        ``?options=-csearch_path%3Dmailtrack`` for another schema than
        ``public``). Never shown with its password.
    :param dimensions: The metadata keys rolled up.
    :param migrate: Migrate (and backfill new dimensions) on open.
    :param lock_timeout: Seconds a statement waits for another
        transaction's lock (PostgreSQL's ``lock_timeout``) before failing;
        the worker then offers the batch again later.
    """

    kind = POSTGRESQL

    def __init__(
        self,
        url: str,
        *,
        dimensions: t.Sequence[str],
        migrate: bool = True,
        lock_timeout: float = 30.0,
    ) -> None:
        self.db = PostgresPool(url, lock_timeout=lock_timeout)
        self._errors = self.db.psycopg.errors
        self.location = self.db.display_url
        self.dimensions = tuple(dimensions)
        self._lock = threading.Lock()
        #: Months whose partition this process knows to exist.
        self._months: set[int] = set()
        #: Connections whose staging tables exist.
        self._staged: weakref.WeakSet[t.Any] = weakref.WeakSet()
        try:
            if self._behind():
                if not migrate:
                    raise ConfigurationError(
                        f"The event store {self.location!r} needs a schema"
                        f" upgrade (version {self.schema_version()} of"
                        f" {SCHEMA_VERSION}, or new dimensions): run"
                        " 'mailtrack db upgrade'."
                    )
                self.upgrade()
        except BaseException:
            self.db.close()
            raise

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.location!r}>"

    # -- schema -----------------------------------------------------------------

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"The event store {self.location!r} has schema version"
                f" {version}, newer than this flask-mailtrack knows"
                f" ({SCHEMA_VERSION}): upgrade flask-mailtrack."
            )
        if version == 1:
            raise ConfigurationError(
                f"The database {self.location!r} has a table mailtrack_events"
                " that is not the event store's (no mailtrack_schema): give the"
                " store a schema of its own (?options=-csearch_path%3D...)."
            )

    def _behind(self) -> bool:
        with self.db.connection() as connection:
            version = schema.version(connection)
            self._check_version(version)
            if version < SCHEMA_VERSION:
                return True
            recorded = schema.recorded_dimensions(connection)
            return not set(self.dimensions) <= recorded

    def schema_version(self) -> int:
        with self.db.connection() as connection:
            return schema.version(connection)

    def upgrade(self) -> int:
        with self.db.connection() as connection:
            with connection.transaction():
                schema.lock_schema(connection)
                # Looked at under the lock: another process may have migrated.
                version = schema.version(connection)
                self._check_version(version)
                if version == 0:
                    schema.create(connection)
                elif version < SCHEMA_VERSION:
                    schema.migrate(connection, version)
                    logger.info(
                        "Event store %s migrated to version %d.",
                        self.location,
                        SCHEMA_VERSION,
                    )
                recorded = schema.recorded_dimensions(connection)
                missing = [d for d in self.dimensions if d not in recorded]
                if missing:
                    self._backfill(connection, missing)
                    connection.cursor().executemany(
                        "INSERT INTO mailtrack_dimensions VALUES (%s)",
                        [(d,) for d in missing],
                    )
        return SCHEMA_VERSION

    def _backfill(
        self, connection: psycopg.Connection[t.Any], dimensions: list[str]
    ) -> None:
        """Roll up every stored event for ``dimensions``, a page at a time."""
        self._ensure_staging(connection)
        after = (-(2**63), -(2**63))
        while True:
            rows = connection.execute(
                f"SELECT occurred_at, id, {_SELECT} FROM mailtrack_events"
                " WHERE (occurred_at, id) > (%s, %s) ORDER BY occurred_at, id LIMIT %s",
                (*after, _BACKFILL_PAGE),
            ).fetchall()
            if not rows:
                return
            events = [stored_event(row[2:]) for row in rows]
            self._apply(connection, rollup(events, dimensions, everything=False))
            after = (rows[-1][0], rows[-1][1])

    def _ensure_staging(self, connection: psycopg.Connection[t.Any]) -> None:
        if connection not in self._staged:
            connection.execute(schema.STAGING)
            self._staged.add(connection)

    # -- writing ----------------------------------------------------------------

    def write(
        self, events: t.Sequence[StoredEvent], rejected: t.Sequence[Rejection]
    ) -> WriteResult:
        result = WriteResult()
        unique: dict[str, StoredEvent] = {}
        for event in events:
            unique.setdefault(event.event_id, event)
        batch: list[StoredEvent] = []
        for event in unique.values():
            if schema.EARLIEST <= event.occurred_at < schema.LATEST:
                batch.append(event)
            else:
                self._set_aside(
                    result, event, "a time outside the years 1 to 9999 (UTC)"
                )
        with self.db.connection() as connection:
            for _ in range(3):
                self._ensure_partitions(connection, batch)
                try:
                    result.inserted = self._write(
                        connection, batch, [*rejected, *result.rejected]
                    )
                    return result
                except self._errors.CheckViolation as e:
                    if "no partition" not in (e.diag.message_primary or ""):
                        raise
                    # A partition this process knew was dropped (purge).
                    with self._lock:
                        self._months.clear()
                except (UnicodeEncodeError, self._errors.DataError):
                    batch = self._sort_out(connection, batch, result)
            raise RuntimeError("The batch could not be written.")  # pragma: no cover

    def _set_aside(self, result: WriteResult, event: StoredEvent, reason: str) -> None:
        body = event.data.encode("utf-8", "surrogatepass")
        result.rejected.append(Rejection(event.event_id, body, reason))

    def _ensure_partitions(
        self, connection: psycopg.Connection[t.Any], events: t.Sequence[StoredEvent]
    ) -> None:
        months = {schema.month_of(event.occurred_at) for event in events}
        with self._lock:
            missing = months - self._months
        if missing:
            schema.ensure_partitions(connection, missing)
            with self._lock:
                self._months |= missing

    def _write(
        self,
        connection: psycopg.Connection[t.Any],
        events: list[StoredEvent],
        rejected: t.Sequence[Rejection],
    ) -> int:
        """Write ``events`` and ``rejected`` in one transaction; return how
        many events were inserted."""
        inserted: list[StoredEvent] = []
        with connection.transaction():
            self._ensure_staging(connection)
            schema.lock_schema(connection, shared=True)
            if events:
                cursor = connection.cursor()
                with cursor.copy(
                    f"COPY mailtrack_staged_events ({_COLUMNS}) FROM STDIN"
                ) as copy:
                    for event in events:
                        copy.write_row(event[:8])
                new = {row[0] for row in cursor.execute(_INSERT_EVENTS).fetchall()}
                if len(new) == len(events):
                    inserted = events
                else:
                    inserted = [event for event in events if event.event_id in new]
            if inserted:
                dimensions = schema.recorded_dimensions(connection)
                self._apply(connection, rollup(inserted, dimensions))
            if rejected:
                now = time.time()
                connection.cursor().executemany(
                    _REJECT,
                    [
                        (_clean_text(r.event_id), r.body, _clean_text(r.reason), now)
                        for r in rejected
                    ],
                )
        return len(inserted)

    def _apply(self, connection: psycopg.Connection[t.Any], changes: Rollup) -> None:
        """Add ``changes`` to the rollup tables, in the current transaction."""
        cursor = connection.cursor()
        for staging, rows_of, upsert in _UPSERTS:
            rows = getattr(changes, rows_of)()
            if not rows:
                continue
            with cursor.copy(f"COPY {staging} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(upsert)
            cursor.execute(f"TRUNCATE {staging}")

    def _sort_out(
        self,
        connection: psycopg.Connection[t.Any],
        events: list[StoredEvent],
        result: WriteResult,
    ) -> list[StoredEvent]:
        """``events`` without those PostgreSQL cannot store, which are set
        aside in ``result``; looked at one by one, after a batch failed."""
        storable = []
        for event in events:
            reason = self._unstorable(connection, event)
            if reason is None:
                storable.append(event)
            else:
                self._set_aside(result, event, reason)
        return storable

    def _unstorable(
        self, connection: psycopg.Connection[t.Any], event: StoredEvent
    ) -> str | None:
        for value in event[:8]:
            if not isinstance(value, str):
                continue
            if "\x00" in value:
                return "a NUL character, which PostgreSQL cannot store"
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as e:
                return f"a value PostgreSQL cannot store ({e})"
        try:
            with connection.transaction():
                connection.execute("SELECT %s::jsonb", (event.metadata,))
        except self._errors.DataError as e:
            return f"metadata PostgreSQL cannot store ({e.diag.message_primary})"
        return None

    # -- reading ----------------------------------------------------------------

    def stats_figures(self, query: Query, *, rollups: bool = True) -> StatsFigures:
        with self.db.connection() as connection:
            with connection.transaction():
                snapshot(connection)
                target = query.rollup_target(schema.recorded_dimensions(connection))
                if rollups and target is not None:
                    return stats_from_rollups(connection, *target)
                return stats_from_events(connection, query)

    def timeline_counts(
        self, query: Query, bucket_seconds: int, *, rollups: bool = True
    ) -> list[tuple[int, str, bool, int]]:
        with self.db.connection() as connection:
            with connection.transaction():
                snapshot(connection)
                recorded = schema.recorded_dimensions(connection)
                target = query.timeline_target(recorded, bucket_seconds)
                return read_timeline_counts(
                    connection, query, bucket_seconds, target if rollups else None
                )

    def events(self, query: Query, limit: int | None) -> list[dict[str, t.Any]]:
        return read_events(self.db, query, limit)

    def iter_events(self, query: Query) -> t.Iterator[dict[str, t.Any]]:
        return iter_events(self.db, query)

    def count(self) -> int:
        return count_events(self.db)

    # -- retention --------------------------------------------------------------

    def purge(self, cutoff: float) -> int:
        before = whole_seconds(cutoff)
        deleted = 0
        with self.db.connection() as connection:
            with connection.transaction():
                schema.lock_partitions(connection)
                for month, name in sorted(schema.partitions(connection).items()):
                    if schema.month_bounds(month)[1] > before:
                        continue
                    # A whole month before the cutoff: dropped, not deleted.
                    row = connection.execute(f"SELECT COUNT(*) FROM {name}").fetchone()
                    assert row is not None
                    deleted += row[0]
                    connection.execute(f"DROP TABLE {name}")
                    with self._lock:
                        self._months.discard(month)
                cursor = connection.execute(
                    "DELETE FROM mailtrack_events WHERE occurred_at < %s", (before,)
                )
                deleted += cursor.rowcount
                if deleted:
                    self._purge_rollups(connection, cutoff, before)
        return deleted

    def _purge_rollups(
        self, connection: psycopg.Connection[t.Any], cutoff: float, before: int
    ) -> None:
        hour = int(cutoff // HOUR * HOUR)
        connection.execute("DELETE FROM mailtrack_hourly WHERE hour < %s", (hour,))
        if cutoff > hour:
            # The hour the cutoff splits: counted again from what is left.
            connection.execute("DELETE FROM mailtrack_hourly WHERE hour = %s", (hour,))
            rows = connection.execute(
                f"SELECT {_SELECT} FROM mailtrack_events"
                " WHERE occurred_at >= %s AND occurred_at < %s",
                (hour, hour + HOUR),
            ).fetchall()
            recorded = schema.recorded_dimensions(connection)
            changes = rollup(map(stored_event, rows), recorded)
            self._ensure_staging(connection)
            self._apply(connection, Rollup(hourly=changes.hourly))
        for table, names in (
            ("mailtrack_recipients", _RECIPIENT_TIMES),
            ("mailtrack_link_recipients", _LINK_TIMES),
        ):
            older = " OR ".join(f"({c} > 0 AND {c} < %(cutoff)s)" for c in names)
            sets = ", ".join(
                f"{c} = CASE WHEN {c} < %(cutoff)s THEN 0 ELSE {c} END" for c in names
            )
            connection.execute(
                f"UPDATE {table} SET {sets} WHERE {older}", {"cutoff": before}
            )
            zero = " AND ".join(f"{c} = 0" for c in names)
            connection.execute(f"DELETE FROM {table} WHERE {zero}")

    def close(self) -> None:
        self.db.close()
