"""The one request handler behind every adapter.

:class:`~flask_mailtrack.TrackingMiddleware` (any WSGI app) and the
:class:`~flask_mailtrack.MailTrack` blueprint (Flask) both call
:meth:`Tracker.handle <flask_mailtrack.Tracker.handle>`, which calls
:func:`handle_request`: a werkzeug :class:`~werkzeug.wrappers.Request` goes
in, a :class:`HandledRequest` (the response, and the result or the error)
comes out. The response is an :class:`Answer`, plain data that is also a
WSGI application; :attr:`HandledRequest.response` makes a werkzeug
:class:`~werkzeug.wrappers.Response` of it. Nothing here imports Flask.

What a request gets:

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
is decoded, every decoding failure is an :exc:`~flask_mailtrack.InvalidToken`,
and a signal receiver that raises is logged on the ``flask_mailtrack`` logger
and skipped.
"""

from __future__ import annotations

import html
import logging
import time
import typing as t
from urllib.parse import unquote

from werkzeug.exceptions import MethodNotAllowed
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.urls import iri_to_uri
from werkzeug.wrappers import Response

from ..exceptions import InvalidToken
from ..signals import email_opened
from ..signals import link_clicked
from ..signals import tracking_failed
from ..tokens._serializer import CLICK
from ..tokens._serializer import OPEN
from ..traffic import _rules as machine
from ..web import _clientinfo as clientinfo
from ._pixel import PIXEL_MIME_TYPE
from ._pixel import TRACKING_PIXEL

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment
    from blinker import Signal
    from werkzeug.wrappers import Request

    from ..result import TrackingResult
    from ..tokens._serializer import Kind
    from ..tracker import Tracker

logger = logging.getLogger("flask_mailtrack")

#: The methods a tracking URL answers.
ALLOWED_METHODS = ("GET", "HEAD")

#: Headers of the pixel. A cached pixel is a lost open, so every cache
#: (browser, mail client, proxy; HTTP/1.0 ones through ``Pragma`` and
#: ``Expires``) is told not to keep it.
PIXEL_HEADERS = (
    ("Content-Type", PIXEL_MIME_TYPE),
    ("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0"),
    ("Pragma", "no-cache"),
    ("Expires", "0"),
)

#: Headers of the click redirect: a cached redirect would skip the tracking
#: server on the next click.
REDIRECT_HEADERS = (("Cache-Control", "no-store"),)


class Answer(t.NamedTuple):
    """A response as plain data: the status line, the headers (with
    ``Content-Length``) and the body.

    Every tracking request gets one of a few fixed shapes (the pixel, a
    redirect, a small error page), so the handler describes the response
    instead of building a werkzeug :class:`~werkzeug.wrappers.Response`:
    :class:`~flask_mailtrack.TrackingMiddleware` serves the answer straight
    to the WSGI server, which skips the header copying and checks a
    ``Response`` repeats on every call, and adapters that need a
    ``Response`` (the Flask blueprint) get one from :meth:`to_response`.

    .. versionadded:: 0.1
    """

    #: The WSGI status line, such as ``"200 OK"``.
    status: str
    #: The response headers, ``Content-Length`` included.
    headers: tuple[tuple[str, str], ...]
    #: The body (not sent in answer to ``HEAD``).
    body: bytes

    @classmethod
    def of(
        cls, status: int, headers: t.Iterable[tuple[str, str]], body: bytes
    ) -> Answer:
        """An answer with status code ``status``; ``Content-Length`` is
        added to ``headers``."""
        return cls(
            f"{status} {HTTP_STATUS_CODES[status].upper()}",
            (*headers, ("Content-Length", str(len(body)))),
            body,
        )

    @property
    def status_code(self) -> int:
        """The status code, such as ``200``."""
        return int(self.status[:3])

    def to_response(self) -> Response:
        """A new werkzeug :class:`~werkzeug.wrappers.Response` of this
        answer."""
        return Response(self.body, status=self.status, headers=self.headers)

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> t.Iterable[bytes]:
        """Serve the answer as a WSGI application. A ``HEAD`` request gets
        the headers of a ``GET`` without the body, as werkzeug answers it."""
        start_response(self.status, list(self.headers))
        if environ.get("REQUEST_METHOD") == "HEAD":
            return []
        return [self.body]


class HandledRequest(t.NamedTuple):
    """What :func:`handle_request` did with one request.

    .. versionadded:: 0.1
    """

    #: The response to send, as data; an :class:`Answer` is also a WSGI
    #: application.
    answer: Answer
    #: The result of a valid hit (its signal was sent), else ``None``.
    result: TrackingResult | None
    #: Why the token was refused (``tracking_failed`` was sent), else ``None``.
    error: InvalidToken | None
    #: ``"open"`` or ``"click"``; ``None`` when the path is not a tracking
    #: path.
    kind: Kind | None

    @property
    def response(self) -> Response:
        """A new werkzeug :class:`~werkzeug.wrappers.Response` of
        :attr:`answer`, built on each access."""
        return self.answer.to_response()


#: The answer to a valid open, and to a bad one with
#: ``pixel_on_invalid_token``.
PIXEL_ANSWER = Answer.of(200, PIXEL_HEADERS, TRACKING_PIXEL)

#: The small page a bad tracking link gets (never a redirect).
NOT_FOUND_ANSWER = Answer.of(
    404,
    (
        ("Content-Type", "text/html; charset=utf-8"),
        ("Cache-Control", "no-store"),
    ),
    b"<!doctype html>\n<title>Link not found</title>\n"
    b"<h1>Link not found</h1>\n"
    b"<p>This tracking link is invalid or has expired.</p>\n",
)

#: 405 with ``Allow: GET, HEAD``: werkzeug's page for it.
METHOD_NOT_ALLOWED_ANSWER = Answer.of(
    405,
    (
        ("Content-Type", "text/html; charset=utf-8"),
        ("Allow", ", ".join(ALLOWED_METHODS)),
    ),
    MethodNotAllowed().get_body().encode("utf-8"),
)


def redirect_answer(url: str) -> Answer:
    """A ``302 Found`` to ``url``, a target that passed
    :func:`~flask_mailtrack.urls.is_safe_target`.

    The status is explicit: werkzeug's :func:`~werkzeug.utils.redirect` is
    moving its default to 303, and every mail client's browser follows 302.
    """
    # A Location header must be ASCII; an IRI (a non-ASCII path or host) is
    # converted. Most targets are ASCII already, which skips the work.
    location = url if url.isascii() and " " not in url else iri_to_uri(url)
    body = (
        '<!doctype html>\n<title>Redirecting</title>\n<p><a href="'
        + html.escape(location)
        + '">Continue</a></p>\n'
    ).encode("ascii")
    return Answer.of(
        302,
        (
            ("Content-Type", "text/html; charset=utf-8"),
            ("Location", location),
            *REDIRECT_HEADERS,
        ),
        body,
    )


def _routes(tracker: Tracker) -> tuple[tuple[str, Kind], ...]:
    """The tracking paths of ``tracker`` as a request sees them (percent
    escapes decoded), longest first so that a base nested in the other is
    matched first. Computed once and kept on the tracker."""
    routes = tracker.__dict__.get("_handler_routes")
    if routes is None:
        found: list[tuple[str, Kind]] = []
        if tracker.open_base is not None:
            found.append((unquote(tracker.open_base.path), OPEN))
        if tracker.click_base is not None:
            found.append((unquote(tracker.click_base.path), CLICK))
        found.sort(key=lambda route: len(route[0]), reverse=True)
        routes = tracker.__dict__["_handler_routes"] = tuple(found)
    return t.cast("tuple[tuple[str, Kind], ...]", routes)


def match(tracker: Tracker, path: str) -> tuple[Kind, str] | None:
    """The kind and token of a request path, or ``None`` when ``path`` is not
    below the path of ``base_open_tracking_url`` or
    ``base_click_tracking_url``.

    Everything below a tracking path belongs to the tracker: a malformed token
    still matches, so that it gets the tracking answer (pixel or 404) and a
    ``tracking_failed`` signal. Nothing is decoded here.

    :param path: The full path of the request (``SCRIPT_NAME`` +
        ``PATH_INFO``, percent escapes decoded), as the base URLs give it.
    """
    for prefix, kind in _routes(tracker):
        if path.startswith(prefix):
            return kind, path[len(prefix) :].strip("/")
    return None


def handle_request(
    tracker: Tracker,
    request: Request,
    *,
    sender: object,
    kind: Kind | None = None,
    token: str | None = None,
) -> HandledRequest:
    """Answer one tracking request and send its signal.

    :param tracker: Decodes the token; its configuration decides the client
        address, anonymisation, the answer to bad open tokens and the machine
        rules.
    :param request: The request.
    :param sender: The sender of the signals: the Flask app, or the
        middleware.
    :param kind: ``"open"`` or ``"click"``; found from the request path (see
        :func:`match`) when omitted.
    :param token: The token; found from the request path when omitted.
    """
    if kind is None:
        found = match(tracker, request.root_path + request.path)
        if found is None:
            return HandledRequest(NOT_FOUND_ANSWER, None, None, None)
        kind, token = found
    elif token is None:
        token = ""

    if request.method not in ALLOWED_METHODS:
        return HandledRequest(METHOD_NOT_ALLOWED_ANSWER, None, None, kind)

    configuration = tracker.configuration
    now = time.time()
    try:
        payload = tracker.serializer.loads(kind, token, now=now)
    except InvalidToken as error:
        logger.info("Refused %s tracking token (%s): %s", kind, error.reason, error)
        _send(
            tracking_failed,
            sender,
            error=error,
            reason=error.reason,
            kind=kind,
            request=request,
        )
        if kind == OPEN and configuration.pixel_on_invalid_token:
            answer = PIXEL_ANSWER
        else:
            answer = NOT_FOUND_ANSWER
        return HandledRequest(answer, None, error, kind)

    environ = request.environ
    ip = clientinfo.client_ip(environ, configuration.trusted_proxies)
    data = clientinfo.request_data(request, configuration, now, ip=ip)
    result = tracker.result(kind, payload, request_data=data, now=now)
    machine.apply_verdict(result, request, configuration, ip=ip, now=now)

    if kind == OPEN:
        _send(email_opened, sender, result=result, request=request)
        return HandledRequest(PIXEL_ANSWER, result, None, kind)
    _send(link_clicked, sender, result=result, request=request)
    return HandledRequest(
        redirect_answer(t.cast(str, result.tracked_url)), result, None, kind
    )


def _send(signal: Signal, sender: object, **kwargs: t.Any) -> None:
    """Send ``signal`` to each receiver in turn; one that raises is logged and
    the next still runs, and the response is unchanged."""
    if not signal.receivers:
        return
    for receiver in signal.receivers_for(sender):
        try:
            receiver(sender, **kwargs)
        except Exception:
            logger.exception(
                "A receiver of the %r signal raised; the response is unchanged.",
                getattr(signal, "name", signal),
            )
