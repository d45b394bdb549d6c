"""Secret keys as settings give them: one key or a list, text or bytes, each
checked for length and for being a well-known placeholder.

Standard library only, below :mod:`flask_mailtrack.configuration`.
"""

from __future__ import annotations

import hashlib
import typing as t
import warnings

from .exceptions import ConfigurationError
from .exceptions import WeakSecretKeyWarning

KeyInput = t.Union[str, bytes, t.Sequence[t.Union[str, bytes]]]


# Secret keys that are short enough to guess or well known. Each is compared
# lower-cased and with everything but letters and digits removed, so that
# "change-me", "Change_Me" and "CHANGEME" are one entry. "dev", "secret" and
# "changeme" are the values tutorials and .env templates ship (Flask's own
# tutorial uses "dev"); "changeit" is Java's keystore default; the others
# are the placeholders that code generators and sample configurations
# write. Every one is also shorter than 32 bytes: the list gives the better
# message, the length rule catches the rest.
_PLACEHOLDER_KEYS = frozenset(
    (
        "dev",
        "development",
        "secret",
        "secretkey",
        "mysecret",
        "supersecret",
        "yoursecretkey",
        "changeme",
        "changeit",
        "replaceme",
        "password",
        "default",
        "test",
        "testing",
        "example",
        "insecure",
    )
)
# Words that say "replace this", in a key of any length.
_PLACEHOLDER_WORDS = ("changeme", "replaceme", "notasecret")
# Django's startproject writes a SECRET_KEY with this prefix and its check
# framework flags it (security.W009); flask_mailtrack.django signs with
# Django's SECRET_KEY.
_DJANGO_INSECURE_PREFIX = b"django-insecure-"
#: Keys shorter than this many bytes issue WeakSecretKeyWarning.
MIN_SECRET_KEY_BYTES = 32
# Digests of the weak keys already warned about: once per key and process,
# however many configurations (replace() copies, per-host trackers) use it.
_warned_weak_keys: set[bytes] = set()


def _secret_key_weakness(key: bytes) -> str | None:
    """Why ``key`` is a weak secret key, or ``None``."""
    normalized = "".join(
        ch for ch in key.decode("utf-8", "replace").lower() if ch.isalnum()
    )
    if (
        normalized in _PLACEHOLDER_KEYS
        or any(word in normalized for word in _PLACEHOLDER_WORDS)
        or key.startswith(_DJANGO_INSECURE_PREFIX)
    ):
        return "is a well-known placeholder"
    if len(key) < MIN_SECRET_KEY_BYTES:
        return f"is shorter than {MIN_SECRET_KEY_BYTES} bytes"
    if len(set(key)) < 5:
        return "has fewer than 5 different characters"
    return None


def warn_weak_secret_keys(value: KeyInput | None) -> None:
    if value is None:
        return
    items = [value] if isinstance(value, (str, bytes)) else list(value)
    for item in items:
        if not isinstance(item, (str, bytes)) or not item:
            continue  # refused by secret_keys, with the reason
        key = to_bytes(item)
        reason = _secret_key_weakness(key)
        if reason is None:
            continue
        digest = hashlib.sha256(key).digest()
        if digest in _warned_weak_keys:
            continue
        # The message never contains the key.
        warnings.warn(
            f"A secret key (MAILTRACK_SECRET_KEY, or Flask's SECRET_KEY) {reason}:"
            " whoever guesses it can make tracking links your server honours."
            f" Use a random key of at least {MIN_SECRET_KEY_BYTES} bytes;"
            " `mailtrack keygen` prints one.",
            WeakSecretKeyWarning,
            # warn_weak_secret_keys <- __post_init__ <- __init__ <- caller
            stacklevel=4,
        )
        # Remembered once shown: where warnings are errors, every
        # configuration with the key keeps failing.
        _warned_weak_keys.add(digest)


def to_bytes(key: str | bytes) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def key_list(value: KeyInput | None, name: str, *, min_length: int) -> list[bytes]:
    if value is None:
        return []
    items = [value] if isinstance(value, (str, bytes)) else list(value)
    if not all(isinstance(item, (str, bytes)) for item in items):
        # bytes(1) would make the key b"\x00" of a JSON list such as [1].
        raise ConfigurationError(f"Each {name} must be text or bytes.")
    keys = [to_bytes(item) for item in items]
    for key in keys:
        if len(key) < min_length:
            raise ConfigurationError(
                f"Each {name} must be at least {min_length} bytes long;"
                " `mailtrack keygen` prints a good one."
            )
    return keys
