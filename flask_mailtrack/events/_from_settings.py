"""The events pipeline that ``MAILTRACK_*`` settings ask for.

The Flask extension, the standalone server and ``mailtrack worker`` read
the same keys: ``MAILTRACK_DATABASE`` (a path or a URL, with
``MAILTRACK_DIMENSIONS`` and ``MAILTRACK_DATABASE_MIGRATE``) makes an
:class:`~flask_mailtrack.EventStore` sink, ``MAILTRACK_WEBHOOK_URL`` (with
``MAILTRACK_WEBHOOK_SECRET``) a :class:`~flask_mailtrack.WebhookSender`
sink, ``MAILTRACK_REDIS_URL`` a :class:`~flask_mailtrack.events.RedisStreamSink`,
``MAILTRACK_JOURNAL`` is the folder between the serving processes and
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
from ._redis import DEFAULT_MAXLEN
from ._redis import DEFAULT_STREAM
from ._redis import RedisStreamSink
from ._sinks import Sink
from ._store import DEFAULT_DIMENSIONS
from ._store import EventStore
from ._store_backend import check_filter_name
from ._store_backend import POSTGRESQL
from ._store_database import parse_database
from ._store_reading import DEFAULT_CAMPAIGN_KEY
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
        # The worker's sinks; this process only journals, but refuses the
        # settings the worker would refuse.
        check_sink_settings(settings)
        sinks = []
    pipeline = Pipeline(
        None if directory == _IN_MEMORY else directory, sinks, worker=mode
    )
    return pipeline.connect(sender)


def check_sink_settings(settings: t.Mapping[str, t.Any]) -> None:
    """Read the store's and the Redis stream's settings as the worker will,
    without opening a database or connecting to Redis.

    :raise ConfigurationError: a setting the worker would refuse.
    """
    database_file(settings)
    dimensions(settings)
    migrate_on_open(settings)
    redis_settings(settings)


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
    :raise ConfigurationError: ``MAILTRACK_JOURNAL`` is not set while the
        database is a PostgreSQL URL or Redis is the only sink (there is no
        file to put it beside).
    """
    webhook = _webhook_settings(settings, configuration, default_outbox)
    explicit = settings.get(ConfigKeys.JOURNAL)
    if settings.get(ConfigKeys.DATABASE):
        base = database_file(settings)
    elif webhook is not None:
        base = webhook.outbox
    elif settings.get(ConfigKeys.REDIS_URL):
        base = None
    else:
        return None
    if explicit:
        return str(explicit)
    if base is None:
        reason = (
            f"{ConfigKeys.DATABASE} is a PostgreSQL URL"
            if settings.get(ConfigKeys.DATABASE)
            else f"{ConfigKeys.REDIS_URL} is the only sink"
        )
        raise ConfigurationError(
            f"{reason}: set {ConfigKeys.JOURNAL} to a local folder for the"
            " journal (there is no database file to put it beside)."
        )
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
    :class:`~flask_mailtrack.WebhookSender` for ``MAILTRACK_WEBHOOK_URL``,
    a :class:`~flask_mailtrack.events.RedisStreamSink` for
    ``MAILTRACK_REDIS_URL``.

    :param default_outbox: As for :func:`webhook_sender`.
    :raise MailTrackError: as :func:`webhook_sender` and
        :func:`redis_stream_sink`.
    """
    sinks: list[Sink] = []
    webhooks = webhook_sender(settings, configuration, default_outbox=default_outbox)
    store = event_store(settings)
    if store is not None:
        sinks.append(store)
    if webhooks is not None:
        sinks.append(webhooks)
    stream = redis_stream_sink(settings)
    if stream is not None:
        sinks.append(stream)
    return sinks


def database_file(settings: t.Mapping[str, t.Any]) -> str | None:
    """The SQLite file (or ``":memory:"``) of ``MAILTRACK_DATABASE``;
    ``None`` when it is unset or a PostgreSQL URL.

    :raise ConfigurationError: a URL of another database.
    """
    database = settings.get(ConfigKeys.DATABASE)
    if not database:
        return None
    kind, location = parse_database(database)
    return None if kind == POSTGRESQL else location


def event_store(
    settings: t.Mapping[str, t.Any], *, database: t.Any = None, **options: t.Any
) -> EventStore | None:
    """The :class:`~flask_mailtrack.EventStore` of ``MAILTRACK_DATABASE``
    (or ``database``), with ``MAILTRACK_DIMENSIONS`` (and
    ``MAILTRACK_CAMPAIGN_KEY``) and ``MAILTRACK_DATABASE_MIGRATE``; ``None``
    when no database is set.

    :param options: Other arguments of the store, winning over the settings.
    :raise ConfigurationError: a setting cannot be used.
    """
    database = database or settings.get(ConfigKeys.DATABASE)
    if not database:
        return None
    options.setdefault("dimensions", dimensions(settings))
    options.setdefault("migrate", migrate_on_open(settings))
    return EventStore(database, **options)


def migrate_on_open(settings: t.Mapping[str, t.Any]) -> bool:
    """``MAILTRACK_DATABASE_MIGRATE``, true when unset."""
    return parse_bool(
        settings.get(ConfigKeys.DATABASE_MIGRATE),
        name=ConfigKeys.DATABASE_MIGRATE,
        default=True,
    )


def dimensions(settings: t.Mapping[str, t.Any]) -> tuple[str, ...]:
    """``MAILTRACK_DIMENSIONS``: a list of names, or text with commas
    (empty for none); ``("campaign",)`` when unset. The campaign key
    (:func:`campaign_key`) is added when missing, so the dashboard's
    campaigns always come from rollups."""
    value = settings.get(ConfigKeys.DIMENSIONS)
    if value is None:
        names: tuple[str, ...] = DEFAULT_DIMENSIONS
    elif isinstance(value, str):
        names = tuple(name.strip() for name in value.split(",") if name.strip())
    elif isinstance(value, (list, tuple)) and all(isinstance(n, str) for n in value):
        names = tuple(value)
    else:
        raise ConfigurationError(
            f"{ConfigKeys.DIMENSIONS} must be a list of metadata keys or text"
            f" with commas, not {value!r}."
        )
    key = campaign_key(settings)
    return names if key in names else (*names, key)


def campaign_key(settings: t.Mapping[str, t.Any]) -> str:
    """``MAILTRACK_CAMPAIGN_KEY``: the metadata key that names a campaign;
    ``"campaign"`` when unset or empty.

    :raise ConfigurationError: not text, or not a name the store can filter
        on (quotes, backslashes, control characters, over 200 characters).
    """
    value = settings.get(ConfigKeys.CAMPAIGN_KEY)
    if value is None or value == "":
        return DEFAULT_CAMPAIGN_KEY
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{ConfigKeys.CAMPAIGN_KEY} must be a metadata key, not {value!r}."
        )
    try:
        check_filter_name(value)
    except ValueError as error:
        raise ConfigurationError(f"{ConfigKeys.CAMPAIGN_KEY}: {error}") from None
    return value


def redis_stream_sink(settings: t.Mapping[str, t.Any]) -> RedisStreamSink | None:
    """The :class:`~flask_mailtrack.events.RedisStreamSink` of
    ``MAILTRACK_REDIS_URL``, ``MAILTRACK_REDIS_STREAM`` and
    ``MAILTRACK_REDIS_MAXLEN``; ``None`` when no Redis URL is set.

    :raise ConfigurationError: as :func:`redis_settings`, or the URL is not
        a Redis URL, or the ``redis`` package is missing.
    """
    options = redis_settings(settings)
    if options is None:
        return None
    url, stream, maxlen = options
    return RedisStreamSink(url, stream=stream, maxlen=maxlen)


def redis_settings(settings: t.Mapping[str, t.Any]) -> tuple[str, str, int] | None:
    """The URL, stream and maximum length of the Redis settings, read
    without connecting (or needing the ``redis`` package); ``None`` when no
    Redis URL is set.

    :raise ConfigurationError: the maximum length is not a positive integer.
    """
    url = settings.get(ConfigKeys.REDIS_URL)
    if not url:
        return None
    maxlen = settings.get(ConfigKeys.REDIS_MAXLEN)
    if maxlen in (None, ""):
        maxlen = DEFAULT_MAXLEN
    try:
        maxlen = int(str(maxlen).replace("_", ""))
    except ValueError:
        maxlen = 0  # refused below, with the value given
    if maxlen < 1:
        raise ConfigurationError(
            f"{ConfigKeys.REDIS_MAXLEN} must be a positive integer, not"
            f" {settings.get(ConfigKeys.REDIS_MAXLEN)!r}."
        )
    stream = settings.get(ConfigKeys.REDIS_STREAM) or DEFAULT_STREAM
    return str(url), str(stream), maxlen


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
    outbox = settings.get(ConfigKeys.WEBHOOK_OUTBOX)
    if not outbox and settings.get(ConfigKeys.DATABASE):
        outbox = database_file(settings)
        if outbox is None:
            raise ConfigurationError(
                f"{ConfigKeys.DATABASE} is a PostgreSQL URL: set"
                f" {ConfigKeys.WEBHOOK_OUTBOX} to the SQLite file that keeps"
                " webhook events until they are delivered (there is no"
                " database file to keep them in)."
            )
    outbox = outbox or default_outbox
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
