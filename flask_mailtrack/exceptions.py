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
    ├── InvalidToken (also ValueError)         a token that does not verify
    │   └── ExpiredToken                       authentic, but past its expiry
    ├── WebhookVerificationError               a webhook that does not verify
    └── WebhookDeliveryError (also OSError)    send_webhook could not post

    MailTrackWarning (UserWarning)             a setting that works but is
    │                                          probably a mistake
    ├── InsecureTokenWarning                   unsigned pytracking links
    └── WeakSecretKeyWarning                   a short or well-known signing key

A :class:`ConfigurationError` is also a :exc:`ValueError`, and an
:class:`UnknownSettingError` also a :exc:`TypeError`, as Python raises for a
bad argument; code written for either keeps working. A
:class:`MissingSettingError` is also a :exc:`RuntimeError`, which the first
previews raised for a missing key. An :class:`InvalidToken` is also a
:exc:`ValueError`: pytracking's decoding raised ``binascii.Error``,
``UnicodeDecodeError`` or ``json.JSONDecodeError``, each a :exc:`ValueError`,
so its users wrote ``except ValueError``. A :class:`WebhookDeliveryError` is
also an :exc:`OSError`, as ``requests``' errors (which pytracking's
``send_webhook`` raised) are.

Programming errors are not :class:`MailTrackError`: registering
:class:`~flask_mailtrack.MailTrack` twice on an app, or using it outside an
app context, raises :exc:`RuntimeError`, as Flask extensions do.
"""

from __future__ import annotations

import typing as t

__all__ = [
    "ConfigurationError",
    "ExpiredToken",
    "InsecureTokenWarning",
    "InvalidToken",
    "MailTrackError",
    "MailTrackWarning",
    "MissingSettingError",
    "UnknownSettingError",
    "WeakSecretKeyWarning",
    "WebhookDeliveryError",
    "WebhookVerificationError",
]


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


class InvalidToken(MailTrackError, ValueError):
    """A tracking token could not be verified or decoded.

    A forged, altered, truncated, oversized or malformed token raises this, and
    so does a click token whose target is not a safe ``http``/``https`` URL.
    The message says why; it never contains key material.

    .. versionchanged:: 0.1
        Also a :exc:`ValueError`, so that pytracking code that caught its
        decoding errors with ``except ValueError`` keeps working.
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


class WebhookDeliveryError(MailTrackError, OSError):
    """:func:`~flask_mailtrack.send_webhook` got no valid answer from the
    endpoint: the connection was refused or timed out, the name did not
    resolve, TLS failed, or the answer was not HTTP; or
    :meth:`~flask_mailtrack.events.WebhookResponse.raise_for_status` found an
    error status.

    It is also an :exc:`OSError`, like the errors of ``requests`` that
    pytracking's ``send_webhook`` raised (``requests.RequestException`` is an
    :exc:`OSError`), so ``except OSError`` keeps working. The underlying
    error is its ``__cause__``.

    .. versionadded:: 0.1
    """

    #: The answer, when there was one (a status that
    #: :meth:`~flask_mailtrack.events.WebhookResponse.raise_for_status`
    #: refused); ``None`` when the endpoint could not be reached.
    response: t.Any

    def __init__(self, message: str, *, response: t.Any = None) -> None:
        super().__init__(message)
        self.response = response


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
