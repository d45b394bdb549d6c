"""The statistics endpoints ``/stats.json`` and ``/events.json``, read from
the event store, and the access rule of every stats page and endpoint.

Open in demo mode; otherwise behind HTTP basic auth with
``MAILTRACK_STATS_PASSWORD``, and answered 404 when no password is set.
The errors of every ``.json`` endpoint are JSON too.
"""

from __future__ import annotations

import functools
import hmac
import typing as t

from flask import abort
from flask import current_app
from flask import Flask
from flask import jsonify
from flask import request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from .._isotime import parse_time
from ..configuration import ConfigKeys
from ..events._store_backend import check_filter_name
from ..events._store_backend import CLICKED
from ..events._store_backend import OPENED
from ..events._store_backend import QUERY_PARAMETERS
from ..extension import get_state
from ._state import current_state

#: Query arguments every stats endpoint reads besides the metadata filters
#: (``_`` is for cache busting).
_COMMON_ARGS = ("since", "until", "_")

#: Names that are never metadata filters: the store's own parameters.
_RESERVED_ARGS = QUERY_PARAMETERS

#: At most this many metadata filters in one query string: each is a clause
#: of the SQL query, and SQLite limits their number.
_MAX_FILTERS = 20

#: Event types ``/events.json?type=`` accepts.
_EVENT_TYPES = (OPENED, CLICKED)


def add_stats_routes(app: Flask) -> None:
    """Add the statistics endpoints to the server ``app``."""

    @app.errorhandler(HTTPException)
    def json_error(error: HTTPException) -> t.Any:
        # A client of the JSON endpoints reads errors as JSON; pages keep
        # Flask's HTML.
        if not request.path.endswith(".json") or error.code is None:
            return error
        response = jsonify(error=error.name, message=error.description)
        response.status_code = error.code
        for name, value in error.get_headers():
            if name.lower() != "content-type":  # Allow of a 405, ...
                response.headers[name] = value
        return response

    @app.get("/stats.json")
    @stats_access
    def stats_json() -> t.Any:
        stats = current_state().store.stats(**stats_query())
        stats["pipeline"] = _pipeline_stats()
        return jsonify(stats)

    @app.get("/events.json")
    @stats_access
    def events_json() -> t.Any:
        query = stats_query("limit", "type")
        kind = request.args.get("type")
        if kind is not None and kind not in _EVENT_TYPES:
            abort(400, f"Unknown type; use {' or '.join(_EVENT_TYPES)}.")
        try:
            limit = min(max(int(request.args.get("limit", 50)), 1), 1000)
        except ValueError:
            abort(400, "Invalid 'limit': use a number.")
        events = current_state().store.events(limit=limit, type=kind, **query)
        response = jsonify({"events": events})
        response.headers["Cache-Control"] = "no-store"
        return response


def _pipeline_stats() -> dict[str, t.Any] | None:
    """This process's events pipeline: ``dropped`` (events lost to a full
    disk), ``buffered`` (waiting for the disk), ``worker`` (the embedded
    worker's figures, ``None`` when ``mailtrack worker`` runs apart)."""
    pipeline = get_state(current_app._get_current_object()).pipeline  # type: ignore[attr-defined]
    if pipeline is None:
        return None
    stats = pipeline.stats()
    return {key: stats[key] for key in ("mode", "dropped", "buffered", "worker")}


def stats_query(*page_args: str) -> dict[str, t.Any]:
    """``since``, ``until`` and the metadata filters of the query string,
    checked: a 400 for an argument that is neither one of ``page_args`` nor
    a metadata filter name the store accepts.

    :param page_args: The other arguments the page reads itself.
    """
    args = request.args
    known = (*_COMMON_ARGS, *page_args)
    query: dict[str, t.Any] = {}
    for key, values in args.lists():
        if len(values) > 1:
            abort(400, f"{key!r} is given {len(values)} times; give it once.")
        if key in known:
            continue
        if key.startswith("_") or key in _RESERVED_ARGS:
            # Names of the store's parameters would not filter metadata,
            # and "_" names are kept for the pages.
            abort(
                400,
                f"Unknown query argument {key!r}: this page takes"
                f" {', '.join(known)} and metadata filters (whose names do not"
                f" start with '_' nor are {', '.join(sorted(_RESERVED_ARGS))}).",
            )
        try:
            check_filter_name(key)
        except ValueError as error:
            abort(400, str(error))
        query[key] = values[0]
    if len(query) > _MAX_FILTERS:
        abort(400, f"At most {_MAX_FILTERS} metadata filters at once.")
    for name in ("since", "until"):
        if args.get(name):
            try:
                query[name] = parse_time(args[name])
            except (ValueError, OverflowError):
                abort(400, f"Invalid {name!r}: use seconds or an ISO 8601 time.")
    return query


def stats_access(view: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
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
