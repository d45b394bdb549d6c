"""Real servers as subprocesses on 127.0.0.1 (the standalone server,
gunicorn), for the tests that speak HTTP to them."""

from __future__ import annotations

import contextlib
import http.client
import os
import pathlib
import signal
import socket
import subprocess
import time
import typing as t

import pytest

STARTUP = 60.0  # seconds a subprocess server may take to start


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


@contextlib.contextmanager
def running(
    command: list[str],
    env: dict[str, str],
    port: int,
    *,
    ready_path: str = "/healthz",
    output: list[str] | None = None,
    cwd: pathlib.Path | None = None,
    own_settings_only: bool = False,
) -> t.Iterator[str]:
    """Run a server subprocess until ``ready_path`` answers 200; yield its
    root URL; stop it after (SIGTERM). Its output (stdout and stderr) is
    appended to ``output`` once it has stopped.

    :param own_settings_only: Leave out this process's ``MAILTRACK_*``,
        ``EXAMPLE_*`` and ``FLASK_*`` variables (tests of Flask's CLI leave
        ``FLASK_RUN_FROM_CLI`` set, which makes ``app.run()`` do nothing), so
        that the server sees only ``env``.
    """
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not (
            own_settings_only and key.startswith(("MAILTRACK_", "EXAMPLE_", "FLASK_"))
        )
    }
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env={**inherited, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + STARTUP
        while True:
            if process.poll() is not None:
                assert process.stdout is not None
                pytest.fail(f"server exited: {process.stdout.read()[-3000:]}")
            try:
                if _status(port, ready_path) == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        if output is not None:
            output.append(process.stdout.read())
        process.stdout.close()
