"""Encryption for encrypted-mode tokens: AES-256-GCM from ``cryptography``.

Each configured key is stretched with HMAC-SHA256 into a dedicated AEAD key,
so any 16-byte-or-longer secret (including a pytracking Fernet key, which
also serves to read legacy Fernet tokens) can be used without reusing key
material across algorithms. A one-byte key id in each token picks the key to
try, so rotation costs one decryption, not one per key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import typing as t

from ..exceptions import InvalidToken
from ..exceptions import MailTrackError

NONCE_SIZE = 12
_OVERHEAD = 1 + NONCE_SIZE + 16  # key id, nonce, GCM tag
_DERIVATION_LABEL = b"flask_mailtrack token encryption v1"

if t.TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class KeyRing:
    """AEAD keys, oldest first; the newest encrypts, all decrypt."""

    def __init__(self, keys: t.Sequence[bytes]) -> None:
        try:
            from cryptography.exceptions import InvalidTag
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError:  # pragma: no cover - depends on the environment
            raise MailTrackError(
                "Encrypted tokens need the 'cryptography' package:"
                " pip install 'flask-mailtrack[crypto]'."
            ) from None
        if not keys:
            raise MailTrackError("An encryption key ring needs at least one key.")
        self._invalid_tag = InvalidTag
        self._by_id: dict[int, list[AESGCM]] = {}
        self._newest: tuple[int, AESGCM] | None = None
        for key in keys:
            derived = hmac.new(key, _DERIVATION_LABEL, hashlib.sha256).digest()
            key_id = hashlib.sha256(derived).digest()[0]
            aead = AESGCM(derived)
            # Newest first, so a key-id collision tries the newest key first.
            self._by_id.setdefault(key_id, []).insert(0, aead)
            self._newest = (key_id, aead)

    def encrypt(self, plaintext: bytes, context: bytes) -> bytes:
        assert self._newest is not None
        key_id, aead = self._newest
        nonce = os.urandom(NONCE_SIZE)
        return bytes((key_id,)) + nonce + aead.encrypt(nonce, plaintext, context)

    def decrypt(self, data: bytes, context: bytes) -> bytes:
        if len(data) < _OVERHEAD:
            raise InvalidToken("Token is too short.", reason="format")
        nonce = data[1 : 1 + NONCE_SIZE]
        for aead in self._by_id.get(data[0], ()):
            try:
                return aead.decrypt(nonce, data[1 + NONCE_SIZE :], context)
            except self._invalid_tag:
                continue
        raise InvalidToken("Token could not be decrypted.", reason="signature")
