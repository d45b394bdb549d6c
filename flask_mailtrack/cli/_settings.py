"""Where a command's settings come from: :class:`CommandSettings`, the
app's for ``flask mailtrack``, the environment's for ``mailtrack``, passed
to commands by :data:`pass_settings`."""

from __future__ import annotations

import typing as t

import click
from flask import current_app
from flask import Flask
from flask import has_app_context
from flask.cli import ScriptInfo

from ..configuration import ConfigKeys
from ..configuration import Configuration
from ..configuration import environ_settings
from ..events import WebhookSender
from ..events._from_settings import journal_directory
from ..events._from_settings import sinks_from_settings
from ..events._from_settings import webhook_sender
from ..events._from_settings import worker_mode
from ..events._sinks import Sink
from ..extension import DEFAULT_URL_PREFIX
from ..extension import get_state
from ..extension import tracking_base_urls
from ..extension._state import default_outbox
from ..server import DEFAULT_DATABASE
from ..tracker import Tracker

#: Where the groups keep the settings, in ``click.Context.meta``.
SETTINGS_KEY = "flask_mailtrack.settings"


class CommandSettings:
    """The settings a command works with: the Flask app's or the
    environment's. Both groups give commands the same interface.
    """

    def get_app(self) -> Flask | None:
        """The Flask app for ``flask mailtrack``; ``None`` for the
        standalone command."""
        return None

    @property
    def configuration(self) -> Configuration:
        """The :class:`~flask_mailtrack.Configuration` in use."""
        return self.tracker.configuration

    @property
    def tracker(self) -> Tracker:
        """The tracker that decodes (and serves) tokens."""
        raise NotImplementedError

    def link_tracker(self) -> Tracker:
        """The tracker that makes links; a :class:`click.ClickException`
        when no external base URL is configured."""
        raise NotImplementedError

    def get(self, key: str, default: t.Any = None) -> t.Any:
        """The raw value of the setting ``key`` (a ``MAILTRACK_*`` name),
        such as :attr:`ConfigKeys.DATABASE
        <flask_mailtrack.configuration.ConfigKeys.DATABASE>`."""
        raise NotImplementedError

    def events_settings(self) -> tuple[t.Mapping[str, t.Any], str | None]:
        """The settings the servers' events pipeline is made from, and the
        outbox file they default to, so that a command finds the journal
        folder, the store and the outbox the servers use."""
        raise NotImplementedError

    def webhook_sender(self, **options: t.Any) -> WebhookSender:
        """A new :class:`~flask_mailtrack.WebhookSender`, not connected, on
        the webhook URL, secret and outbox of these settings; a
        :class:`click.ClickException` when no webhook is configured.

        :param options: Other arguments of the sender.
        """
        settings, outbox = self.events_settings()
        sender = webhook_sender(
            settings, self.configuration, default_outbox=outbox, **options
        )
        if sender is None:
            raise click.ClickException(
                "MAILTRACK_WEBHOOK_URL is not set: there is no webhook to deliver to."
            )
        return sender

    def worker_mode(self) -> str:
        """``MAILTRACK_WORKER`` (or what the deprecated
        ``MAILTRACK_WEBHOOK_DELIVER`` says): ``"embedded"`` or
        ``"external"``."""
        return worker_mode(self.events_settings()[0])

    def journal_directory(self) -> str:
        """The journal folder the servers append events to; a
        :class:`click.ClickException` when no sink is configured or the
        database is in memory (no other process could read it)."""
        settings, outbox = self.events_settings()
        directory = journal_directory(
            settings, self.configuration, default_outbox=outbox
        )
        if directory is None:
            raise click.ClickException(
                f"None of {ConfigKeys.DATABASE}, MAILTRACK_WEBHOOK_URL and"
                f" {ConfigKeys.REDIS_URL} is set: there is no sink to feed."
            )
        if directory == ":memory:":
            raise click.ClickException(
                f"{ConfigKeys.DATABASE} is ':memory:': set {ConfigKeys.JOURNAL}"
                " and a database file that the servers share with the worker."
            )
        return directory

    def sinks(self) -> list[Sink]:
        """New sinks, not connected: the event store of
        ``MAILTRACK_DATABASE`` and the webhook sender of
        ``MAILTRACK_WEBHOOK_URL``, as the servers configure them."""
        settings, outbox = self.events_settings()
        return sinks_from_settings(settings, self.configuration, default_outbox=outbox)


class FlaskCommandSettings(CommandSettings):
    """Settings of the app's :class:`~flask_mailtrack.MailTrack`, loaded on
    first use (the app is loaded, and an app context pushed, only when a
    command needs them)."""

    def __init__(self, ctx: click.Context) -> None:
        self._ctx = ctx

    def _app(self) -> Flask:
        if not has_app_context():
            app = self._ctx.ensure_object(ScriptInfo).load_app()
            self._ctx.with_resource(app.app_context())
        return t.cast(Flask, current_app._get_current_object())  # type: ignore[attr-defined]

    def get_app(self) -> Flask:
        return self._app()

    @property
    def tracker(self) -> Tracker:
        try:
            return get_state(self._app()).tracker
        except RuntimeError as e:
            raise click.ClickException(str(e)) from None

    def link_tracker(self) -> Tracker:
        app = self._app()
        try:
            return get_state(app).link_tracker(app)
        except RuntimeError as e:
            raise click.ClickException(str(e)) from None

    def get(self, key: str, default: t.Any = None) -> t.Any:
        return self._app().config.get(key, default)

    def events_settings(self) -> tuple[t.Mapping[str, t.Any], str | None]:
        app = self._app()
        return app.config, default_outbox(app)


class EnvironCommandSettings(CommandSettings):
    """Settings from ``MAILTRACK_*`` environment variables, for the
    standalone ``mailtrack`` command."""

    def __init__(self, environ: t.Mapping[str, str] | None = None) -> None:
        self._source = environ
        self._settings: dict[str, str] | None = None
        self._tracker: Tracker | None = None

    @property
    def _environ(self) -> dict[str, str]:
        # Read on first use, so that the warning about unknown variables is
        # issued once: `serve` does not use these, its server reads them.
        if self._settings is None:
            self._settings = environ_settings(self._source)
        return self._settings

    @property
    def tracker(self) -> Tracker:
        # Made on first use: a command that needs no tracker (keygen) runs
        # whatever the other settings hold.
        if self._tracker is None:
            self._tracker = Tracker(environ_configuration(self._environ))
        return self._tracker

    def link_tracker(self) -> Tracker:
        tracker = self.tracker
        if tracker.open_base is None or tracker.click_base is None:
            raise click.ClickException(
                f"Set {ConfigKeys.BASE_URL} to the external URL of the tracking"
                " server (such as 'https://t.example.com') to make links."
            )
        return tracker

    def get(self, key: str, default: t.Any = None) -> t.Any:
        return self._environ.get(key, default)

    def events_settings(self) -> tuple[t.Mapping[str, t.Any], str | None]:
        # The standalone server's: its database (and the outbox in it) has
        # a default.
        settings = {ConfigKeys.DATABASE: DEFAULT_DATABASE, **self._environ}
        return settings, DEFAULT_DATABASE


def environ_configuration(environ: t.Mapping[str, str] | None = None) -> Configuration:
    """The :class:`~flask_mailtrack.Configuration` that ``MAILTRACK_*``
    environment variables describe.

    The base URLs are made from ``MAILTRACK_BASE_URL`` and
    ``MAILTRACK_URL_PREFIX`` as the Flask extension makes them, unless
    ``MAILTRACK_BASE_OPEN_TRACKING_URL`` / ``..._CLICK_...`` set them.
    Other variables with the prefix are ignored: the environment is shared
    with other programs.

    :raise ConfigurationError: a setting cannot be used.
    """
    settings = environ_settings(environ)
    configuration = Configuration.from_mapping(settings)
    base_url = settings.get(ConfigKeys.BASE_URL)
    if base_url:
        open_base, click_base = tracking_base_urls(
            base_url, settings.get(ConfigKeys.URL_PREFIX, DEFAULT_URL_PREFIX)
        )
        configuration = configuration.replace(
            base_open_tracking_url=configuration.base_open_tracking_url or open_base,
            base_click_tracking_url=configuration.base_click_tracking_url or click_base,
        )
    return configuration


#: Passes the :class:`CommandSettings` of the running group to a command.
pass_settings = click.decorators.pass_meta_key(
    SETTINGS_KEY, doc_description="the MailTrack settings"
)
