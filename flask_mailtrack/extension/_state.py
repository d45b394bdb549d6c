"""What :class:`~flask_mailtrack.MailTrack` keeps for each app, and the
tracking URLs it makes: the routes' prefix and segments, the base URLs, the
per-host link trackers."""

from __future__ import annotations

import os
import typing as t
import warnings

from flask import current_app
from flask import Flask
from flask import has_app_context
from flask import has_request_context
from flask import request
from werkzeug.exceptions import BadRequest

from .._urls import split_base_url
from ..configuration import ConfigKeys
from ..configuration import Configuration
from ..exceptions import MailTrackWarning
from ..exceptions import MissingSettingError
from ..tokens._serializer import CLICK
from ..tokens._serializer import OPEN
from ..tracker import Tracker

if t.TYPE_CHECKING:
    from ..events._pipeline import Pipeline
    from ..outgoing import Outgoing
    from ._extension import MailTrack

#: Default of ``MAILTRACK_URL_PREFIX``.
DEFAULT_URL_PREFIX = "/mailtrack"

#: Path segment under the prefix of each kind of tracking route.
ROUTE_SEGMENTS: dict[str, str] = {OPEN: "o", CLICK: "c"}

# At most this many per-host trackers are kept when links are made from the
# request's host. The Host header comes from the client, so the cache must
# not grow with whatever hosts clients send.
_MAX_HOST_TRACKERS = 16


def tracking_base_urls(
    base_url: str, url_prefix: str, *, setting: str = ConfigKeys.BASE_URL
) -> tuple[str, str]:
    """The ``(open, click)`` base URLs of the tracking routes below an
    external ``base_url``, such as ``https://t.example.com``.

    A ``base_url`` whose path already ends with the prefix
    (``https://t.example.com/mailtrack``) makes ``/mailtrack/mailtrack/c/...``
    links, right only when the app itself is mounted at that path: it issues
    a :class:`~flask_mailtrack.exceptions.MailTrackWarning` that names the
    fix.

    :param setting: The setting ``base_url`` comes from, for messages.
    :raise ConfigurationError: ``base_url`` is not an absolute http(s) URL
        with a host, or has a query string or a fragment.

    .. versionchanged:: 0.1
        Checks ``base_url``.
    """
    parts = split_base_url(base_url, setting, query=False)
    prefix = normalize_url_prefix(url_prefix)
    if prefix and parts.path.rstrip("/").endswith(prefix):
        root = base_url.rstrip("/")[: -len(prefix)]
        warnings.warn(
            f"{setting} {base_url!r} ends with the tracking routes' prefix"
            f" {prefix!r}, which is added to it: links are made on"
            f" '{base_url.rstrip('/')}{prefix}/c/...'. Unless the app itself is"
            f" mounted at {prefix!r}, set {setting} to {root!r}.",
            MailTrackWarning,
            stacklevel=2,
        )
    return _route_bases(base_url, prefix)


def _route_bases(root_url: str, prefix: str) -> tuple[str, str]:
    root = root_url.rstrip("/") + prefix
    return (f"{root}/{ROUTE_SEGMENTS[OPEN]}/", f"{root}/{ROUTE_SEGMENTS[CLICK]}/")


def default_outbox(app: Flask) -> str:
    """The webhook outbox of ``app`` when neither
    ``MAILTRACK_WEBHOOK_OUTBOX`` nor ``MAILTRACK_DATABASE`` is set: a file
    of its instance folder (its journal folder goes beside it)."""
    return os.path.join(app.instance_path, "mailtrack.sqlite3")


def normalize_url_prefix(url_prefix: str | None) -> str:
    """``url_prefix`` with one leading slash and no trailing slash (``""``
    for the root)."""
    if url_prefix is None:
        return DEFAULT_URL_PREFIX
    stripped = url_prefix.strip("/")
    return "/" + stripped if stripped else ""


class MailTrackState:
    """What :class:`MailTrack` keeps for one app, in
    ``app.extensions["mailtrack"]``. Two apps never share one, so their keys
    and settings never cross.
    """

    def __init__(
        self,
        extension: MailTrack,
        configuration: Configuration,
        *,
        url_prefix: str,
        base_url: str | None,
    ) -> None:
        #: The extension instance that registered the app.
        self.extension = extension
        #: The settings, without base URLs (they depend on the host when
        #: ``base_url`` is not set).
        self.configuration = configuration
        #: Path prefix of the tracking routes (``""`` or ``/name``).
        self.url_prefix = url_prefix
        #: External base the links are made on, or ``None`` to use the
        #: request's host.
        self.base_url = base_url.rstrip("/") if base_url else None
        #: The tracker that serves and decodes tokens. It also makes links
        #: when ``base_url`` is set.
        self.tracker = (
            self._make_tracker(tracking_base_urls(self.base_url, url_prefix))
            if self.base_url
            else Tracker(configuration)
        )
        self._host_trackers: dict[str, Tracker] = {}
        #: The events pipeline of this app (journal, sinks, worker) that
        #: ``MAILTRACK_DATABASE`` and ``MAILTRACK_WEBHOOK_URL`` configure;
        #: ``None`` without either. ``pipeline.drain()`` waits until the
        #: sinks have every event so far; ``pipeline.close()`` closes it.
        self.pipeline: Pipeline | None = None
        #: Tracks and records the email the app sends (Flask-Mailman,
        #: :class:`flask_mailtrack.flask_mail.Mail`); its
        #: ``settings.enabled`` is ``MAILTRACK_TRACK_OUTGOING``.
        self.outgoing: Outgoing | None = None

    def _make_tracker(self, bases: tuple[str, str]) -> Tracker:
        open_base, click_base = bases
        return Tracker(
            self.configuration.replace(
                base_open_tracking_url=open_base, base_click_tracking_url=click_base
            )
        )

    def link_tracker(self, app: Flask) -> Tracker:
        """The tracker that makes links on the current external base URL:
        ``MAILTRACK_BASE_URL``, else the current request's root URL, else
        ``SERVER_NAME``.

        :raise MissingSettingError: none of these is available.
        """
        if self.base_url:
            return self.tracker
        base = _request_or_server_base(app)
        tracker = self._host_trackers.get(base)
        if tracker is None:
            if len(self._host_trackers) >= _MAX_HOST_TRACKERS:
                self._host_trackers.clear()
            # The request's root is no setting to check: the app may well
            # be mounted at the prefix.
            tracker = self._host_trackers[base] = self._make_tracker(
                _route_bases(base, self.url_prefix)
            )
        return tracker

    def sending_tracker(self) -> Tracker:
        """The tracker that makes the links of outgoing mail: on
        ``MAILTRACK_BASE_URL``, else (in an app context) as
        :meth:`link_tracker` for the current app."""
        if self.base_url:
            return self.tracker
        return self.link_tracker(current_app._get_current_object())  # type: ignore[attr-defined]


def _request_or_server_base(app: Flask) -> str:
    if has_request_context():
        if not request.host:
            # werkzeug gives an empty host for a Host header that is not a
            # host name; links made on it could not be followed.
            raise BadRequest("The Host header of the request is not valid.")
        if not app.config.get("TRUSTED_HOSTS") and not (app.debug or app.testing):
            _warn_request_host(app)
        return request.url_root
    server_name = app.config.get("SERVER_NAME")
    if server_name:
        scheme = app.config.get("PREFERRED_URL_SCHEME") or "http"
        root = (app.config.get("APPLICATION_ROOT") or "/").rstrip("/")
        return f"{scheme}://{server_name}{root}"
    raise MissingSettingError(
        "Tracking links are made on MAILTRACK_BASE_URL, which is not set, and"
        " there is no request to take the host from. Set"
        " app.config['MAILTRACK_BASE_URL'] to the external URL of the app"
        " (such as 'https://t.example.com') to make links outside a request,"
        " for example in a Celery worker or a CLI command."
    )


def _warn_request_host(app: Flask) -> None:
    """Log once per app that links are made on the client's Host header."""
    if app.extensions.get("mailtrack_host_warned"):
        return
    app.extensions["mailtrack_host_warned"] = True
    app.logger.warning(
        "MailTrack makes tracking links on the request's Host header, which"
        " the client chooses: a forged Host puts links to another site in"
        " the email. Set MAILTRACK_BASE_URL (or Flask's TRUSTED_HOSTS)."
    )


def get_state(app: Flask | None = None) -> MailTrackState:
    """The :class:`MailTrackState` of ``app`` (default: the current app).

    :raise RuntimeError: outside an app context, or the app has no
        :class:`MailTrack`.
    """
    if app is None:
        if not has_app_context():
            raise RuntimeError(
                "Working outside of application context: use"
                " 'with app.app_context():' to make tracking links."
            )
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    state = app.extensions.get("mailtrack")
    if state is None:
        raise RuntimeError(
            f"The Flask app {app.name!r} has no MailTrack extension: call"
            " 'MailTrack(app)' or 'mailtrack.init_app(app)'."
        )
    return t.cast(MailTrackState, state)
