"""The dashboard pages: /stats (campaigns), /stats/campaign and
/stats/recipient. Their access rule, their query arguments, the figures
and rates they show, and that nothing from events (metadata, URLs) becomes
markup, a link to a script or code in the page's script."""

from __future__ import annotations

import base64
import json
import re
import time
import typing as t

import pytest
from flask import Flask
from flask_mailtrack import TrackingResult
from flask_mailtrack.cli._store import format_stats
from flask_mailtrack.events._store_backend import SENT
from flask_mailtrack.server import get_server_state
from flask_mailtrack.server._dashboard import web_link
from markupsafe import escape

from _dashboard_data import event_record
from _dashboard_data import fill
from _dashboard_data import HOSTILE_CAMPAIGN
from _dashboard_data import HOSTILE_RECIPIENT
from _dashboard_data import HOSTILE_URL

PAGES = ("/stats", "/stats/campaign", "/stats/campaign?campaign=x&range=7d")


def _auth(password: str) -> dict[str, str]:
    token = base64.b64encode(f"me:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _event_id(app: Flask) -> str:
    store = get_server_state(app).store
    store.record(TrackingResult(is_open_tracking=True, metadata={"campaign": "x"}))
    return str(store.events(limit=1)[0]["id"])


@pytest.fixture
def hostile(make_app: t.Callable[..., Flask]) -> Flask:
    app = make_app(demo=True)
    store = get_server_state(app).store
    now = int(time.time())
    metadata = {"campaign": HOSTILE_CAMPAIGN, "recipient": HOSTILE_RECIPIENT}
    store.record(
        TrackingResult(is_open_tracking=True, metadata=metadata, timestamp=now - 60)
    )
    store.record(
        TrackingResult(
            is_click_tracking=True,
            tracked_url=HOSTILE_URL,
            metadata={**metadata, "</script><script>alert(2)//": "x"},
            timestamp=now - 30,
        )
    )
    return app


def _pages_of(app: Flask) -> dict[str, str]:
    client = app.test_client()
    event = get_server_state(app).store.events(limit=1)[0]["id"]
    urls = {
        "overview": "/stats",
        "search": "/stats?q=script",
        "all mail": "/stats/campaign?range=1h",
        "campaign": f"/stats/campaign?campaign={HOSTILE_CAMPAIGN}&range=24h",
        "recipient": f"/stats/recipient?event={event}",
    }
    pages = {}
    for name, url in urls.items():
        response = client.get(url)
        assert response.status_code == 200, (name, response.get_data(as_text=True))
        pages[name] = response.get_data(as_text=True)
    return pages


# -- access ------------------------------------------------------------------


@pytest.mark.parametrize("url", PAGES)
def test_pages_answer_404_without_a_password(
    make_app: t.Callable[..., Flask], url: str
) -> None:
    assert make_app().test_client().get(url).status_code == 404


@pytest.mark.parametrize("url", PAGES)
def test_pages_ask_for_the_password(make_app: t.Callable[..., Flask], url: str) -> None:
    client = make_app(MAILTRACK_STATS_PASSWORD="pw").test_client()
    response = client.get(url)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert client.get(url, headers=_auth("wrong")).status_code == 401
    assert client.get(url, headers=_auth("pw")).status_code == 200


def test_recipient_page_behind_the_password(make_app: t.Callable[..., Flask]) -> None:
    app = make_app(MAILTRACK_STATS_PASSWORD="pw")
    url = f"/stats/recipient?event={_event_id(app)}"
    client = app.test_client()
    assert client.get(url).status_code == 401
    assert client.get(url, headers=_auth("pw")).status_code == 200


@pytest.mark.parametrize("url", PAGES)
def test_pages_open_in_demo(make_app: t.Callable[..., Flask], url: str) -> None:
    page = make_app(demo=True).test_client().get(url)
    assert page.status_code == 200
    assert page.mimetype == "text/html"


# -- query arguments -----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/stats?q=spring", 200),
        ("/stats?q=" + "x" * 201, 400),
        ("/stats?q=a&q=b", 400),
        ("/stats?since=1", 400),
        ("/stats?_external=1", 400),
        ("/stats?_=1767225600000", 200),
        ("/stats/campaign?range=1h", 200),
        ("/stats/campaign?range=all&campaign=", 400),
        ("/stats/campaign?campaign=a%01b", 400),
        ("/stats/campaign?range=2y", 400),
        ("/stats/campaign?range=%00", 400),
        ("/stats/campaign?window=24h", 400),
        ("/stats/campaign?campaign=a&campaign=b", 400),
        ("/stats/campaign?recipient=ann", 400),
        ("/stats/recipient", 400),
        ("/stats/recipient?event=", 400),
        ("/stats/recipient?event=evt_unknown", 404),
        ("/stats/recipient?event=a&event=b", 400),
    ],
)
def test_page_arguments(
    make_app: t.Callable[..., Flask], url: str, status: int
) -> None:
    response = make_app(demo=True).test_client().get(url)
    assert response.status_code == status, response.get_data(as_text=True)[-300:]


def test_the_old_stats_page_address_leads_to_the_campaign(
    make_app: t.Callable[..., Flask],
) -> None:
    client = make_app(demo=True).test_client()
    response = client.get("/stats?campaign=spring&window=30d")
    assert response.status_code == 302
    assert response.location == "/stats/campaign?campaign=spring&range=30d"
    response = client.get("/stats?campaign=spring%26range%3D1h")
    assert response.location == "/stats/campaign?campaign=spring%26range%3D1h"
    assert client.get("/stats?campaign=x&recipient=y").status_code == 400


def test_links_never_take_the_host(hostile: Flask) -> None:
    for name, page in _pages_of(hostile).items():
        hrefs = re.findall(r'(?:href|src)="([^"]*)"', page)
        # Every link is a path of this server (and the empty icon); a
        # click's URL is text only (it is javascript:).
        assert hrefs, name
        assert [h for h in hrefs if not h.startswith("/")] == ["data:,"], name


# -- escaping -----------------------------------------------------------------


def test_hostile_metadata_and_urls_are_text(hostile: Flask) -> None:
    pages = _pages_of(hostile)
    for name, page in pages.items():
        # Markup from metadata shows as text...
        assert "<script>alert" not in page, name
        assert "<img src=x" not in page, name
        assert "</script><script>" not in page, name
        # ...never as a link or an attribute that runs script.
        assert 'href="javascript:' not in page.lower(), name
        # The one <script type="application/json"> holds JSON that parses
        # back to the data, with no "<" to close the element early.
        blocks = re.findall(
            r'<script type="application/json" id="dashboard-data">(.*?)</script>',
            page,
            re.S,
        )
        assert len(blocks) == 1, name
        assert "<" not in blocks[0]
        json.loads(blocks[0])
        # The other scripts are files of this server, not inline code.
        assert page.count("<script") == 3, name
    assert escape(HOSTILE_CAMPAIGN) in pages["overview"]
    assert escape(HOSTILE_CAMPAIGN) in pages["campaign"]
    assert escape(HOSTILE_URL) in pages["campaign"]
    assert escape(HOSTILE_RECIPIENT) in pages["recipient"]


def test_search_finds_the_hostile_campaign_as_text(hostile: Flask) -> None:
    page = hostile.test_client().get("/stats?q=%3Cscript").get_data(as_text=True)
    assert 'value="&lt;script"' in page
    assert page.count('data-campaign="') == 2  # all mail, and the match
    page = hostile.test_client().get("/stats?q=nothing").get_data(as_text=True)
    assert page.count('data-campaign="') == 1
    assert "No campaign matches “nothing”." in page


# -- figures --------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def filled(
    request: pytest.FixtureRequest,
    make_app: t.Callable[..., Flask],
    tmp_path: t.Any,
) -> Flask:
    """A demo app whose store (an SQLite file, then PostgreSQL) holds the
    events of :func:`_dashboard_data.fill`."""
    config = {}
    if request.param == "postgresql":
        config = {
            "MAILTRACK_DATABASE": request.getfixturevalue("postgres_url"),
            "MAILTRACK_JOURNAL": str(tmp_path / "journal"),
        }
    app = make_app(demo=True, **config)
    fill(get_server_state(app).store, int(time.time()))
    return app


def test_overview_rows_are_the_stores_campaigns(filled: Flask) -> None:
    store = get_server_state(filled).store
    page = filled.test_client().get("/stats").get_data(as_text=True)
    campaigns = store.campaigns()
    names = re.findall(r'<tr[^>]*data-campaign="([^"]*)"', page)
    # All mail first, then the campaigns, the most recent activity first.
    assert names == ["", *(escape(c["campaign"]) for c in campaigns)]
    for item in campaigns:
        stats = store.stats(campaign=item["campaign"])
        row = page.split(f'data-campaign="{escape(item["campaign"])}"')[1]
        row = row.split("</tr>")[0]
        values = re.findall(r'data-value="([^"]*)"', row)
        assert int(values[2]) == stats["opens"]["unique"]
        assert int(values[3]) == stats["clicks"]["unique"]
        assert int(values[1]) == stats["sent"]["total"]


def test_campaign_page_shows_the_stores_stats(filled: Flask) -> None:
    store = get_server_state(filled).store
    client = filled.test_client()
    for campaign in ("spring-sale", "welcome"):
        page = client.get(f"/stats/campaign?campaign={campaign}&range=all")
        text = page.get_data(as_text=True)
        stats = store.stats(campaign=campaign)
        for key in ("opens", "clicks"):
            assert f'id="{key}-unique">{stats[key]["unique"]}<' in text
            assert f'id="{key}-human">{stats[key]["human"]["unique"]}<' in text
            assert f'id="{key}-total">{stats[key]["total"]}<' in text
        sent = stats["sent"]["total"]
        assert f'id="sent">{sent or "–"}<' in text
        for link in stats["links"][:3]:
            assert escape(link["url"]) in text


def test_rates_with_clicks_without_opens(make_app: t.Callable[..., Flask]) -> None:
    # Images blocked: two people click and only one open is recorded. The
    # old page said "people only 200.0%".
    app = make_app(demo=True)
    store = get_server_state(app).store
    for recipient in ("ann", "ben"):
        store.record(
            TrackingResult(
                is_click_tracking=True,
                tracked_url="https://example.com/",
                metadata={"recipient": recipient, "campaign": "c"},
            )
        )
    store.record(
        TrackingResult(
            is_open_tracking=True, metadata={"recipient": "ben", "campaign": "c"}
        )
    )
    client = app.test_client()
    page = client.get("/stats/campaign?campaign=c&range=all").get_data(as_text=True)
    assert 'id="click-rate">100.0%<' in page
    assert 'id="open-rate">50.0%<' in page
    assert "the 2 people who opened or clicked" in page
    overview = client.get("/stats").get_data(as_text=True)
    for text in (page, overview):
        assert not re.search(
            r"\b(1[0-9][0-9]\.[0-9]|[2-9][0-9][0-9]\.[0-9])%",
            text.replace("100.0%", ""),
        )
    assert "of engaged" in overview


def test_rates_per_email_sent(make_app: t.Callable[..., Flask]) -> None:
    app = make_app(demo=True)
    store = get_server_state(app).store
    store.write(
        [
            event_record(
                TrackingResult(metadata={"recipient": r, "campaign": "c"}), SENT
            )
            for r in ("ann", "ben", "cy", "dee")
        ]
    )
    store.record(
        TrackingResult(
            is_open_tracking=True, metadata={"recipient": "ann", "campaign": "c"}
        )
    )
    client = app.test_client()
    page = client.get("/stats/campaign?campaign=c&range=all").get_data(as_text=True)
    assert 'id="sent">4<' in page
    assert 'id="open-rate">25.0%<' in page
    assert 'id="click-rate">0.0%<' in page
    assert "the 4 emails sent" in page
    assert '25.0%<span class="basis"> of sent' in client.get("/stats").get_data(
        as_text=True
    )
    report = format_stats(client.get("/stats.json").json)
    assert "Sent 4: opened 25.0% (people 25.0%), clicked 0.0%" in report


def test_empty_pages_say_what_to_do(make_app: t.Callable[..., Flask]) -> None:
    client = make_app(demo=True).test_client()
    for url in ("/stats", "/stats/campaign?range=all"):
        page = client.get(url).get_data(as_text=True)
        assert 'id="empty"' in page
        assert "mailtrack serve --demo" in page
        assert "send an email tracked" in page.lower() or "Send an email" in page
    overview = client.get("/stats").get_data(as_text=True)
    assert "flask_mailtrack.outgoing" in overview


def test_recipient_page_lists_the_identitys_events(
    make_app: t.Callable[..., Flask],
) -> None:
    app = make_app(demo=True)
    store = get_server_state(app).store
    for when, recipient in ((100, "ann"), (200, "ben"), (300, "ann")):
        store.record(
            TrackingResult(
                is_open_tracking=True,
                timestamp=when,
                metadata={"recipient": recipient, "campaign": "c"},
            )
        )
    events = store.events()
    ann = next(e for e in events if e["metadata"]["recipient"] == "ann")
    page = app.test_client().get(f"/stats/recipient?event={ann['id']}")
    text = page.get_data(as_text=True)
    assert "2 events" in text
    assert "recipient=ben" not in text
    times = re.findall(r"<td>(1970-01-01 00:0\d UTC)</td>", text)
    assert times == ["1970-01-01 00:01 UTC", "1970-01-01 00:05 UTC"]


def test_demo_page_links_to_the_dashboard(make_app: t.Callable[..., Flask]) -> None:
    page = make_app(demo=True).test_client().get("/").get_data(as_text=True)
    assert 'href="/stats" id="dashboard-link"' in page


@pytest.mark.parametrize(
    ("url", "linked"),
    [
        ("https://shop.example.com/a?b=1", True),
        ("HTTP://shop.example.com/", True),
        ("javascript:alert(1)", False),
        ("JavaScript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("java\nscript:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("vbscript:msgbox(1)", False),
        ("//evil.example/", False),
        ("/stats", False),
        ("http://", False),
        ("https://[::1", False),
        (None, False),
        (42, False),
    ],
)
def test_only_web_urls_become_links(url: t.Any, linked: bool) -> None:
    assert web_link(url) == (url if linked else None)
