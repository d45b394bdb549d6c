"""The Flask extension: :class:`MailTrack` and its blueprint.

It serves the open pixel and the click redirect from a blueprint, makes
tracking links for the current app, and adds Jinja helpers for email
templates (``_templating``); what it keeps per app is in ``_state``::

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
import typing as t

from flask import Blueprint
from flask import current_app
from flask import Flask
from flask import has_app_context
from flask import request
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter
from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from ..configuration import ConfigKeys
from ..configuration import Configuration
from ..events._from_settings import pipeline_from_settings
from ..exceptions import ConfigurationError
from ..exceptions import MissingSettingError
from ..exceptions import UnknownSettingError
from ..outgoing import Outgoing
from ..outgoing import OutgoingSettings
from ..rewrite import track_html
from ..rewrite import track_message
from ..rewrite._html import HTMLInput
from ..rewrite._html import HTMLTemplate
from ..rewrite._mime import MessageType
from ..tokens._serializer import CLICK
from ..tokens._serializer import Kind
from ..tokens._serializer import OPEN
from ..tracker import Metadata
from ..tracker import Tracker
from ..web import handle_request
from ._mailman import wrap_mailman
from ._state import default_outbox
from ._state import DEFAULT_URL_PREFIX
from ._state import get_state
from ._state import MailTrackState
from ._state import normalize_url_prefix
from ._state import ROUTE_SEGMENTS
from ._templating import add_template_helpers

# Configuration parameters that get a MAILTRACK_* default in app.config, so
# that `app.config` shows the settings the extension reads. The base URLs are
# left out: the extension makes them from BASE_URL and URL_PREFIX.
_CONFIG_DEFAULTS = (
    "secret_key",
    "encryption_key",
    "default_metadata",
    "max_age",
    "trusted_proxies",
    "proxy_header",
    "anonymize_ip",
    "pixel_on_invalid_token",
    "click_scan_seconds",
    "machine_rules",
    "webhook_url",
)
_FIELD_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Configuration)}
_FIELD_NAMES = frozenset(_FIELD_DEFAULTS)


class MailTrack:
    """Email open and click tracking for Flask apps.

    Serves the pixel and the click redirect from a blueprint named
    ``mailtrack`` (endpoints ``mailtrack.open`` and ``mailtrack.click``),
    makes tracking links for the current app, and registers the Jinja
    helpers ``mailtrack_pixel``, ``mailtrack_open_url``,
    ``mailtrack_click_url`` and the ``mailtrack`` filter.

    Settings are read from ``MAILTRACK_*`` keys of ``app.config`` when
    :meth:`init_app` is called (see
    :class:`~flask_mailtrack.configuration.ConfigKeys` and the
    :class:`~flask_mailtrack.Configuration` parameters); arguments given
    here win over them. One instance can serve several apps; each
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
        Unknown names raise
        :class:`~flask_mailtrack.exceptions.UnknownSettingError` (a
        :exc:`TypeError`).

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
            raise UnknownSettingError(
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

        :raise RuntimeError: the app already has a ``MailTrack``.
        :raise ConfigurationError: a setting cannot be used; a
            :class:`~flask_mailtrack.exceptions.MissingSettingError` when no
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
        # The events pipeline's settings (the sinks and who feeds them).
        config.setdefault(ConfigKeys.DATABASE, None)
        config.setdefault(ConfigKeys.WORKER, None)
        config.setdefault(ConfigKeys.JOURNAL, None)
        # Outgoing mail (Flask-Mailman, flask_mailtrack.flask_mail.Mail).
        config.setdefault(ConfigKeys.TRACK_OUTGOING, False)
        config.setdefault(ConfigKeys.TRACK_TEXT, False)
        config.setdefault(ConfigKeys.RECIPIENT_METADATA, None)

        configuration = self._configuration
        if configuration is None:
            configuration = Configuration.from_mapping(config)
        if self._configuration_kwargs:
            configuration = configuration.replace(**self._configuration_kwargs)
        if (
            configuration.base_open_tracking_url
            or configuration.base_click_tracking_url
        ):
            raise ConfigurationError(
                "MailTrack makes the tracking base URLs from MAILTRACK_BASE_URL"
                " and MAILTRACK_URL_PREFIX; do not set base_open_tracking_url or"
                " base_click_tracking_url."
            )
        configuration = _with_flask_secret(app, configuration)

        state = app.extensions["mailtrack"] = MailTrackState(
            self, configuration, url_prefix=url_prefix, base_url=base_url
        )
        # MAILTRACK_DATABASE → EventStore, MAILTRACK_WEBHOOK_URL → WebhookSender:
        # this app's events are journaled for the worker that feeds them.
        state.pipeline = pipeline_from_settings(
            config,
            configuration,
            sender=app,
            default_outbox=default_outbox(app),
        )
        # email.sent events go through the same journal as opens and clicks.
        state.outgoing = Outgoing(
            configuration,
            OutgoingSettings.from_mapping(
                config,
                signing_keys=configuration.secret_keys or configuration.encryption_keys,
            ),
            journal=state.pipeline.journal if state.pipeline is not None else None,
        )
        if state.outgoing.settings.enabled:
            wrap_mailman(app, state)
        app.register_blueprint(blueprint, url_prefix=url_prefix or None)
        add_template_helpers(app)

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

        :raise RuntimeError: outside an app context.
        :raise MissingSettingError: no base URL is known (see
            :class:`MailTrack`).
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
        raise MissingSettingError(
            "MailTrack needs a key to sign tracking links: set SECRET_KEY or"
            " MAILTRACK_SECRET_KEY (or MAILTRACK_ENCRYPTION_KEY) before"
            " init_app. `flask mailtrack keygen` prints a new one."
        )
    return configuration


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
def _register_routes(state: BlueprintSetupState) -> None:
    """Add ``<prefix>/o/<token>`` (endpoint ``mailtrack.open``) and
    ``<prefix>/c/<token>`` (``mailtrack.click``) to the app.

    The rules take every method (``methods=None``, which Flask's
    ``route`` cannot express): the handler answers anything but GET and
    HEAD with 405 and ``Allow: GET, HEAD``, as the middleware does. Flask's
    routes would answer OPTIONS with 200, and their own 405 lists the
    methods in an order that changes from one process to the next.
    """
    app = state.app
    app.url_map.converters.setdefault("mailtrack_token", TokenConverter)
    prefix = (state.url_prefix or "").rstrip("/")
    for kind, view in ((OPEN, _open_view), (CLICK, _click_view)):
        endpoint = f"{state.name_prefix}.{state.name}.{kind}".lstrip(".")
        app.url_map.add(
            Rule(
                f"{prefix}/{ROUTE_SEGMENTS[kind]}/<mailtrack_token:token>",
                endpoint=endpoint,
                methods=None,
                merge_slashes=False,
            )
        )
        app.view_functions[endpoint] = view


def _open_view(token: str) -> Response:
    return _serve(OPEN, token)


def _click_view(token: str) -> Response:
    return _serve(CLICK, token)
