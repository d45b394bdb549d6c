"""Tracking tokens: the payload, authenticated and made URL-safe.

A token is a one-character format marker followed by the encoded body::

    1<base64url of payload|tag>               signed (HMAC-SHA256/128)
    2<base64url of key id|nonce|ciphertext>   encrypted (AES-256-GCM)
    3<base32 of payload|tag>                  signed, case-insensitive
    4<base32 of key id|nonce|ciphertext>      encrypted, case-insensitive

Base64url is unpadded; base32 is unpadded and lower-case, for mail clients
and scanners that lower-case URLs. Markers are digits, so they survive case
folding and never collide with pytracking tokens (``eyJ...``, ``gAAAAA...``).

The token kind (open or click) is not written in the token: it is signed
(or authenticated as associated data) with it, so an open token is never
accepted where a click token is expected, and vice versa.
"""

from __future__ import annotations

import base64
import binascii
import string
import time
import typing as t

from .._urls import is_safe_target
from .._urls import url_host
from ..exceptions import ExpiredToken
from ..exceptions import InvalidToken
from ..exceptions import MailTrackError
from ._encryption import KeyRing
from ._payload import _encode_rest
from ._payload import _pack
from ._payload import Payload
from ._payload import unpack
from ._pytracking import dumps_unsigned
from ._pytracking import loads as loads_legacy
from ._signing import SigningKeyRing

if t.TYPE_CHECKING:
    from cryptography.fernet import Fernet

OPEN: t.Final = "open"
CLICK: t.Final = "click"
Kind = t.Literal["open", "click"]

_CONTEXTS: dict[str, bytes] = {
    OPEN: b"flask_mailtrack.open\x00",
    CLICK: b"flask_mailtrack.click\x00",
}

_SIGNED, _ENCRYPTED, _SIGNED_B32, _ENCRYPTED_B32 = "1", "2", "3", "4"

#: Default cap on the length of a token, checked before any decoding.
MAX_TOKEN_LENGTH = 4096


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_B64_ALPHABET = (string.ascii_letters + string.digits + "-_").encode("ascii")
_B64_PADDING = (b"", b"", b"==", b"=")
# The last character of unpadded base64 carries bits beyond the data; only
# characters whose extra bits are zero are canonical. Without this check two
# texts would decode to the same bytes, so a changed character could pass.
_B64_CANONICAL_LAST = ("", "", "AQgw", "AEIMQUYcgkosw048")


def _b64encode(data: bytes) -> str:
    encoded = binascii.b2a_base64(data, newline=False)
    return encoded.translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")


def _b32encode(data: bytes) -> str:
    return base64.b32encode(data).rstrip(b"=").decode("ascii").lower()


def _b64decode(text: str) -> bytes:
    # Strict: only the URL-safe alphabet (binascii would skip other
    # characters), no padding, and a canonical last character.
    rest = len(text) % 4
    try:
        data = text.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidToken("Malformed token.", reason="format") from None
    if (
        rest == 1
        or data.translate(None, _B64_ALPHABET)
        or (rest and text[-1] not in _B64_CANONICAL_LAST[rest])
    ):
        raise InvalidToken("Malformed token.", reason="format")
    try:
        return binascii.a2b_base64(data.translate(_FROM_URLSAFE) + _B64_PADDING[rest])
    except binascii.Error:  # pragma: no cover - excluded by the checks above
        raise InvalidToken("Malformed token.", reason="format") from None


def _b32decode(text: str) -> bytes:
    text = text.lower()
    try:
        data = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise InvalidToken("Malformed token.", reason="format") from None
    # Re-encoding refuses non-canonical texts, as in _b64decode.
    if _b32encode(data) != text:
        raise InvalidToken("Malformed token.", reason="format")
    return data


_NO_KEY_MESSAGE = (
    "No secret key is configured, so tracking links cannot be made."
    " Set Configuration(secret_key=...) (MAILTRACK_SECRET_KEY or"
    " Flask's SECRET_KEY); `mailtrack keygen` prints a new one."
)


def _no_key(raw: bytes, context: bytes) -> t.NoReturn:
    raise MailTrackError(_NO_KEY_MESSAGE)


class TokenSerializer:
    """Makes tokens (:meth:`dumps`) and reads them back as
    :class:`~flask_mailtrack.tokens.Payload` objects (:meth:`loads`). Built
    once per configuration; thread-safe.

    :param secret_keys: HMAC keys, oldest first; the newest signs.
    :param encryption_keys: AEAD keys, oldest first; if given, new tokens are
        encrypted with the newest.
    :param case_insensitive: Make base32 tokens.
    :param max_length: Longer tokens are refused before any decoding.
    :param accept_legacy: Also read pytracking 0.2.2 tokens.
    :param legacy_fernet: The Fernet key that pytracking tokens were made with.
    :param legacy_redirect_hosts: Hosts that unsigned legacy click tokens may
        redirect to.
    :param unsigned: Make pytracking's tokens: unsigned (insecure), or
        Fernet-encrypted with ``legacy_fernet``.
    :param encoding: Text encoding of pytracking tokens.
    """

    def __init__(
        self,
        *,
        secret_keys: t.Sequence[bytes] = (),
        encryption_keys: t.Sequence[bytes] = (),
        case_insensitive: bool = False,
        max_length: int = MAX_TOKEN_LENGTH,
        accept_legacy: bool = False,
        legacy_fernet: Fernet | None = None,
        legacy_redirect_hosts: t.Collection[str] = (),
        unsigned: bool = False,
        encoding: str = "utf-8",
    ) -> None:
        signing = SigningKeyRing(secret_keys) if secret_keys else None
        encryption = KeyRing(encryption_keys) if encryption_keys else None
        self.case_insensitive = case_insensitive
        self.max_length = max_length
        self.accept_legacy = accept_legacy or unsigned
        self._legacy_fernet = legacy_fernet
        self.legacy_redirect_hosts = frozenset(h.lower() for h in legacy_redirect_hosts)
        self.unsigned = unsigned
        self._encoding = encoding

        # How new tokens are sealed: encrypted when an encryption key is set
        # (the payload is then hidden as well as authenticated), else signed.
        self._sign_or_encrypt: t.Callable[[bytes, bytes], bytes] = _no_key
        self._marker = ""
        if encryption is not None:
            self._sign_or_encrypt = encryption.encrypt
            self._marker = _ENCRYPTED_B32 if case_insensitive else _ENCRYPTED
        elif signing is not None:
            self._sign_or_encrypt = signing.sign
            self._marker = _SIGNED_B32 if case_insensitive else _SIGNED
        # How each format is read: its text decoding and the key ring that
        # authenticates it. Both rings are kept, so a configuration that
        # moves from signing to encryption still reads its signed links.
        self._readers: dict[
            str,
            tuple[t.Callable[[str], bytes], t.Callable[[bytes, bytes], bytes]],
        ] = {}
        if signing is not None:
            self._readers[_SIGNED] = (_b64decode, signing.verify)
            self._readers[_SIGNED_B32] = (_b32decode, signing.verify)
        if encryption is not None:
            self._readers[_ENCRYPTED] = (_b64decode, encryption.decrypt)
            self._readers[_ENCRYPTED_B32] = (_b32decode, encryption.decrypt)
        # What each token is signed (or authenticated) with besides its
        # payload: the kind's context and the format marker.
        self._contexts: dict[str, dict[str, bytes]] = {
            marker: {
                kind: context + marker.encode("ascii")
                for kind, context in _CONTEXTS.items()
            }
            for marker in (_SIGNED, _ENCRYPTED, _SIGNED_B32, _ENCRYPTED_B32)
        }
        self._own_contexts = self._contexts.get(self._marker, {})

    @property
    def can_encode(self) -> bool:
        """Whether a key is configured for making tokens."""
        return self.unsigned or bool(self._marker)

    @t.overload
    def dumps(
        self,
        kind: Kind,
        url: str | None = None,
        metadata: t.Mapping[str, t.Any] | None = None,
        *,
        issued_at: int | None = None,
        expires_at: int | None = None,
        webhook_url: str | None = None,
    ) -> str: ...

    @t.overload
    def dumps(
        self,
        kind: Kind,
        url: list[str] | tuple[str, ...],
        metadata: t.Mapping[str, t.Any] | None = None,
        *,
        issued_at: int | None = None,
        expires_at: int | None = None,
        webhook_url: str | None = None,
    ) -> list[str]: ...

    def dumps(
        self,
        kind: Kind,
        url: str | None | list[str] | tuple[str, ...] = None,
        metadata: t.Mapping[str, t.Any] | None = None,
        *,
        issued_at: int | None = None,
        expires_at: int | None = None,
        webhook_url: str | None = None,
    ) -> str | list[str]:
        """Make a token of ``kind`` carrying the given fields; the one way
        tokens are made.

        Given a list (or tuple) of URLs, make one token per URL, all with the
        same other fields (one recipient's copy of an email): the metadata
        is then encoded once for all of them. Each URL's and each metadata's
        compressed form is reused from earlier calls.

        The fields are not checked against ``kind`` here (callers such as
        :class:`~flask_mailtrack.Tracker` check click targets);
        :meth:`loads` checks them when the token is read.

        :param kind: :data:`OPEN` or :data:`CLICK`.
        :param url: The click target (``None`` in open tokens), or a list of
            them.
        :param metadata: A JSON object.
        :param issued_at: Seconds since the epoch; now if omitted.
        :param expires_at: When the token stops being accepted.
        :param webhook_url: A webhook URL to carry.
        :raise MailTrackError: no key is configured, or a field cannot be
            stored (metadata that is not JSON, a URL with a newline, ...).
        """
        if issued_at is None:
            issued_at = int(time.time())
        if url is None or isinstance(url, str):
            if self.unsigned:
                return self._dumps_unsigned(
                    kind, url, metadata, issued_at, expires_at, webhook_url
                )
            rest = _encode_rest(metadata, webhook_url)
            return self._seal(kind, _pack(url, rest, issued_at, expires_at))
        if type(url) is not list and type(url) is not tuple:
            raise TypeError("url must be a string, None, or a list of strings.")
        if self.unsigned:
            return [
                self._dumps_unsigned(
                    kind, one, metadata, issued_at, expires_at, webhook_url
                )
                for one in url
            ]
        rest = _encode_rest(metadata, webhook_url)
        seal = self._seal
        return [seal(kind, _pack(one, rest, issued_at, expires_at)) for one in url]

    def _seal(self, kind: Kind, raw: bytes) -> str:
        """Sign or encrypt packed payload bytes into a token of ``kind``."""
        context = self._own_contexts.get(kind)
        if context is None:
            if not self._marker:
                raise MailTrackError(_NO_KEY_MESSAGE)
            raise ValueError(f"Unknown token kind {kind!r}.")
        sealed = self._sign_or_encrypt(raw, context)
        if self.case_insensitive:
            token = self._marker + _b32encode(sealed)
        else:
            # _b64encode, inlined: this runs once per tracked link.
            encoded = binascii.b2a_base64(sealed, newline=False)
            token = self._marker + encoded.translate(_TO_URLSAFE).rstrip(b"=").decode()
        if len(token) > self.max_length:
            raise MailTrackError(
                f"The token would be {len(token)} characters long, more than"
                f" max_token_length ({self.max_length}) allows reading back."
            )
        return token

    def _dumps_unsigned(
        self,
        kind: Kind,
        url: str | None,
        metadata: t.Mapping[str, t.Any] | None,
        issued_at: int,
        expires_at: int | None,
        webhook_url: str | None,
    ) -> str:
        if self._legacy_fernet is None:
            self._check_unsigned_target(kind, url)
        payload = Payload(url, metadata or {}, issued_at, expires_at, webhook_url)
        return dumps_unsigned(
            payload, encoding=self._encoding, fernet=self._legacy_fernet
        )

    def loads(self, kind: Kind, token: str, *, now: float | None = None) -> Payload:
        """Verify and decode a token of ``kind``; raise :exc:`InvalidToken`."""
        if not isinstance(token, str) or not token:
            raise InvalidToken("Empty or non-text token.", reason="format")
        if len(token) > self.max_length:
            raise InvalidToken(
                f"Token is longer than {self.max_length} characters.", reason="length"
            )
        marker = token[0]
        contexts = self._contexts.get(marker)
        if contexts is None:
            if self.accept_legacy:
                return self._loads_legacy(kind, token)
            raise InvalidToken("Unknown token format.", reason="format", token=token)
        context = contexts.get(kind)
        if context is None:
            raise ValueError(f"Unknown token kind {kind!r}.")
        reader = self._readers.get(marker)
        if reader is None:
            signed = marker == _SIGNED or marker == _SIGNED_B32
            raise InvalidToken(
                f"{'Signed' if signed else 'Encrypted'} tokens are not accepted.",
                reason="signature",
            )
        decode_text, verify_or_decrypt = reader
        payload = unpack(verify_or_decrypt(decode_text(token[1:]), context))
        expires_at = payload.expires_at
        if expires_at is not None and (
            (time.time() if now is None else now) >= expires_at
        ):
            raise ExpiredToken(
                "Token has expired.",
                expires_at=expires_at,
                payload=payload,
                token=token,
            )
        if kind == CLICK:
            if not is_safe_target(payload.url):
                raise InvalidToken(
                    "Click token has no safe target URL.", reason="target", token=token
                )
        elif payload.url is not None:
            raise InvalidToken("Click token used as open token.", reason="kind")
        return payload

    def _loads_legacy(self, kind: Kind, token: str) -> Payload:
        payload, authenticated = loads_legacy(
            token, fernet=self._legacy_fernet, encoding=self._encoding
        )
        if kind == CLICK:
            if not is_safe_target(payload.url):
                raise InvalidToken(
                    "Click token has no safe target URL.", reason="target", token=token
                )
            if not authenticated and (
                url_host(t.cast(str, payload.url)) not in self.legacy_redirect_hosts
            ):
                raise InvalidToken(
                    "Unsigned click tokens may only redirect to legacy_redirect_hosts.",
                    reason="legacy",
                    token=token,
                )
        elif kind == OPEN:
            if payload.url is not None:
                raise InvalidToken("Click token used as open token.", reason="kind")
        else:
            raise ValueError(f"Unknown token kind {kind!r}.")
        return payload

    def _check_unsigned_target(self, kind: Kind, url: str | None) -> None:
        # An unsigned click token is read back only for an allowed host, so
        # making one for any other host would make a dead link. (A Fernet
        # token is authenticated, so it is read back for any safe target.)
        if kind == CLICK and (
            not is_safe_target(url)
            or url_host(t.cast(str, url)) not in self.legacy_redirect_hosts
        ):
            raise MailTrackError(
                f"Refusing to make an unsigned click token for {url!r}: its host"
                " is not in legacy_redirect_hosts, so it would not be followed."
            )
