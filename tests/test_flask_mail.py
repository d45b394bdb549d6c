"""Outgoing mail through Flask-Mail with flask_mailtrack.flask_mail.Mail:
real messages to a real SMTP server (aiosmtpd on a loopback port), the
email.sent events read back by the worker into a real EventStore."""

from __future__ import annotations

import json
import pathlib
import re
import typing as t

import pytest
from flask import Flask
from flask_mailtrack import MailTrack
from flask_mailtrack import MailTrackError
from flask_mailtrack import Tracker
from flask_mailtrack.server import close_app

from _apps import sent_events
from _smtp import assert_tracked
from _smtp import HTML
from _smtp import html_of
from _smtp import Inbox
from _smtp import TEXT
from _smtp import text_of

flask_mail = pytest.importorskip("flask_mail")

from flask_mailtrack.flask_mail import Mail  # noqa: E402

SECRET = "flask-mail-test-secret-key-0123456789abcdef"
BASE = "https://t.example.com"
OPEN_BASE = BASE + "/mailtrack/o/"
CLICK_BASE = BASE + "/mailtrack/c/"


@pytest.fixture
def make_app(
    tmp_path: pathlib.Path, inbox: tuple[Inbox, int]
) -> t.Iterator[t.Callable[..., tuple[Flask, Mail]]]:
    apps: list[Flask] = []

    def make(**config: t.Any) -> tuple[Flask, Mail]:
        app = Flask(__name__)
        app.config.update(
            TESTING=True,
            SECRET_KEY=SECRET,
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT=inbox[1],
            MAIL_DEFAULT_SENDER="news@example.com",
            MAIL_SUPPRESS_SEND=False,
            MAILTRACK_BASE_URL=BASE,
            MAILTRACK_TRACK_OUTGOING=True,
            MAILTRACK_DATABASE=str(tmp_path / f"mailtrack{len(apps)}.sqlite3"),
        )
        app.config.update(config)
        mail = Mail(app)
        MailTrack(app)
        apps.append(app)
        return app, mail

    yield make
    for app in apps:
        close_app(app)


def message(**headers: str) -> t.Any:
    return flask_mail.Message(
        "Spring sale",
        recipients=["ann@example.com"],
        body=TEXT,
        html=HTML,
        extra_headers=headers or None,
    )


def test_mail_send_is_tracked(
    make_app: t.Callable[..., tuple[Flask, Mail]], inbox: tuple[Inbox, int]
) -> None:
    app, mail = make_app()
    with app.app_context():
        given = message(**{"X-Mailtrack-Metadata": json.dumps({"campaign": "spring"})})
        mail.send(given)
    (received,) = inbox[0].messages
    html = assert_tracked(received, BASE)
    assert "X-Mailtrack-Metadata" not in received
    # The message given is unchanged; the one sent kept its Message-ID.
    assert given.html == HTML
    assert given.extra_headers == {"X-Mailtrack-Metadata": '{"campaign": "spring"}'}
    assert received["Message-ID"] == given.msgId
    pixel = re.search(r'src="([^"]+)"', html)
    assert pixel is not None
    tracker = Tracker(secret_key=SECRET, base_open_tracking_url=OPEN_BASE)
    assert tracker.decode_open(pixel.group(1)).metadata == {
        "campaign": "spring",
        "message_id": given.msgId,
    }
    (event,) = sent_events(app)
    assert event["metadata"] == {"campaign": "spring", "message_id": given.msgId}


def test_text_tracked_when_enabled(
    make_app: t.Callable[..., tuple[Flask, Mail]], inbox: tuple[Inbox, int]
) -> None:
    app, mail = make_app(MAILTRACK_TRACK_TEXT=True)
    with app.app_context():
        mail.send(message())
    assert text_of(inbox[0].messages[0]).startswith("Sale: " + CLICK_BASE)


def test_off_header_and_plain_text_are_untouched(
    make_app: t.Callable[..., tuple[Flask, Mail]], inbox: tuple[Inbox, int]
) -> None:
    tracking, tracking_mail = make_app()
    plain, plain_mail = make_app(MAILTRACK_TRACK_OUTGOING=False)
    date = 1_777_777_777.0
    for app, mail, headers in (
        (tracking, tracking_mail, {"X-Mailtrack": "off"}),
        (plain, plain_mail, {}),
    ):
        with app.app_context():
            for html in (HTML, None):
                sent = message(**headers)
                sent.html = html
                sent.date = date
                sent.msgId = "<fixed@example.com>"
                mail.send(sent)
    off, text_only, reference, text_reference = inbox[0].received
    normalize = re.compile(rb"=+\d+==")
    assert normalize.sub(b"B", off.data) == normalize.sub(b"B", reference.data)
    assert text_only.data == text_reference.data
    assert sent_events(tracking) == []


def test_connection_sends_many_on_one_connection(
    make_app: t.Callable[..., tuple[Flask, Mail]], inbox: tuple[Inbox, int]
) -> None:
    app, mail = make_app()
    with app.app_context(), mail.connect() as connection:
        for address in ("ann@example.com", "bob@example.com"):
            sent = message()
            sent.recipients = [address]
            sent.cc = ["boss@example.com"]
            connection.send(sent)
    assert inbox[0].connections == 1
    assert [html_of(m).count(OPEN_BASE) for m in inbox[0].messages] == [1, 1]
    assert len(sent_events(app)) == 4  # two messages, two recipients each


def test_bad_header_sends_nothing(
    make_app: t.Callable[..., tuple[Flask, Mail]], inbox: tuple[Inbox, int]
) -> None:
    app, mail = make_app()
    with app.app_context(), pytest.raises(MailTrackError, match="not valid JSON"):
        mail.send(message(**{"X-Mailtrack-Metadata": "campaign=spring"}))
    assert inbox[0].received == []


def test_suppressed_sends_are_tracked_not_recorded(
    make_app: t.Callable[..., tuple[Flask, Mail]], inbox: tuple[Inbox, int]
) -> None:
    app, mail = make_app(MAIL_SUPPRESS_SEND=True)
    with app.app_context(), mail.record_messages() as outbox:
        mail.send(message())
    (recorded,) = outbox
    assert recorded.html.count(OPEN_BASE) == 1
    assert inbox[0].received == []
    assert sent_events(app) == []


def test_without_mailtrack_it_is_flask_mail(inbox: tuple[Inbox, int]) -> None:
    app = Flask(__name__)
    app.config.update(
        MAIL_SERVER="127.0.0.1", MAIL_PORT=inbox[1], MAIL_DEFAULT_SENDER="a@example.com"
    )
    mail = Mail(app)
    with app.app_context():
        mail.send(message())
    assert html_of(inbox[0].messages[0]) == HTML
