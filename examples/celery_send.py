"""Send a tracked newsletter to many recipients from Celery workers.

The newsletter is scanned once per worker process (``HTMLTemplate``); each
recipient's copy is then rendered with only token making and string joins
(``render``), so sending scales with the number of workers. Nothing is
shared between workers but the settings: tracking tokens carry their own
data, and the tracking server needs no record of what was sent.

Run a worker (any broker; Redis here)::

    export MAILTRACK_SECRET_KEY=...        # the tracking server's key
    export MAILTRACK_BASE_URL=https://t.example.com
    export CELERY_BROKER_URL=redis://localhost:6379/0
    celery -A celery_send worker

and queue a send from anywhere::

    from celery_send import send_newsletter
    send_newsletter.delay("spring-sale", html, ["ada@example.com", ...])

Importing this module needs no broker: the default broker URL is Celery's
in-memory transport, and ``celery_app.conf.task_always_eager = True`` runs
the tasks in the calling process (tests/test_examples_celery.py does).
"""

from __future__ import annotations

import functools
import hashlib
import os
import smtplib
import typing as t
from email.message import EmailMessage

from celery import Celery
from flask_mailtrack import Configuration
from flask_mailtrack import HTMLTemplate
from flask_mailtrack import Tracker
from flask_mailtrack.rewrite import track_text

#: Recipients handled by one task: enough to amortise the scan, small enough
#: to spread a large list over every worker.
CHUNK_SIZE = 500

#: The plain-text version of the newsletter; its URLs are tracked too.
PLAIN_TEXT = "Our spring sale starts today: https://example.com/sale\n"

celery_app = Celery(
    "celery_send", broker=os.environ.get("CELERY_BROKER_URL", "memory://")
)


@functools.lru_cache(maxsize=1)
def tracker() -> Tracker:
    """The worker's tracker, made from the tracking server's settings (the
    same ``MAILTRACK_*`` environment variables) on first use."""
    base_url = os.environ.get("MAILTRACK_BASE_URL", "http://127.0.0.1:8000")
    return Tracker(
        Configuration(
            secret_key=os.environ.get("MAILTRACK_SECRET_KEY", "example-only-key"),
            base_open_tracking_url=base_url.rstrip("/") + "/mailtrack/o/",
            base_click_tracking_url=base_url.rstrip("/") + "/mailtrack/c/",
        )
    )


@functools.lru_cache(maxsize=8)
def _template(digest: str, html: str) -> HTMLTemplate:
    # Keyed by the digest too, so a worker keeps a few newsletters scanned
    # without holding on to every HTML text it ever saw.
    return HTMLTemplate(
        tracker(), html, utm_params={"utm_source": "newsletter", "utm_medium": "email"}
    )


def compiled(html: str) -> HTMLTemplate:
    """The newsletter scanned once per worker process."""
    return _template(hashlib.sha256(html.encode("utf-8")).hexdigest(), html)


def deliver(message: EmailMessage) -> None:
    """Hand one message to the SMTP server (replace with your mail API)."""
    host = os.environ.get("SMTP_HOST", "127.0.0.1")
    port = int(os.environ.get("SMTP_PORT", "25"))
    with smtplib.SMTP(host, port) as smtp:
        smtp.send_message(message)


@celery_app.task
def send_newsletter(campaign: str, html: str, recipients: list[str]) -> int:
    """Split the recipients into chunks, one task each; return the number of
    chunks queued."""
    chunks = [
        recipients[start : start + CHUNK_SIZE]
        for start in range(0, len(recipients), CHUNK_SIZE)
    ]
    for chunk in chunks:
        send_chunk.delay(campaign, html, chunk)
    return len(chunks)


@celery_app.task
def send_chunk(campaign: str, html: str, recipients: list[str]) -> int:
    """Render and send one copy per recipient; return how many were sent."""
    template = compiled(html)
    for recipient in recipients:
        metadata = {"campaign": campaign, "email": recipient}
        body = t.cast(str, template.render(metadata))
        text = track_text(tracker(), PLAIN_TEXT, metadata)
        message = EmailMessage()
        message["Subject"] = "Our spring sale"
        message["From"] = "news@example.com"
        message["To"] = recipient
        message.set_content(text)
        message.add_alternative(body, subtype="html")
        deliver(message)
    return len(recipients)
