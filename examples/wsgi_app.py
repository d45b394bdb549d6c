"""Open and click tracking in front of a plain WSGI application.

The application below knows nothing about tracking: it shows a sample email
and a landing page. :class:`~flask_mailtrack.TrackingMiddleware` wraps it,
answers ``/mailtrack/o/<token>`` (the pixel) and ``/mailtrack/c/<token>``
(the redirect), and passes every other request through. Events arrive as
blinker signals, here written to the log.

Run it from the project root::

    pip install -e .
    python examples/wsgi_app.py [--port 8000]

then open http://127.0.0.1:8000/ (or the port given), which loads the pixel
(an open is logged), and click the link (a click is logged, then the landing
page shows). The port can also be set with the environment variable
``EXAMPLE_PORT`` (the option wins), for instance to run it next to
``mailtrack serve --demo``, which also listens on 8000.

Set ``MAILTRACK_SECRET_KEY`` (``mailtrack keygen`` prints one) and
``MAILTRACK_BASE_URL`` (the address mail clients reach; default
``http://127.0.0.1:<port>``) outside a demo.
"""

from __future__ import annotations

import argparse
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

#: Default port (``EXAMPLE_PORT``, else 8000).
PORT = int(os.environ.get("EXAMPLE_PORT", "8000"))


def base_url(port: int) -> str:
    """Where mail clients reach the server: ``MAILTRACK_BASE_URL``, else
    this machine on ``port``."""
    return os.environ.get("MAILTRACK_BASE_URL", f"http://127.0.0.1:{port}").rstrip("/")


def make_application(base: str) -> TrackingMiddleware:
    """The application to serve on ``base``: tracking in front of a site
    that knows nothing about it."""
    tracker = Tracker(
        Configuration(
            secret_key=os.environ.get(
                "MAILTRACK_SECRET_KEY", "example-only-key-change-me"
            ),
            base_open_tracking_url=base + "/mailtrack/o/",
            base_click_tracking_url=base + "/mailtrack/c/",
        )
    )

    def email_html(recipient: str) -> str:
        """The sample email, with a tracked link and the open pixel."""
        metadata = {"recipient": recipient, "campaign": "demo"}
        link = tracker.click_url(base + "/landing", metadata)
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
            status = "200 OK"
            body = "<!doctype html><title>Offer</title><h1>The offer</h1>"
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

    middleware = TrackingMiddleware(app, tracker=tracker)
    # Receivers for this middleware only (it is the sender of its signals).
    email_opened.connect(log_open, sender=middleware, weak=False)
    link_clicked.connect(log_click, sender=middleware, weak=False)
    tracking_failed.connect(log_failure, sender=middleware, weak=False)
    return middleware


def log_open(sender: object, result: TrackingResult, **extra: t.Any) -> None:
    logger.info("open %s machine=%s", result.metadata, result.machine)


def log_click(sender: object, result: TrackingResult, **extra: t.Any) -> None:
    logger.info("click %s -> %s", result.metadata, result.tracked_url)


def log_failure(sender: object, reason: str, kind: str, **extra: t.Any) -> None:
    logger.warning("refused %s token: %s", kind, reason)


#: Where mail clients reach the server imported by a WSGI server (gunicorn
#: wsgi_app:application), whose port this module cannot know.
BASE_URL = base_url(PORT)

#: The application for a WSGI server.
application = make_application(BASE_URL)


def main(argv: t.Sequence[str] | None = None) -> None:
    """Serve the application with werkzeug's development server."""
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port",
        type=int,
        default=PORT,
        help="port to listen on (default: EXAMPLE_PORT, else 8000)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    run_simple("127.0.0.1", args.port, make_application(base_url(args.port)))


if __name__ == "__main__":
    main()
