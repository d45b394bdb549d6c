"""What the ``MAILTRACK_*`` settings ask of outgoing mail:
:class:`OutgoingSettings`, and the keyed hash of a recipient's address."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import typing as t

from .._secret_keys import to_bytes
from ..configuration import ConfigKeys
from ..configuration import parse_bool
from ..exceptions import ConfigurationError
from ..exceptions import MissingSettingError

#: The values of ``MAILTRACK_RECIPIENT_METADATA`` that put the recipient in
#: the metadata: the address itself, or its keyed hash.
CLEAR = "clear"
HASH = "hash"
RECIPIENT_MODES = (CLEAR, HASH)

#: Turns a signing key into the recipient hash key, so that the two never
#: share a key (a hash is never a valid signature, nor the reverse).
_HASH_KEY_PURPOSE = b"flask_mailtrack.recipient-hash.v1"


@dataclasses.dataclass(frozen=True)
class OutgoingSettings:
    """How outgoing email is tracked and recorded.

    :param enabled: Track outgoing email (``MAILTRACK_TRACK_OUTGOING``).
    :param track_text: Also track plain-text bodies (``MAILTRACK_TRACK_TEXT``).
    :param recipient_metadata: ``None``, ``"clear"`` or ``"hash"``
        (``MAILTRACK_RECIPIENT_METADATA``).
    :param recipient_hash_key: The key of :func:`hash_recipient`, needed
        with ``"hash"``.

    .. versionadded:: 0.2
    """

    enabled: bool = False
    track_text: bool = False
    recipient_metadata: str | None = None
    recipient_hash_key: bytes | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.recipient_metadata not in (None, *RECIPIENT_MODES):
            raise ConfigurationError(
                f"{ConfigKeys.RECIPIENT_METADATA} must be 'clear', 'hash' or"
                f" unset, not {self.recipient_metadata!r}."
            )
        if self.recipient_metadata == HASH and not self.recipient_hash_key:
            raise MissingSettingError(
                f"{ConfigKeys.RECIPIENT_METADATA}='hash' needs a key: set"
                f" {ConfigKeys.RECIPIENT_HASH_KEY} (or a signing key to derive"
                " it from)."
            )

    @classmethod
    def from_mapping(
        cls,
        settings: t.Mapping[str, t.Any],
        *,
        signing_keys: t.Sequence[bytes] = (),
        enabled_by_default: bool = False,
    ) -> OutgoingSettings:
        """The settings of ``MAILTRACK_*`` keys (a Flask config, Django's
        settings as a dict, the environment).

        :param signing_keys: The configuration's keys, oldest first; the
            recipient hash key is derived from the newest when
            ``MAILTRACK_RECIPIENT_HASH_KEY`` is not set.
        :param enabled_by_default: The value of an unset
            ``MAILTRACK_TRACK_OUTGOING``.
        :raise ConfigurationError: a value that cannot be used.
        """
        mode = settings.get(ConfigKeys.RECIPIENT_METADATA)
        if isinstance(mode, str):
            mode = mode.strip().lower()
        if mode in ("", "off", "none", "false", "0", False):
            mode = None
        key = settings.get(ConfigKeys.RECIPIENT_HASH_KEY)
        hash_key = to_bytes(key) if key else None
        if mode == HASH and hash_key is None and signing_keys:
            hash_key = hmac.new(
                signing_keys[-1], _HASH_KEY_PURPOSE, hashlib.sha256
            ).digest()
        return cls(
            enabled=parse_bool(
                settings.get(ConfigKeys.TRACK_OUTGOING),
                name=ConfigKeys.TRACK_OUTGOING,
                default=enabled_by_default,
            ),
            track_text=parse_bool(
                settings.get(ConfigKeys.TRACK_TEXT), name=ConfigKeys.TRACK_TEXT
            ),
            recipient_metadata=mode,
            recipient_hash_key=hash_key,
        )

    def recipient_value(self, address: str) -> str | None:
        """What the metadata holds for ``address``: the address
        (lower-cased), its hash, or ``None`` when the settings keep
        recipients out of the metadata."""
        if self.recipient_metadata is None:
            return None
        if self.recipient_metadata == CLEAR:
            return address.strip().lower()
        return hash_recipient(address, t.cast(bytes, self.recipient_hash_key))


def hash_recipient(address: str, key: bytes) -> str:
    """The keyed hash of an email address that ``"hash"`` mode puts in the
    metadata: HMAC-SHA256 of the lower-cased address, 32 hex digits. The
    same address always gives the same hash with the same key, so a
    recipient's events can be found (and deleted) from their address; without
    the key the address cannot be guessed from it.

    .. versionadded:: 0.2
    """
    normalized = address.strip().lower().encode("utf-8")
    return hmac.new(key, normalized, hashlib.sha256).hexdigest()[:32]
