"""The WSGI side of the handler: what the adapters built on WSGI do around
:func:`~flask_mailtrack.web.decide`.

- :class:`WSGIHeaders`, the headers of a WSGI environ for the handler;
- :func:`send_signals`, the signal of an outcome, with the werkzeug request
  built only when a receiver is connected;
- :func:`serve_hit`, the whole round for a WSGI environ, which the
  middleware and the standalone server serve;
- :func:`handle_request`, the whole round for a werkzeug request, which the
  Flask blueprint serves.
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t

from ..signals import email_opened
from ..signals import link_clicked
from ..signals import send_robust
from ..signals import tracking_failed
from ..tokens import OPEN
from ..traffic import PREFETCH_HEADERS
from ._handler import decide

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment
    from werkzeug.wrappers import Request

    from ..tokens import Kind
    from ..tracker import Tracker
    from ._handler import HandledRequest


def _environ_key(name: str) -> str:
    key = name.upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key


# The environ keys of the headers the handler reads on every hit, written out
# once: converting a name costs more than the lookup it leads to.
_ENVIRON_KEYS = {
    name: _environ_key(name)
    for name in (
        "User-Agent",
        "Accept",
        "X-Forwarded-For",
        *(name for name, _ in PREFETCH_HEADERS),
    )
}


class WSGIHeaders(cabc.Mapping[str, str]):
    """The request headers of a WSGI environ, read-only and
    case-insensitive, as :func:`~flask_mailtrack.web.decide` and the
    machine rules read them.

    werkzeug's :class:`~werkzeug.datastructures.EnvironHeaders` does the same
    with the whole ``Headers`` interface, at four times the cost of the few
    lookups a hit needs: the handler reads a dozen headers, most of them
    absent, and werkzeug answers an absent one with an exception.
    """

    __slots__ = ("environ",)

    def __init__(self, environ: t.Mapping[str, t.Any]) -> None:
        #: The WSGI environ.
        self.environ = environ

    def get(self, key: str, default: t.Any = None) -> t.Any:
        environ_key = _ENVIRON_KEYS.get(key) or _environ_key(key)
        return self.environ.get(environ_key, default)

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return t.cast(str, value)

    def __iter__(self) -> t.Iterator[str]:
        for key, value in self.environ.items():
            if key.startswith("HTTP_") and key not in (
                "HTTP_CONTENT_TYPE",
                "HTTP_CONTENT_LENGTH",
            ):
                yield key[5:].replace("_", "-").title()
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                yield key.replace("_", "-").title()

    def __len__(self) -> int:
        return sum(1 for _ in self)


def full_path(environ: t.Mapping[str, t.Any]) -> str:
    """``SCRIPT_NAME`` + ``PATH_INFO``: the full path of a request, as the
    base URLs name it, so that an app mounted below a prefix is matched
    the same as one at the root."""
    return _decoded(environ.get("SCRIPT_NAME", "").rstrip("/")) + path_info(environ)


def path_info(environ: t.Mapping[str, t.Any]) -> str:
    """``PATH_INFO``: the path below the app's mount point, as a URL map
    (Flask's) matches it."""
    return _decoded(environ.get("PATH_INFO", ""))


def _decoded(path: str) -> str:
    # WSGI gives the path as latin-1 decoded bytes; the base URLs name it in
    # UTF-8. Decoding only matters for non-ASCII paths.
    if not path.isascii():
        path = path.encode("latin-1", "replace").decode("utf-8", "replace")
    return path


def serve_hit(
    tracker: Tracker,
    environ: WSGIEnvironment,
    start_response: StartResponse,
    found: tuple[Kind, str],
    *,
    path: str,
    sender: object,
    make_request: t.Callable[[WSGIEnvironment], object],
) -> t.Iterable[bytes]:
    """The WSGI round of a request to a tracking path: decide, leave the
    outcome in the environ (``mailtrack.kind``, ``mailtrack.result``,
    ``mailtrack.error``), send its signal, serve the answer. Shared by
    :class:`~flask_mailtrack.TrackingMiddleware` and the standalone server,
    which answers its tracking paths before Flask sees them.

    :param tracker: Decodes the token.
    :param found: The kind and token from the path (see
        :class:`~flask_mailtrack.web.Routes`).
    :param path: The full path of the request (:func:`full_path`).
    :param sender: The sender of the signals.
    :param make_request: Makes the request the receivers get from the
        environ; called only when the signal has receivers for
        ``sender``.
    """
    kind, token = found
    handled = decide(
        tracker,
        environ.get("REQUEST_METHOD", "GET"),
        path,
        WSGIHeaders(environ),
        environ.get("REMOTE_ADDR"),
        kind=kind,
        token=token,
    )
    environ["mailtrack.kind"] = kind
    environ["mailtrack.result"] = handled.result
    environ["mailtrack.error"] = handled.error
    send_signals(handled, sender, lambda: make_request(environ))
    return handled.answer(environ, start_response)


def send_signals(
    handled: HandledRequest, sender: object, request: t.Callable[[], object]
) -> None:
    """Send the signal of an outcome of :func:`~flask_mailtrack.web.decide`:
    ``tracking_failed`` for a refused token, ``email_opened`` or
    ``link_clicked`` for a valid hit, nothing otherwise. Each receiver runs in
    turn; one that raises is logged and skipped
    (:func:`~flask_mailtrack.signals.send_robust`).

    :param handled: The outcome.
    :param sender: The sender: the Flask app, the middleware, or the Django
        view class.
    :param request: Returns the request given to the receivers as
        ``request=`` (a werkzeug request; Django's from the Django views);
        called only when the signal has receivers for ``sender``, so that
        an adapter builds a werkzeug request only for them.

    .. versionadded:: 0.1
    """
    # The request is built only for a receiver of this sender: other apps'
    # receivers (connected for their own sender) cost a hit nothing.
    if handled.error is not None:
        if tracking_failed.has_receivers_for(sender):
            error = handled.error
            send_robust(
                tracking_failed,
                sender,
                error=error,
                reason=error.reason,
                kind=handled.kind,
                request=request(),
            )
    elif handled.result is not None:
        signal = email_opened if handled.kind == OPEN else link_clicked
        if signal.has_receivers_for(sender):
            send_robust(signal, sender, result=handled.result, request=request())


def handle_request(
    tracker: Tracker,
    request: Request,
    *,
    sender: object,
    kind: Kind | None = None,
    token: str | None = None,
) -> HandledRequest:
    """Answer one tracking request and send its signal: a werkzeug
    :class:`~werkzeug.wrappers.Request` through
    :func:`~flask_mailtrack.web.decide`, then :func:`send_signals`.

    :param tracker: Decodes the token; its configuration decides the client
        address, anonymisation, the answer to bad open tokens and the machine
        rules.
    :param request: The request.
    :param sender: The sender of the signals: the Flask app, or the
        middleware.
    :param kind: ``"open"`` or ``"click"``; found from the request path (see
        :func:`~flask_mailtrack.web.match`) when omitted.
    :param token: The token; found from the request path when omitted.
    """
    handled = decide(
        tracker,
        request.method,
        request.root_path + request.path,
        WSGIHeaders(request.environ),
        request.remote_addr,
        kind=kind,
        token=token,
    )
    send_signals(handled, sender, lambda: request)
    return handled
