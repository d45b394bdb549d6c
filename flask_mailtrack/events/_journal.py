"""A per-process append-only journal in front of a slower store: :class:`Spool`.

The request thread hands a record to :meth:`Spool.append`, which is one
``os.write`` to a file of this process; a background thread of the same
process moves the records to their real home (an SQLite table) many at a
time, by calling an *importer*. The request therefore never waits for a
database transaction, and the record is safe from the moment ``append``
returns.

Durability
----------

Data written with ``os.write`` is in the kernel's page cache when the call
returns. If the process then dies in any way (an exception, ``SIGKILL``, the
OOM killer, a segfault), the record is still in the file, and the next
process using the directory imports it. This is the guarantee SQLite gives
in WAL mode with ``synchronous=NORMAL``, which does not ``fsync`` per commit
either. A power loss or a kernel crash may lose the records of the last
seconds, as it may lose SQLite's last transactions in that mode; nothing
here calls ``fsync``.

Files and processes
-------------------

Each process writes its own file, ``<name>-<pid>-<random>.journal``, and
holds an exclusive ``flock`` on it while it lives. The kernel releases the
lock when the process dies, whatever kills it, so another process can tell
an orphaned file (``flock`` with ``LOCK_NB`` succeeds) from the file of a
live writer (it fails). Every process with a spool looks for orphans when
its thread starts and then every ``poll_interval``, takes them over, imports
them and deletes them. Several processes (gunicorn workers) may share one
directory. The directory needs a local file system, where ``flock`` works.

A child made by ``fork`` inherits the parent's file descriptor, and with it
the parent's lock: it closes its copy at once (which does not release the
parent's lock, held by the parent's descriptor) and opens a file of its own
on its first record.

Moving records out
------------------

The thread sleeps until a record arrives in a new file, lets records gather
for ``delay`` seconds, then *rotates*: it opens a fresh file and switches the
writer to it under the writer's lock, so the old file is complete and never
written again. It reads the old file, hands its records to the importer in
batches of at most ``batch_size`` (one transaction each), and deletes the
file only then. An importer that raises leaves the file in place; it is
tried again, and no other rotation happens meanwhile.

A crash between an import and the deletion of the file has the file offered
again from its start. The importer is told which file and which position
each batch comes from, so it can store, in the same transaction as the
records, how far it got in that file, and skip what it already has. This
costs one small row per file, where making every record unique would cost a
random insert into a unique index per record (three to four times the cost
of the insert itself, in SQLite, with random event ids).

Each record is one line of the file (``_journal_format`` has the format).

Why ``os.write`` and not a memory-mapped file, which would not even need a
system call: a write into a mapping of a full disk, or after an I/O error,
kills the process with ``SIGBUS``, while ``os.write`` raises an error the
caller can handle (a :class:`~flask_mailtrack.WebhookSender` then falls back
to a direct database insert).
"""

from __future__ import annotations

import atexit
import errno
import logging
import os
import re
import threading
import time
import typing as t
import weakref

from ._journal_format import frame
from ._journal_format import MAX_RECORD_SIZE
from ._journal_format import read_records

# The 0.1 development path flask_mailtrack.spool (see _moved.MOVED) is this
# module; it documented unframe beside frame and read_records.
from ._journal_format import unframe as unframe

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("flask_mailtrack.spool")

#: Whether this platform has ``flock``, which a spool needs.
SUPPORTED = fcntl is not None

#: Extension of journal files.
SUFFIX = ".journal"

#: Seconds before a failed import is tried again.
_RETRY_SECONDS = 1.0

_NAME = re.compile(r"[A-Za-z0-9_]+\Z")

_OPEN_FLAGS = (
    os.O_WRONLY
    | os.O_APPEND
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)

#: The system call of :meth:`Spool.append`, a name tests can replace.
_write = os.write

#: ``importer(journal, start, records)``: stores the records, which are
#: those of the journal file named ``journal`` from position ``start`` on,
#: in one transaction, or raises.
Importer = t.Callable[[str, int, list[bytes]], object]


class _Journal:
    """One journal file this process writes or has written."""

    __slots__ = ("fd", "path", "name", "count")

    def __init__(self, fd: int, path: str, name: str) -> None:
        #: The descriptor; it holds the ``flock`` as long as it is open.
        self.fd = fd
        self.path = path
        self.name = name
        #: Records written to it.
        self.count = 0


def _same_file(fd: int, path: str) -> bool:
    """Whether ``path`` still names the file open as ``fd``: a lock taken on
    a file that another process deleted meanwhile protects nothing."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


class Spool:
    """A durable, append-only queue of records in front of ``importer``.

    ::

        def store(journal, start, records):
            ...  # see the importer parameter

        spool = Spool("/var/lib/app/outbox-spool", store, name="events")
        spool.append(b'{"id": "evt_1"}')  # the record is safe now
        ...
        spool.close()  # imports what is left

    :param directory: Where the journal files are; created (``0700``) with
        the first record. Share it between the processes of one server.
    :param importer: Called as ``importer(journal, start, records)``, by
        the spool's thread or in :meth:`drain` and :meth:`close` (never two
        calls at once), with at most ``batch_size`` records (``bytes``)
        of the journal file named ``journal`` (a name never reused),
        ``start`` being the position of the first one in it. It stores them
        in one transaction, or raises to have them offered again later. A
        file whose process died before deleting it is offered again from
        its start: store ``start + len(records)`` for ``journal`` in the
        same transaction, and skip the records below what is stored.
    :param on_deleted: Called with a journal's name once its file is
        deleted: what the importer stored for it can go.
    :param name: Names this spool's files (letters, digits, ``_``), so that
        spools with different importers can share a directory.
    :param delay: Seconds records gather after the first one arrives before
        they are imported together.
    :param poll_interval: Seconds between looks for files orphaned by dead
        processes.
    :param batch_size: Most records given to the importer at once.
    :param max_record_size: Longest record :meth:`append` accepts, in bytes.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        importer: Importer,
        *,
        on_deleted: t.Callable[[str], object] | None = None,
        name: str = "spool",
        delay: float = 0.02,
        poll_interval: float = 1.0,
        batch_size: int = 1000,
        max_record_size: int = MAX_RECORD_SIZE,
    ) -> None:
        if not SUPPORTED:  # pragma: no cover - Windows
            raise RuntimeError("A spool needs fcntl.flock (POSIX).")
        if not _NAME.match(name):
            raise ValueError(f"A spool name is letters, digits and '_': {name!r}")
        if delay < 0 or poll_interval <= 0 or batch_size < 1 or max_record_size < 1:
            raise ValueError(
                "delay must be >= 0, poll_interval positive, batch_size and"
                " max_record_size >= 1."
            )
        #: The directory of the journal files.
        self.directory = os.path.abspath(os.fspath(directory))
        if os.path.islink(self.directory):
            raise ValueError(
                f"Refusing the spool directory {self.directory!r}: it is a"
                " symbolic link."
            )
        #: Prefix of this spool's file names.
        self.name = name
        #: Seconds records gather before an import.
        self.delay = delay
        #: Seconds between looks for orphaned files.
        self.poll_interval = poll_interval
        #: Most records per importer call.
        self.batch_size = batch_size
        #: Longest record accepted.
        self.max_record_size = max_record_size
        self._importer = importer
        self._on_deleted = on_deleted
        self._file: _Journal | None = None
        #: Files no longer written, waiting for their import; oldest first.
        self._sealed: list[_Journal] = []
        self._closed = False
        self._thread: threading.Thread | None = None
        self._reset_locks()
        _live.add(self)

    def _reset_locks(self) -> None:
        #: Guards the current file and the sealed list; held for one write.
        self._lock = threading.Lock()
        #: Serialises rotations and imports.
        self._drain_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        if self._closed:
            self._stop.set()

    @property
    def pending(self) -> int:
        """Records appended by this process and not imported yet."""
        with self._lock:
            journals = [*self._sealed, self._file]
        return sum(journal.count for journal in journals if journal is not None)

    @property
    def current_path(self) -> str | None:
        """The file :meth:`append` writes to, once there is one."""
        journal = self._file
        return None if journal is None else journal.path

    # -- writing ----------------------------------------------------------------

    def append(self, record: bytes) -> None:
        """Add ``record`` to this process's journal file: one ``os.write``.

        When this returns, the record survives the death of the process.

        :raise ValueError: the record contains a newline or is longer than
            :attr:`max_record_size`.
        :raise OSError: the write failed (a full disk); the record is not
            stored. Later records go to a new file.
        :raise RuntimeError: the spool is closed.
        """
        if len(record) > self.max_record_size or b"\n" in record:
            raise ValueError(
                "A spool record is at most max_record_size bytes, without newlines."
            )
        line = frame(record)
        with self._lock:
            if self._closed:
                raise RuntimeError("This spool has been closed.")
            journal = self._file
            if journal is None:
                journal = self._file = self._open_journal()
            try:
                written = _write(journal.fd, line)
                while written < len(line):
                    # A short write happens when the disk fills up; the next
                    # call then raises.
                    written += _write(journal.fd, memoryview(line)[written:])
            except OSError:
                # The file may end in part of this record: never write after
                # it, so that only its last line can be torn.
                self._file = None
                self._sealed.append(journal)
                raise
            journal.count += 1
            first = journal.count == 1
        if first:
            # Once per file, not per record: waking a thread takes a lock.
            if self._thread is None:
                self.start()
            self._wake.set()

    def _open_journal(self) -> _Journal:
        """Create, lock and return a new journal file of this process."""
        self._make_directory()
        for _ in range(10):
            name = f"{self.name}-{os.getpid()}-{os.urandom(8).hex()}{SUFFIX}"
            path = os.path.join(self.directory, name)
            fd = os.open(path, _OPEN_FLAGS, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # Another process may have taken the new, not yet locked file
                # for an orphan and deleted it; then try another name.
                if _same_file(fd, path):
                    return _Journal(fd, path, name)
            except BlockingIOError:
                pass  # that other process holds it for a moment
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        raise OSError(errno.EAGAIN, "Could not create a journal file", self.directory)

    def _make_directory(self) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        if os.path.islink(self.directory):
            raise OSError(
                errno.ELOOP, "The spool directory is a symbolic link", self.directory
            )

    # -- moving records to the importer -----------------------------------------

    def start(self) -> None:
        """Start the background thread in this process, if not running.

        It imports this process's records and takes over orphaned files, the
        first time at once. :meth:`append` calls this.
        """
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(
                target=self._run, name=f"mailtrack-spool-{self.name}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        stop, wake = self._stop, self._wake
        first = True
        own = False
        next_scan = 0.0
        while not stop.is_set():
            now = time.monotonic()
            orphans = now >= next_scan
            if orphans:
                next_scan = now + self.poll_interval
                # Every look for orphans also retries this process's files
                # (except the very first look, which does not wait for
                # ``delay``).
                own = own or not first
                first = False
            failed = False
            try:
                if own:
                    self.drain(orphans=orphans)
                elif orphans:
                    with self._drain_lock:
                        self._recover()
            except Exception:
                logger.exception("Importing spooled records failed; retrying.")
                failed = True
            timeout = next_scan - time.monotonic()
            if failed:
                timeout = min(timeout, _RETRY_SECONDS)
            own = failed
            if wake.wait(max(timeout, 0.0)) and not stop.is_set():
                # A first record arrived: let others join it, then import
                # them in one transaction.
                stop.wait(self.delay)
                wake.clear()
                own = True

    def drain(self, *, orphans: bool = True) -> int:
        """Import this process's records now (and orphaned files).

        The background thread calls this; call it to have every record
        appended so far imported when it returns.

        :param orphans: Also take over the files of dead processes.
        :return: How many records were given to the importer.
        :raise Exception: what the importer raised; the records stay spooled.
        """
        with self._drain_lock:
            # Files sealed earlier first: while their import fails, the
            # writer stays on its file rather than making more of them.
            imported = self._import_sealed()
            self._rotate()
            imported += self._import_sealed()
            if orphans:
                imported += self._recover()
            return imported

    def _rotate(self) -> None:
        """Switch the writer to a fresh file and seal the current one."""
        current = self._file
        if current is None or current.count == 0:
            return
        try:
            fresh: _Journal | None = self._open_journal()
        except OSError:
            logger.exception("Could not create a journal file.")
            fresh = None  # the next append tries again
        with self._lock:
            old = self._file
            if self._closed or (old is not None and old.count == 0):
                if fresh is not None:
                    self._discard(fresh)
                return
            # (old is None when a failed write has sealed it meanwhile.)
            if old is not None:
                self._sealed.append(old)
            self._file = fresh

    def _import_sealed(self) -> int:
        imported = 0
        while True:
            with self._lock:
                if not self._sealed:
                    return imported
                journal = self._sealed[0]
            with open(os.open(journal.path, _READ_FLAGS), "rb") as file:
                imported += self._import_file(file, journal.name)
            with self._lock:
                self._sealed.remove(journal)
            self._discard(journal)
            self._deleted(journal.name)

    def _import_file(self, file: t.BinaryIO, name: str) -> int:
        count = 0
        batch: list[bytes] = []
        records = read_records(file, max_record_size=self.max_record_size, source=name)
        for record in records:
            batch.append(record)
            if len(batch) >= self.batch_size:
                self._importer(name, count, batch)
                count += len(batch)
                batch = []
        if batch:
            self._importer(name, count, batch)
            count += len(batch)
        return count

    def _deleted(self, name: str) -> None:
        if self._on_deleted is not None:
            try:
                self._on_deleted(name)
            except Exception:
                logger.exception("The on_deleted callback of %s raised.", name)

    @staticmethod
    def _discard(journal: _Journal) -> None:
        """Delete an imported file; deleting before unlocking it means no
        other process ever sees it as an orphan."""
        try:
            os.unlink(journal.path)
        finally:
            os.close(journal.fd)

    def _is_journal(self, name: str) -> bool:
        if not name.endswith(SUFFIX):
            return False
        parts = name[: -len(SUFFIX)].split("-")
        return len(parts) == 3 and parts[0] == self.name

    def _recover(self) -> int:
        """Import and delete the journal files of dead processes."""
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return 0
        with self._lock:
            mine = {j.name for j in (*self._sealed, self._file) if j is not None}
        imported = 0
        for name in names:
            if name in mine or not self._is_journal(name):
                continue
            path = os.path.join(self.directory, name)
            try:
                fd = os.open(path, _READ_FLAGS)
            except OSError:
                continue  # imported by another process meanwhile
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its writer is alive
                if not _same_file(fd, path):
                    continue  # another process took it over first
                with open(fd, "rb", closefd=False) as file:
                    count = self._import_file(file, name)
                os.unlink(path)
                self._deleted(name)
                imported += count
                logger.info("Imported %d records of the orphaned %s.", count, path)
            finally:
                os.close(fd)
        return imported

    # -- shutdown and fork ------------------------------------------------------

    def close(self) -> None:
        """Stop the thread and import every record appended so far.

        Records the importer refuses stay in their file, which the next
        process using the directory imports. :meth:`append` raises
        afterwards.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._drain_lock:
            with self._lock:
                if self._file is not None:
                    self._sealed.append(self._file)
                    self._file = None
            try:
                self._import_sealed()
            except Exception:
                logger.exception(
                    "Spooled records left in %s for the next process.", self.directory
                )
            finally:
                with self._lock:
                    leftovers, self._sealed = self._sealed, []
                for journal in leftovers:
                    os.close(journal.fd)  # unlocked: an orphan to take over
        _live.discard(self)

    def _after_fork_in_child(self) -> None:
        # The parent's locks may have been held by its other threads, and
        # its files belong to it: close our copies of their descriptors
        # (the parent's own keep its locks) and start afresh.
        self._reset_locks()
        for journal in (*self._sealed, self._file):
            if journal is not None:
                try:
                    os.close(journal.fd)
                except OSError:  # pragma: no cover - already closed
                    pass
        self._file = None
        self._sealed = []
        self._thread = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


#: Open spools, for the fork and exit hooks.
_live: weakref.WeakSet[Spool] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for spool in list(_live):
        spool._after_fork_in_child()


def _close_at_exit() -> None:
    # Records of a process that exits without closing its spools are safe
    # anyway, but would wait for another process to take them over.
    for spool in list(_live):
        try:
            spool.close()
        except Exception:  # pragma: no cover - logged, the files stay
            logger.exception("Could not close the spool in %s.", spool.directory)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_at_exit)
