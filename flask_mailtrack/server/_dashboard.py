"""The dashboard pages: ``/stats`` (the campaigns overview),
``/stats/campaign`` (one campaign, or all mail, over a time range) and
``/stats/recipient`` (every event of one recipient).

Each page is rendered on the server from the very dict its JSON endpoint
answers (see ``_dashboard_api``), so it reads without JavaScript; the
script ``static/dashboard.js`` draws the charts with the vendored uPlot and
refreshes the page from the same endpoint. Values from events (metadata,
URLs) are escaped by Jinja, links are made of ``http`` and ``https`` URLs
only, and the data reaches the script as JSON in a
``<script type="application/json">`` element.
"""

from __future__ import annotations

import datetime
import typing as t
from urllib.parse import urlencode
from urllib.parse import urlsplit

from flask import abort
from flask import current_app
from flask import Flask
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for

from ..events._from_settings import campaign_key
from ._dashboard_api import campaign_payload
from ._dashboard_api import campaigns_payload
from ._dashboard_api import RANGES
from ._dashboard_api import recipient_payload
from ._state import current_state
from ._stats import stats_access

#: Seconds between two refreshes of a page by its script (paused while the
#: tab is hidden).
REFRESH_SECONDS = 10

#: The longest search text of the overview, in characters.
_MAX_SEARCH = 200


def add_dashboard_pages(app: Flask) -> None:
    """Add the dashboard pages to the server ``app``."""
    app.add_template_filter(percent)
    app.add_template_filter(moment)
    app.add_template_filter(web_link)

    @app.get("/stats")
    @stats_access
    def stats_page() -> t.Any:
        key = _campaign_key()
        if key in request.args and key not in ("q", "_"):
            # The old single stats page took the campaign as a filter.
            _only(key, "window")
            window = request.args.get("window")
            return redirect(
                _campaign_url(request.args[key], window if window in RANGES else None)
            )
        _only("q")
        search = request.args.get("q", "").strip()
        if len(search) > _MAX_SEARCH:
            abort(400, f"The search text is longer than {_MAX_SEARCH} characters.")
        data = campaigns_payload()
        campaigns = data["campaigns"]
        if search:
            campaigns = [c for c in campaigns if _matches(c["campaign"], search)]
        return render_template(
            "mailtrack/stats.html",
            data=data,
            campaigns=campaigns,
            search=search,
            json_url=url_for("campaigns_json"),
            **_page_context(),
        )

    @app.get("/stats/campaign")
    @stats_access
    def campaign_page() -> t.Any:
        _only("campaign", "range")
        campaign = request.args.get("campaign")
        range_name = request.args.get("range", "24h")
        data = campaign_payload(campaign, range_name)
        return render_template(
            "mailtrack/campaign.html",
            data=data,
            campaign=campaign,
            range_links=[(name, _campaign_url(campaign, name)) for name in RANGES],
            json_url=_json_url("campaign_json", campaign=campaign, range=range_name),
            bucket_label=_duration(data["bucket_seconds"]),
            **_page_context(),
        )

    @app.get("/stats/recipient")
    @stats_access
    def recipient_page() -> t.Any:
        _only("event")
        event_id = request.args.get("event")
        if not event_id:
            abort(400, "Give the id of one of the recipient's events: ?event=evt_...")
        data = recipient_payload(event_id)
        return render_template(
            "mailtrack/recipient.html",
            data=data,
            json_url=_json_url("recipient_json", event=event_id),
            **_page_context(),
        )


def percent(rate: float | None) -> str:
    """A rate as a percentage with one decimal, ``"–"`` when there is none;
    never above 100%."""
    if rate is None:
        return "–"
    return f"{min(max(rate, 0.0), 1.0) * 100:.1f}%"


def moment(value: int | float | str | None) -> str:
    """An epoch time (or a schema-1 ISO time) as ``2026-05-01 14:03 UTC``;
    ``"–"`` for none."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return value.replace("T", " ")[:16] + " UTC"
    when = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def web_link(url: t.Any) -> str | None:
    """``url`` when it is an ``http`` or ``https`` URL a page may link to;
    ``None`` for anything else (``javascript:``, ``data:``, relative), which
    the pages show as text only."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def _page_context() -> dict[str, t.Any]:
    return {
        "demo": current_state().demo,
        "refresh_seconds": REFRESH_SECONDS,
        "campaign_key": _campaign_key(),
    }


def _campaign_key() -> str:
    return campaign_key(current_app.config)


def _only(*names: str) -> None:
    """A 400 for a query argument that is not one of ``names`` (or ``_``,
    the scripts' cache buster), or that is given twice."""
    for key, values in request.args.lists():
        if key not in names and key != "_":
            accepted = ", ".join(names)
            abort(400, f"Unknown query argument {key!r}: this page takes {accepted}.")
        if len(values) > 1:
            abort(400, f"{key!r} is given {len(values)} times; give it once.")


def _matches(campaign: t.Any, search: str) -> bool:
    return search.casefold() in str(campaign).casefold()


def _campaign_url(campaign: str | None, range_name: str | None) -> str:
    return _json_url("campaign_page", campaign=campaign, range=range_name)


def _json_url(endpoint: str, **args: str | None) -> str:
    """The path of ``endpoint`` with ``args`` (``None`` left out) encoded
    into the query string, never given to :func:`~flask.url_for` as
    keywords (where ``_external`` or ``_scheme`` would change the URL)."""
    query = urlencode([(k, v) for k, v in args.items() if v is not None])
    path = url_for(endpoint)
    return f"{path}?{query}" if query else path


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return unit if n == 1 else f"{n} {unit}s"
    return f"{seconds} seconds"
