"""The journal: one os.write per event into a locked file of this process,
sealed for the worker; a full disk parks events in memory; the folder must
be safe."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import stat
import subprocess
import typing as t
import warnings

import pytest
from flask_mailtrack import ConfigurationError
from flask_mailtrack.events._journal import Journal
from flask_mailtrack.events._journal_files import check_directory
from flask_mailtrack.events._journal_files import claim
from flask_mailtrack.events._journal_files import release
from flask_mailtrack.events._journal_files import SUPPORTED
from flask_mailtrack.events._journal_format import read_records
from flask_mailtrack.events._worker import Worker
from flask_mailtrack.signals import email_opened

from _journal_helpers import body
from _journal_helpers import event_id
from _journal_helpers import journal_files
from _journal_helpers import ListSink
from _journal_helpers import wait_until
from _webhook_receiver import event

pytestmark = pytest.mark.skipif(not SUPPORTED, reason="needs flock")

#: Long enough that the journal's thread never seals a file on its own.
NEVER = 3600.0


@pytest.fixture
def directory(tmp_path: t.Any) -> str:
    return str(tmp_path / "journal")


@pytest.fixture
def make_journal(directory: str) -> t.Iterator[t.Callable[..., Journal]]:
    journals: list[Journal] = []

    def make(*, where: str = directory, **kwargs: t.Any) -> Journal:
        options: dict[str, t.Any] = {"name": "test", "seal_after": NEVER, **kwargs}
        journal = Journal(where, **options)
        journals.append(journal)
        return journal

    yield make
    for journal in journals:
        journal.close()


def records_of(directory: str) -> list[bytes]:
    records = []
    for name in journal_files(directory):
        with open(os.path.join(directory, name), "rb") as file:
            records.extend(read_records(file))
    return records


def is_claimable(directory: str, name: str) -> bool:
    claimed = claim(directory, name)
    if claimed is None:
        return False
    release(claimed)
    return True


# -- writing and sealing ------------------------------------------------------------


def test_events_are_lines_of_a_locked_file_of_this_process(
    make_journal: t.Callable[..., Journal], directory: str
) -> None:
    journal = make_journal()
    assert journal.directory == directory
    for n in range(3):
        assert journal.append(body(n))
    (name,) = journal_files(directory)
    prefix, pid, random = name.removesuffix(".journal").split("-")
    assert (prefix, pid, len(random)) == ("test", str(os.getpid()), 16)
    assert stat.S_IMODE(os.stat(os.path.join(directory, name)).st_mode) == 0o600
    # Written at once (another reader sees them), but still the writer's.
    assert records_of(directory) == [body(n) for n in range(3)]
    assert not is_claimable(directory, name)
    journal.seal()
    assert is_claimable(directory, name)
    # The next event opens a new file.
    journal.append(body(3))
    assert len(journal_files(directory)) == 2


def test_the_thread_seals_a_file_after_seal_after(
    make_journal: t.Callable[..., Journal], directory: str
) -> None:
    journal = make_journal(seal_after=0.01)
    journal.append(body(1))
    journal.append(body(2))
    (name,) = journal_files(directory)
    wait_until(lambda: is_claimable(directory, name), "never sealed")
    # And again for the next file: the thread sleeps until a new one.
    journal.append(body(3))
    (new,) = set(journal_files(directory)) - {name}
    wait_until(lambda: is_claimable(directory, new), "never sealed")
    assert sorted(records_of(directory)) == [body(1), body(2), body(3)]


def test_a_file_past_max_file_size_is_sealed_by_the_append(
    make_journal: t.Callable[..., Journal], directory: str
) -> None:
    line = len(body(0)) + 10  # checksum, space, newline
    journal = make_journal(max_file_size=2 * line)
    for n in range(5):
        journal.append(body(n))
    names = journal_files(directory)
    assert len(names) == 3
    assert [is_claimable(directory, name) for name in names].count(False) == 1
    assert sorted(records_of(directory)) == sorted(body(n) for n in range(5))


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(b"two\nlines", id="newline"),
        pytest.param(b"x" * (1024 * 1024 + 1), id="oversized"),
    ],
)
def test_append_refuses(make_journal: t.Callable[..., Journal], record: bytes) -> None:
    journal = make_journal()
    with pytest.raises(ValueError):
        journal.append(record)
    assert journal.buffered == journal.dropped == 0


def test_record_and_the_signals_journal_the_event_json(
    make_journal: t.Callable[..., Journal], directory: str
) -> None:
    journal = make_journal()
    result = event(1)
    assert journal.record(result)
    sender = object()
    assert journal.connect(sender) is journal
    other = event(2)
    email_opened.send(sender, result=other)
    email_opened.send(object(), result=event(3))  # another sender: not ours
    journal.disconnect()
    email_opened.send(sender, result=event(4))
    assert [json.loads(r) for r in records_of(directory)] == [
        result.to_json_dict(),
        other.to_json_dict(),
    ]


def test_close_seals_and_refuses_more(
    make_journal: t.Callable[..., Journal], directory: str
) -> None:
    journal = make_journal()
    journal.append(body(1))
    journal.close()
    (name,) = journal_files(directory)
    assert is_claimable(directory, name)
    with pytest.raises(RuntimeError):
        journal.append(body(2))
    journal.close()  # twice is fine


def test_bad_options_are_refused(directory: str) -> None:
    with pytest.raises(ValueError, match="letters"):
        Journal(directory, name="a-b")
    with pytest.raises(ValueError):
        Journal(directory, seal_after=-1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_writes_its_own_file(
    make_journal: t.Callable[..., Journal], directory: str
) -> None:
    journal = make_journal()
    journal.append(b"parent-1")
    (parent_file,) = journal_files(directory)
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a process with threads.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(read_end)
            journal.append(b"child")
            os.write(write_end, b"ok")
            code = 0
        finally:
            # No clean-up: the child's file stays, an orphan once it exits.
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        assert pipe.read() == b"ok"
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    journal.append(b"parent-2")
    (child_file,) = set(journal_files(directory)) - {parent_file}
    assert f"-{pid}-" in child_file
    with open(os.path.join(directory, parent_file), "rb") as file:
        assert list(read_records(file)) == [b"parent-1", b"parent-2"]
    # The parent's lock survived the child's exit; the child's file is an
    # orphan, the worker's.
    assert not is_claimable(directory, parent_file)
    assert is_claimable(directory, child_file)


# -- the folder ---------------------------------------------------------------------


def test_the_folder_is_created_private(tmp_path: t.Any) -> None:
    path = tmp_path / "deep" / "journal"
    old = os.umask(0o022)
    try:
        assert check_directory(path) == str(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert check_directory(path) == str(path)  # an existing safe folder


@pytest.mark.parametrize("mode", [0o750, 0o701, 0o777, 0o710])
def test_a_folder_open_to_others_is_refused(tmp_path: t.Any, mode: int) -> None:
    path = tmp_path / "journal"
    path.mkdir()
    path.chmod(mode)
    with pytest.raises(ConfigurationError, match=f"chmod 700 {path}"):
        check_directory(path)
    with pytest.raises(ConfigurationError, match="group or others"):
        Journal(path)
    with pytest.raises(ConfigurationError, match="group or others"):
        Worker(path, [ListSink()])


def test_a_symlinked_folder_is_refused(tmp_path: t.Any) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "journal"
    link.symlink_to(real)
    with pytest.raises(ConfigurationError, match="symbolic link"):
        check_directory(link)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a folder away")
def test_a_folder_of_another_user_is_refused(tmp_path: t.Any) -> None:
    path = tmp_path / "journal"
    path.mkdir(mode=0o700)
    os.chown(path, 65534, 65534)
    with pytest.raises(ConfigurationError, match="belongs to user id 65534"):
        check_directory(path)


def test_a_file_is_not_a_folder(tmp_path: t.Any) -> None:
    path = tmp_path / "journal"
    path.write_bytes(b"")
    with pytest.raises(ConfigurationError, match="not a folder"):
        check_directory(path)


# -- a full disk --------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: t.Any) -> t.Iterator[str]:
    """A 64 KiB tmpfs, unmounted afterwards."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as e:
        pytest.skip(f"cannot run mount: {e}")
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield str(mount_point)
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(path: str) -> None:
    """Write ``path`` until the file system is full."""
    with open(path, "wb", buffering=0) as file:
        with contextlib.suppress(OSError):
            while True:
                file.write(b"\0" * 4096)
        with pytest.raises(OSError) as full:
            file.write(b"\0")
    assert full.value.errno == errno.ENOSPC


def test_a_full_disk_parks_events_in_memory_then_writes_them(
    small_disk: str,
    make_journal: t.Callable[..., Journal],
    caplog: pytest.LogCaptureFixture,
) -> None:
    directory = os.path.join(small_disk, "journal")
    journal = make_journal(where=directory, max_buffer=50)
    assert journal.append(body(0))  # written
    journal.seal()
    filler = os.path.join(small_disk, "filler")
    fill(filler)
    caplog.set_level(logging.WARNING, "flask_mailtrack.journal")
    kept = [journal.append(body(n)) for n in range(1, 61)]
    assert kept == [True] * 50 + [False] * 10
    assert (journal.buffered, journal.dropped) == (50, 10)
    # One warning for the outage and one for the drops, not one per event.
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert "events wait in memory" in messages[0]
    assert messages[1].startswith("Dropped 1 events (1 in all")
    # Space comes back: the journal's thread writes them all, in order.
    os.unlink(filler)
    wait_until(lambda: journal.buffered == 0, "the buffer was never written")
    assert journal.append(body(61))
    assert journal.dropped == 10
    journal.seal()
    sink = ListSink()
    worker = Worker(directory, [sink])
    assert worker.run_once() == 52
    expected = [event_id(n) for n in [0, *range(1, 51), 61]]
    assert sorted(sink.ids) == sorted(expected)
    # The buffered events kept their order.
    assert [i for i in sink.ids if i != event_id(0)] == expected[1:]
    assert journal_files(directory) == []


def test_a_removed_folder_is_made_again(
    make_journal: t.Callable[..., Journal], directory: str
) -> None:
    journal = make_journal()
    os.rmdir(directory)
    assert journal.append(body(1))
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert records_of(directory) == [body(1)]
