"""The dashboard's JSON API: its figures are the store's (on SQLite and
PostgreSQL), crafted arguments get a 400 (never a 500), and it is behind the
stats pages' password outside demo mode."""

from __future__ import annotations

import base64
import json
import random
import time
import typing as t

import pytest
from flask import Flask
from flask_mailtrack.events._encoding import encode_event
from flask_mailtrack.events._sinks import EventRecord
from flask_mailtrack.server import get_server_state

CAMPAIGNS = "/stats/campaigns.json"
CAMPAIGN = "/stats/campaign.json"
RECIPIENT = "/stats/recipient.json"
ROUTES = (CAMPAIGNS, CAMPAIGN, RECIPIENT)
DAY = 86400


def event(
    n: int, kind: str, at: float, machine: str | None = None, **metadata: t.Any
) -> EventRecord:
    data: dict[str, t.Any] = {
        "schema": 1,
        "id": f"evt_{n:032x}",
        "type": kind,
        "timestamp": at,
        "metadata": metadata,
        "machine": machine,
        "machine_reasons": [machine] if machine else [],
    }
    if kind == "link.clicked":
        data["tracked_url"] = "https://example.com/<b>?a=1&b=2"
    body = encode_event(data)
    return EventRecord(data["id"], body, json.loads(body))


def some_events(now: int, key: str = "campaign") -> list[EventRecord]:
    """Sends, opens and clicks of three campaigns over 20 days, and one
    campaign all in the last hour."""
    rng = random.Random(7)
    out = []
    for n in range(400):
        kind = rng.choices(["email.opened", "link.clicked", "email.sent"], [5, 3, 2])[0]
        machine = rng.choice([None, None, "apple-mpp", "scanner"])
        out.append(
            event(
                n,
                kind,
                now - rng.randrange(20 * DAY),
                None if kind == "email.sent" else machine,
                recipient=f"r{rng.randrange(10)}",
                **{key: rng.choice(["spring", "fall", "<script>x</script>"])},
            )
        )
    for n in range(400, 420):
        out.append(event(n, "email.opened", now - rng.randrange(600), **{key: "flash"}))
    return out


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: t.Any) -> dict[str, str]:
    """Settings of a server on each backend in turn."""
    if request.param == "sqlite":
        return {"MAILTRACK_DATABASE": str(tmp_path / "m.sqlite3")}
    return {
        "MAILTRACK_DATABASE": request.getfixturevalue("postgres_url"),
        "MAILTRACK_JOURNAL": str(tmp_path / "journal"),
    }


@pytest.fixture
def filled(make_app: t.Callable[..., Flask], backend: dict[str, str]) -> Flask:
    app = make_app(demo=True, **backend)
    get_server_state(app).store.write(some_events(int(time.time())))
    return app


def test_campaigns_are_the_stores(filled: Flask) -> None:
    store = get_server_state(filled).store
    body = filled.test_client().get(CAMPAIGNS).json
    assert body == {
        "key": "campaign",
        "all": store.campaigns(None)[0],
        "campaigns": store.campaigns(),
    }
    names = {item["campaign"] for item in body["campaigns"]}
    assert names == {"spring", "fall", "<script>x</script>", "flash"}
    short = filled.test_client().get(CAMPAIGNS + "?days=3").json
    assert all(len(item["daily"]) == 3 for item in short["campaigns"])


@pytest.mark.parametrize(
    ("range_name", "buckets"),
    [("1h", 60), ("24h", 24), ("7d", 84), ("30d", 60), ("all", None)],
)
@pytest.mark.parametrize("campaign", ["spring", "<script>x</script>", "flash", None])
def test_a_campaign_is_the_stores(
    filled: Flask, range_name: str, buckets: int | None, campaign: str | None
) -> None:
    store = get_server_state(filled).store
    query: dict[str, str] = {"range": range_name}
    filters: dict[str, t.Any] = {}
    if campaign is not None:
        query["campaign"] = campaign
        filters["campaign"] = campaign
    body = filled.test_client().get(CAMPAIGN, query_string=query).json
    assert (body["campaign"], body["range"]) == (campaign, range_name)
    stats = store.stats(since=body["since"], **filters)
    assert body["stats"] == stats
    assert body["machine_labels"] == stats["machine_labels"]
    assert body["latest"] == store.events(limit=50, **filters)
    timeline = body["timeline"]
    bucket = body["bucket_seconds"]
    assert [b["start"] % bucket for b in timeline] == [0] * len(timeline)
    if buckets is not None:
        assert len(timeline) == buckets
        assert timeline[-1]["start"] + bucket == body["until"]
        assert timeline[0]["start"] == body["since"]
    else:
        assert body["since"] is None
        assert 1 <= len(timeline) <= 120
        # As many buckets as fit 24 to 120 whole hours, or minutes within
        # a day: one campaign all in the last hour fills the chart.
        assert len(timeline) >= 24 or bucket < 3600
    # Every open and click of the range is in the timeline.
    assert sum(b["opens"] for b in timeline) == stats["opens"]["total"]
    assert sum(b["clicks"] for b in timeline) == stats["clicks"]["total"]
    assert (
        sum(b["opens_machine"] for b in timeline)
        == (stats["opens"]["machine"]["total"])
    )


def test_the_campaign_key_setting(
    make_app: t.Callable[..., Flask], backend: dict[str, str]
) -> None:
    app = make_app(demo=True, MAILTRACK_CAMPAIGN_KEY="campaign_id", **backend)
    store = get_server_state(app).store
    store.write(some_events(int(time.time()), key="campaign_id"))
    client = app.test_client()
    body = client.get(CAMPAIGNS).json
    assert body["key"] == "campaign_id"
    assert body["campaigns"] == store.campaigns("campaign_id")
    one = client.get(CAMPAIGN + "?campaign=fall&range=all").json
    assert one["stats"] == store.stats(campaign_id="fall")
    assert one["stats"]["opens"]["total"] > 0


def test_a_recipient_is_the_stores(filled: Flask) -> None:
    store = get_server_state(filled).store
    client = filled.test_client()
    latest = client.get(CAMPAIGN + "?campaign=spring").json["latest"]
    event_id = latest[0]["id"]
    body = client.get(RECIPIENT, query_string={"event": event_id}).json
    assert body == {"event": event_id, "events": store.related_events(event_id)}
    recipient = latest[0]["metadata"]["recipient"]
    assert body["events"] and all(
        e["metadata"]["recipient"] == recipient for e in body["events"]
    )
    assert client.get(RECIPIENT + "?event=evt_nothing").status_code == 404


# (route, query string) pairs answered with a 400 that says why.
CRAFTED = [
    *[
        pytest.param(route, query, id=f"{route[7:-5]}-{name}")
        for route in ROUTES
        for name, query in [
            ("filter", "recipient=a"),
            ("since", "since=1"),
            ("until", "until=2026-01-01"),
            ("nul-name", "a%00b=1"),
            ("reserved", "_external=1"),
            ("repeated", "days=1&days=2&campaign=a&campaign=b&event=a&event=b"),
        ]
    ],
    pytest.param(CAMPAIGNS, "days=0", id="days-0"),
    pytest.param(CAMPAIGNS, "days=91", id="days-91"),
    pytest.param(CAMPAIGNS, "days=-1", id="days-negative"),
    pytest.param(CAMPAIGNS, "days=x", id="days-text"),
    pytest.param(CAMPAIGNS, "days=%00", id="days-nul"),
    pytest.param(CAMPAIGNS, "days=%D9%A3", id="days-arabic-digit"),
    pytest.param(CAMPAIGN, "range=2y", id="range-unknown"),
    pytest.param(CAMPAIGN, "range=", id="range-empty"),
    pytest.param(CAMPAIGN, "range=%00", id="range-nul"),
    pytest.param(CAMPAIGN, "campaign=", id="campaign-empty"),
    pytest.param(CAMPAIGN, "campaign=a%00b", id="campaign-nul"),
    pytest.param(CAMPAIGN, "campaign=a%0Ab", id="campaign-newline"),
    pytest.param(CAMPAIGN, "campaign=" + "x" * 1001, id="campaign-long"),
    pytest.param(RECIPIENT, "", id="event-missing"),
    pytest.param(RECIPIENT, "event=", id="event-empty"),
    pytest.param(RECIPIENT, "event=evt_%00", id="event-nul"),
    pytest.param(RECIPIENT, "event=" + "x" * 1001, id="event-long"),
    pytest.param(RECIPIENT, "event=a&campaign=b", id="event-and-campaign"),
]


@pytest.mark.parametrize(("route", "query"), CRAFTED)
def test_crafted_arguments(filled: Flask, route: str, query: str) -> None:
    response = filled.test_client().get(f"{route}?{query}")
    assert response.status_code == 400, response.get_data(as_text=True)[-300:]
    assert b"Bad Request" in response.data
    assert any(
        word in response.get_data(as_text=True)
        for word in ("Invalid", "Unknown", "takes", "given 2 times", "Give", "filter")
    )


@pytest.mark.parametrize(
    "query",
    [
        "campaign=caf%C3%A9",
        "campaign=%3Cscript%3E",
        "campaign=x%27%3B%20DROP%20TABLE%20mailtrack_events%3B--",
        "campaign=%E2%80%AEtxt",  # printable? no: a format character
        "_=1767225600000",
    ],
)
def test_odd_but_harmless_arguments(filled: Flask, query: str) -> None:
    response = filled.test_client().get(f"{CAMPAIGN}?{query}")
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert response.mimetype == "application/json"
        assert get_server_state(filled).store.count() == 420


def test_behind_the_password(
    make_app: t.Callable[..., Flask], backend: dict[str, str]
) -> None:
    closed = make_app(**backend).test_client()
    guarded = make_app(MAILTRACK_STATS_PASSWORD="pw", **backend).test_client()
    auth = {"Authorization": "Basic " + base64.b64encode(b"me:pw").decode()}
    wrong = {"Authorization": "Basic " + base64.b64encode(b"me:nope").decode()}
    for route in (CAMPAIGNS, CAMPAIGN + "?campaign=x", RECIPIENT + "?event=a%00"):
        # No password set: as if there were no such page.
        assert closed.get(route).status_code == 404
        assert guarded.get(route).status_code == 401
        assert guarded.get(route, headers=wrong).status_code == 401
        # The arguments are read only once the password is right.
        assert guarded.get(route, headers=auth).status_code in (200, 400, 404)
    assert guarded.get(CAMPAIGNS, headers=auth).json["campaigns"] == []
    assert guarded.get(CAMPAIGN, headers=auth).json["stats"]["opens"]["total"] == 0
