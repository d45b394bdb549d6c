"""A tracked email in a real browser: headless Chromium loads it from a live
local server, which records the open; a click on a tracked link lands on the
destination and records the click.

Chromium is driven with ``--dump-dom``, which loads a page, runs its scripts
and prints the final DOM: the pixel is loaded like any image, and for the
click a small script clicks the tracked link once the email has loaded.
``--virtual-time-budget`` lets the navigation that follows finish before the
DOM is printed.

Skipped when Chromium is not installed, unless ``TEST_MAILTRACK_REQUIRE_BROWSER=1``
(set by ``.ci/run``), which turns the skip into a failure.
"""

from __future__ import annotations

import pathlib
import subprocess
import typing as t

import pytest
from flask import Flask
from flask import render_template_string
from flask import request
from flask_mailtrack import email_opened
from flask_mailtrack import link_clicked
from flask_mailtrack import MailTrack
from flask_mailtrack import tracking_failed

from _browser import find_browser
from _browser import HEADLESS_FLAGS
from _browser import LiveServer

pytestmark = pytest.mark.browser

EMAIL = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Tracked email</title></head>
<body>
<h1 id="email">Spring sale</h1>
<p><a id="tracked" href="{{ mailtrack_click_url(url_for('landing', _external=True),
  {'recipient': 'ann@example.com'}) }}">See the sale</a></p>
{{ mailtrack_pixel({'recipient': 'ann@example.com'}) }}
{% if autoclick %}
<script>
window.addEventListener("load", function () {
  document.getElementById("tracked").click();
});
</script>
{% endif %}
</body></html>
"""


@pytest.fixture
def browser() -> str:
    return find_browser()


@pytest.fixture
def events() -> list[tuple[str, t.Any]]:
    return []


@pytest.fixture
def app(events: list[tuple[str, t.Any]]) -> t.Iterator[Flask]:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "browser test secret key-01234567"
    MailTrack(app)

    @app.get("/email")
    def tracked_email() -> str:
        return render_template_string(EMAIL, autoclick="autoclick" in request.args)

    @app.get("/landing")
    def landing() -> str:
        events.append(("landed", request.url))
        return '<!DOCTYPE html><html><body><h1 id="landed">Landed</h1></body></html>'

    def record(name: str) -> t.Callable[..., None]:
        def receiver(sender: Flask, **kwargs: t.Any) -> None:
            events.append((name, kwargs.get("result") or kwargs.get("reason")))

        return receiver

    receivers = [
        (email_opened, record("opened")),
        (link_clicked, record("clicked")),
        (tracking_failed, record("failed")),
    ]
    for signal, receiver in receivers:
        signal.connect(receiver, sender=app)
    yield app
    for signal, receiver in receivers:
        signal.disconnect(receiver, sender=app)


def _dump_dom(browser: str, url: str, profile: pathlib.Path) -> str:
    command = [
        browser,
        *HEADLESS_FLAGS,
        "--disable-quic",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        url,
    ]
    # The timeout only stops a hung browser; nothing is measured.
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture
def load(
    app: Flask, browser: str, tmp_path: pathlib.Path
) -> t.Callable[[str], tuple[str, str]]:
    """Load a path of the app, served live, in Chromium: ``(dom, root)``,
    the DOM once the page and what it set off have loaded, and the root
    URL it was served from."""

    def load(path: str) -> tuple[str, str]:
        with LiveServer(app) as server:
            dom = _dump_dom(browser, server.url + path, tmp_path)
        return dom, server.url

    return load


def test_open_in_browser(
    load: t.Callable[[str], tuple[str, str]], events: list[tuple[str, t.Any]]
) -> None:
    dom, _ = load("/email")
    assert 'id="email"' in dom
    assert [name for name, _ in events] == ["opened"]
    result = events[0][1]
    assert result.metadata == {"recipient": "ann@example.com"}
    assert result.request_data["user_ip"] == "127.0.0.1"
    assert "Chrome" in result.request_data["user_agent"]


def test_click_in_browser(
    load: t.Callable[[str], tuple[str, str]], events: list[tuple[str, t.Any]]
) -> None:
    dom, root = load("/email?autoclick")
    # The browser followed the redirect to the destination.
    assert 'id="landed"' in dom
    assert 'id="email"' not in dom
    names = [name for name, _ in events]
    assert sorted(names) == ["clicked", "landed", "opened"]
    assert names.index("clicked") < names.index("landed")
    clicked = next(value for name, value in events if name == "clicked")
    landed_url = next(value for name, value in events if name == "landed")
    assert clicked.tracked_url == f"{root}/landing" == landed_url
    assert clicked.metadata == {"recipient": "ann@example.com"}
