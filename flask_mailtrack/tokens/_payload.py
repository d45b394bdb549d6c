"""The binary payload inside a token, before it is signed or encrypted.

Layout of format 1 (all integers big-endian)::

    flags       1 byte   bit 1: expiry present, bit 2: webhook present,
                         bit 3: URL present, bit 4: URL section deflated,
                         bit 5: rest deflated
    issued_at   4 bytes  seconds since the epoch (UTC)
    expires_at  4 bytes  only if bit 1 is set
    url length  1 or 2 bytes, only if bit 3 is set: the stored length of
                the URL section (high bit of the first byte: two bytes)
    url         the URL (UTF-8), raw-deflated with :data:`ZDICT` when that
                is shorter
    rest        [webhook "\\n"] metadata as compact JSON (UTF-8; empty when
                there is no metadata), raw-deflated when that is shorter

The URL and the rest are compressed separately, which costs a byte or two
per token but lets both be reused: a newsletter sends the same URLs to every
recipient and the same metadata in every link of one recipient's copy, so
each compressed section is cached (bounded, keyed by its text) and a
per-recipient render rarely compresses anything.

URLs cannot hold a newline (:func:`~flask_mailtrack.is_safe_target`
refuses control characters) and compact JSON never has a raw one, so the
newline is an unambiguous separator. The compression dictionary holds
generic URL and metadata vocabulary; it is frozen for format 1, because
changing it would make every token already sent unreadable.
"""

from __future__ import annotations

import functools
import json
import struct
import types
import typing as t
import zlib

from ..exceptions import InvalidToken
from ..exceptions import MailTrackError

_EXPIRES = 0x02
_WEBHOOK = 0x04
_URL = 0x08
_URL_DEFLATED = 0x10
_REST_DEFLATED = 0x20
_KNOWN_FLAGS = _EXPIRES | _WEBHOOK | _URL | _URL_DEFLATED | _REST_DEFLATED
_MAX_SECTION = 0x7FFF  # two-byte length

#: A recipient's metadata as callers give it: a mapping carried by every
#: token made for them, or ``None``.
Metadata = t.Optional[t.Mapping[str, t.Any]]


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

# Shorter sections never deflate to fewer bytes; longer ones are tried (and
# the result cached) and kept only when shorter.
_MIN_DEFLATE_SIZE = 8

#: How many compressed sections (URLs, metadata) are kept for reuse.
SECTION_CACHE_SIZE = 4096

_EMPTY: t.Mapping[str, t.Any] = types.MappingProxyType({})

_HEAD = struct.Struct(">BI")
_UINT16 = struct.Struct(">H")
_HEAD_EXPIRES = struct.Struct(">BII")


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


# Compact JSON: no spaces, UTF-8 text as is, no NaN or infinity. Circular
# references are not tracked: they end in RecursionError, which
# _encode_rest reports like any value JSON cannot hold.
_encode_json = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
).encode
_raw_decode_json = json.JSONDecoder().raw_decode
_decompressobj = zlib.decompressobj
_new_tuple = tuple.__new__

#: The section after the URL as :func:`_encode_rest` makes it: its flags
#: (webhook present, deflated) and its stored bytes.
_Rest = tuple[int, bytes]


def _encode_rest(
    metadata: t.Mapping[str, t.Any] | None, webhook_url: str | None
) -> _Rest:
    """The section after the URL: webhook URL and metadata, compressed when
    that is shorter. Encoded once, it serves every link of one recipient.

    :raise MailTrackError: the metadata is not JSON-serializable, or the
        webhook URL holds a newline.
    """
    if metadata:
        if type(metadata) is not dict:
            metadata = dict(metadata)
        try:
            text = _encode_json(metadata)
        except (TypeError, ValueError, RecursionError) as e:
            raise MailTrackError(f"Metadata must be JSON-serializable: {e}") from e
    else:
        text = ""
    flags = 0
    if webhook_url is not None:
        if "\n" in webhook_url:
            raise MailTrackError("A URL in a token cannot contain a newline.")
        text = webhook_url + "\n" + text
        flags = _WEBHOOK
    deflated, body = _section(text)
    return (flags | _REST_DEFLATED if deflated else flags), body


def _pack(
    url: str | None,
    rest: _Rest,
    issued_at: int | None,
    expires_at: int | None = None,
) -> bytes:
    """The payload bytes of a token: the URL section (cached per URL), a
    ``rest`` made by :func:`_encode_rest`, and the times.

    :raise MailTrackError: a field cannot be stored.
    """
    flags, body = rest
    if url is not None:
        if "\n" in url:
            raise MailTrackError("A URL in a token cannot contain a newline.")
        url_deflated, url_bytes = _section(url)
        size = len(url_bytes)
        if size > _MAX_SECTION:
            raise MailTrackError("The URL is too long for a token.")
        flags |= _URL_DEFLATED | _URL if url_deflated else _URL
        length = bytes((size,)) if size < 0x80 else _UINT16.pack(size | 0x8000)
        body = length + url_bytes + body
    try:
        if expires_at is None:
            return _HEAD.pack(flags, issued_at) + body
        return _HEAD_EXPIRES.pack(flags | _EXPIRES, issued_at, expires_at) + body
    except struct.error:
        pass
    if issued_at is None:
        raise MailTrackError("A token needs its issue time.")
    raise MailTrackError(
        f"Times {issued_at!r}, {expires_at!r} are outside the token's range."
    )


@functools.lru_cache(maxsize=SECTION_CACHE_SIZE)
def _section(text: str) -> tuple[bool, bytes]:
    """``text`` as stored: whether it is deflated, and its bytes."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise MailTrackError(f"Token text must be valid Unicode: {e}") from e
    if len(data) >= _MIN_DEFLATE_SIZE:
        compressor = _PRIMED_COMPRESSOR.copy()
        deflated = compressor.compress(data) + compressor.flush()
        if len(deflated) < len(data):
            return True, deflated
    return False, data


def unpack(data: bytes) -> Payload:
    """Parse what :func:`_pack` made; raise :exc:`InvalidToken` on anything else.

    Only call this on authenticated bytes: it trusts their structure no more
    than it must, but it does inflate them.
    """
    size = len(data)
    if size < 5:
        raise InvalidToken("Malformed token payload.", reason="payload")
    flags = data[0]
    if flags & _EXPIRES:
        if size < 9:
            raise InvalidToken("Malformed token payload.", reason="payload")
        _, issued_at, expires_at = _HEAD_EXPIRES.unpack_from(data)
        offset = 9
    else:
        issued_at = _HEAD.unpack_from(data)[1]
        expires_at = None
        offset = 5
    if flags & ~_KNOWN_FLAGS:
        raise InvalidToken("Malformed token payload.", reason="payload")
    url = webhook_url = None
    if flags & _URL:
        if offset >= size:
            raise InvalidToken("Malformed token payload.", reason="payload")
        length = data[offset]
        if length < 0x80:
            offset += 1
        else:
            if offset + 2 > size:
                raise InvalidToken("Malformed token payload.", reason="payload")
            length = _UINT16.unpack_from(data, offset)[0] & _MAX_SECTION
            offset += 2
        end = offset + length
        if end > size:
            raise InvalidToken("Malformed token payload.", reason="payload")
        url = _read_section(data[offset:end], flags & _URL_DEFLATED)
        if "\n" in url:
            raise InvalidToken("Malformed token payload.", reason="payload")
        offset = end
    elif flags & _URL_DEFLATED:
        raise InvalidToken("Malformed token payload.", reason="payload")
    text = _read_section(data[offset:], flags & _REST_DEFLATED)
    if flags & _WEBHOOK:
        webhook_url, newline, text = text.partition("\n")
        if not newline:
            raise InvalidToken("Malformed token payload.", reason="payload")
    if "\n" in text:
        raise InvalidToken("Malformed token payload.", reason="payload")
    metadata: t.Any = {}
    if text:
        try:
            metadata, end = _raw_decode_json(text)
        except (ValueError, RecursionError):
            raise InvalidToken("Malformed token metadata.", reason="payload") from None
        if end != len(text) or type(metadata) is not dict:
            raise InvalidToken("Malformed token metadata.", reason="payload")
    # tuple.__new__ skips the argument handling of the generated constructor.
    return _new_tuple(
        Payload, (url, metadata, issued_at, expires_at, webhook_url, False)
    )


def _read_section(data: bytes, deflated: int) -> str:
    if deflated:
        return _inflate(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidToken("Malformed token payload.", reason="payload") from None


@functools.lru_cache(maxsize=SECTION_CACHE_SIZE)
def _inflate(data: bytes) -> str:
    """Inflate an authenticated section: at most :data:`MAX_BODY_SIZE` bytes,
    and nothing after the end of the stream. Cached, because the same links
    are followed again and again."""
    decompressor = _decompressobj(_WBITS, zdict=ZDICT)
    try:
        raw = decompressor.decompress(data, MAX_BODY_SIZE)
    except zlib.error:
        raise InvalidToken("Malformed token payload.", reason="payload") from None
    if not decompressor.eof or decompressor.unconsumed_tail or decompressor.unused_data:
        raise InvalidToken("Malformed token payload.", reason="payload")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidToken("Malformed token payload.", reason="payload") from None
