"""Real processes for the fault tests: gunicorn serving ``create_app()``
with ``MAILTRACK_WORKER=external``, ``mailtrack worker``, and clients that
send a few thousand distinct hits while the test breaks things."""

from __future__ import annotations

import http.client
import os
import pathlib
import queue
import signal
import subprocess
import sys
import threading
import time
import typing as t

import pytest
from flask_mailtrack import Configuration
from flask_mailtrack import Tracker

from _servers import free_port

KEY = "fault-test-signing-key-0123456789abcdef"
CLIENTS = 8
#: Seconds a condition may take to come true; never reached when passing.
WAIT = 120.0


def get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def wait(condition: t.Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def answers(port: int, path: str = "/") -> bool:
    try:
        return get(port, path) == 200
    except (OSError, http.client.HTTPException):
        return False


class Fleet:
    """The processes of one test, each started and stopped on demand.

    :param settings: ``MAILTRACK_*`` settings besides the key, the journal
        and the worker mode, for the server and the worker alike.
    """

    def __init__(
        self, tmp: pathlib.Path, worker_class: str, settings: dict[str, str]
    ) -> None:
        self.tmp = tmp
        self.worker_class = worker_class
        self.data = tmp / "data"
        self.data.mkdir(mode=0o700)
        self.journal = self.data / "journal"
        self.server_port = free_port()
        self.env = {
            **os.environ,
            "MAILTRACK_SECRET_KEY": KEY,
            "MAILTRACK_JOURNAL": str(self.journal),
            "MAILTRACK_WORKER": "external",
            **settings,
        }
        self.server: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.others: list[subprocess.Popen[bytes]] = []
        self.logs: list[pathlib.Path] = []

    def pixel_paths(self, count: int) -> dict[int, str]:
        """Paths of ``count`` distinct pixels of this fleet's server, by the
        metadata ``n`` each carries."""
        prefix = f"http://127.0.0.1:{self.server_port}"
        tracker = Tracker(
            Configuration(
                secret_key=KEY, base_open_tracking_url=prefix + "/mailtrack/o/"
            )
        )
        return {n: tracker.open_url({"n": n})[len(prefix) :] for n in range(count)}

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = self.tmp / f"{name}-{len(self.logs)}.log"
        self.logs.append(log)
        with open(log, "wb") as out:
            return subprocess.Popen(
                command, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def start_server(self) -> None:
        self.server = self.start(
            "gunicorn",
            [sys.executable, "-m", "gunicorn", "-w", "2", "-k", self.worker_class]
            + ["--threads", "4", "--graceful-timeout", "10"]
            + ["-b", f"127.0.0.1:{self.server_port}"]
            + ["flask_mailtrack.server:create_app()"],
        )
        wait(lambda: answers(self.server_port, "/healthz"), "gunicorn", 60)

    def start_worker(self) -> None:
        self.worker = self.start(
            "worker", [sys.executable, "-m", "flask_mailtrack.cli", "worker"]
        )

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
        for process in (self.server, self.worker, *self.others):
            self.stop(process, signal.SIGTERM)

    def output(self) -> str:
        return "\n".join(
            f"== {log.name}\n{log.read_text(errors='replace')[-3000:]}"
            for log in self.logs
        )

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
                status = get(self.port, path)
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
