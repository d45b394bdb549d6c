"""The statistics pages: ``/stats`` (HTML with a chart), ``/stats.json``,
``/events.json`` and ``/stats/chart.svg``, read from the event store.

Open in demo mode; otherwise behind HTTP basic auth with
``MAILTRACK_STATS_PASSWORD``, and answered 404 when no password is set.
"""

from __future__ import annotations

import datetime
import functools
import hmac
import typing as t

from flask import abort
from flask import current_app
from flask import Flask
from flask import jsonify
from flask import render_template
from flask import request
from flask import url_for
from werkzeug.wrappers import Response

from .._isotime import parse_time
from ..configuration import ConfigKeys
from ._chart import chart
from ._chart import CHART_WINDOWS
from ._state import current_state

#: Query arguments of the stats endpoints that are not metadata filters
#: (``_`` is for cache busting).
_RESERVED_ARGS = frozenset(("since", "until", "limit", "window", "_"))


def add_stats_routes(app: Flask) -> None:
    """Add the statistics pages to the server ``app``."""

    @app.get("/stats")
    @_stats_access
    def stats_page() -> t.Any:
        query = _query()
        name, bucket, count = _window()
        timeline = _timeline((bucket, count), query)
        return render_template(
            "mailtrack/stats.html",
            stats=current_state().store.stats(**query),
            chart=chart(timeline, bucket_seconds=bucket),
            window=name,
            window_links=[
                (other, url_for("stats_page", **_args(window=other)))
                for other in CHART_WINDOWS
            ],
            demo=current_state().demo,
        )

    @app.get("/stats.json")
    @_stats_access
    def stats_json() -> t.Any:
        return jsonify(current_state().store.stats(**_query()))

    @app.get("/stats/chart.svg")
    @_stats_access
    def stats_chart() -> t.Any:
        query = _query()
        _, bucket, count = _window()
        svg = render_template(
            "mailtrack/chart.svg",
            chart=chart(_timeline((bucket, count), query), bucket_seconds=bucket),
        )
        return Response(
            svg,
            content_type="image/svg+xml; charset=utf-8",
            headers={"Cache-Control": "no-store"},
        )

    @app.get("/events.json")
    @_stats_access
    def events_json() -> t.Any:
        query = _query()
        try:
            limit = min(max(int(request.args.get("limit", 50)), 1), 1000)
        except ValueError:
            abort(400, "limit must be a number.")
        events = current_state().store.events(limit=limit, **query)
        response = jsonify({"events": events})
        response.headers["Cache-Control"] = "no-store"
        return response


def _query() -> dict[str, t.Any]:
    """``since``, ``until`` and metadata filters from the query string."""
    args = request.args
    query: dict[str, t.Any] = {
        key: value for key, value in args.items() if key not in _RESERVED_ARGS
    }
    if any('"' in key or "\\" in key for key in query):
        abort(400, "Metadata filter names cannot contain quotes or backslashes.")
    for name in ("since", "until"):
        if args.get(name):
            try:
                query[name] = parse_time(args[name])
            except (ValueError, OverflowError):
                abort(400, f"Invalid {name!r}: use seconds or an ISO 8601 time.")
    return query


def _args(**changes: str) -> dict[str, t.Any]:
    """The query arguments of the request, with ``changes``."""
    args: dict[str, t.Any] = request.args.to_dict()
    args.update(changes)
    return args


def _stats_access(view: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    """Open in demo mode; otherwise HTTP basic auth with
    ``MAILTRACK_STATS_PASSWORD``, and 404 when no password is set."""

    @functools.wraps(view)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        if not current_state().demo:
            password = current_app.config.get(ConfigKeys.STATS_PASSWORD)
            if not password:
                abort(404)
            auth = request.authorization
            given = auth.password if auth is not None and auth.password else ""
            # Both sides as bytes of the same encoding; compare_digest's time
            # does not depend on where they differ.
            if not hmac.compare_digest(
                given.encode("utf-8"), str(password).encode("utf-8")
            ):
                return Response(
                    "Authentication required.\n",
                    401,
                    {
                        "WWW-Authenticate": 'Basic realm="mailtrack stats",'
                        ' charset="UTF-8"',
                        "Content-Type": "text/plain; charset=utf-8",
                    },
                )
        return view(*args, **kwargs)

    return wrapper


def _window() -> tuple[str, int, int]:
    default = "1h" if current_state().demo else "24h"
    name = request.args.get("window", default)
    if name not in CHART_WINDOWS:
        abort(400, f"Unknown window; use one of {', '.join(CHART_WINDOWS)}.")
    bucket, count = CHART_WINDOWS[name]
    return name, bucket, count


def _timeline(window_buckets: tuple[int, int], query: dict[str, t.Any]) -> t.Any:
    bucket, count = window_buckets
    now = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    end = (now // bucket + 1) * bucket
    filters = {k: v for k, v in query.items() if k not in ("since", "until")}
    return current_state().store.timeline(
        bucket_seconds=bucket, since=end - bucket * count, until=end, **filters
    )
