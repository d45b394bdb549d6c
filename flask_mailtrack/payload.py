"""The binary payload inside a token, before it is signed or encrypted.

Layout of format 1 (all integers big-endian)::

    flags       1 byte   bit 0: body is deflated, bit 1: expiry present,
                         bit 2: webhook present, bit 3: URL present
    issued_at   4 bytes  seconds since the epoch (UTC)
    expires_at  4 bytes  only if bit 1 is set
    body        the rest: [url "\\n"] [webhook "\\n"] metadata as compact JSON
                (UTF-8; empty when there is no metadata), raw-deflated with
                :data:`ZDICT` when that is shorter

URLs cannot hold a newline (:func:`~flask_mailtrack.urls.is_safe_target`
refuses control characters) and compact JSON never has a raw one, so the
newline is an unambiguous separator. The compression dictionary holds
generic URL and metadata vocabulary; it is frozen for format 1, because
changing it would make every token already sent unreadable.
"""

from __future__ import annotations

import json
import struct
import types
import typing as t
import zlib

from .exceptions import InvalidToken
from .exceptions import MailTrackError

_DEFLATED = 0x01
_EXPIRES = 0x02
_WEBHOOK = 0x04
_URL = 0x08
_KNOWN_FLAGS = _DEFLATED | _EXPIRES | _WEBHOOK | _URL

_UINT32 = struct.Struct(">I")
_UINT32_MAX = 2**32 - 1

#: The largest body a token may inflate to. A token is capped in length
#: before decoding; this caps what a decompression bomb could cost.
MAX_BODY_SIZE = 16384

_WBITS = -10  # raw deflate, 1 KiB window: the dictionary and body both fit

#: Preset dictionary for format 1 (frozen). Deflate finds repeats nearer the
#: end of the dictionary more cheaply, so the commonest vocabulary is last.
ZDICT = (
    b"unsubscribe preferences webview track ref source medium content term"
    b" segment variant position link_id template_id mailing_id send_id"
    b" list_id subscriber_id contact_id recipient_id account_id order_id"
    b" tenant_id journey_id step_id audience_id /index.html .html .php .aspx"
    b" /en/ /en-us/ /blog/ /news/ /article/ /articles/ /category/ /shop/"
    b" /product/ /products/ /item/ /items/ /account/ /cart /checkout /login"
    b" /signup /register /download /events/ /offer/ /deals/ /sale/ /p/ /s/"
    b"?page= ?q= ?ref= ?id= &id= &lang= .net/ .org/ .io/ .co.uk/ .de/ .fr/"
    b" http://www. https://"
    b'{"email":"{"user_id":{"recipient":"{"id":"user":"email":"name":"'
    b'"recipient_id":"list":"type":"variant":"link":"'
    b'"subscriber_id":"contact_id":"campaign":"campaign_id":"message_id":"'
    b'"customer_id":{"customer_id":{"campaign_id":"'
    b"&utm_term=&utm_content=?utm_source=newsletter&utm_medium=email"
    b"&utm_campaign=&utm_source=newsletter&utm_medium=email"
    b" https://www. .com/"
)


# Copying a compressor primed with the dictionary is twice as fast as making
# one; a small memLevel keeps the copied state small.
_PRIMED_COMPRESSOR = zlib.compressobj(9, zlib.DEFLATED, _WBITS, 2, 0, ZDICT)

_EMPTY: t.Mapping[str, t.Any] = types.MappingProxyType({})


class Payload(t.NamedTuple):
    """What a token carries."""

    #: The click target (``None`` in open tokens).
    url: str | None = None
    #: The metadata, a JSON object.
    metadata: t.Mapping[str, t.Any] = _EMPTY
    #: When the token was made, in seconds since the epoch (UTC); ``None`` only
    #: for legacy pytracking tokens, which did not record it.
    issued_at: int | None = None
    #: When the token stops being accepted, or ``None``.
    expires_at: int | None = None
    #: The webhook to notify, when the configuration embeds it.
    webhook_url: str | None = None
    #: Whether this came from a pytracking token.
    legacy: bool = False


_dump_json = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False
).encode


def pack(payload: Payload) -> bytes:
    """Serialize ``payload``; raise :exc:`MailTrackError` if it cannot be."""
    if payload.issued_at is None:
        raise MailTrackError("A token needs its issue time.")
    flags = 0
    head = _check_time(payload.issued_at)
    parts: list[str] = []
    if payload.expires_at is not None:
        flags |= _EXPIRES
        head += _check_time(payload.expires_at)
    if payload.url is not None:
        flags |= _URL
        parts.append(payload.url)
    if payload.webhook_url is not None:
        flags |= _WEBHOOK
        parts.append(payload.webhook_url)
    if payload.metadata:
        try:
            parts.append(_dump_json(payload.metadata))
        except (TypeError, ValueError) as e:
            raise MailTrackError(f"Metadata must be JSON-serializable: {e}") from e
    else:
        parts.append("")
    try:
        body = "\n".join(parts).encode("utf-8")
    except UnicodeEncodeError as e:
        raise MailTrackError(f"Token text must be valid Unicode: {e}") from e
    if len(body) > 24:
        compressor = _PRIMED_COMPRESSOR.copy()
        deflated = compressor.compress(body) + compressor.flush()
        if len(deflated) < len(body):
            flags |= _DEFLATED
            body = deflated
    return bytes((flags,)) + head + body


def unpack(data: bytes) -> Payload:
    """Parse what :func:`pack` made; raise :exc:`InvalidToken` on anything else.

    Only call this on authenticated bytes: it trusts their structure no more
    than it must, but it does inflate them.
    """
    if len(data) < 5 or data[0] & ~_KNOWN_FLAGS:
        raise InvalidToken("Malformed token payload.", reason="payload")
    flags = data[0]
    issued_at = _UINT32.unpack_from(data, 1)[0]
    offset = 5
    expires_at = None
    if flags & _EXPIRES:
        if len(data) < 9:
            raise InvalidToken("Malformed token payload.", reason="payload")
        expires_at = _UINT32.unpack_from(data, 5)[0]
        offset = 9
    raw = data[offset:]
    if flags & _DEFLATED:
        raw = _inflate(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidToken("Malformed token payload.", reason="payload") from None
    fields = text.split("\n")
    expected = 1 + bool(flags & _URL) + bool(flags & _WEBHOOK)
    if len(fields) != expected:
        raise InvalidToken("Malformed token payload.", reason="payload")
    url = fields[0] if flags & _URL else None
    webhook_url = fields[expected - 2] if flags & _WEBHOOK else None
    metadata: dict[str, t.Any] = {}
    if fields[-1]:
        try:
            loaded = json.loads(fields[-1])
        except ValueError:
            raise InvalidToken("Malformed token metadata.", reason="payload") from None
        if not isinstance(loaded, dict):
            raise InvalidToken("Malformed token metadata.", reason="payload")
        metadata = loaded
    return Payload(
        url=url,
        metadata=metadata,
        issued_at=issued_at,
        expires_at=expires_at,
        webhook_url=webhook_url,
    )


def _inflate(data: bytes) -> bytes:
    decompressor = zlib.decompressobj(_WBITS, zdict=ZDICT)
    try:
        raw = decompressor.decompress(data, MAX_BODY_SIZE)
    except zlib.error:
        raise InvalidToken("Malformed token payload.", reason="payload") from None
    if not decompressor.eof or decompressor.unconsumed_tail or decompressor.unused_data:
        raise InvalidToken("Malformed token payload.", reason="payload")
    return raw


def _check_time(value: int) -> bytes:
    if not 0 <= value <= _UINT32_MAX:
        raise MailTrackError(f"Time {value!r} is outside the token's range.")
    return _UINT32.pack(value)
