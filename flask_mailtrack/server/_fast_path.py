"""The server's tracking paths, answered before Flask.

A tracking hit is the server's hot path: a fixed answer (the pixel, a
redirect, a small error page) decided from the path, a few headers and the
peer address. Served as a Flask view it also pays for a request context,
URL matching, the app's request hooks and a werkzeug ``Response``: most of
its cost. :class:`TrackingDispatcher` wraps ``app.wsgi_app`` and answers
``<MAILTRACK_URL_PREFIX>/o/...`` and ``/c/...`` through the WSGI round the
:class:`~flask_mailtrack.TrackingMiddleware` serves
(:func:`~flask_mailtrack.web.serve_hit`); every other request (the demo, the
stats pages, ``/healthz``) goes to Flask.

What the hit gets is what the blueprint of :class:`~flask_mailtrack.MailTrack`
gives: the same tracker decides, the same answers are served, and the
signals have the Flask app as sender, so receivers connected for the app
(the server's own, from its settings) get every event. The blueprint stays
registered: ``url_for("mailtrack.open", ...)`` keeps working, and serves a
path this dispatcher leaves to Flask (``//mailtrack/o/...``, which Flask's
URL map also matches).

What a receiver no longer has: an app or request context (``current_app``,
``flask.request`` and ``g`` are unbound). Its ``request`` argument is the
app's request class built from the environ, only when a receiver is
connected. The app's ``before_request`` and ``after_request`` functions and
Flask's ``request_started`` and ``request_finished`` signals do not run for
a tracking hit. This is why only the standalone server, which owns its app
and its receivers, answers this way, and the extension keeps its blueprint.
"""

from __future__ import annotations

import typing as t

from werkzeug.exceptions import SecurityError
from werkzeug.wsgi import get_host

from ..extension import get_state
from ..extension import ROUTE_SEGMENTS
from ..tokens import CLICK
from ..tokens import OPEN
from ..web import Routes
from ..web._wsgi import full_path
from ..web._wsgi import path_info
from ..web._wsgi import serve_hit

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment
    from flask import Flask


class TrackingDispatcher:
    """Answer a Flask app's tracking paths without Flask; pass every other
    request to ``app.wsgi_app``. Install it with
    ``app.wsgi_app = TrackingDispatcher(app)``, after
    :class:`~flask_mailtrack.MailTrack` is registered on ``app``.

    :param app: The Flask app, with its :class:`~flask_mailtrack.MailTrack`:
        its tracker decodes the tokens, its URL prefix gives the paths, it
        is the signals' sender.
    """

    def __init__(self, app: Flask) -> None:
        state = get_state(app)
        #: The app: the sender of the signals, and its settings.
        self.flask_app = app
        #: The WSGI application every other request goes to.
        self.wsgi_app: WSGIApplication = app.wsgi_app
        #: The tracker that decodes tokens, the blueprint's.
        self.tracker = state.tracker
        # Matched on PATH_INFO, below the app's mount point, as the
        # blueprint's routes are.
        prefix = state.url_prefix
        self.routes = Routes(
            {
                OPEN: f"{prefix}/{ROUTE_SEGMENTS[OPEN]}/",
                CLICK: f"{prefix}/{ROUTE_SEGMENTS[CLICK]}/",
            }
        )

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> t.Iterable[bytes]:
        found = self.routes.match(path_info(environ))
        if found is None or not self._trusted_host(environ):
            return self.wsgi_app(environ, start_response)
        app = self.flask_app
        return serve_hit(
            self.tracker,
            environ,
            start_response,
            found,
            path=full_path(environ),
            sender=app,
            make_request=app.request_class,
        )

    def _trusted_host(self, environ: WSGIEnvironment) -> bool:
        """Whether the ``Host`` passes Flask's ``TRUSTED_HOSTS`` (read on
        each request, as Flask does). Flask answers any other with 400."""
        trusted_hosts = self.flask_app.config.get("TRUSTED_HOSTS")
        if trusted_hosts is None:
            return True
        try:
            get_host(environ, trusted_hosts)
        except SecurityError:
            return False
        return True
