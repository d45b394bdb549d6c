"""What the headless Chromium tests share: finding the browser (a skip, or a
failure under ``TEST_MAILTRACK_REQUIRE_BROWSER=1``), its command-line flags, a
live server for it to load pages from, and :class:`DevTools`, which drives it.

Chromium is driven over the DevTools protocol through a pipe
(``--remote-debugging-pipe``: JSON messages separated by NUL bytes on file
descriptors 3 and 4), so no driver or extra package is needed.
"""

from __future__ import annotations

import base64
import fcntl
import itertools
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
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


WAIT = 60.0  # seconds before giving up on the browser; never reached when passing


_TRAMPOLINE = (
    "import os, sys;"
    " os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4);"
    " os.execv(sys.argv[3], sys.argv[3:])"
)


def _high(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class DevTools:
    """A minimal DevTools protocol client over Chromium's debugging pipe."""

    def __init__(self, browser: str, profile: str) -> None:
        to_browser_read, self._write_fd = os.pipe()
        self._read_fd, from_browser_write = os.pipe()
        # Above 4, so moving them onto 3 and 4 cannot overwrite one another.
        to_browser_read = _high(to_browser_read)
        from_browser_write = _high(from_browser_write)
        arguments = [
            *HEADLESS_FLAGS,
            "--window-size=1280,1000",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        # A small Python trampoline moves the pipe ends to descriptors 3 and
        # 4, where Chromium expects them, and runs Chromium.
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _TRAMPOLINE,
                str(to_browser_read),
                str(from_browser_write),
                browser,
                *arguments,
            ],
            pass_fds=(to_browser_read, from_browser_write),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._ids = itertools.count(1)
        self._replies: queue.Queue[dict[str, t.Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session = ""
        #: Errors the page reported (see :meth:`watch_errors`).
        self.errors: list[str] = []

    def _read(self) -> None:
        buffer = b""
        while True:
            chunk = os.read(self._read_fd, 65536)
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                message, buffer = buffer.split(b"\0", 1)
                decoded = json.loads(message)
                if "id" in decoded:
                    self._replies.put(decoded)
                else:
                    self._note(decoded)

    def _note(self, event: dict[str, t.Any]) -> None:
        """Keep what the page reports as an error: an uncaught exception, a
        ``console.error``, a log entry of level error (a failed load)."""
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            self.errors.append(json.dumps(params["exceptionDetails"])[:500])
        elif method == "Runtime.consoleAPICalled" and params["type"] == "error":
            self.errors.append(json.dumps(params["args"])[:500])
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(json.dumps(params["entry"])[:500])

    def call(self, method: str, **params: t.Any) -> dict[str, t.Any]:
        message_id = next(self._ids)
        message: dict[str, t.Any] = {"id": message_id, "method": method}
        message["params"] = params
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        os.write(self._write_fd, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._replies.get(timeout=WAIT)
            if reply["id"] == message_id:
                assert "error" not in reply, reply["error"]
                return t.cast("dict[str, t.Any]", reply["result"])

    def attach(self) -> None:
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(target for target in targets if target["type"] == "page")
        self.session = self.call(
            "Target.attachToTarget", targetId=page["targetId"], flatten=True
        )["sessionId"]

    def evaluate(self, expression: str) -> t.Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True
        )["result"]
        return result.get("value")

    def wait_for(self, expression: str) -> t.Any:
        deadline = time.monotonic() + WAIT
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.1)

    def watch_errors(self) -> None:
        """Collect the page's errors into :attr:`errors` from now on."""
        self.call("Runtime.enable")
        self.call("Log.enable")

    def navigate(self, url: str) -> None:
        """Load ``url`` and wait until its document has loaded."""
        self.evaluate("window.__leaving = true")
        self.call("Page.navigate", url=url)
        self.wait_for("!window.__leaving && document.readyState === 'complete'")

    def viewport(self, width: int, height: int) -> None:
        """Lay the page out as a screen ``width`` CSS pixels wide."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 600,
        )

    def screenshot(self, path: str) -> None:
        """Write a PNG of the whole page (beyond the viewport) to ``path``."""
        data = self.call(
            "Page.captureScreenshot", format="png", captureBeyondViewport=True
        )
        with open(path, "wb") as file:
            file.write(base64.b64decode(data["data"]))

    def click(self, x: float, y: float) -> None:
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                type=kind,
                x=x,
                y=y,
                button="left",
                clickCount=1,
            )

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (AssertionError, OSError, queue.Empty):
            pass
        try:
            self.process.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._write_fd)
        self._reader.join(WAIT)
        os.close(self._read_fd)
