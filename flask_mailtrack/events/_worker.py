"""What feeds the sinks from the journal: :class:`Worker`.

The serving processes append events to their journal files (``_journal``);
a worker claims the files they have sealed or left behind (dead), reads
their events in batches and hands each batch to every sink (``_sinks``): the
event store, the webhook sender, anything with ``name``, ``write`` and
``close``. It runs as ``mailtrack worker`` (one process per machine), or as
a thread of the serving process (:meth:`Worker.start`,
``MAILTRACK_WORKER=embedded``).

Each sink advances on its own
-----------------------------

The worker remembers, per file and per sink, how far the sink has the file.
A sink that raises is offered the rest again later, after a delay that
doubles with each failure in a row (``retry_base`` to ``retry_max``, with
jitter), while the other sinks go on, with that file and the next ones. A
file is deleted once every sink has all of it; until then the worker closes
it after each pass, so that another worker may take it (and offer it from
its start: sinks are idempotent on the event id).

Stopping and crashing
---------------------

:meth:`Worker.stop` lets the sink call in progress finish, then closes the
file in hand; nothing stays locked. A worker killed outright loses nothing
either: its files stay, unlocked by the kernel, and the next worker offers
them again from their start. Progress is kept in memory only, so an event
may reach a sink twice (at least once); never zero times.

Several workers may share a folder: each file is read by the one that holds
its lock (``_journal_files``).
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import threading
import time
import typing as t

from ._backoff import backoff
from ._journal_files import check_directory
from ._journal_files import claim
from ._journal_files import Claimed
from ._journal_files import journal_names
from ._journal_files import release
from ._journal_format import read_positioned
from ._sinks import EventRecord
from ._sinks import Sink

logger = logging.getLogger("flask_mailtrack.worker")

#: Read buffer for journal files.
_BUFFER_SIZE = 256 * 1024

#: ``json.loads`` of text, without its look at the bytes' encoding (events
#: are UTF-8): a tenth of the worker's time per event.
_decode_json = json.JSONDecoder().decode


class _SinkState:
    """How one sink is doing."""

    __slots__ = ("written", "failures", "failures_in_a_row", "retry_at", "last_error")

    def __init__(self) -> None:
        self.written = 0
        self.failures = 0
        self.failures_in_a_row = 0
        #: When it may be offered events again (``time.monotonic``).
        self.retry_at = 0.0
        self.last_error: str | None = None


class _Progress:
    """What the sinks have of one journal file."""

    __slots__ = ("offsets", "counts", "events", "scanned", "end")

    def __init__(self) -> None:
        #: Sink name -> the offset up to which it has every event.
        self.offsets: dict[str, int] = {}
        #: Sink name -> how many of the file's events it has.
        self.counts: dict[str, int] = {}
        #: Events read from the file so far.
        self.events = 0
        #: How far the file has been read (events and damage counted).
        self.scanned = 0
        #: The file's size once read to its end.
        self.end: int | None = None

    def lacks(self, sink: Sink) -> bool:
        return self.end is None or self.offsets.get(sink.name, 0) < self.end


class Worker:
    """Feeds ``sinks`` from the journal files in ``directory``.

    ::

        worker = Worker("/var/lib/mailtrack/journal", [store, webhooks])
        worker.start()  # a thread; or worker.run(stop_event) in a process
        ...
        worker.close()

    :param directory: The journal folder (see :class:`Journal`); it must be
        this user's and closed to others.
    :param sinks: Where events go, each with a unique ``name``.
    :param batch_size: Most events per :meth:`Sink.write` call.
    :param poll_interval: Seconds between looks at the folder when there
        is nothing to do.
    :param retry_base: Seconds before a failed sink is offered events
        again; doubled after each failure in a row.
    :param retry_max: The longest wait before a failed sink is retried.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        sinks: t.Iterable[Sink],
        *,
        batch_size: int = 1000,
        poll_interval: float = 0.05,
        retry_base: float = 0.5,
        retry_max: float = 30.0,
    ) -> None:
        sinks = tuple(sinks)
        names = [sink.name for sink in sinks]
        if not names:
            # A worker without sinks would delete every journal file unread.
            raise ValueError("A worker needs at least one sink.")
        if len(set(names)) != len(names):
            raise ValueError(f"The sinks of a worker need distinct names: {names}")
        if batch_size < 1 or poll_interval <= 0 or retry_base <= 0:
            raise ValueError(
                "batch_size must be >= 1, poll_interval and retry_base positive."
            )
        self._directory = check_directory(directory)
        #: The sinks, in the order they are offered each batch.
        self.sinks = sinks
        #: Most events per write.
        self.batch_size = batch_size
        #: Seconds between looks at an idle folder.
        self.poll_interval = poll_interval
        #: Seconds before the first retry of a failed sink.
        self.retry_base = retry_base
        #: The longest wait before a retry.
        self.retry_max = retry_max
        self._states = {sink.name: _SinkState() for sink in sinks}
        #: (file name, inode) -> progress, for files some sink lacks.
        self._progress: dict[tuple[str, int], _Progress] = {}
        self._events_read = 0
        self._damaged = 0
        self._halt = threading.Event()
        self._pass_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def directory(self) -> str:
        """The journal folder (absolute)."""
        return self._directory

    # -- running ------------------------------------------------------------------

    def run_once(self) -> int:
        """Go through the folder once: claim each file some sink lacks, hand
        its events to the sinks that are not waiting for a retry, delete it
        if every sink has it all, release it otherwise.

        :return: How many events were read (``0``: nothing to do).
        """
        return self._pass(self._halt)

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set (or :meth:`stop` is called), looking at
        the folder every ``poll_interval`` seconds when it is idle.

        :param stop: Set it (from a signal handler, another thread) to stop;
            the sink call in progress finishes, the file in hand is released.
        """
        while not (stop.is_set() or self._halt.is_set()):
            try:
                read = self._pass(stop)
            except Exception:
                logger.exception("The worker's pass over %s failed.", self._directory)
                read = 0
            if not read:
                stop.wait(self.poll_interval)

    def start(self) -> Worker:
        """Run :meth:`run` in a daemon thread, ``mailtrack-worker``, until
        :meth:`stop`.

        :return: ``self``.
        :raise RuntimeError: the worker has been stopped.
        """
        if self._halt.is_set():
            raise RuntimeError("This worker has been stopped.")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.run,
                args=(self._halt,),
                name="mailtrack-worker",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread of :meth:`start` (and :meth:`run`) after the sink
        call in progress, releasing every file, within ``timeout`` seconds
        unless a sink call takes longer."""
        self._halt.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """:meth:`stop`, then close every sink."""
        self.stop(timeout)
        if self._closed:
            return
        self._closed = True
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:
                logger.exception("Closing the sink %r failed.", sink.name)

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- a pass over the folder ---------------------------------------------------

    def _pass(self, stop: threading.Event) -> int:
        with self._pass_lock:
            files = journal_names(self._directory)
            # Forget what was known of files deleted since (by another worker).
            present = set(files)
            for key in [key for key in self._progress if key not in present]:
                del self._progress[key]
            read = 0
            for key in files:
                if stop.is_set():
                    break
                now = time.monotonic()
                progress = self._progress.get(key)
                due = [
                    sink
                    for sink in self.sinks
                    if self._states[sink.name].retry_at <= now
                    and (progress is None or progress.lacks(sink))
                ]
                if not due:
                    continue  # the sinks that lack it wait for a retry
                claimed = claim(self._directory, key[0])
                if claimed is None:
                    continue  # its writer is alive, or another worker has it
                read += self._feed(claimed, due, stop)
        return read

    def _feed(self, claimed: Claimed, due: list[Sink], stop: threading.Event) -> int:
        """Hand the events of a claimed file to the ``due`` sinks, then
        delete or release the file; return how many events were read."""
        key = (claimed.name, claimed.inode)
        progress = self._progress.setdefault(key, _Progress())
        finished = False
        try:
            read = self._read(claimed, progress, due, stop)
            finished = progress.end is not None and not any(
                progress.lacks(sink) for sink in self.sinks
            )
        finally:
            release(claimed, delete=finished)
        if finished:
            del self._progress[key]
        return read

    def _read(
        self,
        claimed: Claimed,
        progress: _Progress,
        due: list[Sink],
        stop: threading.Event,
    ) -> int:
        # Start where the sink that has least of the file stopped.
        start = min(progress.offsets.get(sink.name, 0) for sink in due)
        os.lseek(claimed.fd, start, os.SEEK_SET)
        scanned = progress.scanned

        def damaged(offset: int) -> None:
            if offset >= scanned:  # not counted on an earlier read
                self._damaged += 1

        read = 0
        batch: list[EventRecord] = []
        ends: list[int] = []
        with open(claimed.fd, "rb", buffering=_BUFFER_SIZE, closefd=False) as file:
            records = read_positioned(
                file, start=start, source=claimed.path, on_damaged=damaged
            )
            for end, body in records:
                new = end > scanned
                record = self._parse(body, claimed.path, count=new)
                if record is None:
                    continue
                if new:
                    progress.events += 1
                    self._events_read += 1
                batch.append(record)
                ends.append(end)
                if len(batch) >= self.batch_size:
                    read += len(batch)
                    self._offer(progress, due, batch, ends, end)
                    batch, ends = [], []
                    if not due or stop.is_set():
                        # The sinks left have it up to here: stop reading.
                        progress.scanned = max(scanned, end)
                        return read
            end = file.tell()
        read += len(batch)
        self._offer(progress, due, batch, ends, end)
        progress.scanned = progress.end = end
        return read

    def _parse(self, body: bytes, source: str, *, count: bool) -> EventRecord | None:
        try:
            data = _decode_json(body.decode("utf-8"))
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            return EventRecord(data["id"], body, data)
        if count:
            self._damaged += 1
            logger.error(
                "Skipped a journal record of %s that is not an event (a JSON"
                " object with a string id): %r",
                source,
                body[:100],
            )
        return None

    def _offer(
        self,
        progress: _Progress,
        due: list[Sink],
        batch: list[EventRecord],
        ends: list[int],
        upto: int,
    ) -> None:
        """Hand each due sink the events of ``batch`` it lacks (those
        ending past its offset), in order; a sink that raises leaves
        ``due``. ``upto`` is where the batch ends in the file."""
        for sink in list(due):
            have = progress.offsets.get(sink.name, 0)
            if have >= upto:
                continue
            lacking = batch[bisect.bisect_right(ends, have) :]
            if lacking:
                state = self._states[sink.name]
                try:
                    sink.write(lacking)
                except Exception as e:
                    self._failed(sink, state, e)
                    due.remove(sink)
                    continue
                state.written += len(lacking)
                state.failures_in_a_row = 0
            progress.offsets[sink.name] = upto
            progress.counts[sink.name] = progress.counts.get(sink.name, 0) + len(
                lacking
            )

    def _failed(self, sink: Sink, state: _SinkState, error: Exception) -> None:
        state.failures += 1
        state.failures_in_a_row += 1
        delay = backoff(state.failures_in_a_row, self.retry_base, self.retry_max)
        state.retry_at = time.monotonic() + delay
        state.last_error = f"{type(error).__name__}: {error}"
        logger.warning(
            "The sink %r failed (%s); offering it its events again in %.1f s.",
            sink.name,
            state.last_error,
            delay,
            # The traceback once per run of failures, not on every retry.
            exc_info=state.failures_in_a_row == 1,
        )

    # -- inspection ---------------------------------------------------------------

    def stats(self) -> dict[str, t.Any]:
        """Counters since this worker started, as plain data:
        ``events_read``, ``damaged`` (records skipped: torn, corrupted, or
        not an event), ``files_waiting`` (journal files in the folder,
        those of live writers included), ``files_held_back`` (files some
        failing sink still lacks), and per sink (``sinks[name]``):
        ``written``, ``failures``, ``backlog`` (events read and not yet
        written to it), ``next_retry`` (seconds since the epoch, or
        ``None`` when not waiting), ``last_error``.
        """
        now = time.monotonic()
        progress = list(self._progress.values())
        sinks = {}
        for sink in self.sinks:
            state = self._states[sink.name]
            waiting = state.retry_at - now
            sinks[sink.name] = {
                "written": state.written,
                "failures": state.failures,
                "backlog": sum(p.events - p.counts.get(sink.name, 0) for p in progress),
                "next_retry": time.time() + waiting if waiting > 0 else None,
                "last_error": state.last_error,
            }
        return {
            "events_read": self._events_read,
            "damaged": self._damaged,
            "files_waiting": len(journal_names(self._directory)),
            "files_held_back": len(progress),
            "sinks": sinks,
        }
