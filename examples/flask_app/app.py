"""A Flask app that sends a tracked newsletter with Flask-Mailman and logs
its opens and clicks through flask_mailtrack's signals.

Run it from the project root::

    pip install -e '.[examples]'
    python examples/flask_app/app.py [--port 5000] [--smtp-port 8025]

It starts a local SMTP server on 127.0.0.1:8025 that keeps the messages it
receives, and the app on http://127.0.0.1:5000. Open that page, send the
newsletter, open it from the inbox (the pixel records an open), click a link
(the redirect records a click), and watch the events appear.

The ports can also be set with the environment variables ``EXAMPLE_PORT``
and ``EXAMPLE_SMTP_PORT`` (the options win), for instance to run it next to
``mailtrack serve --demo`` or another example.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import typing as t
from email import message_from_bytes
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from flask import abort
from flask import current_app
from flask import Flask
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_mailman import EmailMultiAlternatives
from flask_mailman import Mail
from flask_mailtrack import email_opened
from flask_mailtrack import link_clicked
from flask_mailtrack import MailTrack
from flask_mailtrack import tracking_failed
from flask_mailtrack import TrackingResult
from werkzeug.wrappers import Response

logger = logging.getLogger("mailtrack_example")

mail = Mail()
mailtrack = MailTrack()


class Inbox:
    """An aiosmtpd handler that keeps every message it receives: a local
    SMTP debugging server."""

    def __init__(self) -> None:
        #: The received messages, oldest first.
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: t.Any, session: t.Any, envelope: t.Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(t.cast(EmailMessage, message))
        logger.info("SMTP: received %r for %s", message["Subject"], envelope.rcpt_tos)
        return "250 Message accepted for delivery"


def start_smtp_server(inbox: Inbox, port: int = 8025) -> Controller:
    """Start a local SMTP server on ``127.0.0.1:port`` delivering to ``inbox``."""
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


def create_app(
    config: dict[str, t.Any] | None = None, inbox: Inbox | None = None
) -> Flask:
    """The example app. ``inbox`` is shown at ``/inbox`` when given."""
    app = Flask(__name__)
    app.config.update(
        # The tracking links are signed with SECRET_KEY; set a real one (such
        # as `flask mailtrack keygen` prints) outside this demo.
        SECRET_KEY=os.environ.get("SECRET_KEY", "demo only: not a secret"),
        # Always SMTP, also when TESTING (Flask-Mailman then keeps mail in memory).
        MAIL_BACKEND="smtp",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=8025,
        MAIL_DEFAULT_SENDER="newsletter@example.com",
        MAIL_TIMEOUT=10,
    )
    app.config.update(config or {})
    mail.init_app(app)
    mailtrack.init_app(app)
    #: The latest tracking events of this app, newest last (a real app
    #: would store them: see flask_mailtrack's EventStore). Bounded: anyone
    #: can request tracking URLs, valid or not, as often as they like.
    events: collections.deque[dict[str, t.Any]] = collections.deque(maxlen=1000)
    app.extensions["example_events"] = events
    app.extensions["example_inbox"] = inbox

    # Receivers are connected for this app only (sender=app), so several
    # apps in one process each see their own events.
    def on_open(sender: Flask, result: TrackingResult, **extra: t.Any) -> None:
        events.append(_event("open", result))
        sender.logger.info("Opened by %s", result.metadata.get("recipient"))

    def on_click(sender: Flask, result: TrackingResult, **extra: t.Any) -> None:
        events.append(_event("click", result))
        sender.logger.info(
            "%s clicked %s", result.metadata.get("recipient"), result.tracked_url
        )

    def on_failure(sender: Flask, reason: str, kind: str, **extra: t.Any) -> None:
        events.append({"type": f"invalid {kind}", "reason": reason})

    email_opened.connect(on_open, sender=app, weak=False)
    link_clicked.connect(on_click, sender=app, weak=False)
    tracking_failed.connect(on_failure, sender=app, weak=False)

    @app.get("/")
    def index() -> str:
        inbox = current_app.extensions["example_inbox"]
        return render_template(
            "index.html",
            events=events,
            messages=inbox.messages if inbox is not None else None,
        )

    @app.post("/send")
    def send() -> Response:
        recipient = request.form.get("recipient") or "ann@example.com"
        send_newsletter(recipient)
        return redirect(url_for("index"))

    @app.get("/inbox/<int:number>")
    def message(number: int) -> str:
        inbox = current_app.extensions["example_inbox"]
        if inbox is None or not 0 <= number < len(inbox.messages):
            abort(404)
        part = inbox.messages[number].get_body(("html",))
        # Served as the mail client would show it: the pixel loads, and the
        # links go through the tracking redirect.
        return t.cast(str, part.get_content() if part else "")

    @app.get("/welcome")
    def welcome() -> str:
        return render_template("welcome.html")

    @app.get("/events")
    def list_events() -> list[dict[str, t.Any]]:
        return list(events)

    return app


def send_newsletter(recipient: str) -> None:
    """Render the newsletter for ``recipient`` with tracked links and the
    pixel, and send it through Flask-Mailman."""
    metadata = {"recipient": recipient, "campaign": "spring"}
    html = render_template("newsletter.html", metadata=metadata)
    message = EmailMultiAlternatives(
        subject="Our spring newsletter",
        body="Read it online: " + url_for("welcome", _external=True),
        to=[recipient],
    )
    message.attach_alternative(html, "text/html")
    message.send()


def _event(kind: str, result: TrackingResult) -> dict[str, t.Any]:
    return {
        "type": kind,
        "recipient": result.metadata.get("recipient"),
        "url": result.tracked_url,
        "machine": result.machine,
    }


def main(argv: t.Sequence[str] | None = None) -> None:
    """Run the SMTP server and the app until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("EXAMPLE_PORT", "5000")),
        help="port of the app (default: EXAMPLE_PORT, else 5000)",
    )
    parser.add_argument(
        "--smtp-port",
        type=int,
        default=int(os.environ.get("EXAMPLE_SMTP_PORT", "8025")),
        help="port of the local SMTP server (default: EXAMPLE_SMTP_PORT, else 8025)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    inbox = Inbox()
    smtp = start_smtp_server(inbox, port=args.smtp_port)
    try:
        app = create_app({"MAIL_PORT": args.smtp_port}, inbox=inbox)
        app.run(host="127.0.0.1", port=args.port)
    finally:
        smtp.stop()


if __name__ == "__main__":
    main()
