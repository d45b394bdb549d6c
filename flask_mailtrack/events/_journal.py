"""Where a serving process puts its events: :class:`Journal`.

The request thread hands an event to :meth:`Journal.append`, which is one
``os.write`` to a file of this process; a worker (``mailtrack worker``, or a
thread with ``MAILTRACK_WORKER=embedded``, see ``_worker``) later reads the
file and feeds every sink. The request never waits for a database, a
network or another process, and the event is safe from the moment
``append`` returns.

Durability
----------

Data written with ``os.write`` is in the kernel's page cache when the call
returns. If the process then dies in any way (an exception, ``SIGKILL``, the
OOM killer, a segfault), the event is still in the file, and the worker
takes the file over. This is the guarantee SQLite gives in WAL mode with
``synchronous=NORMAL``, which does not ``fsync`` per commit either. A power
loss or a kernel crash may lose the events of the last seconds, as it may
lose SQLite's last transactions in that mode; nothing here calls ``fsync``.

Why ``os.write`` and not a memory-mapped file, which would not even need a
system call: a write into a mapping of a full disk, or after an I/O error,
kills the process with ``SIGBUS``, while ``os.write`` raises an error this
module handles (see below).

Files
-----

Each process writes its own file, ``<name>-<pid>-<random>.journal``, and
holds an exclusive ``flock`` on it while it writes (``_journal_files``). A
thread of the journal, woken once per new file, *seals* the file
``seal_after`` seconds after its first event: it closes it, which releases
the lock and hands the file to the worker. A file that grows past
``max_file_size`` is sealed by the append that made it so. The next event
opens a new file.

A child made by ``fork`` inherits the parent's descriptor, and with it the
parent's lock: it closes its copy at once (which does not release the
parent's lock, held by the parent's descriptor) and opens a file of its own
on its first event. At exit, the current file is sealed.

A full disk
-----------

When a write or the creation of a file fails (``OSError``: no space, no
quota, an unwritable folder), the event waits in memory, and so do the
events after it, in order; the journal's thread tries to write them every
half second, and a request never does. A file a write failed in the middle
of is sealed, so that only its last line is torn (the worker skips it; the
event is written whole to the next file). Beyond ``max_buffer`` waiting
events, new ones are dropped: :attr:`Journal.dropped` counts them and a
warning says how many (at most one line every ten seconds).
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import re
import threading
import time
import typing as t
import weakref

from blinker import ANY

from ._connect import SignalConnections
from ._encoding import encode_event
from ._journal_files import check_directory
from ._journal_files import create_file
from ._journal_files import SUPPORTED
from ._journal_format import frame
from ._journal_format import MAX_RECORD_SIZE

if t.TYPE_CHECKING:
    from ..result import TrackingResult

logger = logging.getLogger("flask_mailtrack.journal")

#: Seconds between two attempts to write events waiting in memory.
_RETRY_SECONDS = 0.5

#: Seconds between two warnings about dropped events.
_DROP_LOG_SECONDS = 10.0

#: Waiting events written per hold of the writer's lock, so that requests
#: appending meanwhile wait for a few writes, not for the whole backlog.
_WRITE_CHUNK = 256

_NAME = re.compile(r"[A-Za-z0-9_]+\Z")


class _File:
    """The journal file this process writes to."""

    __slots__ = ("fd", "path", "size", "seal_at")

    def __init__(self, fd: int, path: str, seal_at: float) -> None:
        #: The descriptor; it holds the ``flock`` as long as it is open.
        self.fd = fd
        self.path = path
        self.size = 0
        #: When the journal's thread seals it (``time.monotonic``).
        self.seal_at = seal_at


class Journal:
    """This process's journal of events, in the folder ``directory``.

    ::

        journal = Journal("/var/lib/mailtrack/journal").connect()
        # every email_opened and link_clicked event is now journaled

    :param directory: The folder of the journal files, shared by the
        processes of one machine and their worker. Created with mode
        ``0700``; an existing one must be this user's and closed to others
        (no group or other permission bits), and not a symbolic link: a
        :exc:`~flask_mailtrack.ConfigurationError` says what to fix.
    :param name: Starts this journal's file names (letters, digits, ``_``).
    :param seal_after: Seconds after its first event a file is handed to
        the worker.
    :param max_file_size: Bytes past which a file is handed over at once.
    :param max_buffer: Most events kept in memory while the disk refuses
        them; more are dropped and counted.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        name: str = "events",
        seal_after: float = 0.05,
        max_file_size: int = 8 * 1024 * 1024,
        max_buffer: int = 10_000,
    ) -> None:
        if not SUPPORTED:  # pragma: no cover - Windows
            raise RuntimeError("A journal needs fcntl.flock (POSIX).")
        if not _NAME.match(name):
            raise ValueError(f"A journal name is letters, digits and '_': {name!r}")
        if seal_after < 0 or max_file_size < 1 or max_buffer < 0:
            raise ValueError(
                "seal_after must be >= 0, max_file_size >= 1, max_buffer >= 0."
            )
        self._directory = check_directory(directory)
        #: Starts the file names.
        self.name = name
        #: Seconds a file is written before it is sealed.
        self.seal_after = seal_after
        #: Bytes past which a file is sealed.
        self.max_file_size = max_file_size
        #: Most events waiting in memory for the disk.
        self.max_buffer = max_buffer
        self._file: _File | None = None
        #: Framed lines waiting for the disk, oldest first.
        self._buffer: collections.deque[bytes] = collections.deque()
        self._dropped = 0
        self._dropped_unlogged = 0
        self._next_drop_log = 0.0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._signals = SignalConnections(self.record)
        self._reset_locks()
        _live.add(self)

    def _reset_locks(self) -> None:
        #: Guards the file and the buffer; held for one write.
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        #: Wakes the thread: a new file, or a first event for the buffer.
        self._wake = threading.Event()

    @property
    def directory(self) -> str:
        """The folder of the journal files (absolute)."""
        return self._directory

    @property
    def dropped(self) -> int:
        """Events this process dropped because the disk refused them and the
        memory buffer was full."""
        return self._dropped

    @property
    def buffered(self) -> int:
        """Events waiting in memory for the disk."""
        return len(self._buffer)

    # -- receiving --------------------------------------------------------------

    def connect(self, sender: t.Any = ANY) -> Journal:
        """Journal every :data:`~flask_mailtrack.email_opened` and
        :data:`~flask_mailtrack.link_clicked` event.

        :param sender: Only events sent by this sender (a Flask app, a
            middleware); all by default.
        :return: ``self``.
        """
        self._signals.connect(sender)
        return self

    def disconnect(self) -> None:
        """Stop journaling events."""
        self._signals.disconnect()

    def record(self, result: TrackingResult) -> bool:
        """Journal the event of ``result`` (schema-1 JSON, see
        ``_encoding``): what :meth:`connect` does for each event.

        :return: Whether it was kept (``False``: dropped).
        """
        return self.append(encode_event(result.to_json_dict()))

    # -- writing ----------------------------------------------------------------

    def append(self, body: bytes) -> bool:
        """Add an event's ``body`` to this process's journal file: one
        ``os.write``. When this returns ``True``, the event survives the
        death of the process (or waits in memory while the disk refuses it).

        :return: ``False`` when the event was dropped: the disk refuses it
            and :attr:`max_buffer` events already wait.
        :raise ValueError: ``body`` contains a newline or is longer than a
            journal line may be (1 MiB).
        :raise RuntimeError: the journal is closed.
        """
        if len(body) > MAX_RECORD_SIZE or b"\n" in body:
            raise ValueError("A journal record is at most 1 MiB, without newlines.")
        line = frame(body)
        error: OSError | None = None
        with self._lock:
            if self._closed:
                raise RuntimeError("This journal has been closed.")
            if self._buffer:
                # Events already wait: this one goes after them, in order.
                return self._wait_locked(line)
            try:
                opened = self._write_locked(line)
            except OSError as e:
                error = e
                kept = self._wait_locked(line)
        if error is not None:
            if not kept:  # max_buffer is 0: the drop was logged
                return False
            logger.warning(
                "Could not write the journal in %s (%s); events wait in memory"
                " (at most %d) until it works again.",
                self._directory,
                error,
                self.max_buffer,
            )
            self._wake_thread()
            return kept
        if opened:
            # Once per file, not per event: waking a thread takes a lock.
            self._wake_thread()
        return True

    def _write_locked(self, line: bytes) -> bool:
        """Write ``line`` to the current file, opening one if needed; return
        whether a file was opened.

        :raise OSError: the file could not be created or written; the line
            is not in it (or only a torn part, at the end of a file sealed
            here).
        """
        file = self._file
        opened = file is None
        if file is None:
            try:
                fd, path = create_file(self._directory, self.name)
            except FileNotFoundError:
                # The folder was removed (a clean-up of /tmp): make it again,
                # private, as check_directory would.
                os.mkdir(self._directory, 0o700)
                fd, path = create_file(self._directory, self.name)
            file = self._file = _File(fd, path, time.monotonic() + self.seal_after)
        written = 0
        try:
            while written < len(line):
                # A short write happens when the disk fills up; the next
                # call then raises.
                written += os.write(file.fd, memoryview(line)[written:])
        except OSError:
            if written:
                # The file ends in part of this line: never write after it,
                # so that only its last line can be torn.
                self._seal_locked()
            raise
        file.size += written
        if file.size >= self.max_file_size:
            self._seal_locked()
        return opened

    def _wait_locked(self, line: bytes) -> bool:
        """Keep ``line`` in memory for the thread to write, or drop it."""
        if len(self._buffer) < self.max_buffer:
            self._buffer.append(line)
            return True
        self._dropped += 1
        self._dropped_unlogged += 1
        now = time.monotonic()
        if now >= self._next_drop_log:
            self._next_drop_log = now + _DROP_LOG_SECONDS
            count, self._dropped_unlogged = self._dropped_unlogged, 0
            logger.warning(
                "Dropped %d events (%d in all by this process): the journal in"
                " %s cannot be written and %d events already wait in memory.",
                count,
                self._dropped,
                self._directory,
                len(self._buffer),
            )
        return False

    def _seal_locked(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            os.close(file.fd)  # unlocks it: the worker's now

    def seal(self) -> None:
        """Hand the current file to the worker now, rather than
        ``seal_after`` seconds after its first event."""
        with self._lock:
            self._seal_locked()

    # -- the thread ---------------------------------------------------------------

    def _wake_thread(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None and not self._closed:
                    self._thread = threading.Thread(
                        target=self._run,
                        name=f"mailtrack-journal-{self.name}",
                        daemon=True,
                    )
                    self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        wake = self._wake
        retry_at = 0.0
        while True:
            # Cleared before looking, so an event set meanwhile is not lost.
            wake.clear()
            if self._closed:
                return
            now = time.monotonic()
            if self._buffer and now >= retry_at:
                try:
                    written = self._write_waiting()
                except Exception:  # pragma: no cover - a bug; keep sealing
                    logger.exception("Writing the waiting events failed.")
                    written = False
                if not written:
                    retry_at = now + _RETRY_SECONDS
            with self._lock:
                file = self._file
                if file is not None and time.monotonic() >= file.seal_at:
                    self._seal_locked()
                    file = None
                waiting = bool(self._buffer)
            deadlines = [file.seal_at] if file is not None else []
            if waiting:
                deadlines.append(retry_at)
            timeout = min(deadlines) - time.monotonic() if deadlines else None
            if timeout is None or timeout > 0:
                wake.wait(timeout)

    def _write_waiting(self) -> bool:
        """Write the events waiting in memory; return whether all went."""
        written = 0
        error: OSError | None = None
        while error is None:
            with self._lock:
                if not self._buffer:
                    break
                try:
                    for _ in range(min(_WRITE_CHUNK, len(self._buffer))):
                        self._write_locked(self._buffer[0])
                        self._buffer.popleft()
                        written += 1
                except OSError as e:
                    error = e
        if written:
            logger.warning(
                "Wrote %d events that waited in memory to the journal in %s%s.",
                written,
                self._directory,
                "" if error is None else f"; more wait ({error})",
            )
        return error is None

    # -- shutdown and fork --------------------------------------------------------

    def close(self) -> None:
        """Stop journaling: disconnect, write what waits in memory if the
        disk takes it, and seal the current file. :meth:`append` raises
        afterwards."""
        self.disconnect()
        with self._start_lock:
            self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._finish()
        _live.discard(self)

    def _finish(self) -> None:
        """Write what waits in memory, once, and seal the current file."""
        if self._buffer and not self._write_waiting():
            logger.error(
                "Lost %d events that waited in memory for the journal in %s.",
                len(self._buffer),
                self._directory,
            )
        self.seal()

    def _after_fork_in_child(self) -> None:
        # The parent's locks may have been held by its other threads, and
        # its file and waiting events are its own: close our copy of the
        # descriptor (the parent's keeps the lock) and start afresh.
        self._reset_locks()
        if self._file is not None:
            try:
                os.close(self._file.fd)
            except OSError:  # pragma: no cover - already closed
                pass
        self._file = None
        self._buffer.clear()
        self._dropped = self._dropped_unlogged = 0
        self._thread = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


#: Open journals, for the fork and exit hooks.
_live: weakref.WeakSet[Journal] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for journal in list(_live):
        journal._after_fork_in_child()


def _seal_at_exit() -> None:
    # The events of a process that exits without sealing are safe anyway,
    # but would wait for the worker to find the file orphaned. Receivers
    # called later than this open a new file, orphaned at exit.
    for journal in list(_live):
        try:
            journal._finish()
        except Exception:  # pragma: no cover - logged, the file stays
            logger.exception("Could not seal the journal in %s.", journal.directory)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_seal_at_exit)
