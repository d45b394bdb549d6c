"""pytracking's function API, kept so that its users change one import.

Each function takes an optional :class:`Configuration` and keyword
overrides, exactly like pytracking 0.2.2. The difference: a configuration
is never deep-copied per call and its keys are prepared once (the
:class:`Tracker` is cached), and unknown keywords raise :exc:`TypeError`.
"""

from __future__ import annotations

import typing as t

from .configuration import Configuration
from .events import send_webhook as send_webhook
from .result import TrackingResult
from .rewrite import HTMLTemplate
from .tokens._serializer import CLICK
from .tokens._serializer import OPEN
from .tracker import _TrackerCache
from .tracker import Metadata
from .tracker import Tracker
from .web._pixel import PIXEL_MIME_TYPE
from .web._pixel import TRACKING_PIXEL

_DEFAULT = Configuration()
# The functions are handed a configuration (and overrides) on every call,
# so they keep the trackers they build: a tracker prepares its keys once.
_trackers = _TrackerCache(64)


def get_tracker(
    configuration: Configuration | None = None,
    kwargs: t.Mapping[str, t.Any] | None = None,
) -> Tracker:
    """The cached :class:`Tracker` for ``configuration`` updated with ``kwargs``.

    Repeated calls with the same configuration object (and equal ``kwargs``)
    return the same tracker; the 64 most recently built are kept.

    :param configuration: The settings; a default :class:`Configuration`
        when omitted.
    :param kwargs: Fields to override, as the pytracking functions take them.
    """
    return _trackers.get(
        configuration if configuration is not None else _DEFAULT, kwargs
    )


def get_open_tracking_url(
    metadata: Metadata = None,
    configuration: Configuration | None = None,
    **kwargs: t.Any,
) -> str:
    """The open-tracking (pixel) URL carrying ``metadata``."""
    return get_tracker(configuration, kwargs).open_url(metadata)


def get_click_tracking_url(
    url_to_track: str,
    metadata: Metadata = None,
    configuration: Configuration | None = None,
    **kwargs: t.Any,
) -> str:
    """The click-tracking URL that redirects to ``url_to_track``."""
    return get_tracker(configuration, kwargs).click_url(url_to_track, metadata)


def get_open_tracking_result(
    encoded_url_path: str,
    request_data: dict[str, t.Any] | None = None,
    configuration: Configuration | None = None,
    **kwargs: t.Any,
) -> TrackingResult:
    """Verify an open-tracking URL, path or token.

    :raise InvalidToken: for anything but a valid open token.
    """
    return get_tracker(configuration, kwargs).decode(
        OPEN, encoded_url_path, request_data=request_data
    )


def get_click_tracking_result(
    encoded_url_path: str,
    request_data: dict[str, t.Any] | None = None,
    configuration: Configuration | None = None,
    **kwargs: t.Any,
) -> TrackingResult:
    """Verify a click-tracking URL, path or token.

    :raise InvalidToken: for anything but a valid click token with a safe target.
    """
    return get_tracker(configuration, kwargs).decode(
        CLICK, encoded_url_path, request_data=request_data
    )


def get_open_tracking_pixel() -> tuple[bytes, str]:
    """The transparent 1x1 pixel and its MIME type."""
    return TRACKING_PIXEL, PIXEL_MIME_TYPE


def adapt_html(
    html_text: str | bytes,
    extra_metadata: Metadata,
    click_tracking: bool = True,
    open_tracking: bool = True,
    configuration: Configuration | None = None,
    **kwargs: t.Any,
) -> str:
    """Track the links of ``html_text`` and add the open pixel.

    Unlike pytracking, the document is not re-serialised: only the tracked
    ``href`` values and the pixel change (see :meth:`Tracker.track_html`).
    Like pytracking, text is returned, also for bytes input.
    """
    tracker = get_tracker(configuration, kwargs)
    template = HTMLTemplate(
        tracker, html_text, click_tracking=click_tracking, open_tracking=open_tracking
    )
    result = template.render(extra_metadata)
    if isinstance(result, bytes):
        return result.decode(template.charset or "utf-8", "replace")
    return result
