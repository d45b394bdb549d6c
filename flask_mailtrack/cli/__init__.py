"""The ``mailtrack`` command and the ``flask mailtrack`` command group.

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

A :class:`~flask_mailtrack.MailTrackError` raised by a command (a bad
setting, a token that does not verify) is reported as an error message with
exit status 1.
"""

from __future__ import annotations

import typing as t

from .._moved import warn_deprecated

# The command modules add their commands to both groups when imported.
from . import _links as _links
from . import _run as _run
from . import _store as _store
from ._groups import add_command as add_command
from ._groups import mailtrack_group as mailtrack_group
from ._groups import main as main
from ._groups import shared_command as shared_command
from ._settings import CommandSettings as CommandSettings
from ._settings import environ_configuration as environ_configuration
from ._settings import pass_settings as pass_settings
from ._store import open_event_store as open_event_store
from ._store import store_query_options as store_query_options

__all__ = [
    "CommandSettings",
    "add_command",
    "environ_configuration",
    "mailtrack_group",
    "main",
    "open_event_store",
    "pass_settings",
    "shared_command",
    "store_query_options",
]


def __getattr__(name: str) -> t.Any:
    if name == "decode_any":
        warn_deprecated(
            "flask_mailtrack.cli.decode_any",
            "call tracker.decode_any(url, kind) instead",
        )
        return _links.decode_any
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
