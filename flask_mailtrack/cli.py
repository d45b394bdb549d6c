"""The ``flask mailtrack`` and ``mailtrack`` commands.

Each command is written once and added to both groups:

- :data:`mailtrack_group`, ``flask mailtrack ...`` (through the
  ``flask.commands`` entry point), reads the settings of the app's
  :class:`~flask_mailtrack.MailTrack`;
- :func:`main`, the standalone ``mailtrack ...`` console command, reads the
  same ``MAILTRACK_*`` names from environment variables, so the links that
  ``mailtrack track`` prints are the links a server configured by the same
  environment answers.

A command declares itself with :func:`shared_command` and receives a
:class:`CommandSettings` through :func:`pass_settings`::

    @shared_command("hello")
    @pass_settings
    def hello_command(settings: CommandSettings) -> None:
        click.echo(settings.configuration.max_age)
"""

from __future__ import annotations

import datetime
import email
import email.policy
import json
import os
import secrets
import sys
import typing as t
from urllib.parse import urlsplit

import click
from flask import current_app
from flask import Flask
from flask import has_app_context
from flask.cli import AppGroup
from flask.cli import ScriptInfo

from .configuration import Configuration
from .constants import ConfigKeys
from .exceptions import InvalidToken
from .exceptions import MailTrackError
from .extension import DEFAULT_URL_PREFIX
from .extension import get_state
from .extension import ROUTE_SEGMENTS
from .extension import tracking_base_urls
from .result import TrackingResult
from .tokens import CLICK
from .tokens import Kind
from .tokens import OPEN
from .tracker import Tracker

_SETTINGS_KEY = "flask_mailtrack.settings"
_KINDS_BY_SEGMENT: dict[str, Kind] = {
    segment: t.cast(Kind, kind) for kind, segment in ROUTE_SEGMENTS.items()
}


# -- where the settings come from ----------------------------------------------


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
        <flask_mailtrack.constants.ConfigKeys.DATABASE>`."""
        raise NotImplementedError


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


class EnvironCommandSettings(CommandSettings):
    """Settings from ``MAILTRACK_*`` environment variables, for the
    standalone ``mailtrack`` command."""

    def __init__(self, environ: t.Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._tracker: Tracker | None = None

    @property
    def tracker(self) -> Tracker:
        if self._tracker is None:
            try:
                configuration = environ_configuration(self._environ)
            except (TypeError, ValueError, MailTrackError) as e:
                raise click.ClickException(str(e)) from None
            self._tracker = Tracker(configuration)
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


def environ_configuration(environ: t.Mapping[str, str] | None = None) -> Configuration:
    """The :class:`~flask_mailtrack.Configuration` that ``MAILTRACK_*``
    environment variables describe.

    The base URLs are made from ``MAILTRACK_BASE_URL`` and
    ``MAILTRACK_URL_PREFIX`` as the Flask extension makes them, unless
    ``MAILTRACK_BASE_OPEN_TRACKING_URL`` / ``..._CLICK_...`` set them.
    Other variables with the prefix are ignored: the environment is shared
    with other programs.
    """
    if environ is None:
        environ = os.environ
    settings = {
        key: value
        for key, value in environ.items()
        if key.startswith("MAILTRACK_") and ConfigKeys.is_known(key)
    }
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
    _SETTINGS_KEY, doc_description="the MailTrack settings"
)


# -- the two groups ------------------------------------------------------------


@click.group("mailtrack", cls=AppGroup)
@click.pass_context
def mailtrack_group(ctx: click.Context) -> None:
    """Email open and click tracking (flask_mailtrack)."""
    ctx.meta[_SETTINGS_KEY] = FlaskCommandSettings(ctx)


@click.group("mailtrack")
@click.version_option(package_name="flask-mailtrack")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Email open and click tracking (flask_mailtrack).

    Settings come from MAILTRACK_* environment variables, the names of the
    Flask config keys: MAILTRACK_SECRET_KEY, MAILTRACK_BASE_URL, ...
    """
    ctx.meta.setdefault(_SETTINGS_KEY, EnvironCommandSettings())


def shared_command(
    name: str | None = None,
) -> t.Callable[[t.Callable[..., t.Any]], click.Command]:
    """Like :func:`click.command`, and add the command to both
    ``flask mailtrack`` and ``mailtrack``."""

    def decorator(f: t.Callable[..., t.Any]) -> click.Command:
        command = click.command(name)(f)
        add_command(command)
        return command

    return decorator


def add_command(command: click.Command) -> None:
    """Add a command to both ``flask mailtrack`` and ``mailtrack``."""
    mailtrack_group.add_command(command)
    main.add_command(command)


# -- commands ------------------------------------------------------------------


@shared_command("keygen")
@click.option(
    "--encryption",
    is_flag=True,
    help="Print a key for MAILTRACK_ENCRYPTION_KEY (AES-256-GCM tokens).",
)
@click.option(
    "--webhook",
    is_flag=True,
    help="Print a secret for MAILTRACK_WEBHOOK_SECRET (whsec_...).",
)
def keygen_command(encryption: bool, webhook: bool = False) -> None:
    """Print a new random key for MAILTRACK_SECRET_KEY.

    Keep the old key listed (oldest first) while links signed with it are
    still in mailboxes.
    """
    if webhook:
        from .webhooks import generate_secret

        click.echo(generate_secret())
        return
    key = secrets.token_urlsafe(32)
    if encryption:
        from .encryption import KeyRing

        # Fails early, with install instructions, when cryptography is missing.
        KeyRing([key.encode("ascii")])
    click.echo(key)


@shared_command("decode")
@click.argument("url")
@click.option(
    "--kind",
    type=click.Choice([OPEN, CLICK]),
    help="The kind of token; found from the URL path (/o/ or /c/) when omitted.",
)
@pass_settings
def decode_command(settings: CommandSettings, url: str, kind: Kind | None) -> None:
    """Verify a tracking URL (or token) and print its payload as JSON."""
    try:
        result = decode_any(settings.tracker, url, kind)
    except InvalidToken as e:
        raise click.ClickException(f"Invalid token ({e.reason}): {e}") from None
    click.echo(json.dumps(_payload_json(result), indent=2, sort_keys=True))


@shared_command("track")
@click.argument("file", type=click.File("rb"))
@click.option(
    "--metadata",
    default=None,
    metavar="JSON",
    help='Metadata of every link, a JSON object such as \'{"campaign": "spring"}\'.',
)
@pass_settings
def track_command(
    settings: CommandSettings, file: t.BinaryIO, metadata: str | None
) -> None:
    """Print FILE with its links tracked and the open pixel added.

    FILE is an HTML email, or a MIME message when its name ends in .eml
    ("-" reads HTML from standard input).
    """
    metadata_dict = _parse_metadata(metadata)
    tracker = settings.link_tracker()
    data = file.read()
    # The bytes are written as they are: a tracked email keeps its encoding.
    sys.stdout.flush()
    out = sys.stdout.buffer
    try:
        if getattr(file, "name", "").lower().endswith(".eml"):
            message = email.message_from_bytes(data, policy=email.policy.default)
            tracked = tracker.track_message(message, metadata_dict)
            out.write(tracked.as_bytes())
        else:
            # Bytes in, bytes out: the rewriter reads the charset the HTML
            # declares and leaves every other byte as it is.
            out.write(tracker.track_html(data, metadata_dict))
    except MailTrackError as e:
        raise click.ClickException(str(e)) from None
    out.flush()


@shared_command("stats")
@click.option("--since", metavar="TIME", help="ISO 8601 time or epoch seconds.")
@click.option("--until", metavar="TIME", help="ISO 8601 time or epoch seconds.")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only events whose metadata KEY is VALUE (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_settings
def stats_command(
    settings: CommandSettings,
    since: str | None,
    until: str | None,
    filters: tuple[str, ...],
    as_json: bool,
) -> None:
    """Print opens, clicks and click-through from the event store
    (MAILTRACK_DATABASE), people and machines apart."""
    from .server import format_stats
    from .server import open_store
    from .server import parse_time

    query: dict[str, t.Any] = {}
    for name, value in (("since", since), ("until", until)):
        if value:
            try:
                query[name] = parse_time(value)
            except (ValueError, OverflowError):
                raise click.BadParameter(
                    "use an ISO 8601 time or seconds", param_hint=f"--{name}"
                ) from None
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep or not key or '"' in key or "\\" in key:
            raise click.BadParameter("use KEY=VALUE", param_hint="--filter")
        query[key] = value
    database = settings.get(ConfigKeys.DATABASE)
    if database is None and settings.get_app() is not None:
        raise click.ClickException(f"{ConfigKeys.DATABASE} is not set for this app.")
    try:
        store = open_store(database)
    except FileNotFoundError as e:
        raise click.ClickException(str(e)) from None
    with store:
        stats = store.stats(**query)
    click.echo(json.dumps(stats, indent=2) if as_json else format_stats(stats))


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port.")
@click.option(
    "--demo",
    is_flag=True,
    help="Add a page at / with a sample tracked newsletter, its live events"
    " and stats (open to anyone who can reach the server).",
)
def serve_command(host: str, port: int, demo: bool) -> None:
    """Run a complete tracking server (development server).

    Settings come from MAILTRACK_* environment variables; events are stored
    in MAILTRACK_DATABASE (default ./mailtrack.sqlite3). In production run
    gunicorn 'flask_mailtrack.server:create_app()' instead.
    """
    from .server import serve

    try:
        serve(host, port, demo=demo, echo=click.echo)
    except (RuntimeError, MailTrackError, TypeError, ValueError) as e:
        raise click.ClickException(str(e)) from None


# -- helpers -------------------------------------------------------------------


def decode_any(tracker: Tracker, url: str, kind: Kind | None = None) -> TrackingResult:
    """Decode a tracking URL or bare token of either kind.

    The kind comes from ``kind``, else from the URL path segment before the
    token (``o`` or ``c``), else both kinds are tried (a token verifies as
    one kind only).

    :raise InvalidToken: not a valid token.
    """
    token = url.strip()
    if "://" in token[:12]:
        path = urlsplit(token).path
        segments = [segment for segment in path.split("/") if segment]
        if not segments:
            raise InvalidToken("The URL has no token in its path.", reason="format")
        token = segments[-1]
        if kind is None and len(segments) > 1:
            kind = _KINDS_BY_SEGMENT.get(segments[-2])
    if kind is not None:
        return tracker.decode(kind, token)
    try:
        return tracker.decode(CLICK, token)
    except InvalidToken as click_error:
        try:
            return tracker.decode(OPEN, token)
        except InvalidToken as open_error:
            raise InvalidToken(
                f"Neither a click token ({click_error}) nor an open token"
                f" ({open_error}).",
                reason=open_error.reason,
            ) from None


def _iso(timestamp: int | None) -> str | None:
    if timestamp is None:
        return None
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def _payload_json(result: TrackingResult) -> dict[str, t.Any]:
    return {
        "kind": OPEN if result.is_open_tracking else CLICK,
        "tracked_url": result.tracked_url,
        "metadata": result.metadata,
        "issued_at": _iso(result.issued_at),
        "expires_at": _iso(result.expires_at),
        "webhook_url": result.webhook_url,
        "legacy": result.legacy,
    }


def _parse_metadata(text: str | None) -> dict[str, t.Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as e:
        raise click.BadParameter(
            f"not valid JSON: {e}", param_hint="--metadata"
        ) from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--metadata")
    return value


if __name__ == "__main__":  # pragma: no cover
    main()
