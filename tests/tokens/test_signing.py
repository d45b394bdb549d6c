"""The HMAC key ring of signed tokens: truncated HMAC-SHA256, rotation."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from flask_mailtrack import InvalidToken
from flask_mailtrack import MailTrackError
from flask_mailtrack.tokens import SigningKeyRing
from flask_mailtrack.tokens._signing import TAG_SIZE

MESSAGES = [b"", b"x", b"flask_mailtrack.click\x001" + bytes(range(256)) * 3]
CONTEXT = b"flask_mailtrack.open\x001"


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(b"k", id="1-byte"),
        pytest.param(b"k" * 32, id="32-bytes"),
        pytest.param(b"k" * 63, id="63-bytes"),
        pytest.param(b"k" * 64, id="64-bytes-block"),
        pytest.param(b"k" * 65, id="65-bytes"),
        pytest.param(bytes(range(256)) * 2, id="512-bytes"),
    ],
)
@pytest.mark.parametrize("message", MESSAGES)
def test_truncated_hmac_equals_hmac_digest(key: bytes, message: bytes) -> None:
    ring = SigningKeyRing([key])
    expected = hmac.digest(key, CONTEXT + message, "sha256")[:TAG_SIZE]
    assert TAG_SIZE == 16
    assert ring.sign(message, CONTEXT) == message + expected
    # Twice: the second call copies the same hash states again.
    assert ring.sign(message, CONTEXT) == message + expected
    if not message:
        return  # a token's payload is never empty; verify refuses a bare tag
    assert ring.verify(message + expected, CONTEXT) == message
    for forged in (
        message + b"!" + expected,
        message + expected[:-1],
        message + expected[:-1] + bytes((expected[-1] ^ 1,)),
    ):
        with pytest.raises(InvalidToken):
            ring.verify(forged, CONTEXT)
    # The context is signed: another one does not verify.
    with pytest.raises(InvalidToken):
        ring.verify(message + expected, b"flask_mailtrack.click\x001")


def test_keys_do_not_share_states() -> None:
    first = SigningKeyRing([b"a" * 20]).sign(b"message", b"")
    second = SigningKeyRing([b"b" * 20]).sign(b"message", b"")
    assert first != second
    assert first[-16:] == hmac.digest(b"a" * 20, b"message", hashlib.sha256)[:16]


def test_newest_key_signs_and_fallback_keys_verify() -> None:
    ring = SigningKeyRing([b"old-key", b"new-key"])
    # No key derivation: the key is used as given, newest last.
    tag = hmac.digest(b"new-key", CONTEXT + b"value", "sha256")[:TAG_SIZE]
    signed = ring.sign(b"value", CONTEXT)
    assert signed == b"value" + tag
    assert ring.verify(signed, CONTEXT) == b"value"
    older = SigningKeyRing([b"old-key"])
    assert ring.verify(older.sign(b"value", CONTEXT), CONTEXT) == b"value"
    with pytest.raises(InvalidToken) as info:
        older.verify(signed, CONTEXT)
    assert info.value.reason == "signature"


def test_too_short_and_empty() -> None:
    with pytest.raises(InvalidToken) as info:
        SigningKeyRing([b"k"]).verify(b"x" * TAG_SIZE, CONTEXT)
    assert info.value.reason == "format"
    with pytest.raises(MailTrackError):
        SigningKeyRing([])
