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
    default: the host of the request. In demo mode the newsletter's
    articles link to it (default: the address ``mailtrack serve`` listens
    on), never to the request's host.
``MAILTRACK_DATABASE``
    SQLite file of the events (and the webhook outbox), or a
    ``postgresql://`` URL (then set ``MAILTRACK_JOURNAL``, and with webhooks
    ``MAILTRACK_WEBHOOK_OUTBOX``); default ``./mailtrack.sqlite3``.
``MAILTRACK_WEBHOOK_URL``, ``MAILTRACK_WEBHOOK_SECRET``
    Post every event to this URL, signed with this ``whsec_...`` secret.
``MAILTRACK_WORKER``
    ``embedded`` (default): a thread of each server process feeds the
    event store and the webhooks from the journal; ``external``: the server
    only journals events, for one ``mailtrack worker`` process per machine.
``MAILTRACK_JOURNAL``
    The journal folder; default ``<MAILTRACK_DATABASE>-events`` (a file
    path only).
``MAILTRACK_TRUSTED_PROXIES``
    Number of reverse proxies whose ``X-Forwarded-For`` is trusted.
``MAILTRACK_PROXY_HEADER``
    The header those proxies write the client address into, when it is not
    ``X-Forwarded-For`` (``X-Real-IP``, ``Forwarded``, ``CF-Connecting-IP``).
``MAILTRACK_STATS_PASSWORD``
    Password of ``/stats`` (HTTP basic auth, any user name). Without it the
    stats pages answer 404, except in demo mode.

Run it with ``mailtrack serve`` (development server), or in production::

    MAILTRACK_WORKER=external gunicorn -w 4 'flask_mailtrack.server:create_app()'
    mailtrack worker

Routes: the tracking links under ``/mailtrack/`` (``MAILTRACK_URL_PREFIX``),
answered without Flask (no request context; the signals' sender is still the
app), ``/healthz``, the dashboard (``/stats``: campaigns;
``/stats/campaign``, ``/stats/recipient``) and its JSON
(``/stats/campaigns.json``, ``/stats/campaign.json``,
``/stats/recipient.json``), ``/stats.json`` and ``/events.json``; in demo
mode also ``/`` (a sample
newsletter tracked with the server's own links, the live list of its events
and the stats) and the pages under ``/demo/``.
"""

from __future__ import annotations

import logging
import secrets
import typing as t

from flask import Flask
from werkzeug.wrappers import Response

from ..configuration import ConfigKeys
from ..configuration import environ_settings
from ..configuration import parse_bool
from ..events import EventStore
from ..events._from_settings import event_store
from ..exceptions import MissingSettingError
from ..extension import get_state
from ..extension import MailTrack
from ._dashboard import add_dashboard_pages
from ._dashboard_api import add_dashboard_api_routes
from ._demo import add_demo_routes
from ._fast_path import TrackingDispatcher
from ._state import ServerState
from ._stats import add_stats_routes

logger = logging.getLogger("flask_mailtrack.server")

#: Default of ``MAILTRACK_DATABASE`` for the standalone server.
DEFAULT_DATABASE = "mailtrack.sqlite3"


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
    :raise MissingSettingError: no signing key outside demo mode (also a
        :exc:`RuntimeError`).
    :raise ConfigurationError: a setting cannot be used.
    """
    app = Flask(__name__)
    app.config.update(environ_settings(environ))
    app.config.update(config or {})
    if demo is None:
        demo = parse_bool(app.config.get(ConfigKeys.DEMO), name=ConfigKeys.DEMO)
    app.config[ConfigKeys.DEMO] = demo
    app.config.setdefault(ConfigKeys.DATABASE, DEFAULT_DATABASE)
    generated_secret = False
    if not (
        app.config.get(ConfigKeys.SECRET_KEY)
        or app.config.get(ConfigKeys.ENCRYPTION_KEY)
    ):
        if not demo:
            raise MissingSettingError(
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
    # Tracking hits are answered before Flask, as the middleware answers
    # them; see _fast_path for what that leaves out.
    app.wsgi_app = TrackingDispatcher(app)  # type: ignore[method-assign]
    app.extensions["mailtrack_server"] = ServerState(
        _reading_store(app),
        demo=demo,
        generated_secret=generated_secret,
        demo_root=get_state(app).base_url,
    )
    app.add_url_rule("/healthz", view_func=_healthz, methods=["GET"])
    add_stats_routes(app)
    add_dashboard_pages(app)
    add_dashboard_api_routes(app)
    add_demo_routes(app)
    return app


def _healthz() -> Response:
    return Response("ok\n", content_type="text/plain; charset=utf-8")


def _reading_store(app: Flask) -> EventStore:
    """The store the stats pages read: the embedded worker's own (the only
    one that sees an in-memory database), else one opened for reading."""
    pipeline = get_state(app).pipeline
    for sink in pipeline.sinks if pipeline is not None else ():
        if isinstance(sink, EventStore):
            return sink
    store = event_store(app.config)
    assert store is not None  # MAILTRACK_DATABASE has a default here
    return store


def close_app(app: Flask, timeout: float = 5.0) -> None:
    """Close the app's events pipeline (the embedded worker gets at most
    ``timeout`` seconds to take what was journaled) and its event store."""
    pipeline = get_state(app).pipeline
    try:
        if pipeline is not None:
            pipeline.close(timeout)
    finally:
        # Also called on apps with MailTrack alone, which have no server state.
        server = app.extensions.get("mailtrack_server")
        if server is not None:
            server.store.close()
