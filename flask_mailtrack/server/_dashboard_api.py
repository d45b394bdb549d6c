"""The dashboard's JSON API: ``/stats/campaigns.json``,
``/stats/campaign.json`` and ``/stats/recipient.json``, read from the event
store's rollups (and, for one recipient, an index).

Behind the same access rule as ``/stats`` (open in demo mode, otherwise
HTTP basic auth with ``MAILTRACK_STATS_PASSWORD``, 404 without one). Every
argument is checked: a bad one is a 400, never a 500. The dashboard's pages
render the same dicts (:func:`campaigns_payload`, :func:`campaign_payload`,
:func:`recipient_payload`), so every figure they show is in the JSON too.
"""

from __future__ import annotations

import math
import time
import typing as t

from flask import abort
from flask import current_app
from flask import Flask
from flask import jsonify
from flask import request
from werkzeug.wrappers import Response

from ..events._from_settings import campaign_key
from ._state import current_state
from ._stats import stats_access
from ._stats import stats_query

#: The ranges of ``/stats/campaign.json`` but :data:`ALL`: seconds and the
#: bucket of the timeline. Buckets are whole hours from ``24h`` on, and
#: ``since`` falls on one, so the store reads its rollups.
_RANGE_SECONDS: dict[str, tuple[int, int]] = {
    "1h": (3600, 60),
    "24h": (86400, 3600),
    "7d": (7 * 86400, 7200),
    "30d": (30 * 86400, 43200),
}
#: All events of the campaign, from its first to its last.
ALL = "all"
#: The ranges of ``/stats/campaign.json``, shortest first.
RANGES = (*_RANGE_SECONDS, ALL)
DEFAULT_RANGE = "24h"

#: Bucket sizes of the ``all`` range, the smallest that makes at most
#: :data:`MAX_BUCKETS` buckets.
_BUCKETS = (
    *(1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800),
    *(3600, 7200, 10800, 21600, 43200),
    *(86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400, 91 * 86400),
    *(182 * 86400, 364 * 86400),
)
MIN_BUCKETS = 24
MAX_BUCKETS = 120

#: Events of ``latest``.
LATEST = 50
#: Days of the sparklines of ``/stats/campaigns.json``: default and most.
DAYS = 14
MAX_DAYS = 90
#: Longest campaign name or event id taken from a query string.
MAX_TEXT = 1000


def add_dashboard_api_routes(app: Flask) -> None:
    """Add the dashboard's JSON endpoints to the server ``app``."""

    @app.get("/stats/campaigns.json")
    @stats_access
    def campaigns_json() -> Response:
        _no_filters("days")
        days = request.args.get("days", str(DAYS))
        if not (days.isascii() and days.isdigit()) or not 1 <= int(days) <= MAX_DAYS:
            abort(400, f"Invalid 'days': use a number from 1 to {MAX_DAYS}.")
        return _json(campaigns_payload(days=int(days)))

    @app.get("/stats/campaign.json")
    @stats_access
    def campaign_json() -> Response:
        _no_filters("campaign", "range")
        return _json(
            campaign_payload(
                request.args.get("campaign"), request.args.get("range", DEFAULT_RANGE)
            )
        )

    @app.get("/stats/recipient.json")
    @stats_access
    def recipient_json() -> Response:
        _no_filters("event")
        event_id = request.args.get("event")
        if event_id is None:
            abort(400, "Give the id of an event: ?event=evt_...")
        return _json(recipient_payload(event_id))


def campaigns_payload(*, days: int = DAYS) -> dict[str, t.Any]:
    """``/stats/campaigns.json``: ``{"key": ..., "all": ITEM, "campaigns":
    [ITEM, ...]}`` where each ``ITEM`` is one of :meth:`EventStore.campaigns
    <flask_mailtrack.EventStore.campaigns>` (``all``: of every event, its
    ``campaign`` ``None``)."""
    store = current_state().store
    key = campaign_key(current_app.config)
    (every,) = store.campaigns(None, days=days)
    return {"key": key, "all": every, "campaigns": store.campaigns(key, days=days)}


def campaign_payload(campaign: str | None, range_name: str) -> dict[str, t.Any]:
    """``/stats/campaign.json``: the statistics, timeline, machine labels
    and latest events of ``campaign`` (``None``: every event) in the range
    ``range_name`` (one of :data:`RANGES`). In a request: a 400 for a bad
    campaign name or range."""
    _check_text("campaign", campaign)
    if range_name not in RANGES:
        abort(400, f"Unknown range; use one of {', '.join(RANGES)}.")
    store = current_state().store
    key = campaign_key(current_app.config)
    filters: dict[str, t.Any] = {} if campaign is None else {key: campaign}
    now = int(time.time())
    summary = None
    if range_name == ALL:
        summary = store.campaign(campaign, key, days=1)
        since = None
        until = now
        bucket, window = _span_buckets(summary["first"], summary["last"])
    else:
        length, bucket = _RANGE_SECONDS[range_name]
        until = (now // bucket + 1) * bucket
        since = until - length
        window = (since, until)
    timeline = []
    if window is not None:
        timeline = store.timeline(
            bucket_seconds=bucket, since=window[0], until=window[1], **filters
        )
    stats = store.stats(since=since, **filters)
    return {
        "campaign": campaign,
        "range": range_name,
        "since": since,
        "until": until,
        "bucket_seconds": bucket,
        "stats": stats,
        "timeline": timeline,
        "machine_labels": stats["machine_labels"],
        "latest": _latest(campaign, key, summary),
    }


def recipient_payload(event_id: str) -> dict[str, t.Any]:
    """``/stats/recipient.json``: every event of the recipient of the event
    ``event_id`` (:meth:`EventStore.related_events
    <flask_mailtrack.EventStore.related_events>`), oldest first. In a
    request: a 400 for a bad id, a 404 for an unknown one."""
    _check_text("event", event_id)
    events = current_state().store.related_events(event_id)
    if not events:
        abort(404, "No event has this id.")
    return {"event": event_id, "events": events}


def _latest(
    campaign: str | None, key: str, summary: dict[str, t.Any] | None
) -> list[dict[str, t.Any]]:
    """The newest events of ``campaign`` (``None``: of all mail). The search
    starts at the hour after the campaign's last event, so that a campaign
    long over does not make the store walk back through every later event
    of the others."""
    store = current_state().store
    if campaign is None:
        return store.events(limit=LATEST)
    if summary is None:
        summary = store.campaign(campaign, key, days=1)
    if summary["last"] is None:
        return []
    filters: dict[str, t.Any] = {key: campaign}
    return store.events(until=summary["last"] + 3600, limit=LATEST, **filters)


def _span_buckets(
    first: int | None, last: int | None
) -> tuple[int, tuple[int, int] | None]:
    """The bucket and the timeline's window for the hours ``first`` to
    ``last`` (the hours of the first and the last event): at most
    :data:`MAX_BUCKETS` buckets, and whole hours (which the rollups answer)
    when those still make :data:`MIN_BUCKETS`."""
    if first is None or last is None:
        return 3600, None
    end = last + 3600
    bucket = next(
        (b for b in _BUCKETS if math.ceil((end - first) / b) <= MAX_BUCKETS),
        _BUCKETS[-1],
    )
    if bucket < 3600 and (end - first) // 3600 >= MIN_BUCKETS:
        bucket = 3600
    if bucket % 3600:
        return bucket, (first, end)
    return bucket, (first // bucket * bucket, math.ceil(end / bucket) * bucket)


def _no_filters(*page_args: str) -> None:
    """A 400 for any argument but ``page_args`` (and ``_``, for cache
    busting), checked as ``/stats.json`` checks its own."""
    if stats_query(*page_args):
        abort(
            400,
            "This endpoint takes no metadata filters nor since/until; it takes"
            f" {', '.join(page_args)}.",
        )


def _check_text(name: str, value: str | None) -> None:
    """A 400 for a ``value`` of the argument ``name`` that is empty, too
    long or holds control characters (which no database would match, and
    PostgreSQL refuses); ``None`` (absent) is fine."""
    if value is None:
        return
    if not value or len(value) > MAX_TEXT or not value.isprintable():
        abort(
            400,
            f"Invalid {name!r}: 1 to {MAX_TEXT} characters, no control characters.",
        )


def _json(data: t.Any) -> Response:
    response = jsonify(data)
    response.headers["Cache-Control"] = "no-store"
    return response
