"""What the headless Chromium tests share: finding the browser (a skip, or a
failure under ``TEST_MAILTRACK_REQUIRE_BROWSER=1``), its command-line flags, and a
live server for it to load pages from.
"""

from __future__ import annotations

import os
import shutil
import threading
import typing as t

import pytest
from werkzeug.serving import make_server
from werkzeug.serving import WSGIRequestHandler

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

BROWSERS = ("chromium", "chromium-browser", "google-chrome")

#: Flags of every headless run: no sandbox (tests may run as root), and
#: nothing that reaches outside the loopback server or writes outside the
#: given profile.
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-proxy-server",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def find_browser() -> str:
    """The path of Chromium; skips the test when it is not installed, or
    fails it when ``TEST_MAILTRACK_REQUIRE_BROWSER=1`` (set by ``.ci/run``)."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    message = "headless Chromium is not installed (apt-get install chromium)"
    if os.environ.get("TEST_MAILTRACK_REQUIRE_BROWSER") == "1":
        pytest.fail(message + ", and TEST_MAILTRACK_REQUIRE_BROWSER=1 requires it")
    pytest.skip(message)


class _QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: t.Any) -> None:
        pass


class LiveServer:
    """The app served by werkzeug on a free loopback port, in a thread."""

    def __init__(self, app: WSGIApplication) -> None:
        self.server = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
