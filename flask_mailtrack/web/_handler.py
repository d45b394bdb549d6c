"""The one request handler behind every adapter, sans-IO.

:func:`decide` answers a tracking request from its method, path, headers
and peer address: no WSGI environ, no framework request, no signals. It
returns a :class:`HandledRequest` (the answer, and the result or the error);
the answer is an :class:`~flask_mailtrack.web.Answer`, plain data that is
also a WSGI application. The adapters do the rest:
:class:`~flask_mailtrack.TrackingMiddleware` (any WSGI app) and the
:class:`~flask_mailtrack.MailTrack` blueprint (Flask, through
:func:`~flask_mailtrack.web.handle_request`) send the outcome's signal and
serve the answer. This is the split of Flask's and werkzeug's ``sansio``
packages: code that decides cannot do IO, so another adapter (a Django view,
an ASGI app) reuses it as it is. Nothing here imports Flask.

What a request gets, and the signal its adapter sends:

=====================================  ======================================
open token, valid                      the pixel (200), ``email_opened``
open token, invalid or expired         the pixel (200) with
                                       ``pixel_on_invalid_token`` (the
                                       default), else a 404;
                                       ``tracking_failed``
click token, valid                     a 302 to the verified target,
                                       ``link_clicked``
click token, invalid, expired, or      a small 404 page, never a redirect;
with an unsafe target                  ``tracking_failed``
a method other than GET or HEAD        405 with ``Allow: GET, HEAD``, no
                                       signal (the token is not read)
=====================================  ======================================

The pixel is served for a bad open token by default because the response is
an ``<img>`` in an email: a 404 shows a broken-image icon in some mail
clients, which tells the reader nothing useful and makes a legitimate email
look damaged, while the pixel costs nothing. The failure is still recorded
(the ``tracking_failed`` signal and a log line); set
``pixel_on_invalid_token=False`` to answer 404 as pytracking did.

HEAD is answered like GET without a body (werkzeug drops the body of a
response to a HEAD request). The response never depends on the machine
verdict: a scanner gets what a person gets.

No input can make the handler fail: the token is refused by length before it
is decoded, and every decoding failure is an
:exc:`~flask_mailtrack.InvalidToken`. The adapters send the signals with
:func:`flask_mailtrack.signals.send_robust`, so a receiver that raises is
logged on the ``flask_mailtrack`` logger and skipped.
"""

from __future__ import annotations

import collections.abc as cabc
import logging
import time
import typing as t
from urllib.parse import unquote

from ..exceptions import InvalidToken
from ..tokens import CLICK
from ..tokens import OPEN
from ..traffic import machine_verdict
from ._answers import ALLOWED_METHODS
from ._answers import Answer
from ._answers import METHOD_NOT_ALLOWED_ANSWER
from ._answers import NOT_FOUND_ANSWER
from ._answers import PIXEL_ANSWER
from ._answers import redirect_answer
from ._clientinfo import read_hit
from ._clientinfo import request_data_of

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from .._urls import TokenURL
    from ..result import TrackingResult
    from ..tokens import Kind
    from ..tracker import Tracker
    from ..traffic import HeaderLookup

logger = logging.getLogger("flask_mailtrack")


class HandledRequest(t.NamedTuple):
    """What the handler decided for one request: the outcome of
    :func:`decide` (no signal sent yet: the adapter sends it) and of
    :func:`~flask_mailtrack.web.handle_request` (its signal was sent).

    .. versionadded:: 0.1
    """

    #: The response to send, as data; an :class:`Answer` is also a WSGI
    #: application.
    answer: Answer
    #: The result of a valid hit (``email_opened`` or ``link_clicked``), else
    #: ``None``.
    result: TrackingResult | None
    #: Why the token was refused (``tracking_failed``), else ``None``.
    error: InvalidToken | None
    #: ``"open"`` or ``"click"``; ``None`` when the path is not a tracking
    #: path.
    kind: Kind | None

    @property
    def response(self) -> Response:
        """A new werkzeug :class:`~werkzeug.wrappers.Response` of
        :attr:`answer`, built on each access."""
        return self.answer.to_response()


class Routes:
    """The tracking paths of a tracker as a request sees them (percent
    escapes decoded): the paths of ``base_open_tracking_url`` and
    ``base_click_tracking_url``, or the paths given.

    Computed once by their owner (the middleware holds one), longest first so
    that a base nested in the other is matched first.

    :param paths: A tracker, whose base URLs give the paths; or the path of
        each kind, such as ``{"open": "/mailtrack/o/"}``, for an adapter
        that matches the path below its mount point (the standalone
        server, as Flask's URL map does).

    .. versionadded:: 0.1
    """

    __slots__ = ("_routes",)

    def __init__(self, paths: Tracker | t.Mapping[Kind, str]) -> None:
        if isinstance(paths, cabc.Mapping):
            found = [(path, kind) for kind, path in paths.items()]
        else:
            bases: tuple[tuple[Kind, TokenURL | None], ...] = (
                (OPEN, paths.open_base),
                (CLICK, paths.click_base),
            )
            found = [
                (unquote(base.path), kind) for kind, base in bases if base is not None
            ]
        found.sort(key=lambda route: len(route[0]), reverse=True)
        self._routes = tuple(found)

    def __bool__(self) -> bool:
        return bool(self._routes)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {dict(self._routes)!r}>"

    def match(self, path: str) -> tuple[Kind, str] | None:
        """The kind and token of a request path, or ``None`` when ``path`` is
        not below a tracking path; see :func:`match`."""
        for prefix, kind in self._routes:
            if path.startswith(prefix):
                return kind, _path_token(path[len(prefix) :])
        return None


def _path_token(rest: str) -> str:
    """The token in the rest of a tracking path, after the route's prefix:
    without the slash that ``append_slash`` adds after it (or one before
    it)."""
    return rest.strip("/")


def match(tracker: Tracker, path: str) -> tuple[Kind, str] | None:
    """The kind and token of a request path, or ``None`` when ``path`` is not
    below the path of ``base_open_tracking_url`` or
    ``base_click_tracking_url``.

    Everything below a tracking path belongs to the tracker: a malformed token
    still matches, so that it gets the tracking answer (pixel or 404) and a
    ``tracking_failed`` signal. Nothing is decoded here. An adapter that
    matches every request keeps a :class:`Routes` instead.

    :param path: The full path of the request (``SCRIPT_NAME`` +
        ``PATH_INFO``, percent escapes decoded), as the base URLs give it.
    """
    return Routes(tracker).match(path)


_NOT_TRACKING = HandledRequest(NOT_FOUND_ANSWER, None, None, None)


def decide(
    tracker: Tracker,
    method: str,
    path: str,
    headers: HeaderLookup,
    remote_addr: str | None,
    *,
    kind: Kind | None = None,
    token: str | None = None,
) -> HandledRequest:
    """Answer one tracking request. No signal is sent: the caller sends the
    outcome's signal (see :func:`~flask_mailtrack.web.send_signals`).

    :param tracker: Decodes the token; its configuration decides the client
        address, anonymisation, the answer to bad open tokens and the machine
        rules.
    :param method: The request method.
    :param path: The full path of the request (``SCRIPT_NAME`` +
        ``PATH_INFO``, percent escapes decoded).
    :param headers: The request headers, read case-insensitively with
        ``headers.get(name)`` (werkzeug's ``Headers`` will do).
    :param remote_addr: The peer of the connection (``REMOTE_ADDR``).
    :param kind: ``"open"`` or ``"click"``; found from ``path`` (see
        :func:`match`) when omitted.
    :param token: The token, or the rest of the path after the route's
        prefix (a ``/`` after it, as ``append_slash`` makes, is removed);
        found from ``path`` when ``kind`` is omitted.

    .. versionadded:: 0.1
    """
    if kind is None:
        found = match(tracker, path)
        if found is None:
            return _NOT_TRACKING
        kind, token = found
    else:
        # A framework's route hands over the rest of its path.
        token = _path_token(token or "")

    if method not in ALLOWED_METHODS:
        return HandledRequest(METHOD_NOT_ALLOWED_ANSWER, None, None, kind)

    configuration = tracker.configuration
    now = time.time()
    try:
        payload = tracker.serializer.loads(kind, token, now=now)
    except InvalidToken as error:
        logger.info("Refused %s tracking token (%s): %s", kind, error.reason, error)
        if kind == OPEN and configuration.pixel_on_invalid_token:
            return HandledRequest(PIXEL_ANSWER, None, error, kind)
        return HandledRequest(NOT_FOUND_ANSWER, None, error, kind)

    hit = read_hit(
        method,
        path,
        headers,
        remote_addr,
        trusted_proxies=configuration.trusted_proxies,
        proxy_header=configuration.proxy_header,
    )
    result = tracker.result(
        kind, payload, request_data=request_data_of(hit, configuration, now), now=now
    )
    verdict = machine_verdict(result, hit, configuration, now=now)
    if verdict.machine is not None:
        result.machine = verdict.machine
        result.machine_reasons = list(verdict.reasons)

    if kind == OPEN:
        return HandledRequest(PIXEL_ANSWER, result, None, kind)
    return HandledRequest(
        redirect_answer(t.cast(str, result.tracked_url)), result, None, kind
    )
