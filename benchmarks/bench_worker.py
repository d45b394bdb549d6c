"""The journal and the worker: what an event costs the serving process, and
how fast the worker moves events from journal files into sinks.

In one process, on events made by real pixel requests through
:class:`~flask_mailtrack.TrackingMiddleware` on the reference link of
``../shared/bench/reference.json`` (its metadata, and the request data of a
pixel hit):

- ``Journal.append`` per event (ns): one framed ``os.write`` of an already
  encoded event, into a file of the benchmark's temporary folder;
- ``Journal.record(result)`` per event (ns): ``to_json_dict``, JSON
  encoding and the append, what the signal receiver does in the request;
- the worker alone: events per second from sealed journal files (100,000
  events, written by a :class:`Journal`) through a :class:`Worker` into a
  sink that does nothing: reading, CRC checks, ``json.loads``;
- into the SQLite event store (``EventStore.write``, one transaction of
  ``INSERT OR IGNORE`` per batch) when the store is a sink, target at least
  10,000 events per second; skipped until ``EventStore.write`` exists.

Each worker figure is wall time of one pass over the same files, copied
afresh for each repeat (the worker deletes what it has delivered); the
best of three.

Run: ``python benchmarks/bench_worker.py [events]``
"""

from __future__ import annotations

import os
import pathlib
import shutil
import sys
import tempfile
import time
import typing as t

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _common  # noqa: E402
from _wsgi import caller  # noqa: E402
from _wsgi import environ_for  # noqa: E402
from flask_mailtrack import Configuration  # noqa: E402
from flask_mailtrack import EventStore  # noqa: E402
from flask_mailtrack import TrackingMiddleware  # noqa: E402
from flask_mailtrack import TrackingResult  # noqa: E402
from flask_mailtrack.events._encoding import encode_event  # noqa: E402
from flask_mailtrack.events._journal import Journal  # noqa: E402
from flask_mailtrack.events._sinks import EventRecord  # noqa: E402
from flask_mailtrack.events._sinks import Sink  # noqa: E402
from flask_mailtrack.events._worker import Worker  # noqa: E402
from flask_mailtrack.signals import record_events  # noqa: E402

EVENTS = 100_000
REPEAT = 3


class NullSink:
    """Takes every batch and does nothing: the worker's own cost."""

    name = "null"
    count = 0

    def write(self, events: t.Sequence[EventRecord]) -> None:
        self.count += len(events)

    def close(self) -> None:
        pass


def not_found(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b""]


def pixel_results(count: int) -> list[TrackingResult]:
    """``count`` events of real pixel requests on the reference link (each
    request makes a new event id)."""
    reference = _common.load_reference()
    configuration = Configuration(
        secret_key=_common.SECRET, **_common.tracking_bases(reference)
    )
    middleware = TrackingMiddleware(not_found, configuration=configuration)
    environ = environ_for(middleware.tracker.open_url(reference["metadata"]))
    environ.setdefault("HTTP_USER_AGENT", "Mozilla/5.0 (Windows NT 10.0; Win64)")
    pixel = caller(middleware, environ)
    with record_events() as recorded:
        for _ in range(count):
            pixel()
    return [event.kwargs["result"] for event in recorded]


def per_event_ns(func: t.Callable[[], object], count: int) -> float:
    best = float("inf")
    for _ in range(REPEAT):
        start = time.perf_counter_ns()
        for _ in range(count):
            func()
        best = min(best, (time.perf_counter_ns() - start) / count)
    return best


def time_append(results: list[TrackingResult], folder: str) -> tuple[float, float]:
    bodies = [encode_event(r.to_json_dict()) for r in results[:10_000]]
    with Journal(os.path.join(folder, "append")) as journal:
        items = iter(bodies * REPEAT)
        append_ns = per_event_ns(lambda: journal.append(next(items)), len(bodies))
    with Journal(os.path.join(folder, "record")) as journal:
        given = iter(results[:10_000] * REPEAT)
        record_ns = per_event_ns(lambda: journal.record(next(given)), 10_000)
    return append_ns, record_ns


def write_journal(results: list[TrackingResult], folder: str) -> tuple[int, int]:
    """Journal every result in ``folder`` (files sealed on size, as under
    load); return the number of files and bytes."""
    with Journal(folder, seal_after=3600) as journal:
        for result in results:
            journal.record(result)
    names = os.listdir(folder)
    size = sum(os.path.getsize(os.path.join(folder, name)) for name in names)
    return len(names), size


def worker_rate(
    source: str,
    folder: str,
    make_sink: t.Callable[[], Sink],
    check: t.Callable[[int], None] | None = None,
) -> float:
    """Events per second of one worker pass over a copy of ``source`` into
    the sink ``make_sink`` makes, best of :data:`REPEAT`; ``check`` is
    given the events read after each pass."""
    best = 0.0
    for _ in range(REPEAT):
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(source, folder)
        os.chmod(folder, 0o700)
        sink = make_sink()
        worker = Worker(folder, [sink])
        start = time.perf_counter()
        read = worker.run_once()
        seconds = time.perf_counter() - start
        worker.close()
        assert not os.listdir(folder), "the worker left files"
        if check is not None:
            check(read)
        best = max(best, read / seconds)
    return best


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else EVENTS
    scratch = tempfile.mkdtemp(prefix="bench-worker-")
    try:
        results = pixel_results(count)
        sample = results[0].to_json_dict()
        append_ns, record_ns = time_append(results, scratch)
        source = os.path.join(scratch, "source")
        files, size = write_journal(results, source)
        print(f"events: {count:,} in {files} journal files, {size / count:.0f} B/event")
        print(f"  metadata keys: {sorted(sample['metadata'])}")
        print(f"  request_data keys: {sorted(sample['request_data'] or {})}")
        print(f"Journal.append:        {append_ns:8.0f} ns/event")
        print(f"Journal.record(result):{record_ns:8.0f} ns/event")
        folder = os.path.join(scratch, "work")
        null = worker_rate(source, folder, NullSink)
        print(f"worker -> no-op sink:  {null:10,.0f} events/s")
        if hasattr(EventStore, "write"):

            def store() -> Sink:
                path = os.path.join(scratch, f"store-{time.monotonic_ns()}.sqlite3")
                return t.cast("Sink", EventStore(path))

            rate = worker_rate(source, folder, store)
            print(f"worker -> EventStore:  {rate:10,.0f} events/s (target >= 10,000)")
        else:
            print("worker -> EventStore:  skipped: EventStore.write missing")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
