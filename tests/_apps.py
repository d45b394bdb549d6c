"""WSGI apps shared by the handler, middleware and fuzz tests."""

from __future__ import annotations

import typing as t

from flask_mailtrack import Tracker
from flask_mailtrack import TrackingMiddleware
from werkzeug.middleware.lint import LintMiddleware

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


def fallback_app(environ: t.Any, start_response: t.Any) -> list[bytes]:
    """The application behind the middleware."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"application"]


def linted(app: WSGIApplication, tracker: Tracker) -> WSGIApplication:
    """:class:`~flask_mailtrack.TrackingMiddleware` in front of ``app``, with
    werkzeug's :class:`~werkzeug.middleware.lint.LintMiddleware` on both
    sides: a PEP 3333 violation of the middleware, towards the server or
    towards the app it passes requests on to, fails the test.
    """
    return LintMiddleware(TrackingMiddleware(LintMiddleware(app), tracker=tracker))
