"""The events pipeline that ``MAILTRACK_*`` settings ask for.

The Flask extension, the standalone server and ``mailtrack worker`` read
the same keys: ``MAILTRACK_DATABASE`` makes an
:class:`~flask_mailtrack.EventStore` sink, ``MAILTRACK_WEBHOOK_URL`` (with
``MAILTRACK_WEBHOOK_SECRET``) a :class:`~flask_mailtrack.WebhookSender`
sink, ``MAILTRACK_JOURNAL`` is the folder between the serving processes and
the worker, and ``MAILTRACK_WORKER`` says who runs the worker.
"""

from __future__ import annotations

import typing as t
import warnings

from blinker import ANY

from ..configuration import ConfigKeys
from ..configuration import Configuration
from ..configuration import parse_bool
from ..exceptions import ConfigurationError
from ..exceptions import MissingSettingError
from ._pipeline import EMBEDDED
from ._pipeline import EXTERNAL
from ._pipeline import JOURNAL_SUFFIX
from ._pipeline import Pipeline
from ._pipeline import WORKER_MODES
from ._sinks import Sink
from ._store import EventStore
from ._webhooks import DEFAULT_EVENT_TYPES
from ._webhooks import EVENT_TYPES
from ._webhooks import WebhookSender

_IN_MEMORY = ":memory:"


def pipeline_from_settings(
    settings: t.Mapping[str, t.Any],
    configuration: Configuration,
    *,
    sender: t.Any = ANY,
    default_outbox: str | None = None,
) -> Pipeline | None:
    """The connected :class:`~flask_mailtrack.events.Pipeline`
    that ``settings`` configure; ``None`` when they configure no sink.

    In ``external`` mode the pipeline only journals: no sink that writes is
    made here (the settings are still checked, so a server refuses to start
    with settings its worker would refuse).

    :param settings: ``MAILTRACK_*`` keys (a Flask config, the environment).
    :param configuration: Gives the webhook URL and timeout.
    :param sender: Journal only this sender's events (the Flask app).
    :param default_outbox: As for :func:`webhook_sender`.
    :raise ConfigurationError: a setting cannot be used; a
        :class:`~flask_mailtrack.exceptions.MissingSettingError` for a
        webhook URL without a secret.
    """
    mode = worker_mode(settings)
    # Checks the webhook settings too, in either mode.
    directory = journal_directory(
        settings, configuration, default_outbox=default_outbox
    )
    if directory is None:
        return None
    if mode == EMBEDDED:
        sinks = sinks_from_settings(
            settings, configuration, default_outbox=default_outbox
        )
    elif directory == _IN_MEMORY:
        raise ConfigurationError(
            f"{ConfigKeys.WORKER}={EXTERNAL} needs a journal folder that a"
            f" `mailtrack worker` can read: set {ConfigKeys.JOURNAL} or a"
            f" {ConfigKeys.DATABASE} file, not {_IN_MEMORY!r}."
        )
    else:
        sinks = []  # the worker's; this process only journals
    pipeline = Pipeline(
        None if directory == _IN_MEMORY else directory, sinks, worker=mode
    )
    return pipeline.connect(sender)


def worker_mode(settings: t.Mapping[str, t.Any]) -> str:
    """``MAILTRACK_WORKER``: ``"embedded"`` (default) or ``"external"``,
    or what the deprecated ``MAILTRACK_WEBHOOK_DELIVER`` says (false is
    ``external``), with a :exc:`DeprecationWarning`.

    :raise ConfigurationError: another value, or the two settings disagree.
    """
    value = settings.get(ConfigKeys.WORKER)
    mode = str(value).strip().lower() if value not in (None, "") else None
    if mode is not None and mode not in WORKER_MODES:
        raise ConfigurationError(
            f"{ConfigKeys.WORKER} must be {' or '.join(WORKER_MODES)}, not {value!r}."
        )
    deliver = settings.get(ConfigKeys.WEBHOOK_DELIVER)
    if deliver is None or deliver == "":
        return mode or EMBEDDED
    implied = (
        EMBEDDED
        if parse_bool(deliver, name=ConfigKeys.WEBHOOK_DELIVER, default=True)
        else EXTERNAL
    )
    if mode is not None and mode != implied:
        raise ConfigurationError(
            f"{ConfigKeys.WEBHOOK_DELIVER}={deliver!r} means"
            f" {ConfigKeys.WORKER}={implied}, but {ConfigKeys.WORKER} is"
            f" {value!r}; remove {ConfigKeys.WEBHOOK_DELIVER} (deprecated)."
        )
    warnings.warn(
        f"{ConfigKeys.WEBHOOK_DELIVER} is deprecated and will be removed in"
        f" the next release: set {ConfigKeys.WORKER}={implied} instead.",
        DeprecationWarning,
        stacklevel=2,
    )
    return implied


def journal_directory(
    settings: t.Mapping[str, t.Any],
    configuration: Configuration,
    *,
    default_outbox: str | None = None,
) -> str | None:
    """``MAILTRACK_JOURNAL``, by default ``<MAILTRACK_DATABASE>-events``,
    else ``<outbox>-events`` when a webhook is configured (not
    ``-journal``: SQLite's rollback journal has that name); ``":memory:"``
    for an in-memory database (a private temporary folder); ``None`` when
    no sink is configured.

    :param default_outbox: As for :func:`webhook_sender`.
    """
    webhook = _webhook_settings(settings, configuration, default_outbox)
    database = settings.get(ConfigKeys.DATABASE)
    if database:
        base = str(database)
    elif webhook is not None:
        base = webhook.outbox
    else:
        return None
    explicit = settings.get(ConfigKeys.JOURNAL)
    if explicit:
        return str(explicit)
    if base == _IN_MEMORY:
        return _IN_MEMORY
    return base + JOURNAL_SUFFIX


def sinks_from_settings(
    settings: t.Mapping[str, t.Any],
    configuration: Configuration,
    *,
    default_outbox: str | None = None,
) -> list[Sink]:
    """The sinks that ``settings`` configure, not connected: an
    :class:`~flask_mailtrack.EventStore` for ``MAILTRACK_DATABASE``, a
    :class:`~flask_mailtrack.WebhookSender` for ``MAILTRACK_WEBHOOK_URL``.

    :param default_outbox: As for :func:`webhook_sender`.
    :raise MailTrackError: as :func:`webhook_sender`.
    """
    sinks: list[Sink] = []
    webhooks = webhook_sender(settings, configuration, default_outbox=default_outbox)
    database = settings.get(ConfigKeys.DATABASE)
    if database:
        sinks.append(EventStore(database))
    if webhooks is not None:
        sinks.append(webhooks)
    return sinks


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
    :param default_outbox: The outbox file when neither
        ``MAILTRACK_WEBHOOK_OUTBOX`` nor ``MAILTRACK_DATABASE`` is set (the
        outbox tables can live in the event store's file).
    :param options: Other arguments of :class:`~flask_mailtrack.WebhookSender`.
    :raise MailTrackError: a webhook URL without a webhook secret or an
        outbox.
    :raise ConfigurationError: ``MAILTRACK_WEBHOOK_REFUSE_PRIVATE`` is
        neither true nor false.
    """
    webhook = _webhook_settings(settings, configuration, default_outbox)
    if webhook is None:
        return None
    options.setdefault("event_types", webhook_event_types(settings))
    return WebhookSender(
        webhook.url,
        secret=webhook.secret,
        outbox_path=webhook.outbox,
        timeout=configuration.webhook_timeout_seconds,
        refuse_private_addresses=webhook.refuse_private,
        **options,
    )


def webhook_event_types(settings: t.Mapping[str, t.Any]) -> tuple[str, ...]:
    """``MAILTRACK_WEBHOOK_EVENTS``: a list, or comma-separated text;
    default opens and clicks.

    :raise ConfigurationError: an unknown event type.
    """
    value = settings.get(ConfigKeys.WEBHOOK_EVENTS)
    if value is None or value == "":
        return DEFAULT_EVENT_TYPES
    items = value.split(",") if isinstance(value, str) else list(value)
    types = tuple(str(item).strip() for item in items if str(item).strip())
    unknown = [name for name in types if name not in EVENT_TYPES]
    if unknown or not types:
        raise ConfigurationError(
            f"{ConfigKeys.WEBHOOK_EVENTS} lists event types among"
            f" {', '.join(EVENT_TYPES)}, not {value!r}."
        )
    return types


class _WebhookSettings(t.NamedTuple):
    url: str
    secret: str
    outbox: str
    refuse_private: bool


def _webhook_settings(
    settings: t.Mapping[str, t.Any],
    configuration: Configuration,
    default_outbox: str | None,
) -> _WebhookSettings | None:
    """The webhook settings, checked; ``None`` when no webhook URL is
    set."""
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
    refuse_private = parse_bool(
        settings.get(ConfigKeys.WEBHOOK_REFUSE_PRIVATE),
        name=ConfigKeys.WEBHOOK_REFUSE_PRIVATE,
    )
    return _WebhookSettings(
        configuration.webhook_url, str(secret), str(outbox), refuse_private
    )
