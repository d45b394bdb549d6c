"""What the standalone server keeps for its app."""

from __future__ import annotations

import typing as t

from flask import current_app
from flask import Flask

from ..events import EventStore


class ServerState:
    """What the server keeps in ``app.extensions["mailtrack_server"]``."""

    def __init__(
        self,
        store: EventStore,
        *,
        demo: bool,
        generated_secret: bool,
        demo_root: str | None = None,
    ) -> None:
        #: The event store the stats pages read (the worker writes it).
        self.store = store
        #: Whether the demo pages are served (and the stats are open).
        self.demo = demo
        #: Whether the signing key was made up for this session.
        self.generated_secret = generated_secret
        #: The external root URL of the app that the demo newsletter's
        #: articles link to (``MAILTRACK_BASE_URL``, or the address
        #: ``mailtrack serve`` listens on), without a trailing slash. Never
        #: the request's ``Host`` header, which the client chooses: the
        #: links are signed, so a forged host would make them redirect to
        #: any site.
        self.demo_root = demo_root


def get_server_state(app: Flask) -> ServerState:
    """The :class:`ServerState` of a server app."""
    return t.cast(ServerState, app.extensions["mailtrack_server"])


def current_state() -> ServerState:
    """The :class:`ServerState` of the current app."""
    return get_server_state(current_app._get_current_object())  # type: ignore[attr-defined]
