"""URL checks and joins: which click targets are safe, and how a token is
placed in (and found in) a tracking URL.

A tracking link must never become an open redirect. :func:`is_safe_target`
is checked when a link is made and again when it is followed, so a token
signed by an older, laxer version still cannot redirect anywhere unsafe.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from .exceptions import ConfigurationError

# Absolute http(s) URL with a host. The host excludes everything that lets a
# browser read a different host than a naive parser would: userinfo ("@"),
# backslashes, percent escapes, whitespace and controls, and the other code
# points the WHATWG URL standard forbids in hosts. The rest of the URL may
# hold any character but ASCII/C1 controls and Unicode line separators (a
# CR/LF would split the Location header), and may not end with whitespace.
# Each part is a single character class, so matching is linear in the
# length of the input.
_SAFE_TARGET = re.compile(
    r"https?://"
    r"(?:\[[0-9a-f:.]+\]|[^\x00-\x20\x7f-\x9f/\\?#@:\[\]%<>^|\u2028\u2029]+)"
    r"(?::[0-9]{1,5})?"
    r"(?:[/?#][^\x00-\x1f\x7f-\x9f\u2028\u2029]*)?"
    r"(?<!\s)",
    re.IGNORECASE,
)
_SAFE_AUTHORITY = re.compile(
    r"https?://"
    r"(?:\[[0-9a-f:.]+\]|[^\x00-\x20\x7f-\x9f/\\?#@:\[\]%<>^|\u2028\u2029]+)"
    r"(?::[0-9]{1,5})?"
    r"(?:[/?#]|\Z)",
    re.IGNORECASE,
)


def is_safe_target(url: object) -> bool:
    """Whether ``url`` may be the target of a tracked click.

    Only an absolute ``http``/``https`` URL with a host is accepted. Refused:
    other schemes (``javascript:``, ``data:``, ...), scheme-relative ``//host``
    and ``/\\host``, ``https:host``, userinfo (``user@host``), backslashes or
    percent escapes in the host, control characters anywhere, and leading or
    trailing whitespace.
    """
    if not isinstance(url, str):
        return False
    if url.isascii():
        # The same rules, cheaper: for ASCII text, isprintable() refuses
        # exactly the control characters, and the only trailing whitespace
        # left is a space. The pattern then only has to read the authority.
        return (
            url.isprintable()
            and not url.endswith(" ")
            and _SAFE_AUTHORITY.match(url) is not None
        )
    return _SAFE_TARGET.fullmatch(url) is not None


def url_host(url: str) -> str:
    """The lower-cased host of a URL that passed :func:`is_safe_target`."""
    return (urlsplit(url).hostname or "").lower()


class TokenURL:
    """How tokens are put into and taken out of URLs on one base URL.

    pytracking joined with :func:`urllib.parse.urljoin`, which drops the last
    path segment of a base without a trailing slash (``https://t.io/c`` became
    ``https://t.io/<token>``) and the base's query. Here the token is always
    appended as a new path segment below the base path, and the base's query
    string is kept after it::

        https://t.example.com/c         -> https://t.example.com/c/<token>
        https://t.example.com/c/        -> https://t.example.com/c/<token>
        https://t.example.com/c?src=m   -> https://t.example.com/c/<token>?src=m

    With ``append_slash`` a ``/`` follows the token. A base with a fragment
    is refused (see :func:`split_base_url`).

    :param setting: The setting ``base`` comes from, for error messages.
    """

    __slots__ = ("base", "prefix", "suffix", "path")

    def __init__(
        self,
        base: str,
        *,
        append_slash: bool = False,
        setting: str = "Tracking base URL",
    ) -> None:
        parts = split_base_url(base, setting, query=True)
        path = parts.path if parts.path.endswith("/") else parts.path + "/"
        #: The base URL as configured.
        self.base = base
        #: Everything before the token.
        self.prefix = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
        #: Everything after the token.
        self.suffix = ("/" if append_slash else "") + (
            "?" + parts.query if parts.query else ""
        )
        #: The URL path under which tokens are served (ends with ``/``).
        self.path = path

    def join(self, token: str) -> str:
        return self.prefix + token + self.suffix

    def owns(self, url: str) -> bool:
        """Whether ``url`` is a tracking URL on this base."""
        return url.startswith(self.prefix)

    def split(self, url: str) -> str | None:
        """The token in ``url``, or ``None`` if ``url`` is not on this base."""
        if not url.startswith(self.prefix):
            return None
        return strip_token(url[len(self.prefix) :])


def split_base_url(base: str, setting: str, *, query: bool) -> SplitResult:
    """The parts of a base URL that links are made on, checked.

    :param setting: The setting ``base`` comes from, for error messages.
    :param query: Whether a query string is kept (after the token, by
        :class:`TokenURL`). A base that other paths are appended to (the
        routes' prefix after ``MAILTRACK_BASE_URL``) cannot keep one: the
        paths would land in the query.
    :raise ConfigurationError: not an absolute ``http``/``https`` URL with a
        host, a fragment (which browsers never send, so links made on it
        lose what follows), or a query string where none can be kept.
    """
    try:
        parts = urlsplit(base)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:  # such as "https://[::1"
        valid = False
    if not valid:
        raise ConfigurationError(
            f"{setting} {base!r} must be an absolute http(s) URL with a host,"
            " such as 'https://t.example.com'."
        )
    if "#" in base:
        raise ConfigurationError(
            f"{setting} {base!r} has a fragment ('#...'): tracking links made on"
            " it could not be followed. Remove it."
        )
    if not query and "?" in base:
        raise ConfigurationError(
            f"{setting} {base!r} has a query string ('?...'): the tracking paths"
            " would be appended to it. Remove it."
        )
    return parts


def strip_token(text: str) -> str:
    """The token in the remainder of a URL path: up to a query or fragment,
    without the slashes that may surround it."""
    if "?" in text or "#" in text:
        # Cutting at each mark in turn cuts at whichever comes first.
        text = text.partition("?")[0].partition("#")[0]
    return text.strip("/")
