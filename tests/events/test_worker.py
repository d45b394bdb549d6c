"""The worker: claims sealed and orphaned journal files, feeds every sink on
its own, deletes a file once every sink has it; real files, flock and
processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import typing as t

import pytest
from flask_mailtrack.events._journal import Journal
from flask_mailtrack.events._journal_files import claim
from flask_mailtrack.events._journal_files import release
from flask_mailtrack.events._journal_files import SUPPORTED
from flask_mailtrack.events._journal_format import frame
from flask_mailtrack.events._sinks import EventRecord
from flask_mailtrack.events._sinks import Sink
from flask_mailtrack.events._worker import Worker

from _journal_helpers import body
from _journal_helpers import event_id
from _journal_helpers import journal_files
from _journal_helpers import ListSink
from _journal_helpers import WAIT
from _journal_helpers import wait_until

pytestmark = pytest.mark.skipif(not SUPPORTED, reason="needs flock")


@pytest.fixture
def directory(tmp_path: t.Any) -> str:
    return str(tmp_path / "journal")


@pytest.fixture
def journal(directory: str) -> t.Iterator[Journal]:
    journal = Journal(directory, seal_after=3600)
    yield journal
    journal.close()


def write(journal: Journal, numbers: t.Iterable[int]) -> None:
    """Journal the events ``numbers`` in one file, sealed."""
    for n in numbers:
        assert journal.append(body(n))
    journal.seal()


def ids(numbers: t.Iterable[int]) -> list[str]:
    return [event_id(n) for n in numbers]


def run_until(worker: Worker, predicate: t.Callable[[], object]) -> None:
    """Run passes of ``worker`` until ``predicate`` holds."""

    def check() -> object:
        worker.run_once()
        return predicate()

    wait_until(check)


def test_every_sink_gets_every_event_in_batches_then_the_file_goes(
    journal: Journal, directory: str
) -> None:
    write(journal, range(7))
    write(journal, range(7, 10))
    store, hooks = ListSink("store"), ListSink("hooks")
    worker = Worker(directory, [store, hooks], batch_size=3)
    assert isinstance(store, Sink)
    assert worker.run_once() == 10
    for sink in (store, hooks):
        assert sorted(sink.ids) == ids(range(10))
        assert max(len(batch) for batch in sink.batches) == 3
    # What a sink gets: the id, the bytes as journaled, the parsed event.
    first = store.batches[0][0]
    assert first == EventRecord(first.id, body(int(first.id[4:], 16)), first.data)
    assert first.data["type"] == "email.opened"
    assert journal_files(directory) == []
    assert worker.run_once() == 0
    stats = worker.stats()
    assert (stats["events_read"], stats["damaged"], stats["files_waiting"]) == (
        10,
        0,
        0,
    )
    assert stats["sinks"]["hooks"] == {
        "written": 10,
        "failures": 0,
        "backlog": 0,
        "next_retry": None,
        "last_error": None,
    }


def test_the_file_of_a_live_writer_is_left_alone(
    journal: Journal, directory: str
) -> None:
    journal.append(body(1))  # not sealed: its writer holds it
    sink = ListSink()
    worker = Worker(directory, [sink])
    assert worker.run_once() == 0
    assert sink.ids == []
    journal.seal()
    assert worker.run_once() == 1
    assert sink.ids == ids([1])


def test_damaged_and_malformed_records_are_skipped_and_counted(
    directory: str,
) -> None:
    os.makedirs(directory, mode=0o700)
    lines = [
        frame(body(1)),
        frame(b"not json"),
        frame(b'{"schema":1,"type":"email.opened"}'),  # no id
        frame(b'{"id":7}'),  # not a string
        frame(b'["evt_1"]'),  # not an object
        frame(body(2)).replace(b"evt_", b"EVT_", 1),  # checksum mismatch
        frame(body(3)),
        frame(body(4))[:20],  # torn: a writer killed mid-write
    ]
    with open(os.path.join(directory, "w-1-dead.journal"), "wb") as file:
        file.write(b"".join(lines))
    good, flaky = ListSink("good"), ListSink("flaky")
    flaky.failing = True
    worker = Worker(directory, [good, flaky], retry_base=0.001, retry_max=0.001)
    worker.run_once()
    assert good.ids == ids([1, 3])
    assert worker.stats()["damaged"] == 6
    # Read again for the sink that failed: not counted twice.
    flaky.failing = False
    run_until(worker, lambda: not journal_files(directory))
    assert flaky.ids == ids([1, 3])
    assert good.ids == ids([1, 3])
    assert worker.stats()["damaged"] == 6
    assert worker.stats()["events_read"] == 2


def test_a_failing_sink_holds_back_only_itself(
    journal: Journal, directory: str
) -> None:
    store, hooks = ListSink("store"), ListSink("hooks")
    hooks.failing = True
    worker = Worker(directory, [store, hooks], batch_size=4, retry_base=3600)
    write(journal, range(10))
    worker.run_once()
    assert store.ids == ids(range(10))
    # Later files keep flowing to the healthy sink, not offered to the
    # failing one before its retry is due.
    write(journal, range(10, 15))
    worker.run_once()
    assert store.ids == ids(range(15))
    assert hooks.failures == 1
    files = journal_files(directory)
    assert len(files) == 2  # kept for the failing sink...
    for name in files:  # ...but not held: another worker could take them
        claimed = claim(directory, name)
        assert claimed is not None
        release(claimed)
    stats = worker.stats()
    assert stats["files_held_back"] == 2
    assert stats["sinks"]["hooks"]["failures"] == 1
    assert stats["sinks"]["hooks"]["backlog"] == 15
    assert stats["sinks"]["hooks"]["last_error"] == "ConnectionError: hooks is down"
    assert stats["sinks"]["hooks"]["next_retry"] is not None
    assert stats["sinks"]["store"]["backlog"] == 0


def test_a_recovered_sink_gets_the_rest_then_files_go(
    journal: Journal, directory: str
) -> None:
    store, hooks = ListSink("store"), ListSink("hooks")
    worker = Worker(
        directory, [store, hooks], batch_size=4, retry_base=0.001, retry_max=0.002
    )
    write(journal, range(6))
    # The sink fails after its first batch of the file.
    original = hooks.write

    def fail_after_one(events: t.Sequence[EventRecord]) -> None:
        if hooks.batches:
            hooks.failing = True
        original(events)

    hooks.write = fail_after_one  # type: ignore[method-assign]
    worker.run_once()
    assert hooks.ids == ids(range(4))
    write(journal, range(6, 9))
    run_until(worker, lambda: hooks.failures >= 3)
    assert store.ids == ids(range(9))
    assert len(journal_files(directory)) == 2  # not before it recovers
    hooks.failing = False
    hooks.write = original  # type: ignore[method-assign]
    run_until(worker, lambda: not journal_files(directory))
    # From where it stopped: each event once, in each file's order.
    assert sorted(hooks.ids) == ids(range(9))
    assert hooks.ids[:6] == ids(range(6))
    assert store.ids == ids(range(9))
    assert worker.stats()["sinks"]["hooks"]["backlog"] == 0


def test_a_new_worker_offers_a_file_again_from_its_start(
    journal: Journal, directory: str
) -> None:
    store, hooks = ListSink("store"), ListSink("hooks")
    hooks.failing = True
    write(journal, range(3))
    Worker(directory, [store, hooks], retry_base=3600).run_once()
    assert (store.ids, hooks.ids) == (ids(range(3)), [])
    # The worker is gone (a crash): the next offers the whole file to
    # every sink again; sinks are idempotent on the id.
    hooks.failing = False
    Worker(directory, [store, hooks]).run_once()
    assert store.ids == ids(range(3)) * 2
    assert hooks.ids == ids(range(3))
    assert journal_files(directory) == []


class SlowSink(ListSink):
    """Takes its time, so that two workers overlap."""

    def write(self, events: t.Sequence[EventRecord]) -> None:
        threading.Event().wait(0.002)
        super().write(events)


def test_two_workers_never_hand_out_the_same_file(directory: str) -> None:
    journal = Journal(directory, seal_after=3600, max_file_size=2000)
    try:
        write(journal, range(600))  # about 20 files
    finally:
        journal.close()
    sinks = [SlowSink("a"), SlowSink("b")]
    workers = [
        Worker(directory, [sink], batch_size=5, poll_interval=0.01) for sink in sinks
    ]
    for worker in workers:
        worker.start()
    try:
        wait_until(lambda: not journal_files(directory))
    finally:
        for worker in workers:
            worker.close()
    first, second = (sink.ids for sink in sinks)
    assert first and second, "one worker did everything; the test proves nothing"
    assert sorted(first + second) == ids(range(600))
    assert all(sink.closed for sink in sinks)


def test_stop_finishes_the_call_in_hand_and_releases_every_file(
    journal: Journal, directory: str
) -> None:
    write(journal, range(10))
    entered, leave = threading.Event(), threading.Event()

    class BlockingSink(ListSink):
        def write(self, events: t.Sequence[EventRecord]) -> None:
            entered.set()
            leave.wait(WAIT)
            super().write(events)

    def worker_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "mailtrack-worker"]

    sink = BlockingSink()
    # Another test's worker thread may still be on its way out.
    others = set(worker_threads())
    worker = Worker(directory, [sink], batch_size=3).start()
    assert entered.wait(WAIT)
    (thread,) = set(worker_threads()) - others
    worker.stop(timeout=0)  # asks; the sink call in hand goes on
    leave.set()
    worker.stop(timeout=WAIT)
    assert not thread.is_alive()
    # The batch in hand was finished; the rest of the file is left, unlocked.
    assert sink.ids == ids(range(3))
    (name,) = journal_files(directory)
    claimed = claim(directory, name)
    assert claimed is not None
    release(claimed)
    with pytest.raises(RuntimeError):
        worker.start()


def test_sinks_are_required_with_distinct_names(directory: str) -> None:
    with pytest.raises(ValueError, match="distinct"):
        Worker(directory, [ListSink("x"), ListSink("x")])
    with pytest.raises(ValueError, match="at least one sink"):
        Worker(directory, [])


# -- other processes ------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import json, sys
    from flask_mailtrack.events._journal import Journal

    directory, count, seal_after = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    journal = Journal(directory, seal_after=seal_after)
    for n in range(count):
        event = {"schema": 1, "id": f"evt_{n:032x}", "type": "email.opened"}
        journal.append(json.dumps(event).encode())
        if n % 100 == 99:
            print(n + 1, flush=True)  # appended (returned) so far
    sys.stdin.read()  # run until the test closes stdin or kills it
    """
)


def writer(directory: str, count: int, seal_after: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, directory, str(count), str(seal_after)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def finish(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None and child.stdout is not None
    try:
        child.stdin.close()
    except OSError:
        pass  # killed
    try:
        child.wait(WAIT)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def test_a_worker_reads_while_another_process_writes(directory: str) -> None:
    os.makedirs(directory, mode=0o700)
    sink = ListSink()
    worker = Worker(directory, [sink], poll_interval=0.005).start()
    child = writer(directory, 3000, seal_after=0.005)
    try:
        wait_until(lambda: len(sink.ids) == 3000, "not every event arrived")
    finally:
        finish(child)
        worker.close()
    assert sorted(sink.ids) == ids(range(3000))  # each once
    assert journal_files(directory) == []


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_writer_loses_nothing(directory: str) -> None:
    os.makedirs(directory, mode=0o700)
    child = writer(directory, 1000, seal_after=3600)  # never sealed
    try:
        assert child.stdout is not None
        appended = 0
        while appended < 1000:
            appended = int(child.stdout.readline())
        sink = ListSink()
        worker = Worker(directory, [sink])
        assert worker.run_once() == 0  # the live writer's file is its own
        child.send_signal(signal.SIGKILL)
        child.wait(WAIT)
    finally:
        finish(child)
    (name,) = journal_files(directory)
    assert f"-{child.pid}-" in name
    # A write the kill cut short would leave a torn last line.
    with open(os.path.join(directory, name), "ab") as file:
        file.write(frame(body(5000))[:30])
    assert worker.run_once() == 1000
    assert sink.ids == ids(range(1000))
    assert worker.stats()["damaged"] == 1
    assert journal_files(directory) == []


def test_stats_are_plain_data(journal: Journal, directory: str) -> None:
    journal.append(body(1))
    worker = Worker(directory, [ListSink()])
    stats = worker.stats()
    assert json.loads(json.dumps(stats)) == stats
    assert stats["files_waiting"] == 1
