"""A real SMTP server on a loopback port (aiosmtpd), keeping what it
receives, for the tests of the mail integrations."""

from __future__ import annotations

import contextlib
import email
import email.policy
import threading
import typing as t
from email.message import EmailMessage

import pytest

from _servers import free_port


class Received(t.NamedTuple):
    """One message as the server received it."""

    mail_from: str
    rcpt_tos: list[str]
    #: The DATA, byte for byte.
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return t.cast(
            EmailMessage,
            email.message_from_bytes(self.data, policy=email.policy.default),
        )


class Inbox:
    """An aiosmtpd handler that keeps every message, and counts connections."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.connections = 0
        self._lock = threading.Lock()

    async def handle_EHLO(
        self,
        server: t.Any,
        session: t.Any,
        envelope: t.Any,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        with self._lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: t.Any, session: t.Any, envelope: t.Any) -> str:
        with self._lock:
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content,
                )
            )
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        return [received.message for received in self.received]


@contextlib.contextmanager
def smtp_server() -> t.Iterator[tuple[Inbox, int]]:
    """An SMTP server on 127.0.0.1 and a free port, stopped afterwards."""
    controller_module = pytest.importorskip("aiosmtpd.controller")
    inbox = Inbox()
    port = free_port()
    controller = controller_module.Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None, "no HTML part"
    # SMTP carries lines ending in CRLF.
    return t.cast(str, part.get_content()).replace("\r\n", "\n")


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None, "no text part"
    return t.cast(str, part.get_content()).replace("\r\n", "\n")


#: A message to ann with a link to track and one never tracked, as HTML and
#: text, for the tests of the mail integrations.
HTML = (
    '<html><body><a href="https://example.com/sale">Sale</a>'
    '<a href="https://example.com/unsubscribe">Unsubscribe</a></body></html>'
)
TEXT = "Sale: https://example.com/sale\n"
#: The same headers for two sends, so that their bytes can be compared.
FIXED = {"Date": "Tue, 05 May 2026 10:00:00 -0000", "Message-ID": "<fixed@example.com>"}


def assert_tracked(received: EmailMessage, base: str) -> str:
    """Check that :data:`HTML` and :data:`TEXT` arrived with one pixel and
    the sale link tracked under ``base``, the unsubscribe link untouched and
    the text intact; return the HTML."""
    html = html_of(received)
    assert html.count(base + "/mailtrack/o/") == 1
    assert html.count(base + "/mailtrack/c/") == 1
    assert '<a href="https://example.com/unsubscribe">' in html
    assert text_of(received) == TEXT
    return html


@pytest.fixture
def inbox() -> t.Iterator[tuple[Inbox, int]]:
    """A running SMTP server: its :class:`Inbox` and port."""
    with smtp_server() as server:
        yield server
