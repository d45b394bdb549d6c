"""Outgoing mail through Django with flask_mailtrack.django.EmailBackend
wrapping Django's SMTP backend: send_mail, send_mass_mail and
EmailMessage.send() to a real SMTP server (aiosmtpd on a loopback port),
the email.sent events read back by the worker into a real EventStore."""

from __future__ import annotations

import contextlib
import pathlib
import re
import typing as t

import pytest
from flask_mailtrack import EventStore
from flask_mailtrack import Tracker
from flask_mailtrack.events import Worker

from _django import BASE
from _django import example_project
from _smtp import assert_tracked
from _smtp import FIXED
from _smtp import HTML
from _smtp import html_of
from _smtp import Inbox
from _smtp import TEXT
from _smtp import text_of

pytest.importorskip("django")

OPEN_BASE = BASE + "/mailtrack/o/"
CLICK_BASE = BASE + "/mailtrack/c/"


@pytest.fixture(scope="module", autouse=True)
def project() -> t.Iterator[None]:
    with example_project():
        yield


@pytest.fixture
def journal(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "journal"


@contextlib.contextmanager
def tracking(
    port: int, journal: pathlib.Path | None = None, **settings: t.Any
) -> t.Iterator[None]:
    from django.test import override_settings

    defaults = {
        "EMAIL_BACKEND": "flask_mailtrack.django.EmailBackend",
        "MAILTRACK_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": port,
        "DEFAULT_FROM_EMAIL": "news@example.com",
        "MAILTRACK_JOURNAL": str(journal) if journal else None,
    }
    with override_settings(**{**defaults, **settings}):
        yield


def stored_events(journal: pathlib.Path, database: pathlib.Path) -> list[t.Any]:
    """What `mailtrack worker` would store: the journal read into a store."""
    from flask_mailtrack.django import outgoing_from_settings

    outgoing = outgoing_from_settings()
    assert outgoing.journal is not None
    outgoing.journal.seal()  # type: ignore[attr-defined]
    # The worker closes its sinks when it stops.
    with Worker(journal, [EventStore(str(database))]) as worker:
        while worker.run_once():
            pass
    store = EventStore(str(database))
    try:
        return store.events(type="email.sent", limit=None)
    finally:
        store.close()


def test_send_mail_is_tracked(
    inbox: tuple[Inbox, int], journal: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    from django.core.mail import send_mail

    with tracking(inbox[1], journal):
        assert send_mail("Sale", TEXT, None, ["ann@example.com"], html_message=HTML)
        events = stored_events(journal, tmp_path / "store.sqlite3")
    (received,) = inbox[0].messages
    html = assert_tracked(received, BASE)
    message_id = received["Message-ID"]
    pixel = re.search(r'src="([^"]+)"', html)
    assert pixel is not None
    tracker = Tracker(
        secret_key="django-example-test-secret-key-0123456789",
        base_open_tracking_url=OPEN_BASE,
    )
    assert tracker.decode_open(pixel.group(1)).metadata == {"message_id": message_id}
    (event,) = events
    assert event["type"] == "email.sent"
    assert event["metadata"] == {"message_id": message_id}


def test_send_mass_mail_with_text_tracking(
    inbox: tuple[Inbox, int], journal: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    from django.core.mail import send_mass_mail

    with tracking(
        inbox[1],
        journal,
        MAILTRACK_TRACK_TEXT=True,
        MAILTRACK_RECIPIENT_METADATA="clear",
    ):
        sent = send_mass_mail(
            [
                ("One", TEXT, None, ["ann@example.com"]),
                ("Two", TEXT, None, ["bob@example.com"]),
            ]
        )
        events = stored_events(journal, tmp_path / "store.sqlite3")
    assert sent == 2
    assert inbox[0].connections == 1
    texts = [text_of(message) for message in inbox[0].messages]
    assert all(text.startswith("Sale: " + CLICK_BASE) for text in texts)
    assert sorted(event["metadata"]["recipient"] for event in events) == [
        "ann@example.com",
        "bob@example.com",
    ]


def test_email_message_headers(inbox: tuple[Inbox, int]) -> None:
    from django.core.mail import EmailMultiAlternatives
    from django.test import override_settings

    def message(**headers: str) -> t.Any:
        sent = EmailMultiAlternatives(
            "Reset", TEXT, to=["ann@example.com"], headers={**FIXED, **headers}
        )
        sent.attach_alternative(HTML, "text/html")
        sent.attach("invoice.pdf", b"%PDF-1.4 not really", "application/pdf")
        return sent

    with tracking(inbox[1]):
        message(**{"X-Mailtrack": "off"}).send()
        message(**{"X-Mailtrack-Metadata": '{"campaign": "spring"}'}).send()
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=inbox[1],
        DEFAULT_FROM_EMAIL="news@example.com",
    ):
        message().send()
    off, tracked, reference = inbox[0].received
    normalize = re.compile(rb"=+\d+==")
    assert normalize.sub(b"B", off.data) == normalize.sub(b"B", reference.data)
    message_ = tracked.message
    assert "X-Mailtrack-Metadata" not in message_
    assert html_of(message_).count(OPEN_BASE) == 1
    (attachment,) = message_.iter_attachments()
    assert attachment.get_content() == b"%PDF-1.4 not really"


def test_bad_header_is_refused(inbox: tuple[Inbox, int]) -> None:
    from django.core.mail import EmailMessage
    from flask_mailtrack import MailTrackError

    with tracking(inbox[1]), pytest.raises(MailTrackError):
        EmailMessage(
            "Hi", HTML, to=["a@example.com"], headers={"X-Mailtrack-Metadata": "1"}
        ).send()
    assert inbox[0].received == []


def test_the_backend_does_not_wrap_itself() -> None:
    from django.core.exceptions import ImproperlyConfigured
    from django.core.mail import get_connection

    with (
        tracking(1, MAILTRACK_EMAIL_BACKEND="flask_mailtrack.django.EmailBackend"),
        pytest.raises(ImproperlyConfigured, match="wraps it"),
    ):
        get_connection()


def test_tracking_switched_off(inbox: tuple[Inbox, int]) -> None:
    from django.core.mail import send_mail

    with tracking(inbox[1], MAILTRACK_TRACK_OUTGOING=False):
        send_mail("Sale", TEXT, None, ["ann@example.com"], html_message=HTML)
    assert html_of(inbox[0].messages[0]) == HTML
