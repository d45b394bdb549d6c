"""The settings object shared by every part of flask_mailtrack:
:class:`Configuration`, the other ``MAILTRACK_*`` keys (:class:`ConfigKeys`),
and how text settings (environment variables) are read.

Every error about a setting is a
:class:`~flask_mailtrack.ConfigurationError`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import typing as t
import warnings

from ._secret_keys import key_list as _key_list
from ._secret_keys import KeyInput
from ._secret_keys import to_bytes as _to_bytes
from ._secret_keys import warn_weak_secret_keys as _warn_weak_secret_keys
from ._text_settings import BOOL_FIELDS
from ._text_settings import convert_text
from ._text_settings import did_you_mean
from ._text_settings import FALSE_WORDS as FALSE_WORDS
from ._text_settings import parse_bool as parse_bool
from ._text_settings import TRUE_WORDS as TRUE_WORDS
from ._text_settings import unknown_setting
from .exceptions import ConfigurationError
from .exceptions import InsecureTokenWarning
from .exceptions import MailTrackWarning

__all__ = [
    "ConfigKeys",
    "Configuration",
    "DEFAULT_TIMEOUT_SECONDS",
    "DEFAULT_UNTRACKED_URL_PATTERNS",
    "FALSE_WORDS",
    "TRUE_WORDS",
    "environ_settings",
    "parse_bool",
]

#: pytracking's default webhook timeout, kept.
DEFAULT_TIMEOUT_SECONDS = 5

#: URLs containing one of these (case-insensitively) are never tracked, so
#: that no tracking redirect stands between a recipient and leaving a list.
DEFAULT_UNTRACKED_URL_PATTERNS = ("unsubscribe", "optout", "opt-out")

# An HTTP field name (RFC 9110's token).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

MachineRule = t.Callable[..., t.Optional[str]]


@dataclasses.dataclass(frozen=True)
class Configuration:
    """Immutable tracking settings. Build it once and share it.

    The first ten parameters are pytracking's, in pytracking's order and with
    its meaning; the rest are new. Unknown keywords raise
    :class:`~flask_mailtrack.exceptions.UnknownSettingError`, a
    :exc:`TypeError` (pytracking silently ignored them, so typos went
    unnoticed); values that cannot be used raise
    :class:`~flask_mailtrack.ConfigurationError`, a :exc:`ValueError`. Use
    :meth:`replace` to derive a variant.

    :param webhook_url: Webhook notified of each event (see
        :class:`~flask_mailtrack.WebhookSender`).
    :param webhook_timeout_seconds: Timeout of one webhook delivery attempt.
    :param include_webhook_url: Put ``webhook_url`` inside each token, so the
        receiving side notifies the webhook the link was made for. Safe
        because tokens are authenticated.
    :param base_open_tracking_url: Absolute URL below which open tokens
        (pixels) are served, e.g. ``https://t.example.com/mailtrack/o/``.
    :param base_click_tracking_url: Absolute URL below which click tokens
        are served.
    :param default_metadata: Metadata added to every event.
    :param include_default_metadata: Put ``default_metadata`` inside each
        token instead of adding it when the token is read.
    :param encryption_bytestring_key: pytracking's Fernet key. Here it makes
        tokens encrypted (AES-256-GCM with a key derived from it) and, with
        ``accept_legacy_tokens``, reads pytracking's Fernet tokens.
    :param encoding: Text encoding of pytracking-format tokens.
    :param append_slash: Add ``/`` after the token in tracking URLs
        (pytracking accepted this keyword but ignored it; it is honoured here).
    :param secret_key: HMAC key, or a list of keys oldest to newest: the
        newest signs, all verify. Required unless tokens are encrypted. A
        key shorter than 32 bytes, with fewer than 5 different characters or
        a well-known placeholder (``"dev"``, ``"secret"``, ``"changeme"``,
        Django's ``"django-insecure-..."``) issues
        :class:`~flask_mailtrack.exceptions.WeakSecretKeyWarning`, once per
        key.
    :param encryption_key: Encrypt tokens (AES-256-GCM) so metadata and URLs
        are unreadable without the key. A key or list of keys (oldest to
        newest), each at least 16 bytes (or text of at least 16 characters,
        such as ``mailtrack keygen`` prints).
    :param max_age: Seconds a token stays valid after it is made; ``None``
        (the default) for tokens that never expire.
    :param case_insensitive_tokens: Make base32 tokens that survive mail
        clients and scanners lower-casing URLs (about 20% longer).
    :param accept_legacy_tokens: Also accept tokens made by pytracking, during
        a migration.
    :param legacy_redirect_hosts: Hosts that *unsigned* pytracking click
        tokens may redirect to. Anyone can forge those tokens, so a host not
        listed here gets no redirect.
    :param insecure_unsigned_tokens: Make pytracking's tokens, only for
        sharing links with a pytracking server still in use: unsigned ones,
        which anyone can forge or read, or with ``encryption_bytestring_key``
        Fernet-encrypted ones, as pytracking made with that key (these never
        expire). Issues :class:`InsecureTokenWarning`.
    :param max_token_length: Longer tokens are refused before any decoding.
    :param untracked_url_patterns: Substrings (case-insensitive) of URLs that
        the HTML and text rewriters leave untracked.
    :param pixel_position: Where the rewriter puts the open pixel: ``"bottom"``
        (before ``</body>``) or ``"top"`` (after ``<body>``, which survives
        Gmail clipping messages over about 102 KB).
    :param trusted_proxies: Number of reverse proxies in front of the server
        whose ``X-Forwarded-For`` entries are trusted for the client IP (like
        werkzeug's ``ProxyFix(x_for=N)``). ``0``: only ``REMOTE_ADDR``.
    :param anonymize_ip: Zero the last octet of IPv4 and the last 80 bits of
        IPv6 client addresses before any receiver sees them.
    :param pixel_on_invalid_token: Answer a bad open token with the pixel
        (no event, a ``tracking_failed`` signal) instead of a 404, so mail
        clients never show a broken-image icon.
    :param click_scan_seconds: A click this many seconds or less after the
        link was made is labelled as machine traffic (security scanners
        follow links on delivery). ``0`` disables the rule.
    :param machine_rules: Extra callables ``rule(result, hit)`` returning
        a machine label or ``None``, run after the built-in rules: ``result``
        is the :class:`~flask_mailtrack.TrackingResult`, ``hit`` the request
        as a :class:`flask_mailtrack.traffic.Hit` (method, path, headers,
        addresses, user agent). See :doc:`/machine`.
    :param proxy_header: The header the trusted proxies write the client
        address into, read only when ``trusted_proxies`` is set:
        ``X-Forwarded-For`` (the default) or ``Forwarded``, lists whose
        ``trusted_proxies``-th entry from the right is used; any other
        header (nginx's ``X-Real-IP``, ``CF-Connecting-IP``) holds one
        address that a trusted proxy sets, replacing what the client sent.

    .. versionadded:: 0.1
        ``proxy_header``.

    .. versionchanged:: 0.1
        Machine rules get a :class:`~flask_mailtrack.traffic.Hit` instead of
        the werkzeug request; the attributes rules read most have the same
        names.

    .. versionchanged:: 0.1
        A weak ``secret_key`` issues
        :class:`~flask_mailtrack.exceptions.WeakSecretKeyWarning`; a boolean
        parameter given as text is read as ``MAILTRACK_*`` text is
        (``"false"`` is false, a word that is neither true nor false raises
        :class:`~flask_mailtrack.ConfigurationError`).
    """

    webhook_url: str | None = None
    webhook_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    include_webhook_url: bool = False
    base_open_tracking_url: str | None = None
    base_click_tracking_url: str | None = None
    default_metadata: t.Mapping[str, t.Any] | None = None
    include_default_metadata: bool = False
    encryption_bytestring_key: bytes | str | None = None
    encoding: str = "utf-8"
    append_slash: bool = False
    secret_key: KeyInput | None = None
    encryption_key: KeyInput | None = None
    max_age: int | None = None
    case_insensitive_tokens: bool = False
    accept_legacy_tokens: bool = False
    legacy_redirect_hosts: t.Collection[str] = ()
    insecure_unsigned_tokens: bool = False
    max_token_length: int = 4096
    untracked_url_patterns: t.Sequence[str] = DEFAULT_UNTRACKED_URL_PATTERNS
    pixel_position: str = "bottom"
    trusted_proxies: int = 0
    anonymize_ip: bool = False
    pixel_on_invalid_token: bool = True
    click_scan_seconds: float = 0
    machine_rules: t.Sequence[MachineRule] = ()
    proxy_header: str = "X-Forwarded-For"

    def __new__(cls, *args: t.Any, **kwargs: t.Any) -> Configuration:
        # The generated __init__ refuses an unknown keyword with a bare
        # TypeError; say which setting is unknown, in the library's error
        # tree. (replace() and copies go through here too.)
        unknown = kwargs.keys() - _FIELD_NAMES
        if unknown:
            raise unknown_setting(min(unknown), _FIELD_NAMES, cls.__name__)
        return super().__new__(cls)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(
            self,
            "legacy_redirect_hosts",
            frozenset(host.lower() for host in self.legacy_redirect_hosts),
        )
        set_(self, "untracked_url_patterns", tuple(self.untracked_url_patterns))
        set_(self, "machine_rules", tuple(self.machine_rules))
        for name in BOOL_FIELDS:
            # Text such as "false" is truthy: read it as the environment's
            # text is read, so that it never switches a setting on (or off).
            value = getattr(self, name)
            if isinstance(value, str):
                set_(self, name, parse_bool(value, name=name))
        if self.pixel_position not in ("top", "bottom"):
            raise ConfigurationError("pixel_position must be 'top' or 'bottom'.")
        if self.max_age is not None and self.max_age <= 0:
            raise ConfigurationError(
                "max_age must be a positive number of seconds or None."
            )
        if self.trusted_proxies < 0:
            raise ConfigurationError("trusted_proxies must be 0 or more.")
        if not self.proxy_header:  # an environment variable set to nothing
            set_(self, "proxy_header", "X-Forwarded-For")
        if not isinstance(self.proxy_header, str) or not _HEADER_NAME.fullmatch(
            self.proxy_header
        ):
            raise ConfigurationError(
                "proxy_header must be the name of an HTTP header, such as"
                f" 'X-Real-IP', not {self.proxy_header!r}."
            )
        if not 0 < self.webhook_timeout_seconds < math.inf:
            raise ConfigurationError(
                "webhook_timeout_seconds must be a positive number of seconds."
            )
        if self.max_token_length < 64:
            raise ConfigurationError("max_token_length must be at least 64.")
        if self.insecure_unsigned_tokens:
            warnings.warn(
                (
                    "insecure_unsigned_tokens=True makes pytracking's Fernet"
                    " tokens, which never expire."
                    if self.encryption_bytestring_key
                    else "insecure_unsigned_tokens=True makes tracking links"
                    " that anyone can read and forge."
                )
                + " Use it only while a pytracking server still has to read"
                " new links.",
                InsecureTokenWarning,
                stacklevel=3,
            )
        _warn_weak_secret_keys(self.secret_key)

    def replace(self, **changes: t.Any) -> Configuration:
        """A copy with ``changes`` applied (unknown names raise
        :class:`~flask_mailtrack.exceptions.UnknownSettingError`)."""
        return dataclasses.replace(self, **changes)

    @property
    def secret_keys(self) -> list[bytes]:
        """The HMAC keys as bytes, oldest first."""
        return _key_list(self.secret_key, "secret_key", min_length=1)

    @property
    def encryption_keys(self) -> list[bytes]:
        """The encryption keys as bytes, oldest first (the Fernet key first)."""
        keys = _key_list(self.encryption_key, "encryption_key", min_length=16)
        if self.encryption_bytestring_key:
            keys.insert(0, _to_bytes(self.encryption_bytestring_key))
        return keys

    @classmethod
    def from_mapping(
        cls,
        mapping: t.Mapping[str, t.Any],
        prefix: str = "MAILTRACK_",
        **overrides: t.Any,
    ) -> Configuration:
        """Build a configuration from ``PREFIX_NAME`` keys of a mapping, such
        as a Flask ``app.config`` or :data:`os.environ`.

        Each parameter ``name`` is read from ``prefix + name.upper()``. Text
        values (as environment variables are) are converted: booleans from
        ``1/true/yes/on`` and ``0/false/no/off``, numbers, lists from JSON or
        comma-separated text, mappings from JSON. Other keys with the prefix
        must be settings of the adapters (see :class:`ConfigKeys`); any other
        raises :class:`~flask_mailtrack.exceptions.UnknownSettingError`, so
        typos are caught. A value that cannot be converted raises
        :class:`~flask_mailtrack.ConfigurationError`. ``overrides`` win.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, t.Any] = {}
        for key, value in mapping.items():
            if not key.startswith(prefix):
                continue
            name = key[len(prefix) :].lower()
            if name in names:
                kwargs[name] = (
                    convert_text(name, value) if isinstance(value, str) else value
                )
            elif prefix and not ConfigKeys.is_known(key, prefix):
                raise unknown_setting(key, ConfigKeys.known_keys(prefix))
        kwargs.update(overrides)
        return cls(**kwargs)


class ConfigKeys:
    """Names of the settings that are not :class:`Configuration` parameters."""

    #: Signing key. Default: Flask's ``SECRET_KEY``, with
    #: ``SECRET_KEY_FALLBACKS`` accepted for rotation.
    SECRET_KEY = "MAILTRACK_SECRET_KEY"
    #: External base URL the links are made on (``https://t.example.com``),
    #: so links can be made outside a request.
    BASE_URL = "MAILTRACK_BASE_URL"
    #: URL path prefix of the tracking routes. Default ``/mailtrack``.
    URL_PREFIX = "MAILTRACK_URL_PREFIX"
    #: AEAD key (or JSON list of keys, oldest first) to encrypt tokens.
    ENCRYPTION_KEY = "MAILTRACK_ENCRYPTION_KEY"
    #: The event store: an SQLite file path, ``sqlite:///path``, or
    #: ``postgresql://user:password@host:port/dbname``. Default
    #: ``./mailtrack.sqlite3`` (the standalone server); unset in Flask: no
    #: store.
    DATABASE = "MAILTRACK_DATABASE"
    #: Metadata keys whose statistics the event store keeps rollups of:
    #: a list, or text with commas. Default ``campaign``.
    DIMENSIONS = "MAILTRACK_DIMENSIONS"
    #: The metadata key that names a campaign, on the dashboard and in
    #: ``/stats/campaigns.json``; always rolled up (added to
    #: :attr:`DIMENSIONS`). Default ``campaign``.
    CAMPAIGN_KEY = "MAILTRACK_CAMPAIGN_KEY"
    #: Bring the event store's schema up to date when opening it. Default
    #: true; false for operators who run ``mailtrack db upgrade`` themselves.
    DATABASE_MIGRATE = "MAILTRACK_DATABASE_MIGRATE"
    #: Webhook secret in Standard Webhooks form, ``whsec_<base64 key>``.
    WEBHOOK_SECRET = "MAILTRACK_WEBHOOK_SECRET"
    #: SQLite file of the webhook outbox. Default ``MAILTRACK_DATABASE``'s
    #: file; required with a PostgreSQL database.
    WEBHOOK_OUTBOX = "MAILTRACK_WEBHOOK_OUTBOX"
    #: Deprecated alias of :attr:`WORKER`: ``False`` is ``external``,
    #: ``True`` is ``embedded``. Setting it issues a
    #: :exc:`DeprecationWarning`; a value that contradicts :attr:`WORKER` is
    #: refused.
    WEBHOOK_DELIVER = "MAILTRACK_WEBHOOK_DELIVER"
    #: Who feeds the sinks (event store, webhooks) from the journal:
    #: ``embedded`` (default), a thread of each serving process;
    #: ``external``, a ``mailtrack worker`` process, the serving processes
    #: only journal.
    WORKER = "MAILTRACK_WORKER"
    #: The journal folder, where serving processes append events for the
    #: worker. Default ``<MAILTRACK_DATABASE>-events``, else
    #: ``<MAILTRACK_WEBHOOK_OUTBOX>-events``; no journal when neither a
    #: database nor a webhook is configured. Required with a PostgreSQL
    #: database.
    JOURNAL = "MAILTRACK_JOURNAL"
    #: Post to webhook URLs written in tokens (``include_webhook_url``) only
    #: when their host resolves to a public address (see
    #: :class:`~flask_mailtrack.WebhookSender`). Default off.
    WEBHOOK_REFUSE_PRIVATE = "MAILTRACK_WEBHOOK_REFUSE_PRIVATE"
    #: Redis URL (``redis://host:6379/0``): the worker also appends every
    #: event to a Redis stream. Default: none.
    REDIS_URL = "MAILTRACK_REDIS_URL"
    #: Key of the Redis stream. Default ``mailtrack:events``.
    REDIS_STREAM = "MAILTRACK_REDIS_STREAM"
    #: Approximate cap on the Redis stream's length (``MAXLEN ~``). Default
    #: ``1000000``.
    REDIS_MAXLEN = "MAILTRACK_REDIS_MAXLEN"
    #: Password of the stats page outside demo mode.
    STATS_PASSWORD = "MAILTRACK_STATS_PASSWORD"
    #: Standalone server only: serve the demo page at ``/`` (``mailtrack
    #: serve --demo``). The stats are then open to anyone who can reach it.
    DEMO = "MAILTRACK_DEMO"
    #: Track every email the app sends through Flask-Mailman or
    #: :class:`flask_mailtrack.flask_mail.Mail` (Django:
    #: :class:`flask_mailtrack.django.EmailBackend`). Default off (Django:
    #: on once the backend is set).
    TRACK_OUTGOING = "MAILTRACK_TRACK_OUTGOING"
    #: Also track the links of outgoing plain-text bodies. Default off.
    TRACK_TEXT = "MAILTRACK_TRACK_TEXT"
    #: Put the recipient of an outgoing email into its metadata: ``None``
    #: (default: never), ``"clear"`` (the address) or ``"hash"`` (a keyed
    #: hash of it).
    RECIPIENT_METADATA = "MAILTRACK_RECIPIENT_METADATA"
    #: The key of the recipient hash; default: derived from the signing key.
    RECIPIENT_HASH_KEY = "MAILTRACK_RECIPIENT_HASH_KEY"
    #: Django only: the backend :class:`flask_mailtrack.django.EmailBackend`
    #: sends through. Default Django's SMTP backend.
    EMAIL_BACKEND = "MAILTRACK_EMAIL_BACKEND"
    #: The event types posted to webhooks. Default ``email.opened`` and
    #: ``link.clicked``; add ``email.sent`` to receive sends too.
    WEBHOOK_EVENTS = "MAILTRACK_WEBHOOK_EVENTS"

    #: Keys that configure adapters, not :class:`Configuration`.
    ADAPTER_KEYS = frozenset(
        (
            "BASE_URL",
            "URL_PREFIX",
            "DATABASE",
            "DIMENSIONS",
            "CAMPAIGN_KEY",
            "DATABASE_MIGRATE",
            "WEBHOOK_SECRET",
            "WEBHOOK_OUTBOX",
            "WEBHOOK_DELIVER",
            "WEBHOOK_REFUSE_PRIVATE",
            "WORKER",
            "JOURNAL",
            "REDIS_URL",
            "REDIS_STREAM",
            "REDIS_MAXLEN",
            "STATS_PASSWORD",
            "DEMO",
            "TRACK_OUTGOING",
            "TRACK_TEXT",
            "RECIPIENT_METADATA",
            "RECIPIENT_HASH_KEY",
            "EMAIL_BACKEND",
            "WEBHOOK_EVENTS",
        )
    )

    @classmethod
    def is_known(cls, key: str, prefix: str = "MAILTRACK_") -> bool:
        """Whether ``key`` names a setting of flask_mailtrack."""
        if not key.startswith(prefix):
            return False
        name = key[len(prefix) :]
        return name in cls.ADAPTER_KEYS or name.lower() in _FIELD_NAMES

    @classmethod
    def known_keys(cls, prefix: str = "MAILTRACK_") -> list[str]:
        """Every setting name with ``prefix``: the :class:`Configuration`
        parameters' and the adapters'."""
        names = [name.upper() for name in _FIELD_NAMES] + sorted(cls.ADAPTER_KEYS)
        return [prefix + name for name in names]


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(Configuration))


_ENV_PREFIX = "MAILTRACK_"


def environ_settings(environ: t.Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``MAILTRACK_*`` settings among environment variables.

    A variable with the prefix that names no setting (a typo such as
    ``MAILTRACK_ANONYMISE_IP``) is left out, not refused, and issues one
    :class:`~flask_mailtrack.exceptions.MailTrackWarning` that names each
    such variable and the closest setting: a misspelt variable would
    otherwise leave its setting at its default without a word.

    :param environ: Default :data:`os.environ`.

    .. versionchanged:: 0.1
        Warns about unknown ``MAILTRACK_*`` variables.
    """
    environ = os.environ if environ is None else environ
    settings: dict[str, str] = {}
    unknown: list[str] = []
    for key, value in environ.items():
        if ConfigKeys.is_known(key):
            settings[key] = value
        elif key.startswith(_ENV_PREFIX):
            unknown.append(key)
    if unknown:
        # Compared without the prefix, which every name shares and which
        # would make any name look close to some setting.
        known = ConfigKeys.known_keys(prefix="")
        names = ", ".join(
            name
            + did_you_mean(
                name[len(_ENV_PREFIX) :], known, f" (did you mean {_ENV_PREFIX}{{}}?)"
            )
            for name in sorted(unknown)
        )
        warnings.warn(
            f"Ignored environment variable(s) that name no flask_mailtrack"
            f" setting: {names}.",
            MailTrackWarning,
            stacklevel=2,
        )
    return settings
