"""A redis-server of a test's own, for tests that stop, start or fill
Redis: the shared server of ``TEST_MAILTRACK_REDIS_URL`` is never stopped."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import time
import typing as t

import pytest

from _servers import free_port
from _services import unavailable

WAIT = 20.0  # seconds; never reached when the server starts


class RedisServer:
    """``redis-server`` on a free loopback port; a child process of the
    test, started and stopped by it.

    :param options: More ``redis-server`` options (``--maxmemory``, ...).
    :param password: Required of clients (``--requirepass``); in :attr:`url`.
    :param folder: Keep the data there across a restart (an append-only
        file synced on every write); without it, no persistence.
    """

    def __init__(
        self,
        *options: str,
        password: str | None = None,
        folder: pathlib.Path | None = None,
    ) -> None:
        pytest.importorskip("redis")
        self.executable = shutil.which("redis-server")
        if self.executable is None:
            unavailable("redis-server is not installed")
        self.port = free_port()
        self.options = options
        self.password = password
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        user = "" if self.password is None else f":{self.password}@"
        return f"redis://{user}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        assert self.process is None, "already running"
        assert self.executable is not None
        self.process = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                *self._persistence(),
                *self.options,
                *(() if self.password is None else ("--requirepass", self.password)),
            ],
            stdout=subprocess.DEVNULL,
        )
        self._wait_for_ping()
        return self

    def _persistence(self) -> tuple[str, ...]:
        if self.folder is None:
            return ("--appendonly", "no")
        self.folder.mkdir(exist_ok=True)
        return (
            "--dir",
            str(self.folder),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        )

    def stop(self) -> None:
        """SIGTERM: with a folder, Redis finishes its append-only file."""
        process, self.process = self.process, None
        if process is not None:
            process.terminate()
            process.wait(WAIT)

    def client(self) -> t.Any:
        import redis

        return redis.Redis.from_url(self.url)

    def _wait_for_ping(self) -> None:
        import redis

        deadline = time.monotonic() + WAIT
        with redis.Redis.from_url(self.url, socket_connect_timeout=1) as client:
            while True:
                assert self.process is not None
                assert self.process.poll() is None, "redis-server exited"
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    assert time.monotonic() < deadline, "redis-server did not start"
                    time.sleep(0.02)
