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

import contextlib
import datetime
import email
import email.policy
import io
import json
import os
import secrets
import signal
import sys
import threading
import time
import typing as t
from urllib.parse import urlsplit

import click
from flask import current_app
from flask import Flask
from flask import has_app_context
from flask.cli import AppGroup
from flask.cli import ScriptInfo

from ..configuration import ConfigKeys
from ..configuration import Configuration
from ..events._from_settings import find_receiver
from ..events._from_settings import webhook_sender
from ..exceptions import InvalidToken
from ..exceptions import MailTrackError
from ..extension._extension import DEFAULT_URL_PREFIX
from ..extension._extension import get_state
from ..extension._extension import ROUTE_SEGMENTS
from ..extension._extension import tracking_base_urls
from ..result import TrackingResult
from ..rewrite import track_html
from ..rewrite import track_message
from ..tokens._serializer import CLICK
from ..tokens._serializer import Kind
from ..tokens._serializer import OPEN
from ..tracker import Tracker

if t.TYPE_CHECKING:
    from ..events._store import EventStore
    from ..events._webhooks import WebhookSender

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

    def webhook_sender(self, **options: t.Any) -> WebhookSender:
        """A new :class:`~flask_mailtrack.WebhookSender`, not connected, on
        the webhook URL, secret and outbox that the servers with these
        settings queue events in; a :class:`click.ClickException` when no
        webhook is configured.

        :param options: Other arguments of the sender.
        """
        raise NotImplementedError

    def _make_webhook_sender(
        self,
        settings: t.Mapping[str, t.Any],
        default_outbox: str | None,
        options: dict[str, t.Any],
    ) -> WebhookSender:
        try:
            sender = webhook_sender(
                settings,
                self.configuration,
                default_outbox=default_outbox,
                **options,
            )
        except (TypeError, ValueError, MailTrackError) as e:
            raise click.ClickException(str(e)) from None
        if sender is None:
            raise click.ClickException(
                "MAILTRACK_WEBHOOK_URL is not set: there is no webhook to deliver to."
            )
        return sender


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

    def webhook_sender(self, **options: t.Any) -> WebhookSender:
        from ..events._webhooks import WebhookSender

        app = self._app()
        # The outbox the app's own sender uses (its default depends on the
        # app's instance folder).
        own = find_receiver(get_state(app).receivers, WebhookSender)
        default_outbox = own.outbox_path if own is not None else None
        return self._make_webhook_sender(app.config, default_outbox, options)


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

    def webhook_sender(self, **options: t.Any) -> WebhookSender:
        from ..server._app import DEFAULT_DATABASE

        # The standalone server keeps its outbox in its database by default.
        return self._make_webhook_sender(self._environ, DEFAULT_DATABASE, options)


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
        from ..events import generate_secret

        click.echo(generate_secret())
        return
    key = secrets.token_urlsafe(32)
    if encryption:
        from ..tokens._encryption import KeyRing

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
            tracked = track_message(tracker, message, metadata_dict)
            out.write(tracked.as_bytes())
        else:
            # Bytes in, bytes out: the rewriter reads the charset the HTML
            # declares and leaves every other byte as it is.
            out.write(track_html(tracker, data, metadata_dict))
    except MailTrackError as e:
        raise click.ClickException(str(e)) from None
    out.flush()


# -- the event store -----------------------------------------------------------


def _time_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> float | None:
    from ..server._app import parse_time

    if not value:
        return None
    try:
        return parse_time(value)
    except (ValueError, OverflowError):
        raise click.BadParameter("use an ISO 8601 time or seconds") from None


def _filters_option(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    filters = {}
    for item in values:
        key, sep, value = item.partition("=")
        # The store refuses these in a metadata key (they would escape the
        # JSON path); say so here, as a usage error.
        if not sep or not key or '"' in key or "\\" in key:
            raise click.BadParameter(
                f"use KEY=VALUE (a key without quotes or backslashes), not {item!r}"
            )
        filters[key] = value
    return filters


def store_query_options(f: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    """Add the event store's filters to a command: ``--since TIME``,
    ``--until TIME`` (passed as ``since`` / ``until``, seconds since the
    epoch or ``None``) and ``--filter KEY=VALUE`` (passed as ``filters``, a
    dict of metadata values). ``store.stats(since=since, until=until,
    **filters)`` then applies them."""
    f = click.option(
        "--filter",
        "filters",
        multiple=True,
        metavar="KEY=VALUE",
        callback=_filters_option,
        help="Only events whose metadata KEY is VALUE (repeatable).",
    )(f)
    f = click.option(
        "--until",
        metavar="TIME",
        callback=_time_option,
        help="Only events before TIME (ISO 8601 or epoch seconds).",
    )(f)
    f = click.option(
        "--since",
        metavar="TIME",
        callback=_time_option,
        help="Only events at or after TIME (ISO 8601 or epoch seconds).",
    )(f)
    return f


def open_event_store(settings: CommandSettings) -> EventStore:
    """The existing event store of ``MAILTRACK_DATABASE``; a
    :class:`click.ClickException` when there is none."""
    from ..server._app import open_store

    database = settings.get(ConfigKeys.DATABASE)
    if database is None and settings.get_app() is not None:
        raise click.ClickException(f"{ConfigKeys.DATABASE} is not set for this app.")
    try:
        return open_store(database)
    except FileNotFoundError as e:
        raise click.ClickException(str(e)) from None


@shared_command("stats")
@store_query_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_settings
def stats_command(
    settings: CommandSettings,
    since: float | None,
    until: float | None,
    filters: dict[str, str],
    as_json: bool,
) -> None:
    """Print opens, clicks and click-through from the event store
    (MAILTRACK_DATABASE), people and machines apart."""
    from ..server._app import format_stats

    with open_event_store(settings) as store:
        stats = store.stats(since=since, until=until, **filters)
    click.echo(json.dumps(stats, indent=2) if as_json else format_stats(stats))


@shared_command("export")
@click.option(
    "--format",
    "format_name",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
    help="JSON lines (one schema-1 event per line) or CSV with a header row.",
)
@click.option(
    "--output",
    "-o",
    default="-",
    metavar="FILE",
    type=click.Path(dir_okay=False, allow_dash=True),
    help='Write to FILE instead of standard output ("-").',
)
@store_query_options
@pass_settings
def export_command(
    settings: CommandSettings,
    format_name: str,
    output: str,
    since: float | None,
    until: float | None,
    filters: dict[str, str],
) -> None:
    """Write the events of the event store (MAILTRACK_DATABASE), oldest
    first, as JSON lines or CSV (UTF-8).

    The events are read in pages and written as they come: memory use does
    not depend on the size of the store. A FILE is replaced only once the
    export is complete.
    """
    with open_event_store(settings) as store:
        export = store.export_csv if format_name == "csv" else store.export_jsonl

        def write(file: t.TextIO) -> int:
            return export(file, since=since, until=until, **filters)

        if output == "-":
            _write_stdout(write)
        else:
            count = _write_file(output, write)
            click.echo(f"Exported {count} events to {output}.", err=True)


def _write_stdout(write: t.Callable[[t.TextIO], int]) -> int:
    """Call ``write`` with standard output as UTF-8 text, lines untranslated
    (CSV ends its lines with CRLF itself)."""
    sys.stdout.flush()
    stream = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
    try:
        count = write(stream)
        stream.flush()
    except BrokenPipeError:
        # The reader stopped (``| head``): not an error of the export. Point
        # stdout at devnull so the interpreter's final flush does not fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        raise SystemExit(1) from None
    finally:
        with contextlib.suppress(ValueError, OSError):
            stream.detach()  # leave sys.stdout's buffer open
    return count


def _write_file(path: str, write: t.Callable[[t.TextIO], int]) -> int:
    """Call ``write`` with a new file next to ``path``, then move it over
    ``path``: a failed export leaves the previous file as it was."""
    if os.path.exists(path) and not os.path.isfile(path):
        # A device or a named pipe (/dev/stdout): write to it directly.
        with open(path, "w", encoding="utf-8", newline="") as file:
            return write(file)
    directory, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
    try:
        # O_EXCL with the usual mode: the umask applies, as for any file
        # the user creates.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise click.FileError(path, e.strerror) from None
    try:
        with open(fd, "w", encoding="utf-8", newline="") as file:
            count = write(file)
        os.replace(temporary, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(e, OSError):  # a full disk, a lost mount
            raise click.ClickException(
                f"Could not write {path!r}: {e.strerror or e}"
            ) from None
        raise
    return count


# -- webhook delivery ------------------------------------------------------------


class _Stop(Exception):
    """Raised in the main thread by SIGINT or SIGTERM to stop ``deliver``."""


@shared_command("deliver")
@click.option(
    "--flush-timeout",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="When stopped, keep delivering the events that are due for at most"
    " this long; the rest stay in the outbox.",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between looks at the outbox for events queued by the servers.",
)
@pass_settings
def deliver_command(
    settings: CommandSettings, flush_timeout: float, poll_interval: float
) -> None:
    """Deliver the webhook outbox until stopped (Ctrl-C or SIGTERM).

    For servers that only queue events (MAILTRACK_WEBHOOK_DELIVER=false):
    this one process posts them, with the same settings (MAILTRACK_WEBHOOK_URL,
    MAILTRACK_WEBHOOK_SECRET, MAILTRACK_WEBHOOK_OUTBOX or MAILTRACK_DATABASE).
    Pressing Ctrl-C again while stopping exits at once; undelivered events
    stay in the outbox either way.
    """
    if threading.current_thread() is not threading.main_thread():
        # Only the main thread receives signals: nothing could stop it.
        raise click.ClickException("deliver must run in the main thread.")
    sender = settings.webhook_sender(deliver=True, poll_interval=poll_interval)
    click.echo(
        f"Delivering webhooks from {sender.outbox_path}"
        f" ({sender.pending()} events waiting). Stop with Ctrl-C or SIGTERM."
    )
    stopping = False

    def stop(signum: int, frame: t.Any) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise _Stop(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C again: do not wait for the flush
        # Another SIGTERM is ignored: it is often sent twice, to the process
        # and to its process group, and the flush has a deadline already.

    previous: dict[signal.Signals, t.Any] = {}
    try:
        try:
            for number in (signal.SIGINT, signal.SIGTERM):
                previous[number] = signal.signal(number, stop)
            sender.start()
            while True:
                # The delivery thread does the work; this thread only waits
                # for the signal, which interrupts the sleep.
                time.sleep(3600)
        except _Stop:
            pass
        click.echo(f"Stopping: delivering due events for at most {flush_timeout:g} s.")
        sender.flush(flush_timeout)
        left = sender.pending()
    finally:
        try:
            sender.close(timeout=0)
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
    click.echo(
        f"Stopped; {left} events left in the outbox."
        if left
        else "Stopped; the outbox is empty."
    )


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
    from ..server._app import serve

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
