"""The ``mailtrack serve --demo`` page in headless Chromium: the sample email
loads in its iframe (an open), a real mouse click on one of its links (a
click), and both events appear in the page's live list.

Chromium is driven over the DevTools protocol through a pipe
(``--remote-debugging-pipe``: JSON messages separated by NUL bytes on file
descriptors 3 and 4), so no driver or extra package is needed.

Skipped when Chromium is not installed, unless ``TEST_MAILTRACK_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
import typing as t

import pytest
from flask_mailtrack.server import close_app
from flask_mailtrack.server import create_app
from flask_mailtrack.server import get_server_state

from _browser import find_browser
from _browser import HEADLESS_FLAGS
from _browser import LiveServer

pytestmark = pytest.mark.browser

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


LINK_CENTER = """
(() => {
  const frame = document.getElementById("email");
  const doc = frame.contentDocument;
  const link = doc && doc.querySelector("a.tracked");
  if (!link) { return null; }
  const outer = frame.getBoundingClientRect();
  const inner = link.getBoundingClientRect();
  return {
    x: outer.left + frame.clientLeft + inner.left + inner.width / 2,
    y: outer.top + frame.clientTop + inner.top + inner.height / 2,
    text: link.textContent.trim(),
  };
})()
"""


def test_demo_page_shows_open_and_click(tmp_path: t.Any) -> None:
    browser = find_browser()
    # No secret configured: the demo makes one for the session. No base URL
    # either (the port is not known yet): TRUSTED_HOSTS makes the request's
    # host usable for the demo's links.
    app = create_app(
        {
            "MAILTRACK_DATABASE": str(tmp_path / "demo.sqlite3"),
            "TRUSTED_HOSTS": ["127.0.0.1"],
        },
        demo=True,
        environ={},
    )
    server = LiveServer(app)
    profile = str(tmp_path / "profile")
    with server, contextlib.closing(DevTools(browser, profile)) as devtools:
        root = server.url
        devtools.attach()
        devtools.call("Page.navigate", url=f"{root}/")
        # The email renders in the iframe and loads the pixel: the open shows
        # up in the live list.
        devtools.wait_for(
            "document.querySelector('#events li[data-type=\"email.opened\"]') !== null"
        )
        assert devtools.evaluate("document.getElementById('opens-total').textContent")
        link = devtools.wait_for(LINK_CENTER)
        assert link["text"] == "The spring sale is on"
        devtools.click(link["x"], link["y"])
        # The iframe followed the redirect to the landing page...
        devtools.wait_for(
            "document.getElementById('email').contentDocument"
            ".getElementById('landed') !== null"
        )
        # ...and the click appears in the list, and in the stats.
        devtools.wait_for(
            "document.querySelector('#events li[data-type=\"link.clicked\"]') !== null"
        )
        devtools.wait_for("document.getElementById('clicks-total').textContent == '1'")
        text = devtools.evaluate("document.getElementById('events').textContent")
        assert "/demo/landing/spring-sale" in text
    store = get_server_state(app).store
    events = store.events()
    assert [event["type"] for event in events] == ["link.clicked", "email.opened"]
    assert events[0]["tracked_url"].startswith(f"{root}/demo/landing/spring-sale")
    assert "Chrome" in events[0]["request_data"]["user_agent"]
    close_app(app)
