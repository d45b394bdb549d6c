"""Link tracking for plain-text email.

Bare ``http(s)`` URLs are found in the text and replaced by their tracking
URLs; everything else is kept. A URL ends at whitespace, a quote or an
angle bracket (so ``<https://example.com/>`` keeps its wrapper), and
punctuation after it (``.``, ``,``, ``!``, a closing bracket without its
opening one inside the URL...) is left outside. The same rules as in HTML
decide which URLs are tracked (:class:`~flask_mailtrack.rewrite.LinkPolicy`).
"""

from __future__ import annotations

import re
import typing as t

from ._link_maker import LinkMaker
from ._link_maker import Metadata
from ._links import LinkPolicy

# A letter or digit right before "http" means the scheme is part of a word.
_URL = re.compile(r"(?<![A-Za-z0-9])https?://[^\s<>\"]+", re.IGNORECASE)

_TRAILING = ".,;:!?'*_"
_CLOSING = {")": "(", "]": "[", "}": "{"}


def _trim(url: str) -> str:
    """``url`` without the punctuation that follows it in a sentence."""
    end = len(url)
    # A closing bracket belongs to the URL while the URL opens as many.
    unmatched = {
        close: url.count(close) - url.count(open_) for close, open_ in _CLOSING.items()
    }
    while end:
        last = url[end - 1]
        if last in _TRAILING:
            end -= 1
        elif last in unmatched and unmatched[last] > 0:
            unmatched[last] -= 1
            end -= 1
        else:
            break
    return url[:end]


def track_text(
    tracker: LinkMaker,
    text: str,
    metadata: Metadata = None,
    *,
    utm_params: t.Mapping[str, str] | None = None,
) -> str:
    """Replace the trackable URLs of ``text`` by tracking URLs carrying
    ``metadata``. A URL that appears several times gets one token.

    :param utm_params: Query parameters added to tracked destinations.
    """
    if not isinstance(text, str):
        raise TypeError("text must be str.")
    policy = LinkPolicy(tracker, utm_params)
    tokens: dict[str, str] = {}
    parts: list[str] = []
    pos = 0
    for match in _URL.finditer(text):
        found = _trim(match.group())
        target = policy.target(found, entities=False)
        if target is None:
            continue
        tracked = tokens.get(target)
        if tracked is None:
            tracked = tokens[target] = tracker.click_url(target, metadata)
        start = match.start()
        parts.append(text[pos:start])
        parts.append(tracked)
        pos = start + len(found)
    if not parts:
        return text
    parts.append(text[pos:])
    return "".join(parts)
