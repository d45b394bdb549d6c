"""WSGI apps shared by the handler, middleware, answer, rewriter and fuzz
tests."""

from __future__ import annotations

import typing as t

from flask_mailtrack import Tracker
from flask_mailtrack import TrackingMiddleware
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client

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


def mt_middleware(**extra: t.Any) -> tuple[Tracker, Client]:
    """A tracker on ``/mt/o/`` and ``/mt/c/`` (``extra`` are more of its
    settings) and a test client of a :class:`~flask_mailtrack.TrackingMiddleware`
    serving it in front of an app that answers 404."""

    def not_found(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b""]

    tracker = Tracker(
        secret_key="review-secret-key-0123456789abcdef",
        base_open_tracking_url="https://t.example.com/mt/o/",
        base_click_tracking_url="https://t.example.com/mt/c/",
        **extra,
    )
    return tracker, Client(TrackingMiddleware(not_found, tracker=tracker))


def drain(app: t.Any, timeout: float = 20.0) -> None:
    """Wait until the embedded worker of a Flask ``app`` (``MailTrack``) has
    written every event journaled so far to its sinks."""
    from flask_mailtrack.extension import get_state

    pipeline = get_state(app).pipeline
    assert pipeline is not None, "the app has no events pipeline"
    assert pipeline.drain(timeout), "the worker did not empty the journal"


def sent_events(app: t.Any) -> list[dict[str, t.Any]]:
    """The ``email.sent`` events a Flask ``app`` (``MailTrack`` with
    ``MAILTRACK_DATABASE``) recorded, once its worker has stored them."""
    from flask_mailtrack import EventStore

    drain(app)
    with EventStore(app.config["MAILTRACK_DATABASE"]) as store:
        return store.events(type="email.sent", limit=None)
