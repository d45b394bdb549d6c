"""The ``mailtrack serve --demo`` page in headless Chromium: the sample email
loads in its iframe (an open), a real mouse click on one of its links (a
click), and both events appear in the page's live list.

Skipped when Chromium is not installed, unless ``TEST_MAILTRACK_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import contextlib
import typing as t

import pytest
from flask_mailtrack.server import close_app
from flask_mailtrack.server import create_app
from flask_mailtrack.server import get_server_state

from _browser import DevTools
from _browser import find_browser
from _browser import LiveServer

pytestmark = pytest.mark.browser

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
