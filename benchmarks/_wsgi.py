"""In-process WSGI requests for the serving benchmarks.

``bench_wsgi.py`` and ``bench_events.py`` both time the pixel and the
redirect as a WSGI server would call them, without a network or a server,
from the environ of the same mail client.
"""

from __future__ import annotations

import itertools
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
