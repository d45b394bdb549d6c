"""The PostgreSQL backend of the event store: one database shared by the
workers and servers of every machine.

``EventStore("postgresql://user:password@host/db")`` (or
``MAILTRACK_DATABASE``) uses it; psycopg 3 (the ``postgres`` extra) is
imported then and only then. ``_store_backend`` says what each method does,
``_postgres_schema`` what the tables look like, ``_postgres_write`` and
``_postgres_queries`` how they are written and read.

A batch is one transaction (``_postgres_write`` says how). Each month's
partition of ``mailtrack_events`` is created by the first writer that needs
it, under an advisory lock. An event PostgreSQL cannot
take (a NUL character, a lone surrogate, a ``\\u0000`` in its metadata, a
time outside the years 1 to 9999) is set aside in ``mailtrack_rejected``.
"""

from __future__ import annotations

import logging
import threading
import typing as t
import weakref

from ..exceptions import ConfigurationError
from . import _postgres_schema as schema
from ._postgres import PostgresPool
from ._postgres_queries import count_events
from ._postgres_queries import iter_events
from ._postgres_queries import read_campaign_figures
from ._postgres_queries import read_events
from ._postgres_queries import read_related_events
from ._postgres_queries import read_timeline_counts
from ._postgres_queries import snapshot
from ._postgres_queries import stats_from_events
from ._postgres_queries import stats_from_rollups
from ._postgres_queries import whole_seconds
from ._postgres_write import apply_rollup
from ._postgres_write import LINK_TIMES
from ._postgres_write import RECIPIENT_TIMES
from ._postgres_write import SELECT
from ._postgres_write import stored_event
from ._postgres_write import unstorable
from ._postgres_write import write_batch
from ._store_backend import HOUR
from ._store_backend import POSTGRESQL
from ._store_backend import Query
from ._store_backend import Rejection
from ._store_backend import SCHEMA_VERSION
from ._store_backend import StoredEvent
from ._store_backend import WriteResult
from ._store_campaigns import check_rolled_up
from ._store_rollups import Rollup
from ._store_rollups import rollup

if t.TYPE_CHECKING:  # pragma: no cover
    import psycopg

    from ._store_campaigns import CampaignFigures
    from ._store_stats import StatsFigures

logger = logging.getLogger("flask_mailtrack.store")

#: Events read per page while backfilling rollups.
_BACKFILL_PAGE = 5000


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
            staged = schema.version(connection) == SCHEMA_VERSION
            if staged:  # staging tables are made after the tables they copy
                self._ensure_staging(connection)
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
                    if not staged:
                        connection.execute(schema.STAGING)
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
        after = (-(2**63), -(2**63))
        while True:
            rows = connection.execute(
                f"SELECT occurred_at, id, {SELECT} FROM mailtrack_events"
                " WHERE (occurred_at, id) > (%s, %s) ORDER BY occurred_at, id LIMIT %s",
                (*after, _BACKFILL_PAGE),
            ).fetchall()
            if not rows:
                return
            events = [stored_event(row[2:]) for row in rows]
            changes = rollup(events, dimensions, everything=False)
            apply_rollup(connection, changes, again=True)
            after = (rows[-1][0], rows[-1][1])

    def _ensure_staging(self, connection: psycopg.Connection[t.Any]) -> None:
        """Create the connection's staging tables, committed, so that a
        transaction rolled back later does not take them away; the
        connection must be outside a transaction."""
        if connection not in self._staged:
            with connection.transaction():
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
                self._ensure_staging(connection)
                try:
                    result.inserted = write_batch(
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
            reason = unstorable(connection, event)
            if reason is None:
                storable.append(event)
            else:
                self._set_aside(result, event, reason)
        return storable

    # -- reading ----------------------------------------------------------------

    def stats_figures(self, query: Query, *, rollups: bool = True) -> StatsFigures:
        with self.db.connection() as connection:
            with connection.transaction():
                snapshot(connection)
                target = query.rollup_target(schema.recorded_dimensions(connection))
                if rollups and target is not None:
                    return stats_from_rollups(connection, *target, query.since)
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

    def campaign_figures(
        self, dimension: str, since_day: int, value: str | None = None
    ) -> dict[str, CampaignFigures]:
        with self.db.connection() as connection:
            with connection.transaction():
                snapshot(connection)
                check_rolled_up(dimension, schema.recorded_dimensions(connection))
                return read_campaign_figures(connection, dimension, since_day, value)

    def events(self, query: Query, limit: int | None) -> list[dict[str, t.Any]]:
        return read_events(self.db, query, limit)

    def related_events(
        self, event_id: str, limit: int | None
    ) -> list[dict[str, t.Any]]:
        return read_related_events(self.db, event_id, limit)

    def iter_events(self, query: Query) -> t.Iterator[dict[str, t.Any]]:
        return iter_events(self.db, query)

    def count(self) -> int:
        return count_events(self.db)

    # -- retention --------------------------------------------------------------

    def purge(self, cutoff: float) -> int:
        before = whole_seconds(cutoff)
        deleted = 0
        with self.db.connection() as connection:
            self._ensure_staging(connection)
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
                f"SELECT {SELECT} FROM mailtrack_events"
                " WHERE occurred_at >= %s AND occurred_at < %s",
                (hour, hour + HOUR),
            ).fetchall()
            recorded = schema.recorded_dimensions(connection)
            changes = rollup(map(stored_event, rows), recorded)
            apply_rollup(connection, Rollup(hourly=changes.hourly))
        for table, names in (
            ("mailtrack_recipients", RECIPIENT_TIMES),
            ("mailtrack_link_recipients", LINK_TIMES),
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
