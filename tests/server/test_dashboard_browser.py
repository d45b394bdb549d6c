"""The dashboard in headless Chromium, against a live server whose store (an
SQLite file, then PostgreSQL) holds a few thousand events of several
campaigns over several days: each page loads without errors, the charts
draw, the figures are the store's, the range picker changes the buckets,
the pages refresh on their own, and a phone's 360 px never scroll
sideways.

Screenshots of each page at 360 px and 1280 px go to the folder
``TEST_MAILTRACK_ARTIFACTS`` names (``.ci/run`` sets ``artifacts/``), in
``dashboard/`` (``dashboard-postgresql/`` for PostgreSQL); by default under
the test's temporary folder.

Skipped when Chromium is not installed, unless ``TEST_MAILTRACK_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import time
import typing as t
from urllib.parse import quote

import pytest
from flask_mailtrack import TrackingResult
from flask_mailtrack.server import close_app
from flask_mailtrack.server import create_app
from flask_mailtrack.server import get_server_state

from _browser import DevTools
from _browser import find_browser
from _browser import LiveServer
from _dashboard_data import fill
from _dashboard_data import HOSTILE_CAMPAIGN

pytestmark = pytest.mark.browser

#: Pixels of a canvas that are not transparent: the chart drew something.
CANVAS_INK = """
(() => {
  const canvas = document.querySelector(%s);
  if (!canvas || !canvas.width || !canvas.height) { return 0; }
  const context = canvas.getContext("2d");
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let ink = 0;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i]) { ink += 1; } }
  return ink;
})()
"""

DATA = "JSON.parse(document.getElementById('dashboard-data').textContent)"


def _artifacts(tmp_path: pathlib.Path, store: t.Any) -> pathlib.Path:
    root = os.environ.get("TEST_MAILTRACK_ARTIFACTS")
    name = "dashboard" if store.kind == "sqlite" else f"dashboard-{store.kind}"
    folder = (pathlib.Path(root) if root else tmp_path / "artifacts") / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _ink(devtools: DevTools, selector: str) -> int:
    return int(devtools.evaluate(CANVAS_INK % json.dumps(selector)))


def _text(devtools: DevTools, selector: str) -> str:
    return str(
        devtools.evaluate(f"document.querySelector({json.dumps(selector)}).textContent")
    )


def _row_values(devtools: DevTools, campaign: str) -> list[str]:
    """The sort values of the overview's row of ``campaign`` ("" for all
    mail): name, sent, opened, clicked, rates, machines, first, last."""
    return list(
        devtools.evaluate(
            "Array.from(Array.from("
            "document.querySelectorAll('#campaigns tr[data-campaign]'))"
            f".find(row => row.dataset.campaign === {json.dumps(campaign)})"
            ".querySelectorAll('td[data-value]')"
            ").map(cell => cell.dataset.value)"
        )
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def dashboard(
    request: pytest.FixtureRequest,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> t.Iterator[tuple[t.Any, LiveServer, DevTools]]:
    """The demo server over an SQLite file, then over PostgreSQL (skipped
    without a server, see ``_services``), filled; and a browser."""
    if request.param == "sqlite":
        database = str(tmp_path / "dashboard.sqlite3")
    else:
        database = request.getfixturevalue("postgres_url")
    browser = find_browser()
    # The pages poll every second here, so the refresh shows quickly.
    monkeypatch.setattr("flask_mailtrack.server._dashboard.REFRESH_SECONDS", 1)
    app = create_app(
        {
            "MAILTRACK_SECRET_KEY": "dashboard-browser-test-key-0123456789",
            "MAILTRACK_DATABASE": database,
            "MAILTRACK_JOURNAL": str(tmp_path / "journal"),
        },
        demo=True,
        environ={},
    )
    store = get_server_state(app).store
    assert fill(store, int(time.time())) > 2000
    server = LiveServer(app)
    with (
        server,
        contextlib.closing(DevTools(browser, str(tmp_path / "profile"))) as devtools,
    ):
        devtools.attach()
        devtools.watch_errors()
        yield store, server, devtools
    close_app(app)


def test_dashboard_pages(
    dashboard: tuple[t.Any, LiveServer, DevTools], tmp_path: pathlib.Path
) -> None:
    store, server, devtools = dashboard
    artifacts = _artifacts(tmp_path, store)
    campaign = "weekly-digest"
    event = store.events(limit=1, campaign=campaign)[0]["id"]
    pages = {
        "overview": "/stats",
        "campaign": f"/stats/campaign?campaign={campaign}&range=7d",
        "recipient": f"/stats/recipient?event={event}",
    }
    for width in (360, 1280):
        devtools.viewport(width, 800)
        for name, path in pages.items():
            devtools.navigate(server.url + path)
            devtools.wait_for("document.fonts.status === 'loaded'")
            assert devtools.errors == [], (name, width)
            scroll = devtools.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, (name, width, scroll)
            devtools.screenshot(str(artifacts / f"{name}-{width}.png"))
    assert sorted(p.name for p in artifacts.iterdir()) == [
        f"{name}-{width}.png" for name in sorted(pages) for width in (1280, 360)
    ]


def test_overview_figures_and_sparklines(
    dashboard: tuple[t.Any, LiveServer, DevTools],
) -> None:
    store, server, devtools = dashboard
    devtools.navigate(server.url + "/stats")
    campaigns = store.campaigns()
    assert len(campaigns) == 4
    for item in [{"campaign": None}, *campaigns]:
        name = item["campaign"]
        stats = store.stats(**({} if name is None else {"campaign": name}))
        values = _row_values(devtools, name or "")
        assert values[0] == (name or "")
        assert int(values[1]) == stats["sent"]["total"]
        assert int(values[2]) == stats["opens"]["unique"]
        assert int(values[3]) == stats["clicks"]["unique"]
    # The hostile campaign's name is text in its cell, not an element.
    assert HOSTILE_CAMPAIGN in _text(devtools, "#campaign-rows")
    assert (
        devtools.evaluate("document.querySelectorAll('#campaign-rows script').length")
        == 0
    )
    # One sparkline per row, each drawn.
    sparks = devtools.evaluate("document.querySelectorAll('.spark canvas').length")
    assert sparks == 5
    assert _ink(devtools, "#all-mail .spark canvas") > 0
    # Sorting by a column, then searching, on the page itself.
    devtools.evaluate(
        "document.querySelectorAll('#campaigns thead th button')[1].click()"
    )
    order = devtools.evaluate(
        "Array.from(document.querySelectorAll('#campaign-rows tr'))"
        ".map(row => Number(row.cells[1].dataset.value))"
    )
    assert order == sorted(order, reverse=True)
    devtools.evaluate(
        "const box = document.getElementById('q'); box.value = 'SPRING';"
        " box.dispatchEvent(new Event('input'))"
    )
    shown = devtools.evaluate(
        "Array.from(document.querySelectorAll('#campaign-rows tr'))"
        ".filter(row => !row.hidden).map(row => row.dataset.campaign)"
    )
    assert shown == ["spring-sale"]
    # A new open shows up without reloading the page.
    before = int(_row_values(devtools, "welcome")[2])
    store.record(
        TrackingResult(
            is_open_tracking=True,
            timestamp=int(time.time()),
            metadata={"campaign": "welcome", "recipient": "new@example.com"},
        )
    )
    devtools.wait_for(
        "document.querySelector('#campaign-rows tr[data-campaign=\"welcome\"]')"
        f".cells[2].dataset.value === '{before + 1}'"
    )
    # The search still applies to the refreshed rows.
    assert devtools.evaluate(
        "document.querySelector('#campaign-rows tr[data-campaign=\"welcome\"]').hidden"
    )
    assert devtools.errors == []


def test_campaign_page_chart_figures_and_range_picker(
    dashboard: tuple[t.Any, LiveServer, DevTools],
) -> None:
    store, server, devtools = dashboard
    campaign = "spring-sale"
    devtools.navigate(
        f"{server.url}/stats/campaign?campaign={quote(campaign)}&range=all"
    )
    stats = store.stats(campaign=campaign)
    for key in ("opens", "clicks"):
        assert _text(devtools, f"#{key}-unique") == str(stats[key]["unique"])
        assert _text(devtools, f"#{key}-human") == str(stats[key]["human"]["unique"])
        assert _text(devtools, f"#{key}-total") == str(stats[key]["total"])
    assert _text(devtools, "#sent") == str(stats["sent"]["total"])
    assert _text(devtools, "#open-rate") == (
        f"{stats['sent']['open_rate']['human'] * 100:.1f}%"
    )
    assert _ink(devtools, "#timeline-chart canvas") > 1000
    buckets = {}
    for range_name in ("24h", "7d", "30d"):
        # The picker's links, followed as a person would.
        devtools.evaluate("window.__leaving = true")
        devtools.evaluate(
            f"document.querySelector('.range a[href$=\"range={range_name}\"]').click()"
        )
        devtools.wait_for("!window.__leaving && document.readyState === 'complete'")
        assert devtools.errors == []
        assert _text(devtools, ".range [aria-current]") == range_name
        data = devtools.evaluate(DATA)
        buckets[range_name] = (data["bucket_seconds"], len(data["timeline"]))
        assert 24 <= len(data["timeline"]) <= 120
        since_stats = store.stats(since=data["since"], campaign=campaign)
        assert _text(devtools, "#opens-unique") == str(since_stats["opens"]["unique"])
        assert _ink(devtools, "#timeline-chart canvas") > 1000
    assert len({seconds for seconds, _ in buckets.values()}) == 3, buckets
    # A hostile campaign's page: its name and URLs are text.
    devtools.navigate(
        f"{server.url}/stats/campaign?campaign={quote(HOSTILE_CAMPAIGN)}&range=all"
    )
    assert _text(devtools, "h1") == HOSTILE_CAMPAIGN
    assert (
        devtools.evaluate(
            "document.querySelectorAll('main a[href^=\"javascript\"]').length"
        )
        == 0
    )
    assert devtools.errors == []


def test_recipient_timeline(dashboard: tuple[t.Any, LiveServer, DevTools]) -> None:
    store, server, devtools = dashboard
    event = store.events(limit=1, campaign="spring-sale", type="link.clicked")[0]
    devtools.navigate(f"{server.url}/stats/campaign?campaign=spring-sale&range=all")
    # From the campaign's latest events to the recipient's timeline.
    devtools.evaluate("window.__leaving = true")
    devtools.evaluate(
        f"document.querySelector('#latest a[href$=\"event={event['id']}\"]').click()"
    )
    devtools.wait_for("!window.__leaving && document.readyState === 'complete'")
    rows = devtools.evaluate("document.querySelectorAll('#timeline tbody tr').length")
    related = store.related_events(event["id"])
    assert rows == len(related) >= 2  # the open, then the click
    assert devtools.evaluate("document.querySelector('#timeline tr.current') !== null")
    assert devtools.errors == []
