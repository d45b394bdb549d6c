"""Link tracking for HTML email: :class:`HTMLTemplate` and :func:`track_html`.

A document is scanned once (:mod:`._scanner` finds the ``href`` values to
track and the place of the open pixel, and nothing else changes); rendering
for a recipient only makes tokens and joins strings.

Rewriting is idempotent: links already on this configuration's click base
are left alone and no pixel is added where this configuration's pixel is
already present. One exception: ``data-mailtrack="off"`` is removed, so a
link that carried it is tracked if the output is rewritten again.
"""

from __future__ import annotations

import codecs
import re
import typing as t
from html import escape

from ..exceptions import ConfigurationError
from ..exceptions import MailTrackError
from ..exceptions import MissingSettingError
from ._link_maker import LinkMaker
from ._link_maker import Metadata
from ._links import LinkPolicy
from ._scanner import Edit
from ._scanner import OPT_OUT_ATTRIBUTE as OPT_OUT_ATTRIBUTE
from ._scanner import Scanner

HTMLInput = t.TypeVar("HTMLInput", str, bytes)

#: Attributes of the open pixel after its ``src``.
PIXEL_ATTRIBUTES = (
    ' width="1" height="1" alt=""'
    ' style="display:block;border:0;outline:none;width:1px;height:1px;'
    'max-width:1px;max-height:1px;overflow:hidden;" />'
)

_META_CHARSET = re.compile(
    rb"<meta[^>]{0,512}?charset[\t\n\f\r ]*=[\t\n\f\r ]*[\"']?([A-Za-z0-9_.:\-]+)",
    re.IGNORECASE,
)


class HTMLTemplate:
    """An HTML email scanned once, rendered per recipient.

    :meth:`render` only makes tokens and joins strings, so a newsletter is
    scanned once however many recipients it has; a template holds no
    per-recipient state and can be shared between threads.

    :param tracker: Makes the tokens: a :class:`~flask_mailtrack.Tracker`
        or another :class:`~flask_mailtrack.rewrite.LinkMaker`.
    :param html: The document or fragment, as text or as bytes.
    :param click_tracking: Track links.
    :param open_tracking: Add the open pixel (not if the document already
        has this configuration's pixel).
    :param utm_params: Query parameters added to tracked destinations, e.g.
        ``{"utm_source": "newsletter", "utm_medium": "email"}``. Parameters a
        URL already has are kept.
    :param pixel_position: ``"bottom"`` (before the last ``</body>``, else at
        the end) or ``"top"`` (after ``<body ...>``, else at the start of
        the content, after any doctype, ``<html>`` and ``<head>``). Default:
        the configuration's ``pixel_position``.
    :param charset: Encoding of ``html`` when it is bytes. Default: the one
        declared in a ``<meta charset>`` or ``<meta http-equiv>`` tag, else
        UTF-8. Bytes that do not decode are kept as they are.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        tracker: LinkMaker,
        html: str | bytes,
        *,
        click_tracking: bool = True,
        open_tracking: bool = True,
        utm_params: t.Mapping[str, str] | None = None,
        pixel_position: str | None = None,
        charset: str | None = None,
    ) -> None:
        if pixel_position is None:
            pixel_position = tracker.configuration.pixel_position
        if pixel_position not in ("top", "bottom"):
            raise ConfigurationError("pixel_position must be 'top' or 'bottom'.")
        if click_tracking and tracker.click_base is None:
            raise MissingSettingError("Click tracking needs base_click_tracking_url.")
        if open_tracking and tracker.open_base is None:
            raise MissingSettingError("Open tracking needs base_open_tracking_url.")
        self.tracker = tracker
        #: The document as given.
        self.html = html
        #: The encoding of a bytes document (``None`` for text).
        self.charset: str | None = None
        if isinstance(html, bytes):
            self.charset = _charset_of(html, charset)
            text = html.decode(self.charset, "surrogateescape")
        elif isinstance(html, str):
            text = html
        else:
            raise TypeError("html must be str or bytes.")
        open_base = tracker.open_base
        open_prefix = open_base.prefix if open_base is not None else None
        if open_prefix is not None and open_prefix not in text:
            # No pixel of ours can be there: no need to look at <img> tags.
            open_prefix = None
        scanner = Scanner(
            text,
            LinkPolicy(tracker, utm_params),
            track_links=click_tracking,
            open_prefix=open_prefix,
        )
        scanner.scan(0, len(text), top=True)
        edits = scanner.edits
        if open_tracking and not scanner.has_pixel:
            position = scanner.pixel_position(pixel_position)
            index = len(edits)
            while index and edits[index - 1][0] > position:
                index -= 1
            edits.insert(index, (position, position, None, ""))
        self._compile(text, edits)

    def _compile(self, text: str, edits: list[Edit]) -> None:
        parts: list[str] = []
        slots: list[tuple[int, int]] = []
        urls: list[str] = []
        url_index: dict[str, int] = {}
        pixel_slot = -1
        pos = 0
        for start, end, url, quote in edits:
            literal = text[pos:start]
            if url is None:
                parts.append(literal)
                pixel_slot = len(parts)
                parts.append("")
            elif url:
                # An unquoted value gains double quotes around its URL.
                parts.append(literal if quote else literal + '"')
                index = url_index.get(url)
                if index is None:
                    index = url_index[url] = len(urls)
                    urls.append(url)
                slots.append((len(parts), index))
                parts.append("")
                if not quote:
                    parts.append('"')
            else:
                parts.append(literal)
            pos = end
        parts.append(text[pos:])
        if self.charset is not None:
            self._parts: list[str] | list[bytes] = [
                part.encode(self.charset, "surrogateescape") for part in parts
            ]
        else:
            self._parts = parts
        self._slots = slots
        self._pixel_slot = pixel_slot
        #: The distinct destinations of the tracked links, in document order.
        self.urls: tuple[str, ...] = tuple(urls)
        #: How many ``href`` attributes are tracked.
        self.link_count = len(slots)
        #: Whether :meth:`render` adds the open pixel.
        self.adds_pixel = pixel_slot != -1
        tracker = self.tracker
        click, open_ = tracker.click_base, tracker.open_base
        self._click_prefix = escape(click.prefix) if click is not None else ""
        self._click_suffix = escape(click.suffix) if click is not None else ""
        self._pixel_head = '<img src="' + (
            escape(open_.prefix) if open_ is not None else ""
        )
        self._pixel_tail = (
            (escape(open_.suffix) if open_ is not None else "") + '"' + PIXEL_ATTRIBUTES
        )

    def render(self, metadata: Metadata = None, *, track: bool = True) -> str | bytes:
        """The document with tracking for one recipient: the same type as
        the input (bytes in the same encoding).

        :param metadata: Carried by every token (the recipient, the campaign...).
        :param track: ``False`` returns the document untouched, for a
            recipient who opted out of tracking.
        """
        if not track:
            return self.html
        tracker = self.tracker
        parts: list[t.Any] = list(self._parts)
        if self._slots:
            prefix, suffix = self._click_prefix, self._click_suffix
            tokens = tracker.click_tokens(self.urls, metadata)
            values = [prefix + token + suffix for token in tokens]
            if self.charset is not None:
                values = [value.encode("ascii") for value in values]  # type: ignore[misc]
            for index, value_index in self._slots:
                parts[index] = values[value_index]
        if self._pixel_slot != -1:
            pixel = self._pixel_head + tracker.open_token(metadata) + self._pixel_tail
            parts[self._pixel_slot] = (
                pixel.encode("ascii") if self.charset is not None else pixel
            )
        joiner: t.Any = b"" if self.charset is not None else ""
        return t.cast("str | bytes", joiner.join(parts))


def track_html(
    tracker: LinkMaker,
    html: HTMLInput,
    metadata: Metadata = None,
    **options: t.Any,
) -> HTMLInput:
    """Track the links of ``html`` and add the open pixel, for one
    recipient. Same as ``HTMLTemplate(tracker, html, **options).render(metadata)``.
    """
    return t.cast(HTMLInput, HTMLTemplate(tracker, html, **options).render(metadata))


def _charset_of(data: bytes, charset: str | None) -> str:
    """The encoding to read ``data`` with: ``charset`` if given, else the
    one its ``<meta>`` declares, else UTF-8."""
    if charset is None:
        match = _META_CHARSET.search(data, 0, 4096)
        if match is not None:
            declared = match.group(1).decode("ascii")
            try:
                codecs.lookup(declared)
            except LookupError:
                declared = "utf-8"
            charset = declared
        else:
            charset = "utf-8"
    try:
        compatible = "<a href=>".encode(charset) == b"<a href=>"
    except LookupError:
        raise MailTrackError(f"Unknown charset {charset!r}.") from None
    if not compatible:
        raise MailTrackError(
            f"Cannot rewrite {charset} bytes in place; pass the HTML as str."
        )
    return codecs.lookup(charset).name
