"""Faults, with real processes: nothing answered is lost, nothing is stored
twice.

gunicorn (2 workers, sync and gthread) serves ``create_app()`` with
``MAILTRACK_WORKER=external``, so its processes only journal; one
``mailtrack worker`` feeds the SQLite store and posts every event to a
webhook receiver in its own process, which verifies each signature with the
``standardwebhooks`` package. During a few thousand distinct hits a gunicorn
worker is SIGKILLed, the worker is SIGKILLed and started again, and the
receiver is stopped for a few seconds; then everything gets SIGTERM and
starts again. Afterwards the store holds every answered hit exactly once,
the receiver got every stored event id, and no journal file, outbox row or
lease is left.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import pathlib
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import typing as t

import pytest
from flask_mailtrack import Configuration
from flask_mailtrack import Tracker

from _servers import free_port
from _webhook_receiver import SECRET as WEBHOOK_SECRET

KEY = "fault-test-signing-key-0123456789abcdef"
HITS = 3000
CLIENTS = 8
#: Seconds a condition may take to come true; never reached when passing.
WAIT = 120.0
TESTS = pathlib.Path(__file__).resolve().parent.parent


def _get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _wait(condition: t.Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Fleet:
    """The processes of one test, each started and stopped on demand."""

    def __init__(self, tmp: pathlib.Path, worker_class: str) -> None:
        self.tmp = tmp
        self.worker_class = worker_class
        data = tmp / "data"
        data.mkdir(mode=0o700)
        self.database = data / "events.sqlite3"
        self.journal = data / "journal"
        self.ids_file = tmp / "received.txt"
        self.server_port = free_port()
        self.receiver_port = free_port()
        self.env = {
            **os.environ,
            "MAILTRACK_SECRET_KEY": KEY,
            "MAILTRACK_DATABASE": str(self.database),
            "MAILTRACK_JOURNAL": str(self.journal),
            "MAILTRACK_WORKER": "external",
            "MAILTRACK_WEBHOOK_URL": f"http://127.0.0.1:{self.receiver_port}/hook",
            "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
        self.server: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.receiver: subprocess.Popen[bytes] | None = None
        self.logs: list[pathlib.Path] = []

    def _start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = self.tmp / f"{name}-{len(self.logs)}.log"
        self.logs.append(log)
        with open(log, "wb") as out:
            return subprocess.Popen(
                command, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def start_receiver(self) -> None:
        script = str(TESTS / "_receiver_process.py")
        self.receiver = self._start(
            "receiver",
            [sys.executable, script, str(self.receiver_port), WEBHOOK_SECRET]
            + [str(self.ids_file)],
        )
        _wait(lambda: self._answers(self.receiver_port), "the receiver", 30)

    def start_server(self) -> None:
        self.server = self._start(
            "gunicorn",
            [sys.executable, "-m", "gunicorn", "-w", "2", "-k", self.worker_class]
            + ["--threads", "4", "--graceful-timeout", "10"]
            + ["-b", f"127.0.0.1:{self.server_port}"]
            + ["flask_mailtrack.server:create_app()"],
        )
        _wait(lambda: self._answers(self.server_port, "/healthz"), "gunicorn", 60)

    def start_worker(self) -> None:
        self.worker = self._start(
            "worker", [sys.executable, "-m", "flask_mailtrack.cli", "worker"]
        )

    def _answers(self, port: int, path: str = "/") -> bool:
        try:
            return _get(port, path) == 200
        except OSError:
            return False

    def server_workers(self) -> list[int]:
        assert self.server is not None
        pid = self.server.pid
        children = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(child) for child in children.split()]

    @staticmethod
    def stop(process: subprocess.Popen[bytes] | None, how: int) -> None:
        if process is None or process.poll() is not None:
            return
        process.send_signal(how)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"{process.args!r} did not stop within 30 s of {how!r}")

    def stop_all(self) -> None:
        for process in (self.server, self.worker, self.receiver):
            self.stop(process, signal.SIGTERM)

    def output(self) -> str:
        return "\n".join(
            f"== {log.name}\n{log.read_text(errors='replace')[-3000:]}"
            for log in self.logs
        )

    # -- what the processes left ------------------------------------------------

    def query(self, sql: str, *parameters: t.Any) -> list[t.Any]:
        with contextlib.closing(sqlite3.connect(self.database, timeout=30)) as db:
            return db.execute(sql, parameters).fetchall()

    def stored(self) -> list[tuple[str, int]]:
        """``(event id, metadata n)`` of every stored event."""
        rows = self.query("SELECT event_id, metadata FROM mailtrack_events")
        return [(event_id, json.loads(metadata)["n"]) for event_id, metadata in rows]

    def leased(self) -> set[int]:
        """The outbox rows claimed by a worker now."""
        rows = self.query(
            "SELECT id FROM webhook_outbox WHERE lease_until > ?", time.time()
        )
        return {row_id for (row_id,) in rows}

    def received(self) -> list[str]:
        if not self.ids_file.exists():
            return []
        return self.ids_file.read_text(encoding="ascii").split("\n")[:-1]

    def journal_files(self) -> list[str]:
        return [name for name in os.listdir(self.journal) if name.endswith(".journal")]


class Load:
    """Clients that request every path once, each from one of ``CLIENTS``
    threads, and note which were answered."""

    def __init__(self, port: int, paths: dict[int, str]) -> None:
        self.port = port
        self.todo: queue.SimpleQueue[tuple[int, str]] = queue.SimpleQueue()
        for item in paths.items():
            self.todo.put(item)
        self.answered: set[int] = set()
        self.failed = 0
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run) for _ in range(CLIENTS)]

    def _run(self) -> None:
        while True:
            try:
                n, path = self.todo.get_nowait()
            except queue.Empty:
                return
            try:
                status = _get(self.port, path)
            except (OSError, http.client.HTTPException):
                # A SIGKILLed worker: no answer, or one cut off before its
                # body (IncompleteRead); either way the hit was not answered.
                status = 0
            with self._lock:
                if status == 200:
                    self.answered.add(n)
                else:
                    self.failed += 1

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def done(self) -> int:
        with self._lock:
            return len(self.answered) + self.failed

    def join(self) -> None:
        for thread in self.threads:
            thread.join(WAIT)


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_nothing_answered_is_lost_nothing_is_stored_twice(
    tmp_path: pathlib.Path, worker_class: str
) -> None:
    fleet = Fleet(tmp_path, worker_class)
    tracker = Tracker(
        Configuration(
            secret_key=KEY,
            base_open_tracking_url=f"http://127.0.0.1:{fleet.server_port}/mailtrack/o/",
        )
    )
    prefix = f"http://127.0.0.1:{fleet.server_port}"
    paths = {n: tracker.open_url({"n": n})[len(prefix) :] for n in range(HITS)}
    try:
        fleet.start_receiver()
        fleet.start_server()
        fleet.start_worker()
        load = Load(fleet.server_port, paths)
        load.start()

        _wait(lambda: load.done() >= HITS // 4, "a quarter of the hits")
        os.kill(fleet.server_workers()[0], signal.SIGKILL)

        _wait(lambda: load.done() >= HITS // 2, "half of the hits")
        fleet.stop(fleet.worker, signal.SIGKILL)
        # What the killed worker had claimed waits for its lease to expire
        # (it cannot say it died); nothing else may.
        orphaned = fleet.leased()
        fleet.start_worker()

        _wait(lambda: load.done() >= HITS * 3 // 4, "three quarters of the hits")
        fleet.stop(fleet.receiver, signal.SIGKILL)
        time.sleep(3)  # the scenario: the endpoint is down for a few seconds
        fleet.start_receiver()

        load.join()
        # A graceful stop of everything: nothing may stay claimed.
        fleet.stop_all()
        assert fleet.leased() <= orphaned, "a SIGTERMed worker left leases behind"

        fleet.start_receiver()
        fleet.start_server()
        fleet.start_worker()
        answered = load.answered
        assert len(answered) >= HITS * 0.9, "the load was mostly refused"

        def settled() -> bool:
            stored = {n for _, n in fleet.stored()}
            if not answered <= stored:
                return False
            ids = {event_id for event_id, _ in fleet.stored()}
            return (
                ids <= set(fleet.received())
                and not fleet.journal_files()
                and fleet.query("SELECT COUNT(*) FROM webhook_outbox") == [(0,)]
            )

        _wait(settled, "every event in the store and at the receiver")
        stored = fleet.stored()
        numbers = [n for _, n in stored]
        assert len(numbers) == len(set(numbers)), "a hit stored twice"
        assert len({event_id for event_id, _ in stored}) == len(stored)
        assert answered <= set(numbers)
        received = fleet.received()
        assert not [line for line in received if line.startswith("BAD")]
        assert {event_id for event_id, _ in stored} <= set(received)
        assert fleet.query("SELECT COUNT(*) FROM webhook_dead_letter") == [(0,)]
    except BaseException:
        print(fleet.output())
        raise
    finally:
        fleet.stop_all()
