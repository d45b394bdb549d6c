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
import time
import typing as t

from .encryption import KeyRing
from .exceptions import ExpiredToken
from .exceptions import InvalidToken
from .exceptions import MailTrackError
from .legacy import dumps_unsigned
from .legacy import loads as loads_legacy
from .payload import pack
from .payload import Payload
from .payload import unpack
from .signing import make_signer
from .signing import TAG_SIZE
from .urls import is_safe_target
from .urls import url_host

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


def _b64encode(data: bytes) -> str:
    encoded = binascii.b2a_base64(data, newline=False)
    return encoded.translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")


def _b32encode(data: bytes) -> str:
    return base64.b32encode(data).rstrip(b"=").decode("ascii").lower()


def _b64decode(text: str) -> bytes:
    # Strict: the re-encoding must give back the text, which refuses any
    # character outside the alphabet (binascii would skip it), padding, and
    # non-canonical final characters, so no two texts decode to the same bytes.
    try:
        padded = (text + "=" * (-len(text) % 4)).encode("ascii")
        data = binascii.a2b_base64(padded.translate(_FROM_URLSAFE))
    except (UnicodeEncodeError, binascii.Error):
        raise InvalidToken("Malformed token.", reason="format") from None
    if _b64encode(data) != text:
        raise InvalidToken("Malformed token.", reason="format")
    return data


def _b32decode(text: str) -> bytes:
    try:
        data = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise InvalidToken("Malformed token.", reason="format") from None
    if _b32encode(data) != text:
        raise InvalidToken("Malformed token.", reason="format")
    return data


class TokenSerializer:
    """Turns :class:`~flask_mailtrack.payload.Payload` objects into tokens and
    back. Built once per configuration; thread-safe.

    :param secret_keys: HMAC keys, oldest first; the newest signs.
    :param encryption_keys: AEAD keys, oldest first; if given, new tokens are
        encrypted with the newest.
    :param case_insensitive: Make base32 tokens.
    :param max_length: Longer tokens are refused before any decoding.
    :param accept_legacy: Also read pytracking 0.2.2 tokens.
    :param legacy_fernet: The Fernet key that pytracking tokens were made with.
    :param legacy_redirect_hosts: Hosts that unsigned legacy click tokens may
        redirect to.
    :param unsigned: Make pytracking's unsigned tokens (insecure).
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
        self._signer = make_signer(secret_keys) if secret_keys else None
        self._keyring = KeyRing(encryption_keys) if encryption_keys else None
        self.case_insensitive = case_insensitive
        self.max_length = max_length
        self.accept_legacy = accept_legacy or unsigned
        self._legacy_fernet = legacy_fernet
        self.legacy_redirect_hosts = frozenset(h.lower() for h in legacy_redirect_hosts)
        self.unsigned = unsigned
        self._encoding = encoding
        if self._keyring is not None:
            self._marker = _ENCRYPTED_B32 if case_insensitive else _ENCRYPTED
        else:
            self._marker = _SIGNED_B32 if case_insensitive else _SIGNED
        if not unsigned and self._signer is None and self._keyring is None:
            self._marker = ""

    @property
    def can_encode(self) -> bool:
        """Whether a key is configured for making tokens."""
        return self.unsigned or bool(self._marker)

    def dumps(self, kind: Kind, payload: Payload) -> str:
        """Make a token of ``kind`` carrying ``payload``."""
        if self.unsigned:
            self._check_legacy_target(kind, payload)
            return dumps_unsigned(payload, encoding=self._encoding)
        raw = pack(payload)
        context = _CONTEXTS[kind]
        marker = self._marker
        if self._keyring is not None:
            sealed = self._keyring.encrypt(raw, context + marker.encode())
            if marker == _ENCRYPTED:
                return marker + _b64encode(sealed)
            return marker + _b32encode(sealed)
        if self._signer is None:
            raise MailTrackError(
                "No secret key is configured, so tracking links cannot be made."
                " Set Configuration(secret_key=...) (MAILTRACK_SECRET_KEY or"
                " Flask's SECRET_KEY); `mailtrack keygen` prints a new one."
            )
        signer = self._signer
        tag = signer.algorithm.get_signature(
            signer.secret_keys[-1], context + marker.encode("ascii") + raw
        )
        encode = _b64encode if marker == _SIGNED else _b32encode
        return marker + encode(raw + tag)

    def loads(self, kind: Kind, token: str, *, now: float | None = None) -> Payload:
        """Verify and decode a token of ``kind``; raise :exc:`InvalidToken`."""
        if not isinstance(token, str) or not token:
            raise InvalidToken("Empty or non-text token.", reason="format")
        if len(token) > self.max_length:
            raise InvalidToken(
                f"Token is longer than {self.max_length} characters.", reason="length"
            )
        marker = token[0]
        context = _CONTEXTS[kind]
        if marker in (_SIGNED, _SIGNED_B32):
            payload = self._loads_signed(marker, token, context)
        elif marker in (_ENCRYPTED, _ENCRYPTED_B32):
            payload = self._loads_encrypted(marker, token, context)
        elif self.accept_legacy:
            return self._loads_legacy(kind, token)
        else:
            raise InvalidToken("Unknown token format.", reason="format", token=token)
        if payload.expires_at is not None:
            if (time.time() if now is None else now) >= payload.expires_at:
                raise ExpiredToken(
                    "Token has expired.",
                    expires_at=payload.expires_at,
                    payload=payload,
                    token=token,
                )
        self._check_kind(kind, payload, token)
        return payload

    def _loads_signed(self, marker: str, token: str, context: bytes) -> Payload:
        if self._signer is None:
            raise InvalidToken("Signed tokens are not accepted.", reason="signature")
        if marker == _SIGNED:
            sealed = _b64decode(token[1:])
        else:
            sealed = _b32decode(token[1:].lower())
        if len(sealed) <= TAG_SIZE:
            raise InvalidToken("Malformed token.", reason="format")
        raw, tag = sealed[:-TAG_SIZE], sealed[-TAG_SIZE:]
        # The signer's keys, newest first, each compared in constant time.
        signed = context + marker.encode("ascii") + raw
        algorithm = self._signer.algorithm
        for key in reversed(self._signer.secret_keys):
            if algorithm.verify_signature(key, signed, tag):
                return unpack(raw)
        raise InvalidToken("Token signature does not match.", reason="signature")

    def _loads_encrypted(self, marker: str, token: str, context: bytes) -> Payload:
        if self._keyring is None:
            raise InvalidToken("Encrypted tokens are not accepted.", reason="signature")
        if marker == _ENCRYPTED:
            sealed = _b64decode(token[1:])
        else:
            sealed = _b32decode(token[1:].lower())
        return unpack(self._keyring.decrypt(sealed, context + marker.encode()))

    def _loads_legacy(self, kind: Kind, token: str) -> Payload:
        payload, authenticated = loads_legacy(
            token, fernet=self._legacy_fernet, encoding=self._encoding
        )
        self._check_kind(kind, payload, token)
        if not authenticated:
            self._check_legacy_target(kind, payload)
        return payload

    def _check_kind(self, kind: Kind, payload: Payload, token: str) -> None:
        if kind == CLICK:
            if not is_safe_target(payload.url):
                raise InvalidToken(
                    "Click token has no safe target URL.", reason="target", token=token
                )
        elif payload.url is not None:
            raise InvalidToken("Click token used as open token.", reason="kind")

    def _check_legacy_target(self, kind: Kind, payload: Payload) -> None:
        if kind == CLICK and (
            not is_safe_target(payload.url)
            or url_host(t.cast(str, payload.url)) not in self.legacy_redirect_hosts
        ):
            raise InvalidToken(
                "Unsigned click tokens may only redirect to legacy_redirect_hosts.",
                reason="legacy",
            )
