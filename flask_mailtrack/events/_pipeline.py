"""One serving process's part of the events path: :class:`Pipeline`.

A pipeline owns the process's :class:`~flask_mailtrack.events.Journal`
(connected to the event signals: each event is one append), the sinks the
events go to, and, with ``worker="embedded"``, a
:class:`~flask_mailtrack.events.Worker` thread that feeds them from
the journal folder. With ``worker="external"`` the process only journals;
``mailtrack worker`` does the rest. Several processes of one server (gunicorn
workers) may each run an embedded worker on one folder: a journal file
belongs to whoever holds its lock.

:func:`connect_sink` and :func:`disconnect_sink` keep the direct API,
``EventStore(path).connect()`` and ``WebhookSender(...).connect()``, working
with the same promise: each sink gets a private pipeline (embedded worker,
journal folder ``<file>-<sink name>-events`` beside the sink's file),
kept on the sink object itself.
"""

from __future__ import annotations

import atexit
import glob
import logging
import os
import shutil
import tempfile
import threading
import time
import typing as t
import weakref

from blinker import ANY

from ..exceptions import ConfigurationError
from ._journal import Journal
from ._journal_files import SUFFIX
from ._sinks import Sink
from ._worker import Worker

logger = logging.getLogger("flask_mailtrack.events")

#: The values of ``MAILTRACK_WORKER``: a worker thread in the serving
#: process, or a separate ``mailtrack worker``.
EMBEDDED = "embedded"
EXTERNAL = "external"
WORKER_MODES = (EMBEDDED, EXTERNAL)

#: The attribute of a sink that holds the private pipeline of
#: :func:`connect_sink`.
_SINK_PIPELINE = "_mailtrack_pipeline"

#: The default journal folder of a file-backed sink is the file's name with
#: this suffix. Not ``-journal``: SQLite takes ``<database>-journal`` for its
#: rollback journal, and a folder there makes the database unreadable.
JOURNAL_SUFFIX = "-events"

#: The name of a pipeline's journal files, ``events-<pid>-<random>.journal``.
_JOURNAL_NAME = "events"

#: Seconds :meth:`Pipeline.close` waits at least for the worker's sink call
#: in progress.
_STOP_GRACE = 5.0

#: How often :meth:`Pipeline.drain` looks at the journal folder.
_DRAIN_POLL = 0.01


class Pipeline:
    """A journal, the sinks its events go to, and who feeds them.

    :param journal_directory: The journal folder (created with mode 0700;
        an existing one must be this user's and closed to others, as for
        :class:`Journal`).
        ``None`` makes a private temporary folder, removed by :meth:`close`:
        for sinks that live in memory.
    :param sinks: Where the worker writes events (:class:`Sink`).
    :param worker: ``"embedded"``: a worker thread of this process feeds
        ``sinks``, started by :meth:`connect`; ``"external"``: another
        process (``mailtrack worker``) does, and ``sinks`` are only closed.
    :param own_sinks: Close the sinks in :meth:`close`. ``False`` for sinks
        their user closes.
    :param worker_options: Arguments of
        :class:`~flask_mailtrack.events.Worker` (``batch_size``,
        ``poll_interval``, ...).
    :raise ConfigurationError: ``worker`` is neither mode, or the journal
        folder is not safe.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        journal_directory: str | os.PathLike[str] | None,
        sinks: t.Iterable[Sink],
        *,
        worker: str = EMBEDDED,
        own_sinks: bool = True,
        **worker_options: t.Any,
    ) -> None:
        if worker not in WORKER_MODES:
            raise ConfigurationError(
                f"worker must be {' or '.join(map(repr, WORKER_MODES))},"
                f" not {worker!r}."
            )
        #: ``"embedded"`` or ``"external"``.
        self.mode = worker
        #: Where the worker writes events.
        self.sinks: tuple[Sink, ...] = tuple(sinks)
        self._own_sinks = own_sinks
        self._worker_options = worker_options
        self._temporary = journal_directory is None
        directory = (
            tempfile.mkdtemp(prefix="mailtrack-journal-")  # mode 0700
            if journal_directory is None
            else os.fspath(journal_directory)
        )
        #: The journal every event of the connected senders is appended to.
        self.journal = Journal(directory, name=_JOURNAL_NAME)
        #: The embedded worker (``None`` in external mode).
        self.worker: Worker | None = None
        if worker == EMBEDDED:
            self.worker = Worker(self.journal.directory, self.sinks, **worker_options)
        self._started = False
        self._closed = False
        self._lock = threading.Lock()
        _live.add(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.mode} {self.journal.directory!r}>"

    @property
    def directory(self) -> str:
        """The journal folder."""
        return self.journal.directory

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def connect(self, sender: t.Any = ANY) -> Pipeline:
        """Journal the events of ``sender`` (all by default) and, in
        embedded mode, start the worker.

        :return: ``self``.
        :raise RuntimeError: the pipeline is closed.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("This pipeline is closed.")
            self.journal.connect(sender)
            if self.worker is not None and not self._started:
                self.worker.start()
                self._started = True
        return self

    def disconnect(self) -> None:
        """Stop journaling events; the worker goes on."""
        self.journal.disconnect()

    def stats(self) -> dict[str, t.Any]:
        """What this process's pipeline has done: ``mode``, ``journal`` (the
        folder), ``dropped`` (events lost to a full in-memory buffer while
        the disk refused them), ``buffered`` (events waiting for the disk)
        and ``worker`` (the embedded worker's
        :meth:`~flask_mailtrack.events.Worker.stats`, ``None`` in
        external mode)."""
        return {
            "mode": self.mode,
            "journal": self.journal.directory,
            "dropped": self.journal.dropped,
            "buffered": self.journal.buffered,
            "worker": None if self.worker is None else self.worker.stats(),
        }

    def drain(self, timeout: float = 5.0) -> bool:
        """Seal this process's journal file and wait until the journal
        folder holds no file: every event journaled so far is in every sink
        (webhooks: in their outbox). For tests and scripts that read a sink
        right after a hit.

        The embedded worker does the work (an external worker in external
        mode). Files of other live processes count too: they are sealed
        within ``seal_after`` seconds of their last event.

        :param timeout: Seconds to wait at most.
        :return: Whether the folder is empty.
        """
        self.journal.seal()
        return self._wait_for_files(os.path.join(self.directory, "*" + SUFFIX), timeout)

    def _wait_for_files(self, pattern: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        # Polled with a deadline: the worker deletes files on its own pace,
        # and a sink that keeps failing must not hang the caller.
        while glob.glob(pattern):
            if time.monotonic() >= deadline:
                return False
            time.sleep(_DRAIN_POLL)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop journaling, seal and close the journal and, in embedded mode,
        give the worker up to ``timeout`` seconds to take this process's
        last file, then stop it (it finishes or releases the batch in hand:
        a sink call in progress is waited for, up to 5 seconds even when
        ``timeout`` is shorter) and close the sinks. Calling it again does
        nothing.

        What the worker did not take stays in the journal folder: the next
        worker on it takes it over.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _live.discard(self)
        deadline = time.monotonic() + timeout
        try:
            self.journal.disconnect()
            self.journal.close()
            if self.worker is not None and self._started:
                own_files = f"{_JOURNAL_NAME}-{os.getpid()}-*{SUFFIX}"
                self._wait_for_files(os.path.join(self.directory, own_files), timeout)
                # The sink call in progress is waited for even past the
                # deadline (within reason): closing a sink under it would
                # fail the batch, and leave the worker retrying a closed sink.
                self.worker.stop(max(_STOP_GRACE, deadline - time.monotonic()))
        finally:
            try:
                if self._own_sinks:
                    _close_sinks(self.sinks)
            finally:
                if self._temporary:
                    shutil.rmtree(self.directory, ignore_errors=True)

    def _after_fork_in_child(self) -> None:
        # The parent's worker thread does not exist in the child: run one
        # here too, as each process of a preforking server does.
        if self.worker is None or not self._started or self._closed:
            return
        self._lock = threading.Lock()
        self.worker = Worker(self.directory, self.sinks, **self._worker_options)
        self.worker.start()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _close_sinks(sinks: t.Iterable[Sink]) -> None:
    for sink in sinks:
        try:
            sink.close()
        except Exception:
            logger.exception("Closing the %s sink failed.", sink.name)


#: Open pipelines, for the exit and fork hooks (as the journals have theirs).
_live: weakref.WeakSet[Pipeline] = weakref.WeakSet()


def _close_at_exit() -> None:
    for pipeline in list(_live):
        try:
            pipeline.close()
        except Exception:
            logger.exception("Closing the events pipeline at exit failed.")


def _restart_after_fork() -> None:
    for pipeline in list(_live):
        pipeline._after_fork_in_child()


# Registered after the journal's hooks (this module imports it): at exit,
# pipelines close before the journals are sealed; in a child, the journals
# drop the parent's files before the workers start.
atexit.register(_close_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restart_after_fork)


# -- the direct API: EventStore(...).connect(), WebhookSender(...).connect() ----


def connect_sink(sink: Sink, sender: t.Any = ANY) -> None:
    """Feed ``sink`` the events of ``sender`` (all by default) through a
    private pipeline: the events are journaled beside the sink's file, in
    ``<file>-<sink name>-events`` (a temporary folder for an in-memory
    sink), and an embedded worker writes them to the sink. Connecting again
    adds a sender to the same pipeline.

    The folder is the sink's own: two sinks on one file (a store and an
    outbox in one SQLite file) each get theirs, so neither worker takes
    the other's events.

    :param sink: An :class:`~flask_mailtrack.EventStore` or a
        :class:`~flask_mailtrack.WebhookSender` (anything with a ``path`` or
        an ``outbox_path``).
    """
    pipeline: Pipeline | None = getattr(sink, _SINK_PIPELINE, None)
    if pipeline is None or pipeline.closed:
        pipeline = Pipeline(_sink_journal(sink), [sink], own_sinks=False)
        setattr(sink, _SINK_PIPELINE, pipeline)
    pipeline.connect(sender)


def disconnect_sink(sink: Sink, timeout: float = 5.0) -> None:
    """Stop feeding ``sink``: close its private pipeline, which writes what
    was journaled to the sink first (for at most ``timeout`` seconds). The
    sink stays open. Does nothing when it is not connected."""
    pipeline: Pipeline | None = getattr(sink, _SINK_PIPELINE, None)
    if pipeline is not None:
        setattr(sink, _SINK_PIPELINE, None)
        pipeline.close(timeout)


def sink_pipeline(sink: Sink) -> Pipeline | None:
    """The private pipeline :func:`connect_sink` made for ``sink``, if any
    (its :meth:`~Pipeline.drain` waits until the sink has every event)."""
    return t.cast("Pipeline | None", getattr(sink, _SINK_PIPELINE, None))


def _sink_journal(sink: Sink) -> str | None:
    """The journal folder of a sink's private pipeline; ``None`` (a
    temporary folder) for an in-memory sink."""
    path = getattr(sink, "path", None) or getattr(sink, "outbox_path", None)
    if not isinstance(path, str):
        raise TypeError(
            f"{sink!r} has no file (no 'path' nor 'outbox_path') to journal"
            " its events beside; make a Pipeline for it instead."
        )
    if path == ":memory:" or "://" in path:
        # In memory, or a database server: no file to journal beside.
        return None
    return f"{path}-{sink.name}{JOURNAL_SUFFIX}"
