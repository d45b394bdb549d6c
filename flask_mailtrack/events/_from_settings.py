"""The receivers that ``MAILTRACK_*`` settings ask for.

The Flask extension and the standalone server read the same keys:
``MAILTRACK_DATABASE`` connects an :class:`~flask_mailtrack.EventStore`,
``MAILTRACK_WEBHOOK_URL`` (with ``MAILTRACK_WEBHOOK_SECRET``) a
:class:`~flask_mailtrack.WebhookSender`.
"""

from __future__ import annotations

import typing as t

from blinker import ANY

from ..configuration import ConfigKeys
from ..configuration import Configuration
from ..configuration import parse_bool
from ..exceptions import MissingSettingError
from ._store import EventStore
from ._webhooks import WebhookSender

Receiver = t.Union[EventStore, WebhookSender]
R = t.TypeVar("R", EventStore, WebhookSender)


def connect_receivers(
    settings: t.Mapping[str, t.Any],
    configuration: Configuration,
    *,
    sender: t.Any = ANY,
    default_outbox: str | None = None,
) -> list[Receiver]:
    """Make and connect the receivers that ``settings`` configure.

    :param settings: ``MAILTRACK_*`` keys (a Flask config, the environment).
    :param configuration: Gives the webhook URL and timeout.
    :param sender: Receive only this sender's events (the Flask app).
    :param default_outbox: The outbox file when neither
        ``MAILTRACK_WEBHOOK_OUTBOX`` nor ``MAILTRACK_DATABASE`` is set (the
        outbox tables can live in the event store's file).
    :raise MailTrackError: a webhook URL without a webhook secret.
    """
    receivers: list[Receiver] = []
    database = settings.get(ConfigKeys.DATABASE)
    if database:
        receivers.append(EventStore(database).connect(sender))
    webhooks = webhook_sender(settings, configuration, default_outbox=default_outbox)
    if webhooks is not None:
        receivers.append(webhooks.connect(sender))
    return receivers


def webhook_sender(
    settings: t.Mapping[str, t.Any],
    configuration: Configuration,
    *,
    default_outbox: str | None = None,
    **options: t.Any,
) -> WebhookSender | None:
    """The :class:`~flask_mailtrack.WebhookSender` that ``settings``
    configure, not connected; ``None`` when no webhook URL is set.

    :param settings: ``MAILTRACK_*`` keys.
    :param configuration: Gives the webhook URL and timeout.
    :param default_outbox: As for :func:`connect_receivers`.
    :param options: Other arguments of :class:`~flask_mailtrack.WebhookSender`;
        ``deliver`` defaults to ``MAILTRACK_WEBHOOK_DELIVER``.
    :raise MailTrackError: a webhook URL without a webhook secret or an
        outbox.
    :raise ConfigurationError: ``MAILTRACK_WEBHOOK_DELIVER`` or
        ``MAILTRACK_WEBHOOK_REFUSE_PRIVATE`` is neither true nor false.
    """
    if not configuration.webhook_url:
        return None
    secret = settings.get(ConfigKeys.WEBHOOK_SECRET)
    if not secret:
        raise MissingSettingError(
            f"MAILTRACK_WEBHOOK_URL is set but {ConfigKeys.WEBHOOK_SECRET} is"
            " not: webhooks are always signed. `mailtrack keygen --webhook`"
            " prints a secret (whsec_...)."
        )
    outbox = (
        settings.get(ConfigKeys.WEBHOOK_OUTBOX)
        or settings.get(ConfigKeys.DATABASE)
        or default_outbox
    )
    if not outbox:
        raise MissingSettingError(
            f"Set {ConfigKeys.WEBHOOK_OUTBOX} (or {ConfigKeys.DATABASE}) to the"
            " SQLite file that keeps webhook events until they are delivered."
        )
    options.setdefault(
        "deliver",
        _flag(settings, ConfigKeys.WEBHOOK_DELIVER, default=True),
    )
    return WebhookSender(
        configuration.webhook_url,
        secret=secret,
        outbox_path=outbox,
        timeout=configuration.webhook_timeout_seconds,
        refuse_private_addresses=_flag(settings, ConfigKeys.WEBHOOK_REFUSE_PRIVATE),
        **options,
    )


def _flag(settings: t.Mapping[str, t.Any], key: str, *, default: bool = False) -> bool:
    return parse_bool(settings.get(key), name=key, default=default)


def find_receiver(receivers: t.Iterable[object], kind: type[R]) -> R | None:
    """The first receiver of type ``kind``, or ``None``."""
    for receiver in receivers:
        if isinstance(receiver, kind):
            return receiver
    return None
