"""Which links the rewriters track, and how a tracked destination is tagged.

The HTML, text and MIME rewriters all ask :class:`LinkPolicy` the same
question, so a link is tracked (or left alone) for the same reasons in
every part of a message.

A link is tracked only when, after decoding entities and dropping the
surrounding whitespace and the tabs and newlines a browser ignores, it is an
absolute ``http``/``https`` URL (scheme in any case) that is a safe redirect
target (:func:`~flask_mailtrack.is_safe_target`), holds no merge tag of
an email service provider, is not already a tracking URL of this
configuration, and matches none of the configuration's
``untracked_url_patterns`` (unsubscribe links by default).
"""

from __future__ import annotations

import re
import typing as t
from html import unescape
from urllib.parse import unquote_plus
from urllib.parse import urlencode

from .._urls import is_safe_target
from ._link_maker import LinkMaker

#: The whitespace that HTML strips around attribute values it reads as URLs.
HTML_SPACE = " \t\n\f\r"

# Browsers drop these anywhere inside a URL (WHATWG URL parser).
_DROPPED_IN_URL = str.maketrans("", "", "\t\n\r")

_HTTP_SCHEME = re.compile(r"https?://", re.IGNORECASE)
_LOWER_HTTP = ("https://", "http://")

# Template syntaxes whose substitution happens after tracking, at the email
# service provider. Freezing one into a token would send every recipient to
# the unsubstituted text. Covered: Handlebars/Jinja/Liquid ``{{ x }}`` and
# ``{% x %}``, Smarty ``{$x}``, ``${x}``, Mailchimp ``*|X|*``, SendGrid
# ``<%x%>`` and ``[unsubscribe]``-style tags, Mailgun ``%recipient.x%``.
_MERGE_MARKERS = re.compile(
    r"\{\{|\{%|\{\$|\$\{|\*\||\|\*|<%|%>|\[[A-Za-z_][\w.\-]*\]|%[A-Za-z_][\w.\-]*%"
)
_HEX_PAIR = re.compile(r"[0-9A-Fa-f]{2}")


def clean_url(value: str, *, entities: bool = True) -> str:
    """The URL a browser follows for an ``href`` value: entities decoded
    (``&amp;`` becomes ``&``), surrounding whitespace stripped, and tabs and
    newlines inside removed.

    :param entities: Decode HTML character references (off for plain text).
    """
    if entities and "&" in value:
        # "&amp;" is the only reference in most URLs; replacing it alone is
        # exact when every "&" starts one.
        if value.count("&") == value.count("&amp;"):
            value = value.replace("&amp;", "&")
        else:
            value = unescape(value)
    value = value.strip(HTML_SPACE)
    if "\n" in value or "\t" in value or "\r" in value:
        value = value.translate(_DROPPED_IN_URL)
    return value


def has_merge_tag(url: str) -> bool:
    """Whether ``url`` is or contains an email service provider's merge tag.

    ``%name%`` is told apart from percent escapes: ``%E2%80%99`` and
    ``caf%C3%A9s`` are escapes; ``%recipient%`` and ``%unsubscribe_url%``
    are merge tags. A name starting with two hex digits (``%deadline%``)
    counts as a merge tag only when the closing ``%`` does not start an
    escape itself.
    """
    # Every marker starts with one of these characters, and most URLs hold
    # none: seven substring tests cost a third of one search of the pattern.
    if not (
        "{" in url
        or "%" in url
        or "[" in url
        or "*" in url
        or "|" in url
        or "<" in url
        or "$" in url
    ):
        return False
    for match in _MERGE_MARKERS.finditer(url):
        text = match.group()
        if text[0] != "%" or text == "%>":
            return True
        if not _HEX_PAIR.match(text, 1):
            return True
        if not _HEX_PAIR.match(url, match.end()):
            return True
    return False


def add_query_params(url: str, params: t.Mapping[str, str] | None) -> str:
    """Append ``params`` to the query of ``url``.

    Parameters the URL already has are kept as they are (never overwritten),
    and the existing query is neither reordered nor re-encoded: the new
    parameters are added at its end, before any ``#fragment``.
    """
    if not params:
        return url
    base, hash_mark, fragment = url.partition("#")
    head, question_mark, query = base.partition("?")
    present = {
        unquote_plus(item.partition("=")[0])
        for item in query.replace(";", "&").split("&")
        if item
    }
    extra = [(k, v) for k, v in params.items() if k not in present]
    if not extra:
        return url
    encoded = urlencode(extra)
    if not question_mark:
        base = f"{head}?{encoded}"
    elif query and not query.endswith("&"):
        base = f"{base}&{encoded}"
    else:
        base = f"{base}{encoded}"
    return base + hash_mark + fragment


class LinkPolicy:
    """Decides which links of one tracker (a
    :class:`~flask_mailtrack.rewrite.LinkMaker`) are tracked. Built once per
    rewrite; holds no per-recipient state. The HTML rewriter asks it once
    per distinct ``href`` value of a document.

    :param tracker: Supplies the tracking bases (already tracked links are
        skipped, so rewriting twice changes nothing) and the
        ``untracked_url_patterns``.
    :param utm_params: Query parameters added to tracked destinations.
    """

    __slots__ = ("_prefixes", "_untracked", "_untracked_lower", "utm_params")

    def __init__(
        self, tracker: LinkMaker, utm_params: t.Mapping[str, str] | None = None
    ) -> None:
        self._prefixes = tuple(
            base.prefix
            for base in (tracker.click_base, tracker.open_base)
            if base is not None
        )
        patterns = [p for p in tracker.configuration.untracked_url_patterns if p]
        self._untracked = (
            re.compile("|".join(map(re.escape, patterns)), re.IGNORECASE)
            if patterns
            else None
        )
        # A case-insensitive regular expression tries every position of the
        # URL with case folding, which made it most of a link's cost. For
        # ASCII text and patterns, substrings of the lower-cased URL are the
        # same test, several times faster; anything else takes the pattern.
        self._untracked_lower = (
            tuple(p.lower() for p in patterns)
            if all(p.isascii() for p in patterns)
            else None
        )
        #: Query parameters added to each tracked destination.
        self.utm_params = dict(utm_params) if utm_params else None

    def is_tracking_url(self, url: str) -> bool:
        """Whether ``url`` is one of this configuration's tracking URLs."""
        return bool(self._prefixes) and url.startswith(self._prefixes)

    def target(self, value: str, *, entities: bool = True) -> str | None:
        """The destination to put in a click token for the link ``value``
        (an ``href`` value as written, or a URL found in text), or ``None``
        when the link is left alone.

        :param entities: ``value`` is HTML and may hold character references.
        """
        url = clean_url(value, entities=entities)
        # Most links are written in lower case, which startswith answers
        # faster than the case-insensitive pattern.
        if not (url.startswith(_LOWER_HTTP) or _HTTP_SCHEME.match(url)) or (
            self._prefixes and url.startswith(self._prefixes)
        ):
            return None
        if has_merge_tag(url):
            return None
        if self._untracked is not None:
            if self._untracked_lower is not None and url.isascii():
                lowered = url.lower()
                for pattern in self._untracked_lower:
                    if pattern in lowered:
                        return None
            elif self._untracked.search(url):
                return None
        if self.utm_params:
            url = add_query_params(url, self.utm_params)
        if not is_safe_target(url):
            return None
        if not url.isascii():
            try:
                # Undecodable bytes of a mis-declared charset survive as lone
                # surrogates, which no token can carry.
                url.encode("utf-8")
            except UnicodeEncodeError:
                return None
        return url
