"""SQLite plumbing shared by the webhook outbox and the event store.

Both keep their data in one SQLite file in WAL mode, written by the worker
(possibly several, in several processes) and read by the serving processes.
SQLite serializes writers with a file lock; ``busy_timeout`` makes a writer
wait for it instead of failing. Connections are pooled rather than kept per
thread because threaded WSGI servers start a thread per request.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sqlite3
import threading
import time
import typing as t

from ..exceptions import ConfigurationError

#: Path that keeps the database in memory, for one process only.
MEMORY = ":memory:"

_AUTOCHECKPOINT_PAGES = 10_000

TimeInput = t.Union[datetime.datetime, float, int, None]


class ConnectionPool:
    """Hands out SQLite connections to one database, creating its schema.

    A file database gets one connection per concurrent user, reused; an
    in-memory database has a single connection that users take turns on.
    A pool notices being inherited by a forked child and starts afresh, as
    SQLite connections must not cross a ``fork``.

    :param path: File path, or ``":memory:"``.
    :param schema: SQL script run once, with ``CREATE ... IF NOT EXISTS``.
    :param busy_timeout: Seconds a connection waits for another's lock
        before raising :exc:`sqlite3.OperationalError` (``database is locked``).
    :param max_idle: Idle connections kept open for reuse.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        schema: str,
        *,
        busy_timeout: float = 30.0,
        max_idle: int = 8,
    ) -> None:
        self.path = os.fspath(path)
        self.memory = self.path == MEMORY
        self._busy_timeout = busy_timeout
        self._max_idle = max_idle
        self._lock = threading.Lock()
        self._memory_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._memory_connection: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._closed = False
        self._checkpointed = 0.0
        try:
            if not self.memory:
                _create_private(self.path)
            with self.connection() as connection:
                if not self.memory:
                    self._use_wal(connection)
                connection.executescript(schema)
        except (OSError, sqlite3.Error) as e:
            # A path from a setting (a directory, a file that is not a
            # database, no permission): one library error, not sqlite3's.
            self.close()
            raise ConfigurationError(
                f"Cannot use {self.path!r} as an SQLite database ({e}): check"
                " MAILTRACK_DATABASE and MAILTRACK_WEBHOOK_OUTBOX."
            ) from e

    def _use_wal(self, connection: sqlite3.Connection) -> None:
        """Put the file in WAL mode, which lets readers run beside the one
        writer and makes a commit cheap. The mode is stored in the file, so
        this runs once per pool, not per connection.

        Switching a file's mode takes an exclusive lock, and SQLite answers
        "database is locked" at once, without waiting ``busy_timeout``,
        when another process or pool is switching it too: retried here
        until ``busy_timeout``, as a write would wait.
        """
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() >= deadline:
                    raise
            time.sleep(0.01)

    def _open(self) -> sqlite3.Connection:
        if self.path != MEMORY:
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
        connection = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        # In WAL mode NORMAL loses no committed transaction when a process
        # dies, only (possibly) the last ones on a power loss, and saves an
        # fsync per commit on the request path.
        connection.execute("PRAGMA synchronous=NORMAL")
        # A checkpoint copies the log into the database and waits for the
        # disk: a thread of ours does it (checkpoint()), so a request never
        # does. This threshold (~40 MB of log) is only a safety net for a
        # process without such a thread.
        connection.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
        return connection

    def checkpoint(self, every: float = 1.0) -> None:
        """Copy the write-ahead log into the database, at most once per
        ``every`` seconds; for background threads (``PASSIVE``: writers are
        not blocked)."""
        now = time.monotonic()
        if self.memory or now - self._checkpointed < every:
            return
        self._checkpointed = now
        with self.connection() as connection:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    # The inherited connections belong to the parent; drop
                    # them without touching the parent's file locks.
                    self._idle = []
                    self._memory_connection = None
                    self._memory_lock = threading.Lock()
                    self._pid = os.getpid()

    @contextlib.contextmanager
    def connection(self) -> t.Iterator[sqlite3.Connection]:
        """A connection for the duration of the ``with`` block."""
        if self._closed:
            raise RuntimeError(f"The database {self.path!r} has been closed.")
        self._check_fork()
        if self.memory:
            with self._memory_lock:
                if self._memory_connection is None:
                    self._memory_connection = self._open()
                yield self._memory_connection
            return
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = self._open()
        try:
            yield connection
        finally:
            if connection.in_transaction:
                connection.rollback()
            with self._lock:
                keep = not self._closed and len(self._idle) < self._max_idle
                if keep:
                    self._idle.append(connection)
            if not keep:
                connection.close()

    def write(self, sql: str, parameters: t.Sequence[t.Any] = ()) -> int:
        """Run one writing statement in its own transaction and return its
        ``rowcount``.

        For single inserts: no generator, no lock (``list.pop`` and
        ``append`` are atomic), a few microseconds less than
        :meth:`connection`.
        """
        if self.memory or self._closed or self._pid != os.getpid():
            with self.connection() as connection:
                return connection.execute(sql, parameters).rowcount
        try:
            connection = self._idle.pop()
        except IndexError:
            connection = self._open()
        try:
            return connection.execute(sql, parameters).rowcount
        finally:
            if connection.in_transaction:  # pragma: no cover - autocommit
                connection.rollback()
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(connection)
            else:
                connection.close()

    @contextlib.contextmanager
    def transaction(self) -> t.Iterator[sqlite3.Connection]:
        """A connection inside ``BEGIN IMMEDIATE`` ... ``COMMIT``.

        ``IMMEDIATE`` takes the write lock up front, so a read followed by a
        write in the block cannot be interleaved with another writer.
        """
        with self.connection() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.rollback()
                raise
            connection.execute("COMMIT")

    def close(self) -> None:
        """Close every connection. Using the pool afterwards raises."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        with self._memory_lock:
            if self._memory_connection is not None:
                self._memory_connection.close()
                self._memory_connection = None


def _create_private(path: str) -> None:
    """Create the database file readable by its owner only (``0600``), and
    its directory (``0700``) when missing; refuse a path that is a symbolic
    link.

    The files hold client addresses, user agents and metadata. SQLite would
    create them with the process umask (often world-readable ``0644``), and
    its ``-wal`` and ``-shm`` files take the database file's mode. A symbolic
    link planted at the path (in a shared directory such as ``/tmp``) would
    make the server write wherever it points; give the real path instead.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
    if os.path.islink(path):
        raise ConfigurationError(
            f"Refusing to open the database {path!r}: it is a symbolic link."
            " Give the path of the file itself."
        )
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        os.close(os.open(path, flags, 0o600))
    except FileExistsError:
        pass  # an existing database keeps the mode its owner gave it


def to_timestamp(value: TimeInput) -> float | None:
    """Seconds since the epoch from a datetime (naive means UTC) or a number."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    return float(value)
