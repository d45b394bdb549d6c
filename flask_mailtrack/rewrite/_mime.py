"""Link tracking for whole email messages (:mod:`email.message`).

:func:`track_message` works on what :mod:`smtplib`, Flask-Mail and
Flask-Mailman send: an :class:`email.message.Message` or
:class:`~email.message.EmailMessage`. It returns a tracked **copy** and never
changes the message it is given, so one message can be tracked for many
recipients.

Each ``text/html`` part (and ``text/plain`` part, when asked) is decoded from
its content-transfer-encoding and charset, tracked, and encoded back with the
same content-transfer-encoding and charset; its headers are kept. Parts that
are attachments (``Content-Disposition: attachment``) and attached messages
(``message/rfc822``) are left untouched, with everything inside them.
"""

from __future__ import annotations

import base64
import binascii
import copy
import typing as t
from email.message import Message

from ._html import HTMLTemplate
from ._link_maker import LinkMaker
from ._link_maker import Metadata
from ._text import track_text as _track_text

MessageType = t.TypeVar("MessageType", bound=Message)


def track_message(
    tracker: LinkMaker,
    message: MessageType,
    metadata: Metadata = None,
    *,
    track_text: bool = False,
    click_tracking: bool = True,
    open_tracking: bool = True,
    utm_params: t.Mapping[str, str] | None = None,
    pixel_position: str | None = None,
) -> MessageType:
    """A copy of ``message`` with its HTML parts (and plain-text parts, with
    ``track_text``) tracked for one recipient.

    :param track_text: Also track the URLs of ``text/plain`` parts.
    :param click_tracking: Track links.
    :param open_tracking: Add the open pixel to each HTML part.
    :param utm_params: Query parameters added to tracked destinations.
    :param pixel_position: ``"top"`` or ``"bottom"``.
    """
    if not isinstance(message, Message):
        raise TypeError("message must be an email.message.Message.")
    result = copy.deepcopy(message)
    options: dict[str, t.Any] = {
        "click_tracking": click_tracking,
        "open_tracking": open_tracking,
        "utm_params": utm_params,
        "pixel_position": pixel_position,
    }

    def rewrite_html(data: bytes, charset: str | None) -> bytes:
        template = HTMLTemplate(tracker, data, charset=charset, **options)
        return t.cast(bytes, template.render(metadata))

    def rewrite_text(data: bytes, charset: str | None) -> bytes:
        encoding = charset or "us-ascii"
        text = data.decode(encoding, "surrogateescape")
        if click_tracking:
            text = _track_text(tracker, text, metadata, utm_params=utm_params)
        return text.encode(encoding, "surrogateescape")

    for part in _body_parts(result):
        content_type = part.get_content_type()
        if content_type == "text/html":
            _rewrite_part(part, rewrite_html)
        elif content_type == "text/plain" and track_text:
            _rewrite_part(part, rewrite_text)
    return result


def _body_parts(message: Message) -> t.Iterator[Message]:
    """The leaf parts of ``message`` that are not (inside) attachments."""
    if message.get_content_disposition() == "attachment":
        return
    if message.is_multipart():
        if message.get_content_maintype() == "message":
            return
        for part in t.cast("list[Message]", message.get_payload()):
            yield from _body_parts(part)
    elif message.get_content_maintype() == "text":
        yield message


def _rewrite_part(
    part: Message, rewrite: t.Callable[[bytes, str | None], bytes]
) -> None:
    """Decode ``part``'s body, ``rewrite`` it, and encode it back with the
    same content-transfer-encoding."""
    encoding = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
    if encoding not in ("quoted-printable", "base64", "7bit", "8bit", "binary"):
        return
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return
    new = rewrite(data, part.get_content_charset())
    if new == data:
        return
    if encoding == "quoted-printable":
        text = binascii.b2a_qp(new, quotetabs=False, istext=True, header=False)
        part.set_payload(text.decode("ascii"))
    elif encoding == "base64":
        part.set_payload(base64.encodebytes(new).decode("ascii"))
    else:
        # How the email package keeps 8bit bodies: bytes, surrogate-escaped.
        part.set_payload(new.decode("ascii", "surrogateescape"))
