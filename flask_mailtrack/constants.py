"""Every ``MAILTRACK_*`` setting, in one place.

The same names are Flask config keys (``app.config["MAILTRACK_..."]``) and
environment variables of the standalone ``mailtrack`` server. Keys named
after a :class:`~flask_mailtrack.Configuration` parameter set that parameter
(``MAILTRACK_MAX_AGE`` sets ``max_age``); the keys below configure the
adapters themselves.
"""

from __future__ import annotations

import dataclasses


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
    #: SQLite file of the event store. Default ``./mailtrack.sqlite3``
    #: (the standalone server); unset in Flask: no store.
    DATABASE = "MAILTRACK_DATABASE"
    #: Webhook secret in Standard Webhooks form, ``whsec_<base64 key>``.
    WEBHOOK_SECRET = "MAILTRACK_WEBHOOK_SECRET"
    #: SQLite file of the webhook outbox.
    WEBHOOK_OUTBOX = "MAILTRACK_WEBHOOK_OUTBOX"
    #: Deliver webhooks from this process. ``False``: only queue events in
    #: the outbox, which a ``mailtrack deliver`` process delivers. Default on.
    WEBHOOK_DELIVER = "MAILTRACK_WEBHOOK_DELIVER"
    #: Post to webhook URLs written in tokens (``include_webhook_url``) only
    #: when their host resolves to a public address (see
    #: :class:`~flask_mailtrack.WebhookSender`). Default off.
    WEBHOOK_REFUSE_PRIVATE = "MAILTRACK_WEBHOOK_REFUSE_PRIVATE"
    #: Password of the stats page outside demo mode.
    STATS_PASSWORD = "MAILTRACK_STATS_PASSWORD"
    #: Standalone server only: serve the demo page at ``/`` (``mailtrack
    #: serve --demo``). The stats are then open to anyone who can reach it.
    DEMO = "MAILTRACK_DEMO"

    #: Keys that configure adapters, not :class:`Configuration`.
    ADAPTER_KEYS = frozenset(
        (
            "BASE_URL",
            "URL_PREFIX",
            "DATABASE",
            "WEBHOOK_SECRET",
            "WEBHOOK_OUTBOX",
            "WEBHOOK_DELIVER",
            "WEBHOOK_REFUSE_PRIVATE",
            "STATS_PASSWORD",
            "DEMO",
        )
    )

    @classmethod
    def is_known(cls, key: str, prefix: str = "MAILTRACK_") -> bool:
        """Whether ``key`` names a setting of flask_mailtrack."""
        from .configuration import Configuration

        name = key[len(prefix) :]
        return name in cls.ADAPTER_KEYS or name.lower() in {
            f.name for f in dataclasses.fields(Configuration)
        }
