"""The standalone tracking server.

A complete Flask app that serves the tracking links, records every event in
an :class:`~flask_mailtrack.EventStore`, posts them to a webhook when one is
configured, and shows statistics. It is configured by ``MAILTRACK_*``
environment variables, the names of the Flask config keys:

``MAILTRACK_SECRET_KEY``
    Signing key (``mailtrack keygen`` prints one). Required, except with
    ``--demo``, which makes one for the session.
``MAILTRACK_BASE_URL``
    The external URL the links are made on (``https://t.example.com``);
    default: the host of the request.
``MAILTRACK_DATABASE``
    SQLite file of the events (and the webhook outbox); default
    ``./mailtrack.sqlite3``.
``MAILTRACK_WEBHOOK_URL``, ``MAILTRACK_WEBHOOK_SECRET``
    Post every event to this URL, signed with this ``whsec_...`` secret.
``MAILTRACK_WEBHOOK_DELIVER``
    ``false`` only queues the events in the outbox, for one ``mailtrack
    deliver`` process to post them; default ``true``.
``MAILTRACK_TRUSTED_PROXIES``
    Number of reverse proxies whose ``X-Forwarded-For`` is trusted.
``MAILTRACK_STATS_PASSWORD``
    Password of ``/stats`` (HTTP basic auth, any user name). Without it the
    stats pages answer 404, except in demo mode.

Run it with ``mailtrack serve`` (development server), or in production::

    gunicorn -w 4 'flask_mailtrack.server:create_app()'

Routes: the tracking links under ``/mailtrack/`` (``MAILTRACK_URL_PREFIX``),
``/healthz``, ``/stats`` (HTML with a chart), ``/stats.json``,
``/events.json`` and ``/stats/chart.svg``; in demo mode also ``/`` (a sample
newsletter tracked with the server's own links, the live list of its events
and the stats) and the pages under ``/demo/``.
"""

from __future__ import annotations

import datetime
import functools
import hmac
import logging
import math
import os
import secrets
import signal
import threading
import typing as t

from flask import abort
from flask import current_app
from flask import Flask
from flask import jsonify
from flask import render_template
from flask import request
from flask import url_for
from werkzeug.wrappers import Response

from ..configuration import ConfigKeys
from ..configuration import TRUE_WORDS
from ..events._from_settings import find_receiver
from ..events._store import EventStore
from ..events._webhooks import WebhookSender
from ..extension import get_state
from ..extension import MailTrack

logger = logging.getLogger("flask_mailtrack.server")

#: Default of ``MAILTRACK_DATABASE`` for the standalone server.
DEFAULT_DATABASE = "mailtrack.sqlite3"

#: Chart windows of the stats pages: name → (bucket seconds, buckets).
CHART_WINDOWS: dict[str, tuple[int, int]] = {
    "1h": (60, 60),
    "24h": (3600, 24),
    "30d": (86400, 30),
}

#: Query arguments of the stats endpoints that are not metadata filters
#: (``_`` is for cache busting).
_RESERVED_ARGS = frozenset(("since", "until", "limit", "window", "_"))


class ServerState:
    """What the server keeps in ``app.extensions["mailtrack_server"]``."""

    def __init__(
        self, store: EventStore, *, demo: bool, generated_secret: bool
    ) -> None:
        #: The event store every event is recorded in.
        self.store = store
        #: Whether the demo pages are served (and the stats are open).
        self.demo = demo
        #: Whether the signing key was made up for this session.
        self.generated_secret = generated_secret


def environ_settings(environ: t.Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``MAILTRACK_*`` settings among environment variables."""
    environ = os.environ if environ is None else environ
    return {
        key: value
        for key, value in environ.items()
        if key.startswith("MAILTRACK_") and ConfigKeys.is_known(key)
    }


def create_app(
    config: t.Mapping[str, t.Any] | None = None,
    *,
    demo: bool | None = None,
    environ: t.Mapping[str, str] | None = None,
) -> Flask:
    """The tracking server app.

    :param config: Settings that win over the environment (any Flask config
        key, and ``MAILTRACK_*`` keys).
    :param demo: Serve the demo pages; default ``MAILTRACK_DEMO``.
    :param environ: Read ``MAILTRACK_*`` settings from this mapping instead
        of :data:`os.environ`.
    :raise RuntimeError: no signing key outside demo mode.
    """
    app = Flask(__name__)
    app.config.update(environ_settings(environ))
    app.config.update(config or {})
    if demo is None:
        demo = str(app.config.get(ConfigKeys.DEMO, "")).strip().lower() in TRUE_WORDS
    app.config[ConfigKeys.DEMO] = demo
    app.config.setdefault(ConfigKeys.DATABASE, DEFAULT_DATABASE)
    generated_secret = False
    if not (
        app.config.get(ConfigKeys.SECRET_KEY)
        or app.config.get(ConfigKeys.ENCRYPTION_KEY)
    ):
        if not demo:
            raise RuntimeError(
                f"Set {ConfigKeys.SECRET_KEY} to the key that signs tracking"
                " links (`mailtrack keygen` prints a new one)."
            )
        # A demo needs no setup; its links die with the process, which is
        # acceptable for a demo and said on start.
        app.config[ConfigKeys.SECRET_KEY] = secrets.token_urlsafe(32)
        generated_secret = True
        logger.warning(
            "No %s: using a random key for this session. Links made now stop"
            " working when the server stops.",
            ConfigKeys.SECRET_KEY,
        )
    MailTrack(app)
    store = find_receiver(get_state(app).receivers, EventStore)
    assert store is not None  # MAILTRACK_DATABASE always has a value here
    app.extensions["mailtrack_server"] = ServerState(
        store, demo=demo, generated_secret=generated_secret
    )
    _add_routes(app)
    return app


def get_server_state(app: Flask) -> ServerState:
    """The :class:`ServerState` of a server app."""
    return t.cast(ServerState, app.extensions["mailtrack_server"])


def close_app(app: Flask, timeout: float = 5.0) -> None:
    """Close the app's receivers: deliver due webhooks for at most
    ``timeout`` seconds, close the databases."""
    for receiver in get_state(app).receivers:
        if isinstance(receiver, EventStore):
            receiver.close()
        else:
            receiver.close(timeout)


# -- request helpers -------------------------------------------------------------


def parse_time(text: str) -> float:
    """Seconds since the epoch from a number or an ISO 8601 date or time
    (UTC unless it has an offset).

    :raise ValueError: anything else.
    """
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ValueError(f"Not a time: {text!r}")
        return value
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


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
        app = _current_app()
        if not get_server_state(app).demo:
            password = app.config.get(ConfigKeys.STATS_PASSWORD)
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


def _current_app() -> Flask:
    return t.cast(Flask, current_app._get_current_object())  # type: ignore[attr-defined]


def _state() -> ServerState:
    return get_server_state(_current_app())


def _window() -> tuple[str, int, int]:
    default = "1h" if _state().demo else "24h"
    name = request.args.get("window", default)
    if name not in CHART_WINDOWS:
        abort(400, f"Unknown window; use one of {', '.join(CHART_WINDOWS)}.")
    bucket, count = CHART_WINDOWS[name]
    return name, bucket, count


# -- the chart -------------------------------------------------------------------


def chart(
    timeline: t.Sequence[t.Mapping[str, int]],
    *,
    bucket_seconds: int,
    width: int = 640,
    height: int = 180,
) -> dict[str, t.Any]:
    """Geometry of the opens/clicks bar chart drawn by
    ``mailtrack/chart.svg``: two bars per bucket, scaled to the busiest."""
    top, bottom, left = 12, 24, 36
    plot_height = height - top - bottom
    plot_width = width - left - 8
    peak = max([1] + [max(b["opens"], b["clicks"]) for b in timeline])
    slot = plot_width / max(1, len(timeline))
    bar = max(1.0, slot * 0.4)
    bars = []
    for index, bucket in enumerate(timeline):
        moment = _format_bucket(bucket["start"], bucket_seconds)
        for offset, kind in ((0.1, "opens"), (0.5, "clicks")):
            value = bucket[kind]
            bar_height = plot_height * value / peak
            bars.append(
                {
                    "x": round(left + index * slot + slot * offset, 2),
                    "y": round(top + plot_height - bar_height, 2),
                    "width": round(bar, 2),
                    "height": round(bar_height, 2),
                    "kind": kind,
                    "title": f"{moment}: {value} {kind}",
                }
            )
    first = timeline[0]["start"] if timeline else None
    last = timeline[-1]["start"] if timeline else None
    return {
        "width": width,
        "height": height,
        "top": top,
        "left": left,
        "baseline": top + plot_height,
        "right": width - 8,
        "peak": peak,
        "bars": bars,
        "first": _format_bucket(first, bucket_seconds) if first is not None else "",
        "last": _format_bucket(last, bucket_seconds) if last is not None else "",
    }


def _format_bucket(start: int, bucket_seconds: int) -> str:
    moment = datetime.datetime.fromtimestamp(start, datetime.timezone.utc)
    if bucket_seconds >= 86400:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _timeline(window_buckets: tuple[int, int], query: dict[str, t.Any]) -> t.Any:
    bucket, count = window_buckets
    now = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    end = (now // bucket + 1) * bucket
    filters = {k: v for k, v in query.items() if k not in ("since", "until")}
    return _state().store.timeline(
        bucket_seconds=bucket, since=end - bucket * count, until=end, **filters
    )


# -- routes ----------------------------------------------------------------------

#: The demo newsletter's articles: slug, title, text.
DEMO_ARTICLES = (
    ("spring-sale", "The spring sale is on", "Everything in the shop, 20% off."),
    ("new-arrivals", "New arrivals", "Linen shirts, straw hats, canvas bags."),
    ("journal", "From the journal", "How our linen is woven, from field to shirt."),
)


def _add_routes(app: Flask) -> None:
    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", content_type="text/plain; charset=utf-8")

    @app.get("/")
    def index() -> t.Any:
        if not _state().demo:
            return Response(
                "flask_mailtrack tracking server.\n",
                content_type="text/plain; charset=utf-8",
            )
        return render_template(
            "mailtrack/demo.html",
            reader=secrets.token_hex(4),
            generated_secret=_state().generated_secret,
        )

    @app.get("/demo/email")
    def demo_email() -> t.Any:
        if not _state().demo:
            abort(404)
        reader = request.args.get("r", "reader")[:32]
        articles = [
            {
                "title": title,
                "text": text,
                "url": url_for("demo_landing", slug=slug, _external=True),
            }
            for slug, title, text in DEMO_ARTICLES
        ]
        return render_template(
            "mailtrack/demo_email.html",
            articles=articles,
            metadata={"campaign": "demo", "recipient": reader},
        )

    @app.get("/demo/landing/<slug>")
    def demo_landing(slug: str) -> t.Any:
        titles = {s: title for s, title, _ in DEMO_ARTICLES}
        if not _state().demo or slug not in titles:
            abort(404)
        return render_template("mailtrack/demo_landing.html", title=titles[slug])

    @app.get("/stats")
    @_stats_access
    def stats_page() -> t.Any:
        query = _query()
        name, bucket, count = _window()
        timeline = _timeline((bucket, count), query)
        return render_template(
            "mailtrack/stats.html",
            stats=_state().store.stats(**query),
            chart=chart(timeline, bucket_seconds=bucket),
            window=name,
            window_links=[
                (other, url_for("stats_page", **_args(window=other)))
                for other in CHART_WINDOWS
            ],
            demo=_state().demo,
        )

    @app.get("/stats.json")
    @_stats_access
    def stats_json() -> t.Any:
        return jsonify(_state().store.stats(**_query()))

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
        events = _state().store.events(limit=limit, **query)
        response = jsonify({"events": events})
        response.headers["Cache-Control"] = "no-store"
        return response


# -- command line ----------------------------------------------------------------


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    demo: bool = False,
    config: t.Mapping[str, t.Any] | None = None,
    echo: t.Callable[[str], None] = print,
) -> None:
    """Run the server with werkzeug's threaded development server until
    interrupted (``mailtrack serve``), then flush webhooks and close."""
    from werkzeug.serving import run_simple

    app = create_app(config, demo=demo or None)
    state = get_server_state(app)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    root = f"http://{shown_host}:{port}"
    # create_app has logged it when the key was made up for this session.
    echo(f"Events are recorded in {state.store.path}.")
    webhooks = find_receiver(get_state(app).receivers, WebhookSender)
    if webhooks is not None and not webhooks.deliver:
        echo(
            f"Webhook events are queued in {webhooks.outbox_path} for"
            " `mailtrack deliver`."
        )
    if state.demo:
        echo(f"Demo: open {root}/ in a browser.")
    elif app.config.get(ConfigKeys.STATS_PASSWORD):
        echo(f"Statistics: {root}/stats (password: {ConfigKeys.STATS_PASSWORD}).")
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (systemd, docker stop) stops as Ctrl-C does, so pending
        # events are written and due webhooks flushed on the way out.
        signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        run_simple(host, port, app, threaded=True)
    finally:
        close_app(app)


def _exit_on_signal(signum: int, frame: t.Any) -> None:
    raise SystemExit(0)


def open_store(path: str | None) -> EventStore:
    """The event store at ``path`` for reading; it must exist.

    :raise FileNotFoundError: no database there.
    """
    path = path or DEFAULT_DATABASE
    if path != ":memory:" and not os.path.exists(path):
        raise FileNotFoundError(
            f"No event database at {path!r} (set {ConfigKeys.DATABASE})."
        )
    return EventStore(path)


def format_stats(stats: t.Mapping[str, t.Any]) -> str:
    """The statistics of :meth:`EventStore.stats` as a plain-text report."""

    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value * 100:.1f}%"

    lines = []
    for label, key in (("Opens", "opens"), ("Clicks", "clicks")):
        c = stats[key]
        lines.append(
            f"{label:<7} total {c['total']:>6}  unique {c['unique']:>6}"
            f"   people {c['human']['total']} ({c['human']['unique']} unique),"
            f" machines {c['machine']['total']} ({c['machine']['unique']} unique)"
        )
    ctr = stats["click_through_rate"]
    lines.append(
        f"Click-through (unique clicks / unique opens): {rate(ctr['total'])},"
        f" people only {rate(ctr['human'])}"
    )
    if stats["machine_labels"]:
        labels = ", ".join(f"{k} {v}" for k, v in stats["machine_labels"].items())
        lines.append(f"Machine traffic: {labels}")
    if stats["links"]:
        lines.append("Links (clicks, unique, link):")
        lines.extend(
            f"  {link['total']:>6} {link['unique']:>6}  {link['url']}"
            for link in stats["links"]
        )
    return "\n".join(lines)
