"""The spool: a per-process append-only journal in front of an importer."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import typing as t
import warnings

import pytest
from flask_mailtrack.events import _journal as spool_module
from flask_mailtrack.events._journal import Spool
from flask_mailtrack.events._journal import SUFFIX
from flask_mailtrack.events._journal_format import frame
from flask_mailtrack.events._journal_format import read_records

pytestmark = pytest.mark.skipif(not spool_module.SUPPORTED, reason="needs flock")

WAIT = 20.0  # seconds before a test gives up waiting; never reached when passing
#: Long enough that the background thread never imports on its own.
NEVER = 3600.0


class Sink:
    """An importer that keeps every batch, or fails the next ``fail`` calls."""

    def __init__(self) -> None:
        self.batches: list[list[bytes]] = []
        #: (journal, start) of each batch.
        self.positions: list[tuple[str, int]] = []
        self.fail = 0
        self.lock = threading.Lock()

    def __call__(self, journal: str, start: int, records: list[bytes]) -> None:
        with self.lock:
            if self.fail:
                self.fail -= 1
                raise RuntimeError("the database is down")
            self.batches.append(list(records))
            self.positions.append((journal, start))

    @property
    def records(self) -> list[bytes]:
        return [record for batch in self.batches for record in batch]


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def directory(tmp_path: t.Any) -> str:
    return str(tmp_path / "outbox.sqlite3-spool")


@pytest.fixture
def make_spool(directory: str, sink: Sink) -> t.Iterator[t.Callable[..., Spool]]:
    spools: list[Spool] = []

    def make(**kwargs: t.Any) -> Spool:
        options: dict[str, t.Any] = {
            "name": "test",
            "delay": NEVER,
            "poll_interval": NEVER,
            **kwargs,
        }
        spool = Spool(directory, sink, **options)
        spools.append(spool)
        return spool

    yield make
    for spool in spools:
        spool.close()


def journals(directory: str) -> list[str]:
    if not os.path.isdir(directory):
        return []
    return sorted(name for name in os.listdir(directory) if name.endswith(SUFFIX))


def write_orphan(directory: str, content: bytes, name: str = "test-1-dead") -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name + SUFFIX)
    with open(path, "wb") as file:
        file.write(content)
    return path


# -- appending and importing ----------------------------------------------------


def test_append_then_drain(
    make_spool: t.Callable[..., Spool], sink: Sink, directory: str
) -> None:
    spool = make_spool()
    assert journals(directory) == []  # nothing is created before a record
    records = [b"r%d" % n for n in range(5)]
    for record in records:
        spool.append(record)
    assert spool.pending == 5
    (name,) = journals(directory)
    path = os.path.join(directory, name)
    assert spool.current_path == path
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path, "rb") as file:
        assert list(read_records(file)) == records
    assert spool.drain() == 5
    assert sink.records == records
    assert spool.pending == 0
    # The imported file is gone; the writer is on a fresh, empty one.
    assert not os.path.exists(path)
    assert journals(directory) == [os.path.basename(spool.current_path or "")]
    assert spool.drain() == 0  # nothing new: no rotation, no import
    assert len(sink.batches) == 1


def test_background_thread_imports(
    make_spool: t.Callable[..., Spool], sink: Sink
) -> None:
    imported = threading.Event()

    def importer(journal: str, start: int, records: list[bytes]) -> None:
        sink(journal, start, records)
        imported.set()

    spool = make_spool(delay=0.01)
    spool._importer = importer
    spool.append(b"alone")
    assert imported.wait(WAIT)
    assert sink.records == [b"alone"]


def test_batches_are_bounded_and_located(
    make_spool: t.Callable[..., Spool], sink: Sink
) -> None:
    deleted: list[str] = []
    spool = make_spool(batch_size=3, on_deleted=deleted.append)
    for n in range(7):
        spool.append(b"%d" % n)
    path = spool.current_path
    assert path is not None
    spool.drain()
    assert [len(batch) for batch in sink.batches] == [3, 3, 1]
    # Each batch says where in which file it comes from, for importers
    # that must not store a file's records twice.
    name = os.path.basename(path)
    assert sink.positions == [(name, 0), (name, 3), (name, 6)]
    assert deleted == [name]
    assert not os.path.exists(path)


def test_close_imports_and_removes_files(
    make_spool: t.Callable[..., Spool], sink: Sink, directory: str
) -> None:
    spool = make_spool()
    spool.append(b"last")
    spool.close()
    assert sink.records == [b"last"]
    assert journals(directory) == []
    with pytest.raises(RuntimeError):
        spool.append(b"late")
    spool.close()  # twice is fine


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(b"two\nlines", id="newline"),
        pytest.param(b"x" * 101, id="too-long"),
    ],
)
def test_append_refuses(make_spool: t.Callable[..., Spool], record: bytes) -> None:
    spool = make_spool(max_record_size=100)
    with pytest.raises(ValueError):
        spool.append(record)
    assert spool.pending == 0


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"name": "a-b"}, id="dash-in-name"),
        pytest.param({"name": ""}, id="empty-name"),
        pytest.param({"batch_size": 0}, id="batch-size"),
        pytest.param({"poll_interval": 0}, id="poll-interval"),
    ],
)
def test_bad_options(directory: str, sink: Sink, options: dict[str, t.Any]) -> None:
    with pytest.raises(ValueError):
        Spool(directory, sink, **options)


def test_symlinked_directory_is_refused(tmp_path: t.Any, sink: Sink) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "outbox.sqlite3-spool"
    link.symlink_to(target)
    with pytest.raises(ValueError, match="symbolic link"):
        Spool(link, sink)


def test_failing_importer_keeps_the_records(
    make_spool: t.Callable[..., Spool], sink: Sink, directory: str
) -> None:
    spool = make_spool()
    spool.append(b"a")
    spool.append(b"b")
    sink.fail = 1
    with pytest.raises(RuntimeError, match="down"):
        spool.drain()
    assert sink.records == []
    assert spool.pending == 2
    # Writing goes on meanwhile, into the writer's new file only.
    spool.append(b"c")
    assert len(journals(directory)) == 2
    assert spool.drain() == 3
    assert sink.records == [b"a", b"b", b"c"]
    assert spool.pending == 0


def test_background_thread_retries_a_failed_import(
    make_spool: t.Callable[..., Spool], sink: Sink
) -> None:
    imported = threading.Event()

    def importer(journal: str, start: int, records: list[bytes]) -> None:
        sink(journal, start, records)
        imported.set()

    sink.fail = 1
    spool = make_spool(delay=0.01)
    spool._importer = importer
    spool.append(b"patient")
    assert imported.wait(WAIT)
    assert sink.records == [b"patient"]
    assert sink.fail == 0  # it failed once first


def test_close_with_a_failing_importer_leaves_an_orphan(
    make_spool: t.Callable[..., Spool], sink: Sink, directory: str
) -> None:
    spool = make_spool()
    spool.append(b"kept")
    sink.fail = 1
    spool.close()  # logs, does not raise
    assert sink.records == []
    assert len(journals(directory)) == 1
    assert make_spool().drain() == 1
    assert sink.records == [b"kept"]
    assert journals(directory) == []


def test_failed_write_moves_to_a_new_file(
    make_spool: t.Callable[..., Spool],
    sink: Sink,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    spool = make_spool()
    spool.append(b"before")
    first = spool.current_path
    calls = []

    def full_disk(fd: int, data: t.Any) -> int:
        # Half the line fits, then the disk is full.
        calls.append(len(data))
        if len(calls) == 1:
            return os.write(fd, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool_module, "_write", full_disk)
    with pytest.raises(OSError):
        spool.append(b"x" * 50)
    monkeypatch.undo()
    spool.append(b"after")
    assert spool.current_path != first
    assert spool.pending == 2
    spool.drain()
    assert sorted(sink.records) == [b"after", b"before"]
    assert "torn record" in caplog.text


def test_concurrent_appends_and_rotations(
    make_spool: t.Callable[..., Spool], sink: Sink
) -> None:
    """No record lost or imported twice while threads append and both the
    background thread and this one rotate as fast as they can."""
    spool = make_spool(delay=0, batch_size=50)
    threads = 8
    each = 1000
    start = threading.Barrier(threads + 1)

    def work(n: int) -> None:
        start.wait()
        for i in range(each):
            spool.append(b"%d-%d" % (n, i))

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    while any(worker.is_alive() for worker in workers):
        spool.drain(orphans=False)
    for worker in workers:
        worker.join()
    spool.close()
    expected = {b"%d-%d" % (n, i) for n in range(threads) for i in range(each)}
    assert len(sink.records) == len(expected)
    assert set(sink.records) == expected
    # Each thread's records arrive in the order it wrote them.
    for n in range(threads):
        mine = [r for r in sink.records if r.startswith(b"%d-" % n)]
        assert mine == [b"%d-%d" % (n, i) for i in range(each)]


# -- orphans --------------------------------------------------------------------


def test_orphan_is_taken_over(
    make_spool: t.Callable[..., Spool], sink: Sink, directory: str
) -> None:
    path = write_orphan(directory, frame(b"left") + frame(b"behind"))
    spool = make_spool()
    assert spool.drain(orphans=False) == 0
    assert os.path.exists(path)
    assert spool.drain() == 2
    assert sink.records == [b"left", b"behind"]
    assert not os.path.exists(path)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("other-1-dead" + SUFFIX, id="other-spool"),
        pytest.param("test-1-dead.tmp", id="not-a-journal"),
        pytest.param("test-1" + SUFFIX, id="not-our-pattern"),
    ],
)
def test_other_files_are_left_alone(
    make_spool: t.Callable[..., Spool], sink: Sink, directory: str, name: str
) -> None:
    os.makedirs(directory)
    path = os.path.join(directory, name)
    with open(path, "wb") as file:
        file.write(frame(b"not mine"))
    make_spool().drain()
    assert sink.records == []
    assert os.path.exists(path)


WRITER = textwrap.dedent(
    """
    import sys
    from flask_mailtrack.events._journal import Spool

    spool = Spool(sys.argv[1], lambda *args: None, name="test", delay=3600)
    for n in range(3):
        spool.append(b"from-child-%d" % n)
    print(spool.current_path, flush=True)
    sys.stdin.read()  # run until killed
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_live_writer_is_left_alone_until_it_dies(
    make_spool: t.Callable[..., Spool], sink: Sink, directory: str
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, directory],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        path = child.stdout.readline().strip()
        spool = make_spool()
        # The writer holds its lock: its file is not an orphan.
        assert spool.drain() == 0
        assert os.path.exists(path)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(WAIT)
    finally:
        child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()
    # Killed right after its appends, before any import: nothing is lost.
    assert spool.drain() == 3
    assert sink.records == [b"from-child-%d" % n for n in range(3)]
    assert not os.path.exists(path)


def test_two_spools_of_one_process_do_not_take_each_others_files(
    make_spool: t.Callable[..., Spool], sink: Sink, directory: str
) -> None:
    # flock locks belong to open files, not processes: another spool of the
    # same process sees a live writer too.
    first, second = make_spool(), make_spool()
    first.append(b"first's")
    second.drain()
    assert sink.records == []
    first.drain()
    assert sink.records == [b"first's"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_writes_its_own_file(
    make_spool: t.Callable[..., Spool], sink: Sink, directory: str
) -> None:
    spool = make_spool()
    spool.append(b"parent-1")
    parent_path = spool.current_path
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a process with threads.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(read_end)
            spool.append(b"child")
            os.write(write_end, (spool.current_path or "").encode())
            code = 0
        finally:
            # No clean-up: the child's file stays, an orphan once it exits.
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child_path = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert child_path and child_path != parent_path
    spool.append(b"parent-2")
    assert spool.current_path == parent_path
    assert parent_path is not None
    with open(parent_path, "rb") as file:
        assert list(read_records(file)) == [b"parent-1", b"parent-2"]
    # The parent's lock survived the child's exit; the child's file is an
    # orphan now.
    assert spool.drain() == 3
    assert sorted(sink.records) == [b"child", b"parent-1", b"parent-2"]
    assert journals(directory) == [os.path.basename(spool.current_path or "")]
