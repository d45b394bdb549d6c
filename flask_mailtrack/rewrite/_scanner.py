"""The byte-preserving scanner under :class:`~flask_mailtrack.rewrite.HTMLTemplate`.

The document is never re-serialised. A scanner finds the tags the way an
HTML tokenizer does — knowing where tags cannot be: comments, ``<script>``,
``<style>``, ``<title>``, ``<textarea>``, CDATA — and records the spans to
change: the values of tracked ``href`` attributes, this library's own
``data-mailtrack="off"`` opt-out attribute, and the place of the open pixel.
Every other character of the input is copied to the output as it is.

Tracked: the ``href`` of ``<a>``, ``<area>`` and every Outlook VML element
(``<v:roundrect>``, ``<v:rect>``, ...), in any case, also inside
downlevel-hidden conditional comments (``<!--[if mso]> ... <![endif]-->``),
which is where bulletproof buttons live. Which URLs are tracked is decided
by :class:`~flask_mailtrack.rewrite.LinkPolicy`.

Every pattern here is linear in the length of its input: an unterminated
comment, quote or raw-text element ends the scan (a browser would read the
rest of the document as its content), so no text is scanned twice.
"""

from __future__ import annotations

import re
import typing as t

from ._links import LinkPolicy

#: Our own per-link opt-out: ``<a href="..." data-mailtrack="off">`` is left
#: untracked, and the attribute is removed from the output.
OPT_OUT_ATTRIBUTE = "data-mailtrack"

# Opt-out markers of email service providers. A link carrying one is left
# untracked and the marker is kept, for the provider to see.
_ESP_OPT_OUTS: dict[str, str | None] = {
    "clicktracking": "off",  # SendGrid
    "ses:no-track": None,  # Amazon SES
    "data-pm-no-track": None,  # Postmark
    "disable-tracking": "true",
    "mc:disable-tracking": None,  # Mandrill
}

_WS = "\t\n\f\r "
_WS_CLASS = r"[\t\n\f\r ]"

# One attribute of a well-formed tag: a name, then optionally a value. Names
# cannot start with a quote, "=" or "<", and values are separated from the
# next attribute by whitespace; anything else falls back to the exact
# (slower) attribute loop. Each character can be matched one way only, so
# a tag that does not match fails in time linear in its length.
_FAST_ATTRIBUTE = (
    r"[^\t\n\f\r />\"'=<][^\t\n\f\r />=\"'<]*"
    r"(?:[\t\n\f\r ]*=[\t\n\f\r ]*"
    r"(?:\"[^\"]*\"|'[^']*'|[^\t\n\f\r >\"'=<`][^\t\n\f\r >]*))?"
)

# What the scanner looks at where the skip pattern stops. Group "comment":
# "<!--"; "cdata"; "bogus": a doctype, "<![...]>", "<?...>" or "</" + a
# non-letter, all ending at the next ">"; "name": a start or end tag, whose
# end the exact attribute loop finds.
_MARKUP = re.compile(
    r"<(?:(?P<comment>!--)"
    r"|(?P<cdata>!\[CDATA\[)"
    r"|(?P<bogus>!|\?|/(?![A-Za-z]))"
    r"|(?P<slash>/?)(?P<name>[A-Za-z][^\t\n\f\r />]*))"
)

_FAST_TAIL = r"(?:" + _WS_CLASS + r"+" + _FAST_ATTRIBUTE + r")*" + _WS_CLASS + r"*/?>"
_TAG_NAME_END = r"[\t\n\f\r />]"


def _any_case(*words: str) -> str:
    """An alternation of ``words`` in any ASCII case. Character classes
    (``[bB][oO]...``) match faster than a case-insensitive group."""
    return "|".join(
        "".join(
            f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word
        )
        for word in words
    )


def _skip_pattern(start_tags: str) -> re.Pattern[str]:
    """A pattern that consumes text and well-formed tags of no interest in one
    match, stopping at the next ``<`` the scanner has to look at: markup
    that is not a tag, a start tag named in ``start_tags`` or any VML
    element, ``</body>``, ``</head>``, ``</html>``, or a tag that is not
    well formed. Its alternatives start differently, so it never backtracks
    further than into one tag. It takes at most 256 steps per match: the
    regular expression engine slows down on longer repetitions."""
    return re.compile(
        r"(?:[^<]+"
        r"|<(?!(?:" + start_tags + r"|[vV]:[^\t\n\f\r />]*)" + _TAG_NAME_END + r")"
        r"[A-Za-z][^\t\n\f\r />]*" + _FAST_TAIL + r""
        r"|</(?!(?:" + _any_case("body", "head", "html") + r")" + _TAG_NAME_END + r")"
        r"[A-Za-z][^\t\n\f\r />]*" + _FAST_TAIL + r""
        r"|<(?![!?/A-Za-z])){0,256}"
    )


# One step of the HTML tokenizer's attribute states: separators, then the
# tag's ">" (group "close") or an attribute: its "name" and an optional value
# in double quotes ("dq"), single quotes ("sq") or none ("uq"). A value that
# is missing right before ">" is an empty "uq". When "=" follows a name but
# no value matches, a quote is unclosed (or the input ends).
_ATTRIBUTE = re.compile(
    r"[\t\n\f\r /]*(?:(?P<close>>)|(?P<name>[^\t\n\f\r />][^\t\n\f\r />=]*)"
    r"(?:[\t\n\f\r ]*=[\t\n\f\r ]*"
    r"(?:\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)'"
    r"|(?P<uq>[^\t\n\f\r >\"'][^\t\n\f\r >]*|(?=>))))?)"
)
_EQUALS = re.compile(_WS_CLASS + r"*=")
_COMMENT_END = re.compile(r"--!?>")
_DOWNLEVEL_HIDDEN = re.compile(r"\[if[^\]>]*\]>", re.IGNORECASE)

# Elements whose content is text, not markup, up to their end tag.
_RAW_TEXT = (
    "script",
    "style",
    "title",
    "textarea",
    "xmp",
    "iframe",
    "noembed",
    "noframes",
)
_RAW_TEXT_END = {
    name: re.compile(r"</" + _any_case(name) + r"[\t\n\f\r />]") for name in _RAW_TEXT
}

_INTERESTING = ("a", "area", "body", "html", "plaintext", *_RAW_TEXT)
_SKIP = _skip_pattern(_any_case(*_INTERESTING))
_SKIP_WITH_IMG = _skip_pattern(_any_case(*_INTERESTING, "img"))

_OPT_OUT_NAMES = _any_case(OPT_OUT_ATTRIBUTE, *_ESP_OPT_OUTS)
# A well-formed link tag with an href and no opt-out attribute, matched in
# one go: most links are. Anything else takes the exact attribute loop.
_LINK = re.compile(
    r"<(?:" + _any_case("a", "area") + r"|[vV]:[^\t\n\f\r />]*)(?=[\t\n\f\r />])"
    r"(?:"
    + _WS_CLASS
    + r"+(?!(?:"
    + _any_case("href")
    + "|"
    + _OPT_OUT_NAMES
    + r")[\t\n\f\r />=])"
    + _FAST_ATTRIBUTE
    + r")*"
    + _WS_CLASS
    + r"+(?:"
    + _any_case("href")
    + ")"
    + _WS_CLASS
    + r"*="
    + _WS_CLASS
    + r"*(?:\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)'"
    r"|(?P<uq>[^\t\n\f\r >\"'=<`][^\t\n\f\r >]*))"
    r"(?:"
    + _WS_CLASS
    + r"+(?!(?:"
    + _OPT_OUT_NAMES
    + r")[\t\n\f\r />=])"
    + _FAST_ATTRIBUTE
    + r")*"
    + _WS_CLASS
    + r"*/?>"
)
_QUOTES = {"dq": '"', "sq": "'", "uq": ""}


class _Attribute(t.NamedTuple):
    name: str  # lower-cased
    start: int  # of the name
    end: int  # after the value (and its closing quote)
    value_start: int
    value_end: int
    quote: str | None  # '"', "'", "" (unquoted) or None (no value)


def _parse_attributes(text: str, pos: int, endpos: int) -> tuple[list[_Attribute], int]:
    """The attributes of the tag whose name ends at ``pos``, and the index
    after its ``>``, or ``-1`` if the tag does not end before ``endpos``
    (the rest of the input then belongs to the tag, as in a browser).

    Follows the HTML tokenizer's attribute states.
    """
    attributes: list[_Attribute] = []
    match = _ATTRIBUTE.match
    while True:
        m = match(text, pos, endpos)
        if m is None:  # only separators left
            return attributes, -1
        group = m.lastgroup
        if group == "close":
            return attributes, m.end()
        name = m.group("name").lower()
        name_start = m.start("name")
        pos = m.end()
        if group == "name":
            if _EQUALS.match(text, pos, endpos):
                return attributes, -1
            attributes.append(_Attribute(name, name_start, pos, pos, pos, None))
        elif group == "uq":
            attributes.append(_Attribute(name, name_start, pos, m.start("uq"), pos, ""))
        else:
            attributes.append(
                _Attribute(
                    name,
                    name_start,
                    pos,
                    m.start(t.cast(str, group)),
                    pos - 1,
                    '"' if group == "dq" else "'",
                )
            )


# One change to the document: ``(start, end, url, quote)``. ``url`` is the
# destination of a tracked href, "" to delete the span, or None for the pixel
# (an insertion: start == end); ``quote`` is the quote of a tracked href (""
# when the value was unquoted, or for the others). A plain tuple: a link-dense
# email makes hundreds, and a named tuple costs several times more to build.
Edit = tuple[int, int, t.Optional[str], str]


class Scanner:
    """One pass over a document, collecting its :data:`Edit` tuples in
    document order."""

    def __init__(
        self,
        text: str,
        policy: LinkPolicy,
        *,
        track_links: bool,
        open_prefix: str | None,
    ) -> None:
        self.text = text
        self.policy = policy
        self.track_links = track_links
        self.open_prefix = open_prefix
        self.edits: list[Edit] = []
        self.has_pixel = False
        #: Index after the first top-level ``<body ...>``.
        self.body_start = -1
        #: Index of the last top-level ``</body>``.
        self.body_end = -1
        self.head_end = -1
        self.html_start_end = -1
        self.html_end = -1
        self.doctype_end = -1
        #: Start of an unterminated construct that ends the top-level scan.
        self.cut = -1
        #: The policy's decision on each ``href`` value met so far: a link
        #: repeated in the document (a logo, a navigation bar, a VML button
        #: and its fallback) is decided once.
        self.targets: dict[str, str | None] = {}

    def scan(self, pos: int, endpos: int, *, top: bool) -> None:
        """Scan ``text[pos:endpos]``; ``top`` is false inside a conditional
        comment, whose ``<body>`` tags do not place the pixel. Stops early
        at a construct that does not end before ``endpos``."""
        text = self.text
        skip = (_SKIP if self.open_prefix is None else _SKIP_WITH_IMG).match
        markup = _MARKUP.match
        link = _LINK.match
        target = self.target
        edits = self.edits
        track_links = self.track_links
        while True:
            pos = skip(text, pos, endpos).end()  # type: ignore[union-attr]
            m = link(text, pos, endpos)
            if m is not None:
                if track_links:
                    group: str = m.lastgroup  # type: ignore[assignment]
                    value_start, value_end = m.span(group)
                    url = target(text[value_start:value_end])
                    if url is not None:
                        edits.append((value_start, value_end, url, _QUOTES[group]))
                pos = m.end()
                continue
            m = markup(text, pos, endpos)
            if m is None:
                if pos >= endpos:
                    return
                # The skip pattern stopped after its 256 steps, right before
                # text or a "<" that starts no markup.
                pos += 1
                continue
            kind = m.lastgroup
            start = pos
            if kind == "comment":
                pos = self._comment(start, endpos)
            elif kind == "name":
                name = m.group("name").lower()
                attributes, pos = _parse_attributes(text, m.end("name"), endpos)
                if pos == -1:
                    break
                if m.group("slash"):
                    if top:
                        if name == "body":
                            self.body_end = start
                        elif name == "head" and self.head_end == -1:
                            self.head_end = pos
                        elif name == "html":
                            self.html_end = start
                    continue
                self._start_tag(name, attributes, pos, top)
                raw_text_end = _RAW_TEXT_END.get(name)
                if raw_text_end is not None:
                    raw_end = raw_text_end.search(text, pos, endpos)
                    if raw_end is None:
                        break
                    pos = raw_end.start()
                elif name == "plaintext":
                    break
            elif kind == "cdata":
                close = text.find("]]>", m.end(), endpos)
                if close == -1:
                    break
                pos = close + 3
            else:  # bogus comment, doctype
                close = text.find(">", m.end(), endpos)
                if close == -1:
                    break
                pos = close + 1
                if (
                    top
                    and self.doctype_end == -1
                    and text[start + 1 : start + 9].lower() == "!doctype"
                ):
                    self.doctype_end = pos
            if pos == -1:
                break
        # A comment, tag or raw-text element runs to the end of the input:
        # anything added after it would be part of it.
        if top:
            self.cut = start

    def _comment(self, start: int, endpos: int) -> int:
        text = self.text
        body = start + 4
        # "<!-->" and "<!--->" are complete (empty) comments.
        if text.startswith(">", body, endpos):
            return body + 1
        if text.startswith("->", body, endpos):
            return body + 2
        close = _COMMENT_END.search(text, body, endpos)
        if close is None:
            return -1
        close_start = close.start()
        hidden = _DOWNLEVEL_HIDDEN.match(text, body, close_start)
        if hidden is not None:
            endif = text.rfind("<![", hidden.end(), close_start)
            if (
                endif != -1
                and text[endif : endif + 9].lower() == "<![endif]"
                and not text[endif + 9 : close_start].strip(_WS)
            ):
                # Downlevel-hidden conditional comment: a comment to
                # browsers, HTML to Outlook.
                self.scan(hidden.end(), endif, top=False)
        return close.end()

    def _start_tag(
        self, name: str, attributes: list[_Attribute], end: int, top: bool
    ) -> None:
        if name == "body":
            if top and self.body_start == -1:
                self.body_start = end
            return
        if name == "html":
            if top and self.html_start_end == -1:
                self.html_start_end = end
            return
        if name == "img":
            # Only looked at when this configuration's open URL is in the text.
            if self.open_prefix is not None and not self.has_pixel:
                for attribute in attributes:
                    if attribute.name == "src":
                        value = self.text[attribute.value_start : attribute.value_end]
                        self.has_pixel = value.strip(_WS).startswith(self.open_prefix)
                        break
            return
        if name not in ("a", "area") and not name.startswith("v:"):
            return
        href: _Attribute | None = None
        opted_out = False
        edits = self.edits
        for attribute in attributes:
            attribute_name = attribute.name
            if attribute_name == "href":
                if href is None:
                    href = attribute
            elif attribute_name == OPT_OUT_ATTRIBUTE:
                if self._value(attribute).lower() == "off":
                    opted_out = True
                    edits.append(
                        (self._space_before(attribute.start), attribute.end, "", "")
                    )
            elif attribute_name in _ESP_OPT_OUTS:
                expected = _ESP_OPT_OUTS[attribute_name]
                if expected is None or self._value(attribute).lower() == expected:
                    opted_out = True
        if href is None or href.quote is None or opted_out or not self.track_links:
            return
        url = self.target(self._value(href))
        if url is not None:
            edits.append((href.value_start, href.value_end, url, href.quote))

    def target(self, value: str) -> str | None:
        """The policy's destination for the ``href`` value ``value``, or
        ``None`` when the link is left alone (see :attr:`targets`)."""
        targets = self.targets
        if value in targets:
            return targets[value]
        url = targets[value] = self.policy.target(value)
        return url

    def _value(self, attribute: _Attribute) -> str:
        return self.text[attribute.value_start : attribute.value_end].strip(_WS)

    def _space_before(self, index: int) -> int:
        text = self.text
        while index > 0 and text[index - 1] in _WS:
            index -= 1
        return index

    def pixel_position(self, position: str) -> int:
        if position == "top":
            for index in (
                self.body_start,
                self.head_end,
                self.html_start_end,
                self.doctype_end,
            ):
                if index != -1:
                    return index
            return 0
        for index in (self.body_end, self.html_end, self.cut):
            if index != -1:
                return index
        return len(self.text)
