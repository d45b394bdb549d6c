"""PostgreSQL plumbing for the event store: psycopg 3, loaded on demand.

psycopg is an optional dependency (the ``postgres`` extra); it is imported
only when a PostgreSQL URL is used, and its absence is a
:class:`~flask_mailtrack.ConfigurationError` that says what to install.

A database URL may hold a password. It never leaves this module in clear:
:func:`redact` hides it in ``repr`` and messages, and :func:`scrubbed`
removes it from psycopg's errors (libpq quotes a malformed URL whole).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import typing as t
import urllib.parse

from ..exceptions import ConfigurationError

if t.TYPE_CHECKING:  # pragma: no cover
    import psycopg

#: What to install for PostgreSQL.
EXTRA = "pip install 'flask-mailtrack[postgres]'"

#: Connections a forked child inherited. They belong to the parent: closing
#: them (or letting them be collected, which closes them) would end the
#: parent's sessions, so the child keeps them, untouched, until it exits.
_INHERITED: list[t.Any] = []


def import_psycopg() -> t.Any:
    """The ``psycopg`` module.

    :raise ConfigurationError: psycopg is not installed; the message names
        the extra.
    """
    try:
        import psycopg
    except ImportError as e:
        raise ConfigurationError(
            f"A PostgreSQL event store needs psycopg 3 ({e}): {EXTRA}."
        ) from None
    return psycopg


def _password(url: str) -> str | None:
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        password = None
        # A URL too malformed to split: take what lies between the first
        # ':' after the scheme's '//' and the last '@' before the host.
        rest = url.partition("//")[2]
        credentials = rest.rpartition("@")[0]
        if ":" in credentials:
            password = credentials.partition(":")[2]
    else:
        for key, value in urllib.parse.parse_qsl(parts.query):
            if key == "password":
                password = value
    return password or None


def redact(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    password = _password(url)
    if password is None:
        return url
    return scrub(url, url, password)


def scrub(text: str, url: str, password: str | None = None) -> str:
    """``text`` without the password of ``url``, as given or percent-decoded."""
    if password is None:
        password = _password(url)
    if not password:
        return text
    for form in {
        password,
        urllib.parse.quote(password, safe=""),
        urllib.parse.unquote(password),
    }:
        if form:
            text = text.replace(form, "***")
    return text


def scrubbed(error: Exception, url: str) -> Exception:
    """``error``, or a copy of it whose message does not hold ``url``'s
    password; raise it ``from None`` so the original stays out of tracebacks."""
    message = str(error)
    clean = scrub(message, url)
    if clean == message:
        return error
    try:
        return type(error)(clean)
    except Exception:  # an exception type with another signature
        return RuntimeError(clean)


class PostgresPool:
    """Hands out connections to one PostgreSQL database, each to one user at
    a time; safe to share between threads.

    Connections are opened when needed and up to ``max_idle`` are kept for
    reuse. One that failed (the server restarted, the network broke) is
    closed rather than reused, so the next use opens a fresh one; one idle
    for longer than ``check_after`` seconds is checked with an empty query
    before it is handed out, as the server may have closed it meanwhile
    (a restart, ``idle_session_timeout``, a proxy). A pool
    inherited by a forked child starts afresh, leaving the parent's
    connections alone.

    :param url: A ``postgresql://`` (or ``postgres://``) URL, as libpq takes
        it. Never shown with its password.
    :param lock_timeout: Seconds a statement waits for a lock another
        transaction holds before failing (``lock_timeout``); ``0`` waits
        forever.
    :param connect_timeout: Seconds to wait for the server when connecting.
    :param max_idle: Idle connections kept open.
    :param check_after: Seconds of idleness after which a connection is
        checked before use.
    """

    def __init__(
        self,
        url: str,
        *,
        lock_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_idle: int = 4,
        check_after: float = 5.0,
    ) -> None:
        #: The psycopg module.
        self.psycopg = import_psycopg()
        self._url = url
        #: The URL without its password, for messages.
        self.display_url = redact(url)
        self._lock_timeout_ms = max(0, round(lock_timeout * 1000))
        self._connect_timeout = max(1, round(connect_timeout))
        self._max_idle = max_idle
        #: Seconds of idleness after which a connection is checked.
        self.check_after = check_after
        self._lock = threading.Lock()
        #: Idle connections, each with the ``time.monotonic()`` it was
        #: given back at; the most recent last.
        self._idle: list[tuple[psycopg.Connection[t.Any], float]] = []
        self._pid = os.getpid()
        self._closed = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.display_url!r}>"

    def _open(self) -> psycopg.Connection[t.Any]:
        failure: Exception | None = None
        try:
            # Autocommit: a statement outside a transaction() block is a
            # transaction of its own, and transaction() is BEGIN ... COMMIT
            # (not a savepoint of a transaction begun by a read before it).
            connection = self.psycopg.connect(
                self._url, connect_timeout=self._connect_timeout, autocommit=True
            )
        except self.psycopg.ProgrammingError as e:
            # libpq refused the URL itself: a setting to fix, not an outage.
            failure = ConfigurationError(
                f"Cannot use {self.display_url!r} as a PostgreSQL URL"
                f" ({scrub(str(e).strip(), self._url)}): check MAILTRACK_DATABASE."
            )
        except self.psycopg.Error as e:
            failure = scrubbed(e, self._url)
            if failure is e:
                raise
        if failure is not None:
            # Raised out of the except clause: the original error, with the
            # password in its message, is not even its __context__.
            raise failure
        try:
            # A per-session setting rather than a connection option: options
            # given to connect() would replace those of the URL.
            connection.execute(f"SET lock_timeout = {self._lock_timeout_ms}")
        except BaseException:
            connection.close()
            raise
        return t.cast("psycopg.Connection[t.Any]", connection)

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    _INHERITED.extend(self._idle)
                    self._idle = []
                    self._pid = os.getpid()

    @contextlib.contextmanager
    def connection(self) -> t.Iterator[psycopg.Connection[t.Any]]:
        """A connection for the ``with`` block, in autocommit mode: use its
        ``transaction()`` for a transaction.

        psycopg's errors leave the block with the URL's password removed
        from their message.
        """
        if self._closed:
            raise RuntimeError(f"The database {self.display_url!r} has been closed.")
        self._check_fork()
        connection = self._take()
        clean: Exception | None = None
        try:
            yield connection
        except self.psycopg.Error as e:
            clean = scrubbed(e, self._url)
            if clean is e:
                raise
        finally:
            self._put_back(connection)
        if clean is not None:
            raise clean

    def _take(self) -> psycopg.Connection[t.Any]:
        """An idle connection that works, or a new one."""
        while True:
            with self._lock:
                if not self._idle:
                    break
                connection, since = self._idle.pop()
            if time.monotonic() - since < self.check_after:
                return connection
            try:
                connection.execute("")
            except self.psycopg.Error:
                connection.close()
                continue
            return connection
        return self._open()

    def _put_back(self, connection: psycopg.Connection[t.Any]) -> None:
        idle = self.psycopg.pq.TransactionStatus.IDLE
        keep = not connection.closed and not connection.broken
        keep = keep and connection.info.transaction_status == idle
        with self._lock:
            keep = keep and not self._closed and self._pid == os.getpid()
            keep = keep and len(self._idle) < self._max_idle
            if keep:
                self._idle.append((connection, time.monotonic()))
        if not keep:
            connection.close()

    @contextlib.contextmanager
    def transaction(self) -> t.Iterator[psycopg.Connection[t.Any]]:
        """A connection inside a transaction, committed when the block ends
        without an exception, rolled back otherwise."""
        with self.connection() as connection:
            with connection.transaction():
                yield connection

    def close(self) -> None:
        """Close every idle connection; using the pool afterwards raises."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        if self._pid != os.getpid():
            _INHERITED.extend(idle)
            return
        for connection, _ in idle:
            connection.close()
