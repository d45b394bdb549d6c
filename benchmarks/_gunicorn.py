"""Servers on 127.0.0.1 for the benchmarks that load a real server or post
to a webhook receiver in another process: :func:`gunicorn`."""

from __future__ import annotations

import contextlib
import http.client
import os
import pathlib
import socket
import subprocess
import sys
import time
import typing as t

HERE = pathlib.Path(__file__).resolve().parent


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str) -> tuple[int, bytes]:
    """The status and body of a ``GET`` of ``path`` on 127.0.0.1."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@contextlib.contextmanager
def gunicorn(
    app: str,
    env: t.Mapping[str, str] | None = None,
    *,
    ready: str = "/",
    extra: t.Sequence[str] = (),
) -> t.Iterator[int]:
    """Run ``app`` (a gunicorn app spec, found from this folder) under
    gunicorn on a free port of 127.0.0.1 until the block ends, with
    ``extra`` options and ``env`` added to the environment; yield the port
    once ``GET ready`` answers with a 2xx status."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}"]
    command += ["--log-level", "warning", *extra, app]
    process = subprocess.Popen(
        command, cwd=HERE, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise SystemExit(f"gunicorn {app} exited with {process.returncode}")
            try:
                if 200 <= get(port, ready)[0] < 300:
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(30)
