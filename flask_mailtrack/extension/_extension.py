"""The Flask extension: :class:`MailTrack`.

It serves the open pixel and the click redirect from a blueprint, makes
tracking links for the current app, and adds Jinja helpers for email
templates::

    from flask import Flask
    from flask_mailtrack import MailTrack

    app = Flask(__name__)
    app.config["SECRET_KEY"] = "..."
    app.config["MAILTRACK_BASE_URL"] = "https://t.example.com"
    mailtrack = MailTrack(app)

    with app.app_context():
        url = mailtrack.click_url("https://example.com/sale", {"customer": 42})

Links are served at ``<MAILTRACK_URL_PREFIX>/o/<token>`` (pixel) and
``<MAILTRACK_URL_PREFIX>/c/<token>`` (redirect). Each hit sends
:data:`~flask_mailtrack.email_opened`, :data:`~flask_mailtrack.link_clicked`
or :data:`~flask_mailtrack.tracking_failed` with the app as the sender.
"""

from __future__ import annotations

import dataclasses
import os
import typing as t

from flask import Blueprint
from flask import current_app
from flask import Flask
from flask import has_app_context
from flask import has_request_context
from flask import request
from flask.blueprints import BlueprintSetupState
from markupsafe import escape
from markupsafe import Markup
from werkzeug.exceptions import BadRequest
from werkzeug.routing import BaseConverter
from werkzeug.wrappers import Response

from ..configuration import ConfigKeys
from ..configuration import Configuration
from ..events._from_settings import connect_receivers
from ..rewrite import track_html
from ..rewrite import track_message
from ..rewrite._html import HTMLInput
from ..rewrite._html import HTMLTemplate
from ..rewrite._html import PIXEL_ATTRIBUTES
from ..rewrite._mime import MessageType
from ..tokens._serializer import CLICK
from ..tokens._serializer import Kind
from ..tokens._serializer import OPEN
from ..tracker import Metadata
from ..tracker import Tracker
from ..web import handle_request

#: Default of ``MAILTRACK_URL_PREFIX``.
DEFAULT_URL_PREFIX = "/mailtrack"

#: Path segment under the prefix of each kind of tracking route.
ROUTE_SEGMENTS: dict[str, str] = {OPEN: "o", CLICK: "c"}

# Configuration parameters that get a MAILTRACK_* default in app.config, so
# that `app.config` shows the settings the extension reads. The base URLs are
# left out: the extension makes them from BASE_URL and URL_PREFIX.
_CONFIG_DEFAULTS = (
    "secret_key",
    "encryption_key",
    "default_metadata",
    "max_age",
    "trusted_proxies",
    "anonymize_ip",
    "pixel_on_invalid_token",
    "click_scan_seconds",
    "machine_rules",
    "webhook_url",
)
_FIELD_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Configuration)}
_FIELD_NAMES = frozenset(_FIELD_DEFAULTS)

# At most this many per-host trackers are kept when links are made from the
# request's host. The Host header comes from the client, so the cache must
# not grow with whatever hosts clients send.
_MAX_HOST_TRACKERS = 16


def tracking_base_urls(base_url: str, url_prefix: str) -> tuple[str, str]:
    """The ``(open, click)`` base URLs of the tracking routes below an
    external ``base_url``, such as ``https://t.example.com``."""
    root = base_url.rstrip("/") + normalize_url_prefix(url_prefix)
    return (f"{root}/{ROUTE_SEGMENTS[OPEN]}/", f"{root}/{ROUTE_SEGMENTS[CLICK]}/")


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
            self._make_tracker(self.base_url)
            if self.base_url
            else Tracker(configuration)
        )
        self._host_trackers: dict[str, Tracker] = {}
        #: Receivers of this app's signals that the extension connected
        #: (webhook sender, event store), so they can be found and closed.
        self.receivers: list[t.Any] = []

    def _make_tracker(self, base_url: str) -> Tracker:
        open_base, click_base = tracking_base_urls(base_url, self.url_prefix)
        return Tracker(
            self.configuration.replace(
                base_open_tracking_url=open_base, base_click_tracking_url=click_base
            )
        )

    def link_tracker(self, app: Flask) -> Tracker:
        """The tracker that makes links on the current external base URL:
        ``MAILTRACK_BASE_URL``, else the current request's root URL, else
        ``SERVER_NAME``.

        :raise RuntimeError: none of these is available.
        """
        if self.base_url:
            return self.tracker
        base = _request_or_server_base(app)
        tracker = self._host_trackers.get(base)
        if tracker is None:
            if len(self._host_trackers) >= _MAX_HOST_TRACKERS:
                self._host_trackers.clear()
            tracker = self._host_trackers[base] = self._make_tracker(base)
        return tracker


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
    raise RuntimeError(
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


class MailTrack:
    """Email open and click tracking for Flask apps.

    Serves the pixel and the click redirect from a blueprint named
    ``mailtrack`` (endpoints ``mailtrack.open`` and ``mailtrack.click``),
    makes tracking links for the current app, and registers the Jinja
    helpers ``mailtrack_pixel``, ``mailtrack_open_url``,
    ``mailtrack_click_url`` and the ``mailtrack`` filter.

    Settings are read from ``MAILTRACK_*`` keys of ``app.config`` when
    :meth:`init_app` is called (see :class:`~flask_mailtrack.constants.ConfigKeys`
    and the :class:`~flask_mailtrack.Configuration` parameters); arguments
    given here win over them. One instance can serve several apps; each
    app's settings stay in ``app.extensions["mailtrack"]``.

    :param app: Call :meth:`init_app` on this app now.
    :param configuration: Use these settings instead of the ``MAILTRACK_*``
        keys that name :class:`~flask_mailtrack.Configuration` parameters.
        Its base URLs must be unset: they come from ``base_url`` and
        ``url_prefix``.
    :param url_prefix: Path of the tracking routes; default
        ``MAILTRACK_URL_PREFIX``, else ``/mailtrack``.
    :param base_url: External URL links are made on, such as
        ``https://t.example.com``; default ``MAILTRACK_BASE_URL``, else the
        current request's root URL (or ``SERVER_NAME``). Set it in
        production: the request's ``Host`` header comes from the client
        (unless Flask's ``TRUSTED_HOSTS`` restricts it).
    :param configuration_kwargs: :class:`~flask_mailtrack.Configuration`
        parameters that win over both ``configuration`` and the config keys.
        Unknown names raise :exc:`TypeError`.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        configuration: Configuration | None = None,
        url_prefix: str | None = None,
        base_url: str | None = None,
        **configuration_kwargs: t.Any,
    ) -> None:
        unknown = sorted(set(configuration_kwargs) - _FIELD_NAMES)
        if unknown:
            raise TypeError(
                f"Unknown MailTrack argument(s): {', '.join(unknown)}."
                " Keyword arguments must be Configuration parameters."
            )
        self._configuration = configuration
        self._url_prefix = url_prefix
        self._base_url = base_url
        self._configuration_kwargs = configuration_kwargs
        if app is not None:
            self.init_app(app)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def init_app(self, app: Flask) -> None:
        """Register the extension on ``app``: read its ``MAILTRACK_*``
        settings (set them before this call), register the blueprint and the
        Jinja helpers.

        The signing key defaults to Flask's ``SECRET_KEY``, with
        ``SECRET_KEY_FALLBACKS`` also accepted so that links made before a
        key rotation keep working.

        :raise RuntimeError: the app already has a ``MailTrack``, or no
            signing or encryption key is configured.
        """
        if "mailtrack" in app.extensions:
            raise RuntimeError(
                "A 'MailTrack' instance has already been registered on this Flask"
                " app. Import and use that instance instead."
            )
        config = app.config
        url_prefix = normalize_url_prefix(
            self._url_prefix
            if self._url_prefix is not None
            else config.setdefault(ConfigKeys.URL_PREFIX, DEFAULT_URL_PREFIX)
        )
        base_url = (
            self._base_url
            if self._base_url is not None
            else config.setdefault(ConfigKeys.BASE_URL, None)
        )
        for name in _CONFIG_DEFAULTS:
            config.setdefault(f"MAILTRACK_{name.upper()}", _FIELD_DEFAULTS[name])
        # The receivers' settings: the webhook sender and the event store are
        # connected from these by their own modules.
        config.setdefault(ConfigKeys.DATABASE, None)

        configuration = self._configuration
        if configuration is None:
            configuration = Configuration.from_mapping(config)
        if self._configuration_kwargs:
            configuration = configuration.replace(**self._configuration_kwargs)
        if (
            configuration.base_open_tracking_url
            or configuration.base_click_tracking_url
        ):
            raise ValueError(
                "MailTrack makes the tracking base URLs from MAILTRACK_BASE_URL"
                " and MAILTRACK_URL_PREFIX; do not set base_open_tracking_url or"
                " base_click_tracking_url."
            )
        configuration = _with_flask_secret(app, configuration)

        state = app.extensions["mailtrack"] = MailTrackState(
            self, configuration, url_prefix=url_prefix, base_url=base_url
        )
        # MAILTRACK_DATABASE → EventStore, MAILTRACK_WEBHOOK_URL → WebhookSender,
        # receiving this app's events only.
        state.receivers.extend(
            connect_receivers(
                config,
                configuration,
                sender=app,
                default_outbox=os.path.join(app.instance_path, "mailtrack.sqlite3"),
            )
        )
        app.register_blueprint(blueprint, url_prefix=url_prefix or None)
        app.add_template_global(mailtrack_pixel, "mailtrack_pixel")
        app.add_template_global(mailtrack_open_url, "mailtrack_open_url")
        app.add_template_global(mailtrack_click_url, "mailtrack_click_url")
        app.add_template_filter(mailtrack_filter, "mailtrack")

    # -- the current app ------------------------------------------------------

    def _state(self) -> MailTrackState:
        if not has_app_context():
            raise RuntimeError(
                "Working outside of application context: MailTrack needs the"
                " current Flask app to find its settings. Use"
                " 'with app.app_context():' (in a worker or a script) or call"
                " it from a request or a CLI command."
            )
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        state = app.extensions.get("mailtrack")
        if state is None or state.extension is not self:
            raise RuntimeError(
                "The current Flask app is not registered with this 'MailTrack'"
                " instance. Did you forget to call 'init_app', or did you create"
                " several 'MailTrack' instances?"
            )
        return t.cast(MailTrackState, state)

    @property
    def tracker(self) -> Tracker:
        """The :class:`~flask_mailtrack.Tracker` that makes links for the
        current app, on ``MAILTRACK_BASE_URL`` or the current request's host.

        :raise RuntimeError: outside an app context, or when no base URL is
            known (see :class:`MailTrack`).
        """
        state = self._state()
        return state.link_tracker(current_app._get_current_object())  # type: ignore[attr-defined]

    @property
    def configuration(self) -> Configuration:
        """The settings of the current app (without base URLs)."""
        return self._state().configuration

    def open_url(self, metadata: Metadata = None) -> str:
        """The pixel URL for ``metadata``."""
        return self.tracker.open_url(metadata)

    def click_url(self, url: str, metadata: Metadata = None) -> str:
        """The tracked URL of ``url`` for ``metadata``."""
        return self.tracker.click_url(url, metadata)

    def track_html(
        self, html: HTMLInput, metadata: Metadata = None, **options: t.Any
    ) -> HTMLInput:
        """Track the links of an HTML email and add the pixel, for one
        recipient; see :func:`~flask_mailtrack.rewrite.track_html` for the
        ``options``."""
        return track_html(self.tracker, html, metadata, **options)

    def track_message(
        self, message: MessageType, metadata: Metadata = None, **options: t.Any
    ) -> MessageType:
        """A tracked copy of an email message; see
        :func:`~flask_mailtrack.rewrite.track_message`."""
        return track_message(self.tracker, message, metadata, **options)

    def compile_html(self, html: str | bytes, **options: t.Any) -> HTMLTemplate:
        """Scan an HTML email once, to render it per recipient with
        ``template.render(metadata)``; see
        :class:`~flask_mailtrack.rewrite.HTMLTemplate`.

        The template makes links on the base URL current when it is
        compiled, so it can be rendered later without a request.
        """
        return HTMLTemplate(self.tracker, html, **options)


def _with_flask_secret(app: Flask, configuration: Configuration) -> Configuration:
    """Default the signing keys to Flask's, oldest first like
    ``flask.sessions`` does, so rotating ``SECRET_KEY`` with
    ``SECRET_KEY_FALLBACKS`` keeps sent links working."""
    if configuration.secret_key is None and app.secret_key:
        keys: list[str | bytes] = list(app.config.get("SECRET_KEY_FALLBACKS") or ())
        keys.append(app.secret_key)
        configuration = configuration.replace(secret_key=keys)
    if not (
        configuration.secret_key
        or configuration.encryption_keys
        or configuration.insecure_unsigned_tokens
    ):
        raise RuntimeError(
            "MailTrack needs a key to sign tracking links: set SECRET_KEY or"
            " MAILTRACK_SECRET_KEY (or MAILTRACK_ENCRYPTION_KEY) before"
            " init_app. `flask mailtrack keygen` prints a new one."
        )
    return configuration


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


# -- the tracking routes ------------------------------------------------------

#: The blueprint serving ``/o/<token>`` (endpoint ``mailtrack.open``) and
#: ``/c/<token>`` (``mailtrack.click``), registered by :meth:`MailTrack.init_app`
#: under ``MAILTRACK_URL_PREFIX``.
blueprint = Blueprint("mailtrack", __name__)


def _serve(kind: Kind, token: str) -> Response:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    tracker = get_state(app).tracker
    return handle_request(tracker, request, sender=app, kind=kind, token=token).response


class TokenConverter(BaseConverter):
    """Any rest of the path, empty, with slashes or control characters.

    Flask's ``path`` converter refuses a leading slash and a newline, and
    its slash merging would redirect: such a path would get Flask's own 404
    or a redirect instead of the tracking answer (the pixel or the 404
    page) and a ``tracking_failed`` signal.
    """

    regex = "(?s:.*)"
    part_isolating = False
    weight = 200


@blueprint.record_once
def _register_converter(state: BlueprintSetupState) -> None:
    # Runs before the routes below are added, which need the converter.
    state.app.url_map.converters.setdefault("mailtrack_token", TokenConverter)


@blueprint.route(
    f"/{ROUTE_SEGMENTS[OPEN]}/<mailtrack_token:token>",
    endpoint="open",
    merge_slashes=False,
)
def _open_view(token: str) -> Response:
    return _serve(OPEN, token)


@blueprint.route(
    f"/{ROUTE_SEGMENTS[CLICK]}/<mailtrack_token:token>",
    endpoint="click",
    merge_slashes=False,
)
def _click_view(token: str) -> Response:
    return _serve(CLICK, token)


# -- Jinja helpers -------------------------------------------------------------


def _current_link_tracker() -> Tracker:
    state = get_state()
    return state.link_tracker(current_app._get_current_object())  # type: ignore[attr-defined]


def mailtrack_open_url(metadata: Metadata = None) -> str:
    """Jinja global: the pixel URL for ``metadata``."""
    return _current_link_tracker().open_url(metadata)


def mailtrack_click_url(url: str, metadata: Metadata = None) -> str:
    """Jinja global: the tracked URL of ``url`` for ``metadata``, for
    ``<a href="{{ mailtrack_click_url(url, {"id": user.id}) }}">``."""
    return _current_link_tracker().click_url(url, metadata)


def mailtrack_pixel(metadata: Metadata = None) -> Markup:
    """Jinja global: the ``<img>`` tag of the open pixel for ``metadata``,
    for ``{{ mailtrack_pixel({"id": user.id}) }}`` before ``</body>``."""
    url = mailtrack_open_url(metadata)
    # The rewriter's own tag, so that it recognises the pixel and never adds
    # a second one.
    return Markup(f'<img src="{escape(url)}"{PIXEL_ATTRIBUTES}')


def mailtrack_filter(
    html: str, metadata: Metadata = None, pixel: bool | None = None
) -> Markup:
    """Jinja filter: track the links of a rendered block::

        {% filter mailtrack({"id": user.id}) %}
          <a href="https://example.com/sale">Sale</a>
        {% endfilter %}

    The block is rewritten by :func:`~flask_mailtrack.rewrite.track_html`.

    :param pixel: Add the open pixel too. By default it is added when the
        block holds the ``<body>`` (the whole email), so that tracking a
        snippet never adds a second pixel to an email.
    """
    text = str(html)
    if pixel is None:
        pixel = "<body" in text.lower()
    tracked = track_html(_current_link_tracker(), text, metadata, open_tracking=pixel)
    return Markup(tracked)
