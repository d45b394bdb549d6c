"""The commands of the event store: ``stats``, ``export``, ``db upgrade``,
``db purge`` and ``db forget``, and the options and helpers that other
store commands can use (:func:`store_query_options`,
:func:`open_event_store`)."""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import secrets
import sys
import typing as t

import click

from .._isotime import parse_time
from ..configuration import ConfigKeys
from ..events import EventStore
from ..events._from_settings import event_store
from ..events._store_backend import check_filter_name
from ..events._store_backend import QUERY_PARAMETERS
from ..events._store_backend import SQLITE
from ..events._store_database import parse_database
from ..server import DEFAULT_DATABASE
from ._groups import add_command
from ._groups import shared_command
from ._settings import CommandSettings
from ._settings import pass_settings


def _time_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> float | None:
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
        if not sep or not key:
            raise click.BadParameter(f"use KEY=VALUE, not {item!r}")
        # What the store would refuse, or take as one of its own parameters
        # (--filter since=1 would clash with --since), as a usage error.
        if key in QUERY_PARAMETERS:
            raise click.BadParameter(
                f"{key!r} is not a metadata filter name here"
                f" ({', '.join(sorted(QUERY_PARAMETERS))} are not)"
            )
        try:
            check_filter_name(key)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
        filters[key] = value
    return filters


def store_query_options(f: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    """Add the event store's filters to a command: ``--since TIME``,
    ``--until TIME`` (passed as ``since`` / ``until``, seconds since the
    epoch or ``None``) and ``--filter KEY=VALUE`` (passed as ``filters``, a
    dict of metadata values). ``store.stats(since=since, until=until,
    **filters)`` then applies them."""
    # Applied last to first, so that --help lists them in this order.
    for option in reversed(_QUERY_OPTIONS):
        f = option(f)
    return f


_QUERY_OPTIONS = (
    *(
        click.option(
            f"--{name}",
            metavar="TIME",
            callback=_time_option,
            help=f"Only events {when} TIME (ISO 8601 or epoch seconds).",
        )
        for name, when in (("since", "at or after"), ("until", "before"))
    ),
    click.option(
        "--filter",
        "filters",
        multiple=True,
        metavar="KEY=VALUE",
        callback=_filters_option,
        help="Only events whose metadata KEY is VALUE (repeatable).",
    ),
)


def open_event_store(
    settings: CommandSettings, *, must_exist: bool = True, **options: t.Any
) -> EventStore:
    """The event store of ``MAILTRACK_DATABASE`` (the standalone server's
    default file for ``mailtrack``), with ``MAILTRACK_DIMENSIONS`` and
    ``MAILTRACK_DATABASE_MIGRATE``; a :class:`click.ClickException` when
    none is set, or when its SQLite file is missing and ``must_exist``.

    :param options: Arguments of :class:`~flask_mailtrack.EventStore` that
        win over the settings."""
    database = settings.get(ConfigKeys.DATABASE)
    if database is None and settings.get_app() is not None:
        raise click.ClickException(f"{ConfigKeys.DATABASE} is not set for this app.")
    database = database or DEFAULT_DATABASE
    kind, path = parse_database(database)
    if must_exist and kind == SQLITE and path != ":memory:":
        if not os.path.exists(path):
            # Opening would create an empty store: say where none was found.
            raise click.ClickException(
                f"No event database at {path!r} (set {ConfigKeys.DATABASE})."
            )
    store = event_store(settings.events_settings()[0], database=database, **options)
    assert store is not None
    return store


@click.group("db")
def db_group() -> None:
    """The event store's database (MAILTRACK_DATABASE)."""


add_command(db_group)


@db_group.command("upgrade")
@pass_settings
def db_upgrade_command(settings: CommandSettings) -> None:
    """Create or migrate the event store's schema to the latest version,
    rolling up the dimensions (MAILTRACK_DIMENSIONS) not rolled up yet.

    Servers and workers do this themselves when they open the database,
    unless MAILTRACK_DATABASE_MIGRATE is false: then run this command
    after each upgrade of flask-mailtrack. Safe to run while they write,
    and from several machines at once.
    """
    # Opening migrates, whatever MAILTRACK_DATABASE_MIGRATE says.
    with open_event_store(settings, must_exist=False, migrate=True) as store:
        version = store.upgrade()
        click.echo(f"The event store {store.path} is at schema version {version}.")


_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _cutoff_option(
    ctx: click.Context, param: click.Parameter, value: str
) -> datetime.timedelta | datetime.datetime:
    number, unit = value[:-1], value[-1:]
    if unit in _AGE_UNITS and number.isdigit():
        return datetime.timedelta(seconds=int(number) * _AGE_UNITS[unit])
    try:
        timestamp = parse_time(value)
        return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise click.BadParameter(
            "use an age (400d, 12h, 30m, 2w) or an ISO 8601 time"
        ) from None


@db_group.command("purge")
@click.option(
    "--older-than",
    "cutoff",
    required=True,
    metavar="AGE|TIME",
    callback=_cutoff_option,
    help="Delete the events older than AGE (400d, 12h, 30m, 2w) or that"
    " occurred before TIME (ISO 8601).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_settings
def db_purge_command(
    settings: CommandSettings,
    cutoff: datetime.timedelta | datetime.datetime,
    yes: bool,
) -> None:
    """Delete old events, for a retention period (run it from cron with
    --yes). The statistics then count only the events kept. On PostgreSQL,
    whole months before the cutoff are dropped, which frees their disk at
    once."""
    with open_event_store(settings) as store:
        if not yes:
            click.confirm(
                f"Delete the events in {store.path} older than {_describe(cutoff)}?",
                abort=True,
            )
        deleted = store.purge(cutoff)
        click.echo(f"Deleted {deleted} events from {store.path}.")


@db_group.command("forget")
@click.option(
    "--filter",
    "filters",
    required=True,
    multiple=True,
    metavar="KEY=VALUE",
    callback=_filters_option,
    help="Delete the events whose metadata KEY is VALUE (repeatable: all must match).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_settings
def db_forget_command(
    settings: CommandSettings, filters: dict[str, str], yes: bool
) -> None:
    """Delete a person's events (sends, opens, clicks), for a request to
    erase their data: every event whose metadata matches all the filters,
    e.g. --filter recipient=ann@example.com. The statistics then count the
    events left only. Copies that webhooks, Redis consumers or signal
    receivers kept are theirs to erase."""
    described = " and ".join(f"{key}={value!r}" for key, value in filters.items())
    with open_event_store(settings) as store:
        if not yes:
            click.confirm(
                f"Delete the events in {store.path} whose metadata has {described}?",
                abort=True,
            )
        deleted = store.forget(**filters)
        click.echo(f"Deleted {deleted} events from {store.path}.")


def _describe(cutoff: datetime.timedelta | datetime.datetime) -> str:
    if isinstance(cutoff, datetime.timedelta):
        return f"{cutoff.total_seconds() / 86400:g} days"
    return cutoff.isoformat()


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


def format_stats(stats: t.Mapping[str, t.Any]) -> str:
    """The statistics of :meth:`EventStore.stats
    <flask_mailtrack.EventStore.stats>` as a plain-text report."""

    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value * 100:.1f}%"

    lines = []
    for label, key in (("Opens", "opens"), ("Clicks", "clicks")):
        c = stats[key]
        lines.append(
            f"{label:<7} total {c['total']:>6}  unique {c['unique']:>6}"
            f"   people {c['human']['total']} ({c['human']['unique']} unique),"
            f" machines {c['machine']['total']} ({c['machine']['unique']} unique)"
        )
    ctr = stats["click_through_rate"]
    lines.append(
        f"Click-through (clicked / opened or clicked): {rate(ctr['total'])},"
        f" people only {rate(ctr['human'])}"
    )
    sent = stats["sent"]
    if sent["total"]:
        opened, clicked = sent["open_rate"], sent["click_rate"]
        lines.append(
            f"Sent {sent['total']}: opened {rate(opened['total'])}"
            f" (people {rate(opened['human'])}), clicked {rate(clicked['total'])}"
            f" (people {rate(clicked['human'])}) of the emails sent"
        )
    if stats["machine_labels"]:
        labels = ", ".join(f"{k} {v}" for k, v in stats["machine_labels"].items())
        lines.append(f"Machine traffic: {labels}")
    if stats["links"]:
        lines.append("Links (clicks, unique, link):")
        lines.extend(
            f"  {link['total']:>6} {link['unique']:>6}  {link['url']}"
            for link in stats["links"]
        )
    return "\n".join(lines)
