"""The stats endpoints: crafted query strings (each gets a 400 with a
message, or a 200 where it is a legitimate query; never a 500), and the
rates they show."""

from __future__ import annotations

import base64
import json
import re
import typing as t

import pytest
from flask import Flask
from flask_mailtrack import TrackingResult
from flask_mailtrack.cli._store import format_stats
from flask_mailtrack.events._encoding import encode_event
from flask_mailtrack.events._sinks import EventRecord
from flask_mailtrack.server import get_server_state

ROUTES = ("/stats", "/stats.json", "/stats/chart.svg", "/events.json")
PAGE = "/stats"
JSON = "/stats.json"
CHART = "/stats/chart.svg"
EVENTS = "/events.json"
ANY = frozenset(ROUTES)
NONE: frozenset[str] = frozenset()

# (query string, the routes that answer it with 200; the others answer 400)
CRAFTED = [
    pytest.param("", ANY, id="nothing"),
    pytest.param("campaign=spring&recipient=a", ANY, id="filters"),
    pytest.param("caf%C3%A9=1", ANY, id="non-ascii-filter"),
    pytest.param("campaign=%00", ANY, id="nul-in-value"),
    pytest.param("_=1767225600000", ANY, id="cache-buster"),
    # Once a metadata filter like any other: never a url_for keyword.
    pytest.param("endpoint=x", ANY, id="endpoint"),
    pytest.param("values=x&method=GET", ANY, id="url_for-parameter-names"),
    pytest.param("_method=POST", NONE, id="_method"),
    pytest.param("_external=1", NONE, id="_external"),
    pytest.param("_scheme=javascript", NONE, id="_scheme"),
    pytest.param("_anchor=x", NONE, id="_anchor"),
    pytest.param("a%00b=1", NONE, id="nul-in-filter-name"),
    pytest.param("%00=1", NONE, id="nul-filter-name"),
    pytest.param("a%01b=1", NONE, id="control-in-filter-name"),
    pytest.param("a%E2%80%A8b=1", NONE, id="line-separator-in-filter-name"),
    pytest.param("a%22b=1", NONE, id="quote-in-filter-name"),
    pytest.param("a%5Cb=1", NONE, id="backslash-in-filter-name"),
    pytest.param("=1", NONE, id="empty-filter-name"),
    pytest.param("k" * 201 + "=1", NONE, id="long-filter-name"),
    pytest.param("&".join(f"k{i}=1" for i in range(21)), NONE, id="many-filters"),
    pytest.param("campaign=a&campaign=b", NONE, id="repeated-filter"),
    pytest.param("since=1&since=2", NONE, id="repeated-since"),
    pytest.param("since=%00", NONE, id="nul-since"),
    pytest.param("since=1e999", NONE, id="huge-since"),
    pytest.param("until=2026-13-45", NONE, id="bad-until"),
    pytest.param("bucket_seconds=1", NONE, id="bucket_seconds"),
    pytest.param("max_buckets=x", NONE, id="max_buckets"),
    pytest.param("window=24h", {PAGE, CHART}, id="window"),
    pytest.param("window=2y", NONE, id="bad-window"),
    pytest.param("window=%00", NONE, id="nul-window"),
    pytest.param("limit=5", {EVENTS}, id="limit"),
    pytest.param("limit=-5", {EVENTS}, id="negative-limit"),
    pytest.param("limit=ten", NONE, id="bad-limit"),
    pytest.param("type=link.clicked", {EVENTS}, id="type"),
    pytest.param("type=x", NONE, id="bad-type"),
]


@pytest.fixture
def filled(make_app: t.Callable[..., Flask]) -> Flask:
    app = make_app(demo=True)
    store = get_server_state(app).store
    store.record(TrackingResult(is_open_tracking=True, metadata={"campaign": "x"}))
    store.record(
        TrackingResult(
            is_click_tracking=True,
            tracked_url="https://example.com/",
            metadata={"campaign": "x"},
        )
    )
    return app


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("query", "ok_on"), CRAFTED)
def test_crafted_queries(
    filled: Flask, route: str, query: str, ok_on: frozenset[str]
) -> None:
    response = filled.test_client().get(f"{route}?{query}")
    expected = 200 if route in ok_on else 400
    assert response.status_code == expected, response.get_data(as_text=True)[-300:]
    if expected == 400:
        # Says what is wrong, not only "Bad Request".
        assert re.search(
            r"metadata filter|Unknown|given 2 times|Invalid|At most",
            response.get_data(as_text=True),
        )


@pytest.mark.parametrize("query", ["endpoint=x", "_method=POST", "a%00b=1"])
def test_crafted_queries_behind_the_password(
    make_app: t.Callable[..., Flask], query: str
) -> None:
    client = make_app(MAILTRACK_STATS_PASSWORD="pw").test_client()
    auth = {"Authorization": "Basic " + base64.b64encode(b"me:pw").decode()}
    for route in ROUTES:
        assert client.get(f"{route}?{query}", headers=auth).status_code in (200, 400)
        # Without the password the query is not even read.
        assert client.get(f"{route}?{query}").status_code == 401


def test_page_links_never_take_the_host_or_the_arguments(filled: Flask) -> None:
    client = filled.test_client()
    headers = {"Host": "evil.example"}
    assert client.get("/stats?_external=1", headers=headers).status_code == 400
    page = client.get("/stats?campaign=x&window=30d", headers=headers)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "evil.example" not in html
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert "/stats.json?campaign=x" in hrefs
    assert "/stats?campaign=x&amp;window=24h" in hrefs
    # Every link of the page is relative, but the tracked link shown.
    assert [h for h in hrefs if "//" in h] == ["https://example.com/"]


def test_filter_names_with_a_nul_byte_are_refused_by_the_store(
    filled: Flask,
) -> None:
    store = get_server_state(filled).store
    with pytest.raises(ValueError, match="control characters"):
        store.stats(**{"a\x00b": "1"})
    assert store.stats(campaign="x")["opens"]["total"] == 1


def test_rates_on_the_page_with_clicks_without_opens(
    make_app: t.Callable[..., Flask],
) -> None:
    # Images blocked: two people click and only one open is recorded. The
    # page said "people only 200.0%".
    app = make_app(demo=True)
    store = get_server_state(app).store
    for recipient in ("ann", "ben"):
        store.record(
            TrackingResult(
                is_click_tracking=True,
                tracked_url="https://example.com/",
                metadata={"recipient": recipient},
            )
        )
    store.record(TrackingResult(is_open_tracking=True, metadata={"recipient": "ben"}))
    page = app.test_client().get("/stats").get_data(as_text=True)
    assert 'id="ctr">100.0%<' in page
    assert 'id="ctr-human">100.0%<' in page
    assert 'id="open-rate-human">50.0%<' in page
    assert "the 2 recipients who opened or clicked" in page
    assert "200.0%" not in page
    stats = app.test_client().get("/stats.json").json
    assert stats["click_through_rate"]["human"] == 1.0


def test_rates_per_email_sent_on_the_page_and_in_the_report(
    make_app: t.Callable[..., Flask],
) -> None:
    app = make_app(demo=True)
    store = get_server_state(app).store
    sends = []
    for recipient in ("ann", "ben", "cy", "dee"):
        data = TrackingResult(metadata={"recipient": recipient}).to_json_dict()
        data["type"] = "email.sent"
        body = encode_event(data)
        sends.append(EventRecord(data["id"], body, json.loads(body)))
    store.write(sends)
    store.record(TrackingResult(is_open_tracking=True, metadata={"recipient": "ann"}))
    page = app.test_client().get("/stats").get_data(as_text=True)
    assert 'id="sent">4<' in page
    assert 'id="sent-open-rate">25.0%<' in page
    assert 'id="sent-click-rate">0.0%<' in page
    report = format_stats(app.test_client().get("/stats.json").json)
    assert "Sent 4: opened 25.0% (people 25.0%), clicked 0.0%" in report
