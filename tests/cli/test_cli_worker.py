"""``mailtrack worker`` (and its old name ``deliver``) as a real process on
a journal folder written by a real :class:`Journal`, and servers with
``MAILTRACK_WORKER=external`` that only journal."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import time
import typing as t

import pytest
from click.testing import CliRunner
from flask import Flask
from flask_mailtrack import EventStore
from flask_mailtrack import MailTrack
from flask_mailtrack import TrackingResult
from flask_mailtrack.cli import main
from flask_mailtrack.events._journal import Journal
from flask_mailtrack.events._worker import Worker
from flask_mailtrack.extension import get_state
from flask_mailtrack.server import close_app

from _webhook_receiver import WAIT

KEY = "worker-test-secret-key-0123456789"

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="SIGTERM")


def journal_events(directory: str, count: int, first: int = 0) -> list[str]:
    """Journal ``count`` events as a server process does, and seal the file
    (the writer closes it, as a server does on exit)."""
    ids = []
    with Journal(directory) as journal:
        for n in range(first, first + count):
            event = TrackingResult(
                is_open_tracking=True, timestamp=int(time.time()), metadata={"n": n}
            )
            assert journal.record(event)
            ids.append(event.event_id)
    return ids


def stored_ids(database: str) -> set[str]:
    with EventStore(database) as store:
        return {event["id"] for event in store.events(limit=10_000)}


def wait_until(condition: t.Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.02)


def journal_files(directory: str) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".journal"))


@contextlib.contextmanager
def running(
    arguments: list[str], env: dict[str, str], cwd: pathlib.Path
) -> t.Iterator[subprocess.Popen[str]]:
    """``python -m flask_mailtrack.cli ARGUMENTS`` as a subprocess; killed
    if the test fails first."""
    process = subprocess.Popen(
        [sys.executable, "-m", "flask_mailtrack.cli", *arguments],
        env={**os.environ, **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    except BaseException:
        if process.poll() is None:
            process.kill()
        stdout, stderr = process.communicate()
        print(f"worker exited {process.returncode}:\n{stdout}\n{stderr}")
        raise
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def terminate(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=WAIT)
    return process.returncode, stdout, stderr


@pytest.mark.parametrize("command", ["worker", "deliver"])
def test_worker_process_feeds_the_store(tmp_path: pathlib.Path, command: str) -> None:
    database = str(tmp_path / "events.sqlite3")
    EventStore(database).close()  # the server made it
    directory = database + "-events"
    first = journal_events(directory, 30)
    env = {"MAILTRACK_DATABASE": database}
    with running([command, "--poll-interval", "0.05"], env, tmp_path) as process:
        wait_until(lambda: stored_ids(database) == set(first))
        # Journaled while it runs, by another process: found by polling.
        later = journal_events(directory, 5, first=30)
        wait_until(lambda: stored_ids(database) == set(first + later))
        code, stdout, stderr = terminate(process)
    assert code == 0, stderr
    assert f"Feeding the event store {database} from the journal in" in stdout
    assert "Stopped; the journal is empty." in stdout
    assert ("deprecated" in stderr) is (command == "deliver")
    assert journal_files(directory) == []
    with EventStore(database) as store:
        assert store.count() == 35  # one row per event
    # Nothing stays locked: a new worker claims a new file at once.
    (file_id,) = journal_events(directory, 1, first=35)
    with Worker(directory, [EventStore(database)]) as worker:
        assert worker.run_once() == 1
    assert file_id in stored_ids(database)


def test_external_mode_only_journals(tmp_path: pathlib.Path) -> None:
    database = str(tmp_path / "events.sqlite3")
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        SECRET_KEY=KEY,
        MAILTRACK_DATABASE=database,
        MAILTRACK_WORKER="external",
        MAILTRACK_BASE_URL="https://t.example.com",
    )
    MailTrack(app)
    pipeline = get_state(app).pipeline
    assert pipeline is not None
    assert pipeline.sinks == () and pipeline.worker is None
    try:
        with app.app_context():
            pixels = [
                get_state(app)
                .tracker.open_url({"n": n})
                .replace("https://t.example.com", "")
                for n in range(3)
            ]
        client = app.test_client()
        for pixel in pixels:
            assert client.get(pixel).status_code == 200
        pipeline.journal.seal()
        directory = database + "-events"
        assert journal_files(directory)
        # No store was opened, let alone written.
        assert not os.path.exists(database)
        with Worker(directory, [EventStore(database)]) as worker:
            assert worker.run_once() == 3
        assert len(stored_ids(database)) == 3
        assert journal_files(directory) == []
    finally:
        pipeline.close(0)


def test_worker_needs_a_sink(tmp_path: pathlib.Path) -> None:
    result = CliRunner().invoke(
        main, ["worker"], env={"MAILTRACK_DATABASE": ""}, catch_exceptions=False
    )
    assert result.exit_code == 1
    assert "there is no sink to feed" in result.output


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--poll-interval", "0"], id="poll-zero"),
        pytest.param(["--batch-size", "0"], id="batch-zero"),
        pytest.param(["--flush-timeout", "-1"], id="flush-negative"),
    ],
)
def test_worker_bad_options(args: list[str]) -> None:
    assert CliRunner().invoke(main, ["worker", *args]).exit_code == 2


def test_close_app_leaves_nothing_in_the_journal(tmp_path: pathlib.Path) -> None:
    from flask_mailtrack.server import create_app

    database = str(tmp_path / "events.sqlite3")
    app = create_app(
        {"MAILTRACK_SECRET_KEY": KEY, "MAILTRACK_DATABASE": database}, environ={}
    )
    with app.test_request_context():
        pixel = get_state(app).link_tracker(app).open_url({"n": 1})
    assert app.test_client().get(pixel).status_code == 200
    close_app(app, timeout=WAIT)
    assert journal_files(database + "-events") == []
    assert len(stored_ids(database)) == 1
