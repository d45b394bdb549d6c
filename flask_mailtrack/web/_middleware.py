"""
Tracking Middleware
===================

Serves open pixels and click redirects in front of any WSGI application:
Django, Pyramid, Bottle, Falcon, or a bare WSGI callable. Requests below the
paths of the configured ``base_open_tracking_url`` and
``base_click_tracking_url`` are answered by the middleware; every other
request goes to the wrapped application untouched.

Use it when the application that sends the email is not a Flask app, or to
serve tracking from a small dedicated WSGI server. In a Flask app use
:class:`~flask_mailtrack.MailTrack`, which registers a blueprint instead.

.. code-block:: python

    from django.core.wsgi import get_wsgi_application
    from flask_mailtrack import TrackingMiddleware

    application = TrackingMiddleware(
        get_wsgi_application(),
        secret_key=os.environ["MAILTRACK_SECRET_KEY"],
        base_open_tracking_url="https://example.com/mailtrack/o/",
        base_click_tracking_url="https://example.com/mailtrack/c/",
    )

Events are delivered through the :mod:`~flask_mailtrack.signals`, sent with
the middleware instance as sender (the ``request`` they carry, a werkzeug
:class:`~werkzeug.wrappers.Request`, is built only when a receiver is
connected). The decision is the sans-IO handler's,
:func:`~flask_mailtrack.web.decide`. The middleware also leaves its work in the
WSGI environ, for logging or an outer middleware: ``mailtrack.kind``
(``"open"`` or ``"click"``), ``mailtrack.result`` (the
:class:`~flask_mailtrack.TrackingResult` of a valid hit, else ``None``) and
``mailtrack.error`` (the :exc:`~flask_mailtrack.InvalidToken` of a refused
one, else ``None``).

The paths are matched against ``SCRIPT_NAME`` + ``PATH_INFO``, the full path
the base URLs name, so the middleware works the same whether the application
is mounted at the root or below a prefix.

.. admonition:: Proxy headers

    The client address in the request data is ``REMOTE_ADDR`` unless
    ``trusted_proxies`` is set. Behind reverse proxies (a load balancer,
    nginx, a CDN) set it to the number of proxies that append to
    ``X-Forwarded-For``; only the entry the outermost of them wrote is used.
    Never set it higher than the real number of proxies: every entry beyond
    them is written by the client, who can put any address there. If a
    :class:`~werkzeug.middleware.proxy_fix.ProxyFix` already rewrites
    ``REMOTE_ADDR`` outside this middleware, leave ``trusted_proxies`` at 0.

.. versionadded:: 0.1
"""

from __future__ import annotations

import typing as t

from werkzeug.wrappers import Request

from ..configuration import Configuration
from ..exceptions import MissingSettingError
from ..tracker import Tracker
from ._handler import Routes
from ._wsgi import full_path
from ._wsgi import serve_hit

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment


class TrackingMiddleware:
    """Serve tracking pixels and click redirects in front of a WSGI app.

    :param app: The WSGI application to wrap.
    :param configuration: The settings; the base URLs decide which paths are
        served.
    :param tracker: A :class:`~flask_mailtrack.Tracker` to use (its
        configuration is then the middleware's).
    :param configuration_kwargs: Build the configuration from these keywords,
        or update ``configuration`` with them.
    :raise TypeError: when both ``tracker`` and a configuration are given.
    :raise MissingSettingError: when neither base URL is configured
        (a :exc:`ValueError` too).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        configuration: Configuration | None = None,
        tracker: Tracker | None = None,
        **configuration_kwargs: t.Any,
    ) -> None:
        if tracker is not None:
            if configuration is not None or configuration_kwargs:
                raise TypeError("Pass either a tracker or a configuration, not both.")
        else:
            if configuration is None:
                configuration = Configuration(**configuration_kwargs)
            elif configuration_kwargs:
                configuration = configuration.replace(**configuration_kwargs)
            tracker = Tracker(configuration)
        if tracker.open_base is None and tracker.click_base is None:
            raise MissingSettingError(
                "TrackingMiddleware needs base_open_tracking_url or"
                " base_click_tracking_url: their paths are the paths it serves."
            )
        #: The wrapped WSGI application.
        self.app = app
        #: The tracker that decodes tokens.
        self.tracker = tracker
        #: The paths it serves, from the tracker's base URLs.
        self.routes = Routes(tracker)

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> t.Iterable[bytes]:
        path = full_path(environ)
        found = self.routes.match(path)
        if found is None:
            return self.app(environ, start_response)
        return serve_hit(
            self.tracker,
            environ,
            start_response,
            found,
            path=path,
            sender=self,
            make_request=Request,
        )
