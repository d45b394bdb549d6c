from __future__ import annotations

import email
import email.policy
import re
import typing as t
from email.message import EmailMessage
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
from flask_mailtrack import Tracker
from flask_mailtrack.rewrite import track_message

OPEN_BASE = "https://t.example.com/o/"
CLICK_BASE = "https://t.example.com/c/"
METADATA = {"recipient": "r-1"}
_TRACKED = re.compile(re.escape(CLICK_BASE) + r"[0-9A-Za-z_-]+")

HTML = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
    "<p>Crème brûlée — “spécial” offer, a line long enough to need a soft line"
    " break in quoted-printable encoding, which wraps at 76 characters.</p>"
    '<a href="https://example.com/offer?a=1&amp;b=2">Offer</a>'
    '<a href="https://example.com/unsubscribe">Leave</a></body></html>'
)
TEXT = "Crème brûlée: https://example.com/offer?a=1&b=2.\nLeave: https://example.com/unsubscribe\n"


@pytest.fixture
def tracker() -> Tracker:
    return Tracker(
        secret_key="mime-secret-key-0123456789-01234",
        base_open_tracking_url=OPEN_BASE,
        base_click_tracking_url=CLICK_BASE,
    )


def alternative(cte: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = "Spécial"
    message["From"] = "shop@example.com"
    message["To"] = "r@example.com"
    message.set_content(TEXT, cte=cte)
    message.add_alternative(HTML, subtype="html", cte=cte)
    return message


def targets(tracker: Tracker, text: str) -> list[str]:
    return [
        t.cast(str, tracker.decode_click(url).tracked_url)
        for url in _TRACKED.findall(text)
    ]


def check_html(tracker: Tracker, html: str) -> None:
    assert targets(tracker, html) == ["https://example.com/offer?a=1&b=2"]
    assert '<a href="https://example.com/unsubscribe">Leave</a>' in html
    assert "<p>Crème brûlée — “spécial” offer" in html
    assert html.count('<img src="' + OPEN_BASE) == 1
    assert html.endswith(" /></body></html>") or html.endswith(" /></body></html>\n")


@pytest.mark.parametrize("cte", ["quoted-printable", "base64", "8bit"])
def test_alternative(tracker: Tracker, cte: str) -> None:
    message = alternative(cte)
    before = message.as_bytes()
    tracked = track_message(tracker, message, METADATA, track_text=True)
    # A copy: the message given is unchanged.
    assert tracked is not message
    assert message.as_bytes() == before
    plain, html = tracked.iter_parts()
    for part in (plain, html):
        assert part["Content-Transfer-Encoding"] == cte
        assert part.get_content_charset() == "utf-8"
    check_html(tracker, html.get_content())
    text = plain.get_content()
    assert targets(tracker, text) == ["https://example.com/offer?a=1&b=2"]
    assert text.endswith(".\nLeave: https://example.com/unsubscribe\n")
    # What smtplib sends parses back to the same content.
    parsed = email.message_from_bytes(tracked.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed.get_body(("html",)).get_content() == html.get_content()  # type: ignore[union-attr]


def test_quoted_printable_lines(tracker: Tracker) -> None:
    tracked = track_message(tracker, alternative("quoted-printable"), METADATA)
    payload = t.cast(str, tracked.get_body(("html",)).get_payload())  # type: ignore[union-attr]
    assert payload
    assert all(len(line) <= 76 for line in payload.splitlines())
    assert "=C3=A8" in payload  # è


def test_text_untouched_unless_asked(tracker: Tracker) -> None:
    message = alternative("quoted-printable")
    tracked = track_message(tracker, message, METADATA)
    plain, html = tracked.iter_parts()
    assert plain.get_content() == TEXT
    check_html(tracker, html.get_content())


def test_latin1_quoted_printable(tracker: Tracker) -> None:
    raw = (
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"\r\n"
        b'<p>Caf=E9</p><a href=3D"https://example.com/caf=E9">x</a>\r\n'
    )
    message = email.message_from_bytes(raw)
    tracked = track_message(tracker, message, METADATA, open_tracking=False)
    assert tracked["Content-Transfer-Encoding"] == "quoted-printable"
    data = t.cast(bytes, tracked.get_payload(decode=True))
    assert data.startswith(b'<p>Caf\xe9</p><a href="https://t.example.com/c/')
    html = data.decode("latin-1")
    assert targets(tracker, html) == ["https://example.com/café"]


def test_8bit_bytes_kept(tracker: Tracker) -> None:
    raw = (
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n"
        b'<body><p>Caf\xe9</p><a href="https://example.com/">x</a></body>\r\n'
    )
    message = email.message_from_bytes(raw, policy=email.policy.default)
    tracked = track_message(tracker, message, METADATA)
    out = tracked.as_bytes()
    assert b"<p>Caf\xe9</p>" in out
    assert b'<a href="https://t.example.com/c/' in out
    assert b'<img src="https://t.example.com/o/' in out


def test_legacy_message_classes(tracker: Tracker) -> None:
    message = MIMEMultipart("alternative")
    message.attach(MIMEText(TEXT, "plain", "utf-8"))
    message.attach(MIMEText(HTML, "html", "utf-8"))
    # base64, unless a library changed the utf-8 charset's default for the
    # whole process (Flask-Mail's import makes it 8bit): kept either way.
    encoding = message.get_payload(1)["Content-Transfer-Encoding"]
    tracked = track_message(tracker, message, METADATA, track_text=True)
    assert isinstance(tracked, Message)
    plain, html = t.cast("list[Message]", tracked.get_payload())
    assert html["Content-Transfer-Encoding"] == encoding
    check_html(tracker, t.cast(bytes, html.get_payload(decode=True)).decode("utf-8"))
    text = t.cast(bytes, plain.get_payload(decode=True)).decode("utf-8")
    assert targets(tracker, text) == ["https://example.com/offer?a=1&b=2"]


def test_single_part(tracker: Tracker) -> None:
    message = EmailMessage()
    message.set_content(HTML, subtype="html")
    tracked = track_message(tracker, message, METADATA)
    check_html(tracker, tracked.get_content())


def test_attachments_untouched(tracker: Tracker) -> None:
    message = alternative("quoted-printable")
    message.make_mixed()
    message.add_attachment(
        HTML.encode(), maintype="text", subtype="html", filename="copy.html"
    )
    message.add_attachment(
        b"\x89PNG...", maintype="image", subtype="png", filename="a.png"
    )
    message.attach(MIMEApplication(b"%PDF-1.4", "pdf"))
    tracked = track_message(tracker, message, METADATA)
    body, html_attachment, image, pdf = tracked.iter_parts()
    original_parts = list(message.iter_parts())
    assert html_attachment.as_bytes() == original_parts[1].as_bytes()
    assert image.as_bytes() == original_parts[2].as_bytes()
    assert pdf.as_bytes() == original_parts[3].as_bytes()
    check_html(tracker, t.cast(EmailMessage, body).get_body(("html",)).get_content())  # type: ignore[union-attr]


def test_attached_message_untouched(tracker: Tracker) -> None:
    inner = EmailMessage()
    inner.set_content(HTML, subtype="html")
    outer = EmailMessage()
    outer.set_content("See the attached message.")
    outer.add_attachment(inner)
    outer.set_boundary("boundary-1")
    tracked = track_message(tracker, outer, METADATA, track_text=True)
    assert tracked.as_bytes() == outer.as_bytes()


def test_not_a_message(tracker: Tracker) -> None:
    with pytest.raises(TypeError):
        track_message(tracker, "Subject: x\n\nhi", METADATA)  # type: ignore[type-var]
