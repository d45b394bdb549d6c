"""
Django views
============

pytracking's Django views and helpers, so that a Django project moves over
by changing one import, ``pytracking.django`` to ``flask_mailtrack.django``::

    # urls.py
    from django.urls import re_path
    from flask_mailtrack.django import ClickTrackingView, OpenTrackingView

    urlpatterns = [
        re_path(r"^mailtrack/o/(?P<path>[\\w=-]+)/?$", OpenTrackingView.as_view()),
        re_path(r"^mailtrack/c/(?P<path>[\\w=-]+)/?$", ClickTrackingView.as_view()),
    ]

The views keep pytracking's interface: ``get(request, path)``, the hooks
:meth:`~TrackingView.notify_tracking_event` and
:meth:`~TrackingView.notify_decoding_error`,
:meth:`~TrackingView.get_configuration`, a 302 for a click, the pixel for an
open, :class:`~django.http.Http404` raised for a bad token (so the
project's own 404 page answers it). They answer through the handler every
adapter shares (:func:`flask_mailtrack.web.decide`), so a Django project gets
what the middleware and the Flask extension give: verified click targets,
machine-traffic labels, the client address from trusted proxies only,
anonymisation, the :mod:`~flask_mailtrack.signals`, and the answer headers
(no caching of the pixel or the redirect). ``HEAD`` is answered like ``GET``
without a body; other methods get Django's 405.

Signing uses Django's ``SECRET_KEY`` when the settings dict has no
``secret_key``, with ``SECRET_KEY_FALLBACKS`` also accepted (oldest first,
``SECRET_KEY`` signs), so rotating Django's key keeps sent links working.

Differences from pytracking, each on purpose:

- A hook that raises is logged on the ``flask_mailtrack`` logger and the
  pixel or redirect is still sent, as with a signal receiver.
- The signals are sent too, with the view class (the class ``as_view()``
  was called on) as sender and Django's request as ``request``; connect
  with ``sender=MyOpenView`` to hear one view only.
- The request data has more than ``user_agent`` and ``user_ip`` (see
  :func:`~flask_mailtrack.web.request_data_of`), and ``user_ip`` is
  ``REMOTE_ADDR`` unless ``trusted_proxies`` is set: ``X-Forwarded-For``
  and ``X-Real-IP``, which pytracking read from anyone through
  ``django-ipware``, are read only from the proxies you declare
  (``trusted_proxies``, ``proxy_header``).

Outgoing mail
=============

:class:`EmailBackend` tracks every email Django sends (``send_mail``,
``send_mass_mail``, ``EmailMessage.send()``) and sends it through the
backend named in ``MAILTRACK_EMAIL_BACKEND``::

    # settings.py
    EMAIL_BACKEND = "flask_mailtrack.django.EmailBackend"
    MAILTRACK_EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    MAILTRACK_JOURNAL = "/var/lib/mailtrack/journal"  # email.sent events

See :doc:`/mail_django`.

Django is imported by this module only; ``import flask_mailtrack`` never
loads it.

.. versionadded:: 0.1
"""

from __future__ import annotations

import logging
import time
import typing as t

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.http import Http404
from django.http import HttpResponse
from django.views.generic import View

from ._pytracking import get_tracker
from .configuration import ConfigKeys
from .configuration import Configuration
from .exceptions import MailTrackError
from .outgoing import Outgoing
from .outgoing import OutgoingSettings
from .outgoing import TrackingBackendMixin
from .tokens import CLICK
from .tokens import OPEN
from .web import decide
from .web import read_hit
from .web import request_data_of
from .web import send_signals
from .web._wsgi import WSGIHeaders

if t.TYPE_CHECKING:
    from django.http import HttpRequest

    from .events import Journal
    from .exceptions import InvalidToken
    from .result import TrackingResult
    from .tokens import Kind
    from .tracker import Tracker
    from .web import Answer
    from .web import HandledRequest

__all__ = [
    "ClickTrackingView",
    "EmailBackend",
    "OpenTrackingView",
    "TrackingView",
    "get_configuration_from_settings",
    "get_request_data",
    "get_tracking_result",
]

logger = logging.getLogger("flask_mailtrack")


class TrackingView(View):  # type: ignore[misc]  # Django has no type hints
    """The base of the tracking views: the hooks to override, and the
    configuration they use.

    .. versionadded:: 0.1
    """

    #: ``GET`` and ``HEAD`` only; Django answers any other method with a 405.
    http_method_names = ["get", "head"]

    def notify_tracking_event(self, tracking_result: TrackingResult) -> None:
        """Called once a valid link was followed, before the redirect or
        the pixel is sent. Does nothing; override it.

        :param tracking_result: The :class:`~flask_mailtrack.TrackingResult`.
        """

    def notify_decoding_error(
        self, exception: InvalidToken, request: HttpRequest
    ) -> None:
        """Called when a token is refused, before the 404 (or the pixel, with
        ``pixel_on_invalid_token``). Does nothing; override it.

        :param exception: The :exc:`~flask_mailtrack.InvalidToken`; its
            ``reason`` says why.
        :param request: The Django request.
        """

    def get_configuration(self) -> Configuration:
        """The configuration of the view, called on each request:
        :func:`get_configuration_from_settings` by default.

        Override it to build your own; return the same
        :class:`~flask_mailtrack.Configuration` object on every call (build
        it once), so that its keys are prepared once.
        """
        return get_configuration_from_settings()

    def _track(self, request: HttpRequest, path: str, kind: Kind) -> HttpResponse:
        """Answer a tracking request for a token of ``kind``: decide,
        send the signal, call the hook, and turn the answer into a Django
        response.

        :raise Http404: a bad token (for an open token, unless
            ``pixel_on_invalid_token`` is set).
        """
        handled = _decide(get_tracker(self.get_configuration()), request, path, kind)
        send_signals(handled, type(self), lambda: request)
        if handled.error is not None:
            _notify(self.notify_decoding_error, handled.error, request)
        elif handled.result is not None:
            _notify(self.notify_tracking_event, handled.result)
        answer = handled.answer
        if answer.status_code == 404:
            raise Http404("This tracking link is invalid or has expired.")
        return _response(answer, request.method)


class ClickTrackingView(TrackingView):
    """Redirect (302) to the verified target of a click token, after
    :meth:`~TrackingView.notify_tracking_event`.

    A bad, expired or forged token, or one whose target is not a safe
    ``http(s)`` URL, calls :meth:`~TrackingView.notify_decoding_error` and
    raises :class:`~django.http.Http404`; it never redirects.

    .. versionadded:: 0.1
    """

    def get(self, request: HttpRequest, path: str) -> HttpResponse:
        """Answer the click token ``path`` (the URL pattern's ``path``)."""
        return self._track(request, path, CLICK)


class OpenTrackingView(TrackingView):
    """Answer an open token with the transparent pixel, after
    :meth:`~TrackingView.notify_tracking_event`.

    A bad token calls :meth:`~TrackingView.notify_decoding_error` and raises
    :class:`~django.http.Http404`, as pytracking did (the configuration from
    :func:`get_configuration_from_settings` has ``pixel_on_invalid_token``
    off unless the settings dict turns it on, which serves the pixel
    instead, so mail clients show no broken image).

    .. versionadded:: 0.1
    """

    def get(self, request: HttpRequest, path: str) -> HttpResponse:
        """Answer the open token ``path`` (the URL pattern's ``path``)."""
        return self._track(request, path, OPEN)


def get_request_data(
    request: HttpRequest, configuration: Configuration | None = None
) -> dict[str, t.Any]:
    """The request data a tracking result of ``request`` carries:
    ``user_agent``, ``user_ip`` and the rest of
    :func:`~flask_mailtrack.web.request_data_of`.

    :param request: A Django request.
    :param configuration: Gives ``trusted_proxies``, ``proxy_header`` and
        ``anonymize_ip``; without it the client address is ``REMOTE_ADDR``,
        never a header.

    .. versionadded:: 0.1
    """
    c = configuration if configuration is not None else Configuration()
    meta = request.META
    hit = read_hit(
        request.method,
        request.path,
        WSGIHeaders(meta),
        meta.get("REMOTE_ADDR"),
        trusted_proxies=c.trusted_proxies,
        proxy_header=c.proxy_header,
    )
    return request_data_of(hit, c, time.time())


def get_tracking_result(
    request: HttpRequest,
    path: str,
    is_open: bool,
    configuration: Configuration | None = None,
    **kwargs: t.Any,
) -> TrackingResult:
    """The :class:`~flask_mailtrack.TrackingResult` of a tracking request,
    with its request data and machine verdict. No signal is sent and no
    hook is called.

    :param request: A Django request.
    :param path: The token (the URL pattern's ``path``).
    :param is_open: Whether ``path`` is an open token, else a click token.
    :param configuration: The settings (such as
        :func:`get_configuration_from_settings` returns); a default
        :class:`~flask_mailtrack.Configuration` when omitted, as for the
        other pytracking functions.
    :param kwargs: Settings overriding those of ``configuration``.
    :raise InvalidToken: a bad, expired or forged token.
    :raise MailTrackError: a request method other than ``GET`` or ``HEAD``.

    .. versionadded:: 0.1
    """
    handled = _decide(
        get_tracker(configuration, kwargs), request, path, OPEN if is_open else CLICK
    )
    if handled.error is not None:
        raise handled.error
    if handled.result is None:
        raise MailTrackError(
            f"Tracking links answer GET and HEAD requests, not {request.method}."
        )
    return handled.result


def get_configuration_from_settings(
    settings_name: str = "PYTRACKING_CONFIGURATION",
) -> Configuration:
    """The :class:`~flask_mailtrack.Configuration` of a dict of keyword
    arguments in the Django settings (``PYTRACKING_CONFIGURATION`` unless
    named otherwise), built once and kept while the settings stay the same.

    Without ``secret_key`` in the dict, links are signed with Django's
    ``SECRET_KEY``, and also verified with each of ``SECRET_KEY_FALLBACKS``
    (Django's key rotation, oldest first). ``pixel_on_invalid_token`` is off
    unless the dict sets it: a bad open token gets a 404, as in pytracking.

    :param settings_name: The name of the setting.
    :raise UnknownSettingError: a key of the dict is not a
        :class:`~flask_mailtrack.Configuration` parameter (pytracking
        ignored those, typos included).

    .. versionadded:: 0.1
    """
    kwargs = dict(getattr(settings, settings_name))
    if kwargs.get("secret_key") is None:
        keys = _django_secret_keys()
        if keys:
            kwargs["secret_key"] = keys
    kwargs.setdefault("pixel_on_invalid_token", False)
    # Called on every request: the configuration (and through it the
    # tracker and its prepared keys) is kept for as long as the settings
    # are the same, which tests that override settings change.
    cache_key = repr(sorted(kwargs.items()))
    configuration = _configurations.get(cache_key)
    if configuration is None:
        configuration = Configuration(**kwargs)
        if len(_configurations) >= _MAX_CONFIGURATIONS:
            _configurations.pop(next(iter(_configurations)), None)
        _configurations[cache_key] = configuration
    return configuration


_MAX_CONFIGURATIONS = 16
_configurations: dict[str, Configuration] = {}


def _django_secret_keys() -> list[str | bytes] | None:
    """Django's signing keys, oldest first, as ``django.core.signing`` uses
    them; ``None`` without a ``SECRET_KEY``."""
    try:
        secret_key = settings.SECRET_KEY
    except ImproperlyConfigured:  # Django refuses to give an empty key.
        return None
    if not secret_key:
        return None
    return [*getattr(settings, "SECRET_KEY_FALLBACKS", ()), secret_key]


def _decide(
    tracker: Tracker, request: HttpRequest, path: str, kind: Kind
) -> HandledRequest:
    # META is the WSGI environ of the request: headers as HTTP_* keys.
    meta = request.META
    return decide(
        tracker,
        request.method,
        request.path,
        WSGIHeaders(meta),
        meta.get("REMOTE_ADDR"),
        kind=kind,
        token=path.strip("/"),
    )


def _notify(hook: t.Callable[..., object], *args: object) -> None:
    """Call a ``notify_*`` hook; one that raises must not cost the reader
    the pixel or the redirect, so it is logged instead."""
    try:
        hook(*args)
    except Exception:
        logger.exception(
            "%s raised; the tracking response was sent anyway.",
            getattr(hook, "__qualname__", hook),
        )


def _response(answer: Answer, method: str) -> HttpResponse:
    """The Django response of an answer: its status, headers (with the
    ``Content-Length`` of ``GET``), and body unless the request is ``HEAD``."""
    body = b"" if method == "HEAD" else answer.body
    return HttpResponse(body, status=answer.status_code, headers=dict(answer.headers))


# -- outgoing mail ----------------------------------------------------------------

#: The backend :class:`EmailBackend` sends through without
#: ``MAILTRACK_EMAIL_BACKEND``.
DEFAULT_EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


class EmailBackend(TrackingBackendMixin, BaseEmailBackend):  # type: ignore[misc]
    """A Django email backend that tracks every message and sends it
    through the backend named in ``MAILTRACK_EMAIL_BACKEND`` (Django's SMTP
    backend by default), on one connection per call.

    Each message's HTML (its body when ``content_subtype`` is ``"html"``,
    and its ``text/html`` alternatives) is tracked, and with
    ``MAILTRACK_TRACK_TEXT`` its plain-text body; attachments are never
    touched. The headers ``X-Mailtrack-Metadata`` and ``X-Mailtrack: off``
    control it per message and are removed. Once the wrapped backend has
    sent a message, one ``email.sent`` event per recipient is appended to
    the journal in ``MAILTRACK_JOURNAL`` (none without it), for
    ``mailtrack worker`` to store.

    The links are made with :func:`get_configuration_from_settings`, whose
    base URLs must be set. ``MAILTRACK_TRACK_OUTGOING = False`` sends
    untracked (control headers are still removed).

    :param fail_silently: Given to the wrapped backend.
    :param kwargs: Given to the wrapped backend.
    :raise ImproperlyConfigured: ``MAILTRACK_EMAIL_BACKEND`` names this
        backend.

    .. versionadded:: 0.2
    """

    def __init__(self, fail_silently: bool = False, **kwargs: t.Any) -> None:
        BaseEmailBackend.__init__(self, fail_silently=fail_silently)
        path = getattr(settings, ConfigKeys.EMAIL_BACKEND, None) or (
            DEFAULT_EMAIL_BACKEND
        )
        if path == f"{__name__}.{EmailBackend.__name__}":
            raise ImproperlyConfigured(
                f"{ConfigKeys.EMAIL_BACKEND} names the backend that wraps it;"
                " set it to the backend that sends, such as"
                f" {DEFAULT_EMAIL_BACKEND!r}."
            )
        self.backend = get_connection(path, fail_silently=fail_silently, **kwargs)
        self.outgoing = outgoing_from_settings()

    def get_tracker(self) -> Tracker:
        """The tracker of :func:`get_configuration_from_settings`."""
        return get_tracker(get_configuration_from_settings())


def outgoing_from_settings() -> Outgoing:
    """The :class:`~flask_mailtrack.outgoing.Outgoing` of the Django
    settings (their ``MAILTRACK_*`` names and
    :func:`get_configuration_from_settings`), built once and kept while the
    settings stay the same.

    .. versionadded:: 0.2
    """
    configuration = get_configuration_from_settings()
    names = {
        name: getattr(settings, name)
        for name in dir(settings)
        if name.startswith("MAILTRACK_")
    }
    cache_key = repr((id(configuration), sorted(names.items())))
    outgoing = _outgoings.get(cache_key)
    if outgoing is None:
        outgoing = Outgoing(
            configuration,
            OutgoingSettings.from_mapping(
                names,
                signing_keys=configuration.secret_keys or configuration.encryption_keys,
                enabled_by_default=True,
            ),
            journal=_journal(names.get(ConfigKeys.JOURNAL)),
        )
        if len(_outgoings) >= _MAX_CONFIGURATIONS:
            _outgoings.pop(next(iter(_outgoings)), None)
        _outgoings[cache_key] = outgoing
    return outgoing


_outgoings: dict[str, Outgoing] = {}
_journals: dict[str, Journal] = {}


def _journal(directory: object) -> Journal | None:
    """This process's journal in ``directory`` (one per folder)."""
    if not directory:
        return None
    from .events import Journal

    path = str(directory)
    journal = _journals.get(path)
    if journal is None:
        journal = _journals[path] = Journal(path)
    return journal
