"""The exceptions raised by flask_mailtrack.

Every error that comes from outside input (a token in a URL, a malformed
configuration, a webhook request) is a :class:`MailTrackError`, so callers
need one ``except`` clause. Decoding a token raises :class:`InvalidToken`
and nothing else::

    MailTrackError
    ├── ConfigurationError (also ValueError)   bad settings, keys, base URLs
    │   ├── UnknownSettingError (also TypeError)   a keyword or key that
    │   │                                          names no setting
    │   └── MissingSettingError (also RuntimeError)   no signing key, no
    │                                                 base URL to make links on
    ├── InvalidToken                           a token that does not verify
    │   └── ExpiredToken                       authentic, but past its expiry
    └── WebhookVerificationError               a webhook that does not verify

    MailTrackWarning (UserWarning)             a setting that works but is
    │                                          probably a mistake
    ├── InsecureTokenWarning                   unsigned pytracking links
    └── WeakSecretKeyWarning                   a short or well-known signing key

A :class:`ConfigurationError` is also a :exc:`ValueError`, and an
:class:`UnknownSettingError` also a :exc:`TypeError`, as Python raises for a
bad argument; code written for either keeps working. A
:class:`MissingSettingError` is also a :exc:`RuntimeError`, which the first
previews raised for a missing key.

Programming errors are not :class:`MailTrackError`: registering
:class:`~flask_mailtrack.MailTrack` twice on an app, or using it outside an
app context, raises :exc:`RuntimeError`, as Flask extensions do.
"""

from __future__ import annotations

import typing as t


class MailTrackError(Exception):
    """The root of every exception this library raises on purpose."""


class ConfigurationError(MailTrackError, ValueError):
    """A setting, key or argument cannot be used: a key too short, a base URL
    that is not absolute, a value of the wrong kind, no secret key where one
    is needed.

    .. versionadded:: 0.1
    """


class UnknownSettingError(ConfigurationError, TypeError):
    """A keyword argument or a ``MAILTRACK_*`` key names no setting (a typo
    that would otherwise go unnoticed).

    .. versionadded:: 0.1
    """


class MissingSettingError(ConfigurationError, RuntimeError):
    """A setting that this use needs is not set: no key to sign links with,
    no base URL to make links on outside a request.

    .. versionadded:: 0.1
    """


class InvalidToken(MailTrackError):
    """A tracking token could not be verified or decoded.

    A forged, altered, truncated, oversized or malformed token raises this, and
    so does a click token whose target is not a safe ``http``/``https`` URL.
    The message says why; it never contains key material.
    """

    #: A short, stable reason code (``"length"``, ``"format"``,
    #: ``"signature"``, ``"payload"``, ``"target"``, ``"expired"``,
    #: ``"legacy"``, ``"kind"``), for logs and the ``tracking_failed`` signal.
    reason: str

    #: The token text that failed, if it was short enough to keep.
    token: str | None

    def __init__(
        self, message: str, *, reason: str = "format", token: str | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.token = token if token is None or len(token) <= 4096 else None


class ExpiredToken(InvalidToken):
    """The token is authentic but its expiry time has passed."""

    #: When the token expired, in seconds since the epoch (UTC).
    expires_at: int

    #: The verified payload, for callers who still want to record the hit.
    payload: t.Any

    def __init__(
        self,
        message: str,
        *,
        expires_at: int,
        payload: t.Any = None,
        token: str | None = None,
    ) -> None:
        super().__init__(message, reason="expired", token=token)
        self.expires_at = expires_at
        self.payload = payload


class WebhookVerificationError(MailTrackError):
    """A webhook request failed :func:`~flask_mailtrack.verify_webhook`."""


class MailTrackWarning(UserWarning):
    """A setting that works but is probably a mistake: an unknown
    ``MAILTRACK_*`` environment variable, a base URL that repeats the
    routes' prefix. Filter this class to silence them all.

    .. versionadded:: 0.1
    """


class InsecureTokenWarning(MailTrackWarning):
    """Issued when a configuration makes unsigned (pytracking-format) links.

    .. versionchanged:: 0.1
        A :class:`MailTrackWarning` (still a :exc:`UserWarning`).
    """


class WeakSecretKeyWarning(MailTrackWarning):
    """A ``secret_key`` (or Flask's ``SECRET_KEY`` used in its place) is
    shorter than 32 bytes, has fewer than 5 different characters, or is a
    well-known placeholder: anyone who guesses it can make links that your
    server honours. Issued once per key; ``mailtrack keygen`` prints a good
    one. Tests that use short keys on purpose can filter it::

        filterwarnings = ["ignore::flask_mailtrack.exceptions.WeakSecretKeyWarning"]

    .. versionadded:: 0.1
    """
