"""Outgoing mail through Flask-Mailman (MAILTRACK_TRACK_OUTGOING): real
messages sent to a real SMTP server (aiosmtpd on a loopback port), the
email.sent events read back by the worker into a real EventStore, and a
round trip through the app."""

from __future__ import annotations

import json
import pathlib
import re
import typing as t
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask_mailtrack import EventStore
from flask_mailtrack import MailTrack
from flask_mailtrack import MailTrackError
from flask_mailtrack import Tracker
from flask_mailtrack.extension import get_state
from flask_mailtrack.outgoing import hash_recipient
from flask_mailtrack.server import close_app

from _apps import drain
from _apps import sent_events
from _smtp import FIXED
from _smtp import html_of
from _smtp import Inbox
from _smtp import text_of

flask_mailman = pytest.importorskip("flask_mailman")

SECRET = "mailman-test-secret-key-0123456789abcdef"
BASE = "https://t.example.com"
OPEN_BASE = BASE + "/mailtrack/o/"
CLICK_BASE = BASE + "/mailtrack/c/"
HTML = (
    "<!DOCTYPE html><html><body><p>Hello {{ name }}</p>"
    '<a href="https://example.com/sale">Sale</a> '
    '<a href="https://example.com/blog?a=1&amp;b=2">Blog</a> '
    '<a href="https://example.com/unsubscribe">Unsubscribe</a>'
    "</body></html>"
)
TEXT = "Hello, see https://example.com/sale today.\n"


AppFactory = t.Callable[..., Flask]


@pytest.fixture
def make_app(
    tmp_path: pathlib.Path, inbox: tuple[Inbox, int]
) -> t.Iterator[AppFactory]:
    apps: list[Flask] = []

    def make(*, mailtrack_first: bool = False, **config: t.Any) -> Flask:
        app = Flask(__name__)
        app.config.update(
            TESTING=True,
            SECRET_KEY=SECRET,
            MAIL_BACKEND="smtp",
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT=inbox[1],
            MAIL_DEFAULT_SENDER="news@example.com",
            MAIL_TIMEOUT=10,
            MAILTRACK_BASE_URL=BASE,
            MAILTRACK_TRACK_OUTGOING=True,
            MAILTRACK_DATABASE=str(tmp_path / f"mailtrack{len(apps)}.sqlite3"),
        )
        app.config.update(config)
        if mailtrack_first:
            MailTrack(app)
            flask_mailman.Mail(app)
        else:
            flask_mailman.Mail(app)
            MailTrack(app)
        apps.append(app)
        return app

    yield make
    for app in apps:
        close_app(app)


def newsletter(**headers: str) -> t.Any:
    message = flask_mailman.EmailMultiAlternatives(
        "Spring sale", TEXT, to=["ann@example.com"], headers=headers
    )
    message.attach_alternative(HTML, "text/html")
    return message


def _normalized(data: bytes) -> bytes:
    # MIME boundaries are random; everything else must match.
    return re.sub(rb"=+\d+==", b"BOUNDARY", data)


def test_html_is_tracked_text_intact_control_headers_gone(
    make_app: AppFactory, inbox: tuple[Inbox, int]
) -> None:
    app = make_app()
    metadata = json.dumps({"campaign": "spring", "n": 3})
    with app.app_context():
        assert newsletter(**{"X-Mailtrack-Metadata": metadata}).send() == 1
    (received,) = inbox[0].received
    message = received.message
    html = html_of(message)
    assert html.count(OPEN_BASE) == 1
    assert html.count(CLICK_BASE) == 2
    assert "https://example.com/sale" not in html
    # Untracked link, merge tag and doctype as they were.
    assert '<a href="https://example.com/unsubscribe">' in html
    assert html.startswith("<!DOCTYPE html><html><body><p>Hello {{ name }}</p>")
    assert text_of(message) == TEXT
    assert "X-Mailtrack-Metadata" not in message
    assert "X-Mailtrack" not in message
    # The links carry the metadata and the Message-ID the message was sent with.
    link = re.search(r'href="(' + re.escape(CLICK_BASE) + r'[^"]+)"', html)
    assert link is not None
    result = Tracker(
        secret_key=SECRET, base_click_tracking_url=CLICK_BASE
    ).decode_click(link.group(1))
    assert result.tracked_url == "https://example.com/sale"
    assert result.metadata == {
        "campaign": "spring",
        "n": 3,
        "message_id": message["Message-ID"],
    }


def test_the_message_given_is_not_changed(make_app: AppFactory) -> None:
    app = make_app()
    with app.app_context():
        message = newsletter(**{"X-Mailtrack-Metadata": "{}"})
        message.send()
    assert message.alternatives[0][0] == HTML
    assert message.extra_headers == {"X-Mailtrack-Metadata": "{}"}


def test_text_is_tracked_when_enabled(
    make_app: AppFactory, inbox: tuple[Inbox, int]
) -> None:
    app = make_app(MAILTRACK_TRACK_TEXT=True)
    with app.app_context():
        newsletter().send()
    text = text_of(inbox[0].messages[0])
    assert "https://example.com/sale" not in text
    assert text.startswith("Hello, see " + CLICK_BASE)
    assert text.endswith(" today.\n")


@pytest.mark.parametrize("multipart", [True, False], ids=["alternatives", "html-body"])
def test_off_header_sends_byte_for_byte_untracked(
    make_app: AppFactory, inbox: tuple[Inbox, int], multipart: bool
) -> None:
    tracking = make_app()
    plain = make_app(MAILTRACK_TRACK_OUTGOING=False)

    def message(**headers: str) -> t.Any:
        if multipart:
            return newsletter(**FIXED, **headers)
        html_only = flask_mailman.EmailMessage(
            "Reset", HTML, to=["ann@example.com"], headers={**FIXED, **headers}
        )
        html_only.content_subtype = "html"
        return html_only

    with tracking.app_context():
        message(**{"X-Mailtrack": "off"}).send()
    with plain.app_context():
        message().send()
    untracked, reference = inbox[0].received
    assert _normalized(untracked.data) == _normalized(reference.data)
    assert OPEN_BASE.encode() not in untracked.data
    assert sent_events(tracking) == []


def test_non_html_passes_unchanged(
    make_app: AppFactory, inbox: tuple[Inbox, int]
) -> None:
    tracking = make_app()
    plain = make_app(MAILTRACK_TRACK_OUTGOING=False)
    for app in (tracking, plain):
        with app.app_context():
            flask_mailman.EmailMessage(
                "Hi", TEXT, to=["ann@example.com"], headers=FIXED
            ).send()
    tracked, reference = inbox[0].received
    assert tracked.data == reference.data
    assert sent_events(tracking) == []


def test_attachments_are_untouched(
    make_app: AppFactory, inbox: tuple[Inbox, int]
) -> None:
    app = make_app()
    pdf = bytes(range(256)) * 4
    with app.app_context():
        message = newsletter()
        message.attach("invoice.pdf", pdf, "application/pdf")
        message.attach("page.html", HTML, "text/html")
        message.send()
    received = inbox[0].messages[0]
    assert html_of(received).count(OPEN_BASE) == 1
    attachments = {part.get_filename(): part for part in received.iter_attachments()}
    assert attachments["invoice.pdf"].get_content() == pdf
    assert attachments["page.html"].get_content() == HTML


def test_bad_metadata_header_sends_nothing(
    make_app: AppFactory, inbox: tuple[Inbox, int]
) -> None:
    app = make_app()
    with app.app_context():
        good = newsletter()
        connection = flask_mailman.Mail().get_connection()
        for bad in ("{not json", "[1, 2]"):
            with pytest.raises(MailTrackError, match="X-Mailtrack-Metadata"):
                connection.send_messages(
                    [good, newsletter(**{"X-Mailtrack-Metadata": bad})]
                )
        with pytest.raises(MailTrackError, match="X-Mailtrack"):
            newsletter(**{"X-Mailtrack": "maybe"}).send()
    assert inbox[0].received == []


def test_one_sent_event_per_recipient(
    make_app: AppFactory, inbox: tuple[Inbox, int]
) -> None:
    app = make_app()
    with app.app_context():
        message = newsletter(**{"X-Mailtrack-Metadata": '{"campaign": "spring"}'})
        message.cc = ["bob@example.com"]
        message.send()
    (received,) = inbox[0].received
    events = sent_events(app)
    assert len(events) == 2
    message_id = received.message["Message-ID"]
    for event in events:
        assert event["type"] == "email.sent"
        assert event["schema"] == 1
        assert event["id"].startswith("evt_")
        assert event["request_data"] is None
        # No recipient in the metadata unless the settings ask for it.
        assert event["metadata"] == {"campaign": "spring", "message_id": message_id}
    assert events[0]["id"] != events[1]["id"]


@pytest.mark.parametrize("mode", ["clear", "hash"])
def test_recipient_in_metadata_when_asked(
    make_app: AppFactory, inbox: tuple[Inbox, int], mode: str
) -> None:
    key = "recipient-hash-key-0123456789abcdef"
    app = make_app(MAILTRACK_RECIPIENT_METADATA=mode, MAILTRACK_RECIPIENT_HASH_KEY=key)
    with app.app_context():
        single = newsletter()
        single.to = ["Ann <Ann@Example.com>"]
        single.send()
    html = html_of(inbox[0].messages[0])
    pixel = re.search(r'src="(' + re.escape(OPEN_BASE) + r'[^"]+)"', html)
    assert pixel is not None
    result = Tracker(secret_key=SECRET, base_open_tracking_url=OPEN_BASE).decode_open(
        pixel.group(1)
    )
    expected = (
        "ann@example.com"
        if mode == "clear"
        else hash_recipient("ann@example.com", key.encode())
    )
    assert result.metadata["recipient"] == expected
    (event,) = sent_events(app)
    assert event["metadata"]["recipient"] == expected


def test_send_mass_mail_uses_one_connection(
    make_app: AppFactory, inbox: tuple[Inbox, int]
) -> None:
    app = make_app(MAILTRACK_TRACK_TEXT=True)
    mail = app.extensions["mailman"]
    with app.app_context():
        sent = mail.send_mass_mail(
            [
                ("One", TEXT, None, ["ann@example.com"]),
                ("Two", TEXT, None, ["bob@example.com"]),
            ]
        )
    assert sent == 2
    assert inbox[0].connections == 1
    assert [text_of(m).count(CLICK_BASE) for m in inbox[0].messages] == [1, 1]
    assert len(sent_events(app)) == 2


def test_mailtrack_first_then_mailman(
    make_app: AppFactory, inbox: tuple[Inbox, int]
) -> None:
    app = make_app(mailtrack_first=True)
    with app.app_context():
        newsletter().send()
    assert html_of(inbox[0].messages[0]).count(OPEN_BASE) == 1


def test_off_by_default(make_app: AppFactory, inbox: tuple[Inbox, int]) -> None:
    app = make_app(MAILTRACK_TRACK_OUTGOING=None)
    assert get_state(app).outgoing is not None
    assert not get_state(app).outgoing.settings.enabled  # type: ignore[union-attr]
    assert app.extensions["mailman"].backend == "smtp"
    with app.app_context():
        newsletter().send()
    assert OPEN_BASE not in html_of(inbox[0].messages[0])


def test_round_trip(make_app: AppFactory, inbox: tuple[Inbox, int]) -> None:
    app = make_app()
    with app.app_context():
        newsletter(**{"X-Mailtrack-Metadata": '{"campaign": "spring"}'}).send()
    html = html_of(inbox[0].messages[0])
    pixel = re.search(r'src="([^"]+)"', html)
    link = re.search(r'href="(' + re.escape(CLICK_BASE) + r'[^"]+)"', html)
    assert pixel is not None and link is not None
    client = app.test_client()
    assert client.get(urlsplit(pixel.group(1)).path).mimetype == "image/gif"
    response = client.get(urlsplit(link.group(1)).path)
    assert response.status_code == 302
    assert response.headers["Location"] == "https://example.com/sale"
    drain(app)
    store = EventStore(app.config["MAILTRACK_DATABASE"])
    try:
        counts = {
            kind: len(store.events(type=kind, campaign="spring", limit=None))
            for kind in ("email.sent", "email.opened", "link.clicked")
        }
        message_ids = {
            event["metadata"]["message_id"] for event in store.events(limit=None)
        }
        stats = store.stats(campaign="spring")
    finally:
        store.close()
    assert counts == {"email.sent": 1, "email.opened": 1, "link.clicked": 1}
    assert message_ids == {inbox[0].messages[0]["Message-ID"]}
    assert stats["sent"]["total"] == 1
    assert stats["opens"]["unique"] == 1 and stats["clicks"]["unique"] == 1
    assert stats["sent"]["open_rate"]["total"] == 1.0
    assert stats["sent"]["click_rate"]["total"] == 1.0
