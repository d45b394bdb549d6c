"""What the machine-traffic rules see of a tracking request: :class:`Hit`."""

from __future__ import annotations

import typing as t

from .._moved import warn_deprecated


class HeaderLookup(t.Protocol):
    """Request headers read by name, case-insensitively: werkzeug's
    :class:`~werkzeug.datastructures.Headers` and
    :class:`~werkzeug.datastructures.EnvironHeaders`, the middleware's view
    of a WSGI environ, or any object with such a ``get``.

    .. versionadded:: 0.1
    """

    def get(self, key: str, /) -> str | None:
        """The value of header ``key``, or ``None`` when it was not sent."""


class Hit(t.NamedTuple):
    """One tracking request as the machine-traffic rules see it: plain data,
    no WSGI environ and no framework request class, so that a rule works the
    same behind :class:`~flask_mailtrack.TrackingMiddleware`, the Flask
    blueprint or any other adapter.

    A rule of ``Configuration(machine_rules=...)`` is called as
    ``rule(result, hit)``. The attributes a rule written for werkzeug's
    request read most (``method``, ``path``, ``headers``, ``remote_addr``)
    have the same names here.

    .. versionadded:: 0.1
    """

    #: The request method, such as ``"GET"``.
    method: str
    #: The full path of the request (``SCRIPT_NAME`` + ``PATH_INFO``, percent
    #: escapes decoded), as the base URLs name it.
    path: str
    #: The request headers, read case-insensitively with ``headers.get(name)``.
    headers: HeaderLookup
    #: The peer of the connection (``REMOTE_ADDR``), or ``None``.
    remote_addr: str | None
    #: The client address: :attr:`remote_addr`, or the address the outermost
    #: trusted proxy wrote (``trusted_proxies``, ``proxy_header``). Never
    #: anonymised, so that network rules see the real address.
    client_ip: str | None
    #: The ``User-Agent`` header, ``""`` when absent, cut to 512 characters.
    user_agent: str


class _LegacyUserAgent(str):
    """The text of a ``User-Agent`` header, which also answers ``.string``:
    the attribute rules written for werkzeug's ``request.user_agent`` read.

    The rules get a :class:`Hit` whose ``user_agent`` is one of these, until
    0.2; use it as the ``str`` it is.
    """

    __slots__ = ()

    @property
    def string(self) -> str:
        """Deprecated: the text itself."""
        warn_deprecated(
            "Reading 'hit.user_agent.string' (werkzeug's UserAgent)",
            "'hit.user_agent' is the User-Agent text itself",
        )
        return str(self)
