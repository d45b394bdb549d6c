"""The answers to tracking requests, as plain data: :class:`Answer`, the
pixel, the redirect, the error pages.

Every tracking request gets one of a few fixed shapes, so the handler
describes the response instead of building a werkzeug
:class:`~werkzeug.wrappers.Response`; an answer is also a WSGI application,
and makes a ``Response`` when an adapter needs one.
"""

from __future__ import annotations

import html
import typing as t

from werkzeug.exceptions import MethodNotAllowed
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.urls import iri_to_uri
from werkzeug.wrappers import Response

from ._pixel import PIXEL_MIME_TYPE
from ._pixel import TRACKING_PIXEL

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment

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
