"""The standalone tracking server: ``mailtrack serve``, or
``gunicorn 'flask_mailtrack.server:create_app()'``."""

from __future__ import annotations

from ._app import close_app as close_app
from ._app import create_app as create_app
from ._app import DEFAULT_DATABASE as DEFAULT_DATABASE
from ._state import get_server_state as get_server_state
from ._state import ServerState as ServerState

__all__ = [
    "DEFAULT_DATABASE",
    "ServerState",
    "close_app",
    "create_app",
    "get_server_state",
]
