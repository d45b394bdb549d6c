"""The two command groups, ``flask mailtrack`` (:data:`mailtrack_group`) and
``mailtrack`` (:func:`main`), and how a command joins both."""

from __future__ import annotations

import contextlib
import typing as t
import warnings

import click
from flask.cli import AppGroup

from ..exceptions import InvalidToken
from ..exceptions import MailTrackError
from ..exceptions import MailTrackWarning
from ._settings import EnvironCommandSettings
from ._settings import FlaskCommandSettings
from ._settings import SETTINGS_KEY


class _Group(click.Group):
    """A group whose commands report the library's errors (a bad setting,
    a token that does not verify) as a message and exit status 1, not a
    traceback. The one place the commands' :class:`MailTrackError` is
    caught."""

    def invoke(self, ctx: click.Context) -> t.Any:
        with _warnings_as_lines():
            try:
                return super().invoke(ctx)
            except InvalidToken as e:
                raise click.ClickException(f"Invalid token ({e.reason}): {e}") from None
            except MailTrackError as e:
                raise click.ClickException(str(e)) from None


@contextlib.contextmanager
def _warnings_as_lines() -> t.Iterator[None]:
    """Show the library's warnings (a weak key, an unknown variable) as one
    ``Warning:`` line on standard error, as errors are one ``Error:`` line,
    instead of Python's file, line number and source line. Other warnings,
    and the filters that decide whether a warning is shown, are unchanged."""
    show = warnings.showwarning

    def show_line(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: t.TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, MailTrackWarning):
            click.echo(f"Warning: {message}", err=True)
        else:
            show(message, category, filename, lineno, file, line)

    warnings.showwarning = show_line
    try:
        yield
    finally:
        warnings.showwarning = show


class _FlaskGroup(_Group, AppGroup):
    """:class:`_Group` for ``flask mailtrack``."""


@click.group("mailtrack", cls=_FlaskGroup)
@click.pass_context
def mailtrack_group(ctx: click.Context) -> None:
    """Email open and click tracking (flask_mailtrack)."""
    ctx.meta[SETTINGS_KEY] = FlaskCommandSettings(ctx)


@click.group("mailtrack", cls=_Group)
@click.version_option(package_name="flask-mailtrack")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Email open and click tracking (flask_mailtrack).

    Settings come from MAILTRACK_* environment variables, the names of the
    Flask config keys: MAILTRACK_SECRET_KEY, MAILTRACK_BASE_URL, ...
    """
    ctx.meta.setdefault(SETTINGS_KEY, EnvironCommandSettings())


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
