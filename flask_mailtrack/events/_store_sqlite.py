"""The SQLite backend of the event store: one file (or ``:memory:``) in WAL
mode, shared by the threads and processes of one machine.

Writers serialize on SQLite's file lock (``BEGIN IMMEDIATE``, waiting up to
``busy_timeout``); readers never wait for them. Migrations run under the
same lock, so several processes opening an old file at once migrate it
once. ``_store_backend`` describes the schema and what each method does;
``_store_queries`` holds the reads.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
import typing as t

from ..exceptions import ConfigurationError
from ._sqlite import ConnectionPool
from ._store_backend import HOUR
from ._store_backend import Query
from ._store_backend import Rejection
from ._store_backend import SCHEMA_VERSION
from ._store_backend import SQLITE
from ._store_backend import StoredEvent
from ._store_backend import WriteResult
from ._store_campaigns import check_rolled_up
from ._store_queries import count_events
from ._store_queries import iter_events
from ._store_queries import read_campaign_figures
from ._store_queries import read_events
from ._store_queries import read_related_events
from ._store_queries import read_timeline_counts
from ._store_queries import stats_from_events
from ._store_queries import stats_from_rollups
from ._store_rollups import Rollup
from ._store_rollups import rollup

if t.TYPE_CHECKING:
    from ._store_campaigns import CampaignFigures
    from ._store_stats import StatsFigures

logger = logging.getLogger("flask_mailtrack.store")

#: Version 1: the events alone.
EVENTS_SCHEMA = """
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

#: Version 2 adds the schema version and the rollups.
ROLLUP_SCHEMA = """
CREATE TABLE IF NOT EXISTS mailtrack_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS mailtrack_dimensions (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS mailtrack_hourly (
    dimension TEXT NOT NULL,
    value TEXT NOT NULL,
    hour INTEGER NOT NULL,
    type TEXT NOT NULL,
    url TEXT NOT NULL,
    machine TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (dimension, value, hour, type, url, machine)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mailtrack_recipients (
    dimension TEXT NOT NULL,
    value TEXT NOT NULL,
    identity TEXT NOT NULL,
    opened_human INTEGER NOT NULL,
    opened_machine INTEGER NOT NULL,
    clicked_human INTEGER NOT NULL,
    clicked_machine INTEGER NOT NULL,
    PRIMARY KEY (dimension, value, identity)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mailtrack_link_recipients (
    dimension TEXT NOT NULL,
    value TEXT NOT NULL,
    url TEXT NOT NULL,
    identity TEXT NOT NULL,
    human INTEGER NOT NULL,
    machine INTEGER NOT NULL,
    PRIMARY KEY (dimension, value, url, identity)
) WITHOUT ROWID;
"""

#: Version 3 adds the index of the events of one recipient
#: (:meth:`~flask_mailtrack.EventStore.related_events`), oldest first.
IDENTITY_SCHEMA = """
CREATE INDEX IF NOT EXISTS mailtrack_events_identity
    ON mailtrack_events (identity, occurred_at)
"""

_COLUMNS = "event_id, type, occurred_at, machine, tracked_url, identity, metadata, data"
_INSERT = (
    f"INSERT OR IGNORE INTO mailtrack_events ({_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

_UPSERT_HOURLY = (
    "INSERT INTO mailtrack_hourly VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (dimension, value, hour, type, url, machine)"
    " DO UPDATE SET n = n + excluded.n"
)
_UPSERT_RECIPIENT = (
    "INSERT INTO mailtrack_recipients VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (dimension, value, identity) DO UPDATE SET"
    " opened_human = max(opened_human, excluded.opened_human),"
    " opened_machine = max(opened_machine, excluded.opened_machine),"
    " clicked_human = max(clicked_human, excluded.clicked_human),"
    " clicked_machine = max(clicked_machine, excluded.clicked_machine)"
)
_UPSERT_LINK_RECIPIENT = (
    "INSERT INTO mailtrack_link_recipients VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (dimension, value, url, identity) DO UPDATE SET"
    " human = max(human, excluded.human), machine = max(machine, excluded.machine)"
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

#: Ids looked up per query (SQLite allows 32,766 parameters).
_LOOKUP = 500
#: Events read per page while backfilling or recomputing rollups.
_BACKFILL_PAGE = 5000


def _row(event: StoredEvent) -> tuple[t.Any, ...]:
    return event[:8]


def stored_event(row: t.Sequence[t.Any]) -> StoredEvent:
    """A :class:`StoredEvent` from a row of ``SELECT {_COLUMNS}``."""
    event_id, kind, occurred_at, machine, url, identity, metadata, data = row
    return StoredEvent(
        event_id,
        kind,
        occurred_at,
        machine,
        url,
        identity,
        metadata,
        data,
        json.loads(metadata),
    )


def apply_rollup(connection: sqlite3.Connection, changes: Rollup) -> None:
    """Add ``changes`` to the rollup tables, in the current transaction."""
    connection.executemany(_UPSERT_HOURLY, changes.hourly_rows())
    connection.executemany(_UPSERT_RECIPIENT, changes.recipient_rows())
    connection.executemany(_UPSERT_LINK_RECIPIENT, changes.link_recipient_rows())


class SQLiteBackend:
    """The event store's tables in one SQLite database; see
    :class:`~flask_mailtrack.events._store_backend.StoreBackend`.

    :param path: The file, created when missing, or ``":memory:"``.
    :param dimensions: The metadata keys rolled up.
    :param migrate: Migrate (and backfill new dimensions) on open.
    :param busy_timeout: Seconds a write waits for another writer's lock.
    """

    kind = SQLITE

    def __init__(
        self,
        path: str,
        *,
        dimensions: t.Sequence[str],
        migrate: bool = True,
        busy_timeout: float = 30.0,
    ) -> None:
        self.db = ConnectionPool(path, "", busy_timeout=busy_timeout)
        self.location = self.db.path
        self.dimensions = tuple(dimensions)
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

    # -- schema -----------------------------------------------------------------

    def _version(self, connection: sqlite3.Connection) -> int:
        tables = {
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN"
                " ('mailtrack_schema', 'mailtrack_events')"
            )
        }
        if "mailtrack_schema" in tables:
            row = connection.execute(
                "SELECT MAX(version) FROM mailtrack_schema"
            ).fetchone()
            return int(row[0] or 0)
        return 1 if "mailtrack_events" in tables else 0

    def _recorded(self, connection: sqlite3.Connection) -> set[str]:
        rows = connection.execute("SELECT name FROM mailtrack_dimensions")
        return {row[0] for row in rows}

    def _behind(self) -> bool:
        with self.db.connection() as connection:
            version = self._version(connection)
            if version > SCHEMA_VERSION:
                raise ConfigurationError(
                    f"The event store {self.location!r} has schema version"
                    f" {version}, newer than this flask-mailtrack knows"
                    f" ({SCHEMA_VERSION}): upgrade flask-mailtrack."
                )
            if version < SCHEMA_VERSION:
                return True
            return not set(self.dimensions) <= self._recorded(connection)

    def schema_version(self) -> int:
        with self.db.connection() as connection:
            return self._version(connection)

    def upgrade(self) -> int:
        with self.db.transaction() as connection:
            version = self._version(connection)
            if version > SCHEMA_VERSION:
                raise ConfigurationError(
                    f"The event store {self.location!r} has schema version"
                    f" {version}, newer than this flask-mailtrack knows."
                )
            if version < 2:
                # One statement at a time: executescript() would commit.
                script = ROLLUP_SCHEMA if version else EVENTS_SCHEMA + ROLLUP_SCHEMA
                for statement in script.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                self._backfill(connection, [], everything=True)
            if version < 3:
                connection.execute(IDENTITY_SCHEMA)
            if version < SCHEMA_VERSION:
                connection.execute("DELETE FROM mailtrack_schema")
                connection.execute(
                    "INSERT INTO mailtrack_schema VALUES (?)", (SCHEMA_VERSION,)
                )
                if version:
                    logger.info(
                        "Event store %s migrated to version %d.",
                        self.location,
                        SCHEMA_VERSION,
                    )
            missing = [
                d for d in self.dimensions if d not in self._recorded(connection)
            ]
            if missing:
                self._backfill(connection, missing, everything=False)
                connection.executemany(
                    "INSERT INTO mailtrack_dimensions VALUES (?)",
                    [(d,) for d in missing],
                )
        return SCHEMA_VERSION

    def _backfill(
        self, connection: sqlite3.Connection, dimensions: list[str], *, everything: bool
    ) -> None:
        """Roll up every stored event, for ``dimensions`` (and the rows of
        every event when ``everything``), a page at a time."""
        if not dimensions and not everything:
            return
        last = 0
        while True:
            rows = connection.execute(
                f"SELECT id, {_COLUMNS} FROM mailtrack_events WHERE id > ?"
                " ORDER BY id LIMIT ?",
                (last, _BACKFILL_PAGE),
            ).fetchall()
            if not rows:
                return
            events = [stored_event(row[1:]) for row in rows]
            apply_rollup(connection, rollup(events, dimensions, everything=everything))
            last = rows[-1][0]

    # -- writing ----------------------------------------------------------------

    def write(
        self, events: t.Sequence[StoredEvent], rejected: t.Sequence[Rejection]
    ) -> WriteResult:
        result = WriteResult()
        set_aside = list(rejected)
        with self.db.transaction() as connection:
            fresh = self._not_stored(connection, events)
            inserted: list[StoredEvent] = []
            connection.execute("SAVEPOINT batch")
            try:
                connection.executemany(_INSERT, [_row(e) for e in fresh])
                inserted = fresh
            except _UNBINDABLE:
                # One at a time, setting aside the events SQLite cannot bind.
                connection.execute("ROLLBACK TO batch")
                for event in fresh:
                    try:
                        connection.execute(_INSERT, _row(event))
                    except _UNBINDABLE as e:
                        reason = f"a value SQLite cannot store ({e})"
                        body = event.data.encode("utf-8", "surrogatepass")
                        found = Rejection(event.event_id, body, reason)
                        result.rejected.append(found)
                        set_aside.append(found)
                    else:
                        inserted.append(event)
            connection.execute("RELEASE batch")
            if inserted:
                apply_rollup(connection, rollup(inserted, self._recorded(connection)))
            if set_aside:
                connection.execute(_REJECTED_SCHEMA)
                now = time.time()
                connection.executemany(
                    _REJECT, [(r.event_id, r.body, r.reason, now) for r in set_aside]
                )
        result.inserted = len(inserted)
        try:
            self.db.checkpoint()
        except sqlite3.Error:
            # The batch is committed; the next write checkpoints.
            logger.debug("WAL checkpoint failed", exc_info=True)
        return result

    def _not_stored(
        self, connection: sqlite3.Connection, events: t.Sequence[StoredEvent]
    ) -> list[StoredEvent]:
        """``events`` whose id is not stored yet, each id once (the first),
        under the write lock: no other writer can store them meanwhile."""
        unique: dict[str, StoredEvent] = {}
        for event in events:
            unique.setdefault(event.event_id, event)
        ids = list(unique)
        for start in range(0, len(ids), _LOOKUP):
            chunk = ids[start : start + _LOOKUP]
            try:
                rows = connection.execute(
                    "SELECT event_id FROM mailtrack_events WHERE event_id IN"
                    f" ({', '.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
            except _UNBINDABLE:
                # An id SQLite cannot bind cannot be stored either: looked
                # up one at a time, it is left to the insert to set aside.
                rows = []
                for event_id in chunk:
                    try:
                        rows += connection.execute(
                            "SELECT event_id FROM mailtrack_events WHERE event_id = ?",
                            (event_id,),
                        ).fetchall()
                    except _UNBINDABLE:
                        pass
            for (event_id,) in rows:
                del unique[event_id]
        return list(unique.values())

    # -- reading ----------------------------------------------------------------

    def stats_figures(self, query: Query, *, rollups: bool = True) -> StatsFigures:
        with self.db.connection() as connection:
            # One read transaction: every figure comes from the same snapshot.
            connection.execute("BEGIN")
            try:
                target = query.rollup_target(self._recorded(connection))
                if rollups and target is not None:
                    return stats_from_rollups(connection, *target, query.since)
                return stats_from_events(connection, query)
            finally:
                connection.execute("COMMIT")

    def timeline_counts(
        self, query: Query, bucket_seconds: int, *, rollups: bool = True
    ) -> list[tuple[int, str, bool, int]]:
        with self.db.connection() as connection:
            connection.execute("BEGIN")
            try:
                recorded = self._recorded(connection)
                target = query.timeline_target(recorded, bucket_seconds)
                return read_timeline_counts(
                    connection, query, bucket_seconds, target if rollups else None
                )
            finally:
                connection.execute("COMMIT")

    def campaign_figures(
        self, dimension: str, since_day: int, value: str | None = None
    ) -> dict[str, CampaignFigures]:
        with self.db.connection() as connection:
            connection.execute("BEGIN")
            try:
                check_rolled_up(dimension, self._recorded(connection))
                return read_campaign_figures(connection, dimension, since_day, value)
            finally:
                connection.execute("COMMIT")

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
        with self.db.transaction() as connection:
            deleted = connection.execute(
                "DELETE FROM mailtrack_events WHERE occurred_at < ?", (cutoff,)
            ).rowcount
            if deleted:
                self._purge_rollups(connection, cutoff)
        return int(deleted)

    def _purge_rollups(self, connection: sqlite3.Connection, cutoff: float) -> None:
        hour = int(cutoff // HOUR * HOUR)
        connection.execute("DELETE FROM mailtrack_hourly WHERE hour < ?", (hour,))
        if cutoff > hour:
            # The hour the cutoff splits: counted again from what is left.
            connection.execute("DELETE FROM mailtrack_hourly WHERE hour = ?", (hour,))
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM mailtrack_events"
                " WHERE occurred_at >= ? AND occurred_at < ?",
                (hour, hour + HOUR),
            ).fetchall()
            changes = rollup(map(stored_event, rows), self._recorded(connection))
            connection.executemany(_UPSERT_HOURLY, changes.hourly_rows())
        columns = {
            "mailtrack_recipients": (
                "opened_human",
                "opened_machine",
                "clicked_human",
                "clicked_machine",
            ),
            "mailtrack_link_recipients": ("human", "machine"),
        }
        for table, names in columns.items():
            older = " OR ".join(f"({c} > 0 AND {c} < :cutoff)" for c in names)
            sets = ", ".join(
                f"{c} = CASE WHEN {c} < :cutoff THEN 0 ELSE {c} END" for c in names
            )
            connection.execute(
                f"UPDATE {table} SET {sets} WHERE {older}", {"cutoff": cutoff}
            )
            zero = " AND ".join(f"{c} = 0" for c in names)
            connection.execute(f"DELETE FROM {table} WHERE {zero}")

    def close(self) -> None:
        self.db.close()


def open_sqlite(
    path: str | os.PathLike[str],
    *,
    dimensions: t.Sequence[str],
    migrate: bool,
    busy_timeout: float,
) -> SQLiteBackend:
    """A :class:`SQLiteBackend` (for symmetry with the PostgreSQL one)."""
    return SQLiteBackend(
        os.fspath(path),
        dimensions=dimensions,
        migrate=migrate,
        busy_timeout=busy_timeout,
    )
