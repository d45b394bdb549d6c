"""The per-message control headers, read and removed before a message
leaves, and the ``Message-ID`` that ties a message's events together."""

from __future__ import annotations

import functools
import json
import secrets
import socket
import typing as t
from email.utils import parseaddr

from ..configuration import FALSE_WORDS
from ..configuration import TRUE_WORDS
from ..exceptions import MailTrackError

#: A JSON object merged into the metadata of the message's links and events,
#: as Mailgun's ``X-Mailgun-Variables`` and Mandrill's ``X-MC-Metadata``.
METADATA_HEADER = "X-Mailtrack-Metadata"
#: ``off`` sends the message untracked (a password reset); ``on`` is the
#: default.
CONTROL_HEADER = "X-Mailtrack"

_CONTROL_NAMES = frozenset((METADATA_HEADER.lower(), CONTROL_HEADER.lower()))


class Controls(t.NamedTuple):
    """What a message's headers ask for."""

    #: The headers without the control headers: what is sent.
    headers: dict[str, t.Any]
    #: Whether the message is tracked (``X-Mailtrack`` is not ``off``).
    track: bool
    #: The object of ``X-Mailtrack-Metadata`` (empty without it).
    metadata: dict[str, t.Any]
    #: Whether a control header was there (and is removed).
    found: bool
    #: The ``Message-ID`` the headers set, if any.
    message_id: str | None


def read_controls(headers: t.Mapping[str, t.Any] | None) -> Controls:
    """Split ``headers`` (a message's extra headers) into what is sent and
    what controls the tracking.

    :raise MailTrackError: ``X-Mailtrack-Metadata`` is not a JSON object, or
        ``X-Mailtrack`` is neither on nor off. The message must not be sent
        with metadata it did not mean.
    """
    kept: dict[str, t.Any] = {}
    track = True
    metadata: dict[str, t.Any] = {}
    found = False
    message_id = None
    for name, value in (headers or {}).items():
        lowered = name.lower()
        if lowered not in _CONTROL_NAMES:
            kept[name] = value
            if lowered == "message-id":
                message_id = str(value)
            continue
        found = True
        if lowered == CONTROL_HEADER.lower():
            track = _read_switch(value)
        else:
            metadata = _read_metadata(value)
    return Controls(kept, track, metadata, found, message_id)


def _read_switch(value: object) -> bool:
    word = str(value).strip().lower()
    if word in FALSE_WORDS:
        return False
    if word in TRUE_WORDS:
        return True
    raise MailTrackError(
        f"The {CONTROL_HEADER} header must be 'off' (send untracked) or 'on',"
        f" not {value!r}."
    )


def _read_metadata(value: object) -> dict[str, t.Any]:
    try:
        loaded = json.loads(str(value))
    except ValueError as e:
        raise MailTrackError(
            f"The {METADATA_HEADER} header is not valid JSON ({e}): {value!r}."
            " The message was not sent."
        ) from None
    if not isinstance(loaded, dict):
        raise MailTrackError(
            f"The {METADATA_HEADER} header must be a JSON object, such as"
            f' {{"campaign": "spring"}}, not {value!r}. The message was not sent.'
        )
    return loaded


def address_of(recipient: str | tuple[str, str]) -> str:
    """The address of a recipient as mail libraries hold them:
    ``"ann@example.com"``, ``"Ann <ann@example.com>"`` or
    ``("Ann", "ann@example.com")``."""
    if isinstance(recipient, tuple):
        return recipient[1].strip()
    if not any(c in recipient for c in '<("'):
        # A bare address, as bulk sends give them: no parser needed.
        return recipient.strip()
    return parseaddr(recipient)[1] or recipient.strip()


def new_message_id(sender: str | tuple[str, str] | None) -> str:
    """A new ``Message-ID`` on the sender's domain (as ESPs make them),
    else on this host's name: 120 random bits in 20 characters.

    Shorter than :func:`email.utils.make_msgid`'s (a time, the process id
    and 64 random bits): every tracked link of the message carries it.
    """
    domain = address_of(sender).rpartition("@")[2] if sender else ""
    if not domain or any(c in domain for c in '<>[]()"\\ \t\r\n'):
        domain = _host_name()
    return f"<{secrets.token_urlsafe(15)}@{domain}>"


@functools.lru_cache(maxsize=1)
def _host_name() -> str:
    # socket.getfqdn() may ask a resolver: once per process, as Django's
    # DNS_NAME does.
    return socket.getfqdn() or "localhost"
