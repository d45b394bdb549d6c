"""The stats endpoints: crafted query strings (each gets a 400 with a
message, or a 200 where it is a legitimate query; never a 500), and the
rates they show."""

from __future__ import annotations

import base64
import re
import typing as t

import pytest
from flask import Flask
from flask_mailtrack import TrackingResult
from flask_mailtrack.server import get_server_state

ROUTES = ("/stats.json", "/events.json")
JSON = "/stats.json"
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
    pytest.param("window=24h", ANY, id="window-is-a-filter-now"),
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


def test_filter_names_with_a_nul_byte_are_refused_by_the_store(
    filled: Flask,
) -> None:
    store = get_server_state(filled).store
    with pytest.raises(ValueError, match="control characters"):
        store.stats(**{"a\x00b": "1"})
    assert store.stats(campaign="x")["opens"]["total"] == 1


def test_errors_of_the_json_endpoints_are_json(
    make_app: t.Callable[..., Flask],
) -> None:
    client = make_app(demo=True).test_client()
    response = client.get("/stats/campaign.json?range=2y")
    assert response.status_code == 400
    assert response.json == {
        "error": "Bad Request",
        "message": "Unknown range; use one of 1h, 24h, 7d, 30d, all.",
    }
    not_allowed = client.post("/stats.json")
    assert not_allowed.status_code == 405 and not_allowed.json is not None
    assert "GET" in not_allowed.headers["Allow"]
    # Pages keep HTML errors.
    page = client.get("/stats/campaign?range=2y")
    assert page.status_code == 400 and page.mimetype == "text/html"
