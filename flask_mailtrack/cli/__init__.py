"""The ``mailtrack`` command and the ``flask mailtrack`` command group."""

from __future__ import annotations

from ._commands import add_command as add_command
from ._commands import CommandSettings as CommandSettings
from ._commands import decode_any as decode_any
from ._commands import environ_configuration as environ_configuration
from ._commands import mailtrack_group as mailtrack_group
from ._commands import main as main
from ._commands import open_event_store as open_event_store
from ._commands import pass_settings as pass_settings
from ._commands import shared_command as shared_command
from ._commands import store_query_options as store_query_options

__all__ = [
    "CommandSettings",
    "add_command",
    "decode_any",
    "environ_configuration",
    "mailtrack_group",
    "main",
    "open_event_store",
    "pass_settings",
    "shared_command",
    "store_query_options",
]
