"""In-process WSGI requests for the serving benchmarks.

``bench_wsgi.py`` and ``bench_serving.py`` both time the pixel and the
redirect as a WSGI server would call them, without a network or a server,
from the environ of the same mail client.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
import timeit
import typing as t
from urllib.parse import urlsplit

from werkzeug.test import EnvironBuilder

WSGIApp = t.Callable[[dict[str, t.Any], t.Any], t.Iterable[bytes]]

#: The user agent of the requests: a desktop Chrome, which no machine rule
#: matches.
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"
    " (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)

#: The client address of the requests (TEST-NET-2, not a gateway network).
CLIENT_IP = "198.51.100.23"


def _start_response(status: str, headers: t.Any, exc_info: t.Any = None) -> t.Any:
    return None


def caller(app: WSGIApp, environ: dict[str, t.Any]) -> t.Callable[[], None]:
    """One request: a fresh copy of ``environ``, the body read, the iterable
    closed, as a WSGI server does."""

    def call() -> None:
        app_iter = app(dict(environ), _start_response)
        try:
            for _ in app_iter:
                pass
        finally:
            close = getattr(app_iter, "close", None)
            if close is not None:
                close()

    return call


def cycling_caller(
    app: WSGIApp, environs: t.Sequence[dict[str, t.Any]]
) -> t.Callable[[], None]:
    """Like :func:`caller`, each call with the next of ``environs`` (a
    different token each time, as real traffic has)."""
    calls = itertools.cycle([caller(app, environ) for environ in environs])

    def call() -> None:
        next(calls)()

    return call


def environ_for(url: str) -> dict[str, t.Any]:
    """The environ of a mail client's GET of ``url``."""
    return EnvironBuilder(
        path=urlsplit(url).path,
        headers={"User-Agent": CHROME, "Accept": "image/avif,image/webp,*/*"},
        environ_base={"REMOTE_ADDR": CLIENT_IP},
    ).get_environ()


# -- what the serving benchmarks share besides the requests ---------------------

RECEIVER = """
import http.server, sys

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""


class Receiver:
    """A loopback webhook endpoint answering 204, in its own process (a
    webhook endpoint is another service: it must not share this process's
    CPU time)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        port = int(self.process.stdout.readline())
        self.url = f"http://127.0.0.1:{port}/hook"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()


def not_found(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
    start_response("404 Not Found", [("Content-Length", "0")])
    return []


def best_cpu_seconds(func: t.Callable[[], object], *, repeat: int = 3) -> float:
    """Like ``_common.best_seconds``, in CPU time of the whole process: the
    time the machine's other load takes is not counted, the work of this
    process's background threads is."""
    timer = timeit.Timer(func, timer=time.process_time)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=max(1, number))) / max(1, number)
