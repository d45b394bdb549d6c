"""Open and click tracking in front of a plain WSGI application.

The application below knows nothing about tracking: it shows a sample email
and a landing page. :class:`~flask_mailtrack.TrackingMiddleware` wraps it,
answers ``/mailtrack/o/<token>`` (the pixel) and ``/mailtrack/c/<token>``
(the redirect), and passes every other request through. Events arrive as
blinker signals, here written to the log.

Run it from the project root::

    python examples/wsgi_app.py

then open http://127.0.0.1:8000/, which loads the pixel (an open is logged),
and click the link (a click is logged, then the landing page shows).

Set ``MAILTRACK_SECRET_KEY`` (``mailtrack keygen`` prints one) and
``MAILTRACK_BASE_URL`` (the address mail clients reach) outside a demo.
"""

from __future__ import annotations

import html
import logging
import os
import typing as t

from flask_mailtrack import Configuration
from flask_mailtrack import email_opened
from flask_mailtrack import link_clicked
from flask_mailtrack import Tracker
from flask_mailtrack import tracking_failed
from flask_mailtrack import TrackingMiddleware
from flask_mailtrack import TrackingResult

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment

logger = logging.getLogger("wsgi_app")

BASE_URL = os.environ.get("MAILTRACK_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

configuration = Configuration(
    secret_key=os.environ.get("MAILTRACK_SECRET_KEY", "example-only-key-change-me"),
    base_open_tracking_url=BASE_URL + "/mailtrack/o/",
    base_click_tracking_url=BASE_URL + "/mailtrack/c/",
)
tracker = Tracker(configuration)


def email_html(recipient: str) -> str:
    """The sample email, with a tracked link and the open pixel."""
    metadata = {"recipient": recipient, "campaign": "demo"}
    link = tracker.click_url(BASE_URL + "/landing", metadata)
    pixel = tracker.open_url(metadata)
    return (
        "<!doctype html><title>Sample email</title>"
        f"<p>Hello {html.escape(recipient)},</p>"
        f'<p><a href="{html.escape(link)}">See the offer</a></p>'
        f'<img src="{html.escape(pixel)}" width="1" height="1" alt="">'
    )


def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    """The application being wrapped: any WSGI callable."""
    path = environ.get("PATH_INFO", "/")
    if path == "/":
        status, body = "200 OK", email_html("reader@example.com")
    elif path == "/landing":
        status, body = "200 OK", "<!doctype html><title>Offer</title><h1>The offer</h1>"
    else:
        status, body = "404 Not Found", "<!doctype html><title>Not found</title>"
    data = body.encode("utf-8")
    start_response(
        status,
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(data))),
        ],
    )
    return [data]


#: The application to serve: tracking in front of ``app``.
application = TrackingMiddleware(app, tracker=tracker)


@email_opened.connect_via(application)
def log_open(sender: object, result: TrackingResult, **extra: t.Any) -> None:
    logger.info("open %s machine=%s", result.metadata, result.machine)


@link_clicked.connect_via(application)
def log_click(sender: object, result: TrackingResult, **extra: t.Any) -> None:
    logger.info("click %s -> %s", result.metadata, result.tracked_url)


@tracking_failed.connect_via(application)
def log_failure(sender: object, reason: str, kind: str, **extra: t.Any) -> None:
    logger.warning("refused %s token: %s", kind, reason)


if __name__ == "__main__":
    from werkzeug.serving import run_simple

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    run_simple("127.0.0.1", 8000, application)
