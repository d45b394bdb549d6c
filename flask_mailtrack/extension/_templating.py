"""The Jinja helpers that :class:`~flask_mailtrack.MailTrack` adds to an
app's templates: ``mailtrack_pixel``, ``mailtrack_open_url``,
``mailtrack_click_url`` and the ``mailtrack`` filter."""

from __future__ import annotations

from flask import current_app
from flask import Flask
from markupsafe import escape
from markupsafe import Markup

from ..rewrite import track_html
from ..rewrite._html import PIXEL_ATTRIBUTES
from ..tracker import Metadata
from ..tracker import Tracker
from ._state import get_state


def add_template_helpers(app: Flask) -> None:
    """Register the helpers on ``app``'s Jinja environment."""
    app.add_template_global(mailtrack_pixel, "mailtrack_pixel")
    app.add_template_global(mailtrack_open_url, "mailtrack_open_url")
    app.add_template_global(mailtrack_click_url, "mailtrack_click_url")
    app.add_template_filter(mailtrack_filter, "mailtrack")


def _current_link_tracker() -> Tracker:
    state = get_state()
    return state.link_tracker(current_app._get_current_object())  # type: ignore[attr-defined]


def mailtrack_open_url(metadata: Metadata = None) -> str:
    """Jinja global: the pixel URL for ``metadata``."""
    return _current_link_tracker().open_url(metadata)


def mailtrack_click_url(url: str, metadata: Metadata = None) -> str:
    """Jinja global: the tracked URL of ``url`` for ``metadata``, for
    ``<a href="{{ mailtrack_click_url(url, {"id": user.id}) }}">``."""
    return _current_link_tracker().click_url(url, metadata)


def mailtrack_pixel(metadata: Metadata = None) -> Markup:
    """Jinja global: the ``<img>`` tag of the open pixel for ``metadata``,
    for ``{{ mailtrack_pixel({"id": user.id}) }}`` before ``</body>``."""
    url = mailtrack_open_url(metadata)
    # The rewriter's own tag, so that it recognises the pixel and never adds
    # a second one.
    return Markup(f'<img src="{escape(url)}"{PIXEL_ATTRIBUTES}')


def mailtrack_filter(
    html: str, metadata: Metadata = None, pixel: bool | None = None
) -> Markup:
    """Jinja filter: track the links of a rendered block::

        {% filter mailtrack({"id": user.id}) %}
          <a href="https://example.com/sale">Sale</a>
        {% endfilter %}

    The block is rewritten by :func:`~flask_mailtrack.rewrite.track_html`.

    :param pixel: Add the open pixel too. By default it is added when the
        block holds the ``<body>`` (the whole email), so that tracking a
        snippet never adds a second pixel to an email.
    """
    text = str(html)
    if pixel is None:
        pixel = "<body" in text.lower()
    tracked = track_html(_current_link_tracker(), text, metadata, open_tracking=pixel)
    return Markup(tracked)
