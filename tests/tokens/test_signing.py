"""The truncated HMAC-SHA256 used by signed tokens, through itsdangerous."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from flask_mailtrack.tokens._signing import make_signer
from flask_mailtrack.tokens._signing import TAG_SIZE
from flask_mailtrack.tokens._signing import TruncatedHMACSHA256
from itsdangerous import Signer

MESSAGES = [b"", b"x", b"flask_mailtrack.click\x001" + bytes(range(256)) * 3]


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
    algorithm = TruncatedHMACSHA256()
    expected = hmac.digest(key, message, "sha256")[:TAG_SIZE]
    assert TAG_SIZE == 16
    assert algorithm.get_signature(key, message) == expected
    # Twice: the second call uses the cached hash states.
    assert algorithm.get_signature(key, message) == expected
    assert algorithm.signature_function(key)(message) == expected
    assert algorithm.verify_signature(key, message, expected)
    assert not algorithm.verify_signature(key, message + b"!", expected)
    assert not algorithm.verify_signature(key, message, expected[:-1])


def test_keys_do_not_share_states() -> None:
    algorithm = TruncatedHMACSHA256()
    first = algorithm.get_signature(b"a" * 20, b"message")
    second = algorithm.get_signature(b"b" * 20, b"message")
    assert first != second
    assert first == hmac.digest(b"a" * 20, b"message", hashlib.sha256)[:16]


def test_signer_is_an_itsdangerous_signer() -> None:
    signer = make_signer([b"old-key", b"new-key"])
    assert isinstance(signer, Signer)
    assert signer.secret_keys == [b"old-key", b"new-key"]
    assert isinstance(signer.algorithm, TruncatedHMACSHA256)
    # No key derivation: the key is used as given, newest last.
    assert signer.derive_key() == b"new-key"
    signed = signer.sign(b"value")
    assert signer.unsign(signed) == b"value"
    older = make_signer([b"old-key"])
    assert signer.unsign(older.sign(b"value")) == b"value"
