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
from .exceptions import InvalidToken
from .exceptions import MissingSettingError
from .result import TrackingResult
from .rewrite import HTMLTemplate
from .tokens._serializer import CLICK
from .tokens._serializer import Kind
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


def get_open_tracking_url_path(
    url: str, configuration: Configuration | None = None, **kwargs: t.Any
) -> str:
    """The token of an open-tracking URL: the part after
    ``base_open_tracking_url``, which :func:`get_open_tracking_result`
    decodes.

    pytracking cut the length of the base off any text; here ``url`` must
    start with the base, and the token comes without the ``/`` that
    ``append_slash`` adds or the base's query string.

    :param url: A full open-tracking URL.
    :raise MissingSettingError: no ``base_open_tracking_url`` is configured.
    :raise InvalidToken: ``url`` is not on that base, or has no token there.

    .. versionadded:: 0.1
    """
    return _url_path(OPEN, url, configuration, kwargs)


def get_click_tracking_url_path(
    url: str, configuration: Configuration | None = None, **kwargs: t.Any
) -> str:
    """The token of a click-tracking URL: the part after
    ``base_click_tracking_url``, which :func:`get_click_tracking_result`
    decodes. As :func:`get_open_tracking_url_path`.

    :param url: A full click-tracking URL.
    :raise MissingSettingError: no ``base_click_tracking_url`` is configured.
    :raise InvalidToken: ``url`` is not on that base, or has no token there.

    .. versionadded:: 0.1
    """
    return _url_path(CLICK, url, configuration, kwargs)


def _url_path(
    kind: Kind,
    url: str,
    configuration: Configuration | None,
    kwargs: t.Mapping[str, t.Any],
) -> str:
    tracker = get_tracker(configuration, kwargs)
    base = tracker.open_base if kind == OPEN else tracker.click_base
    if base is None:
        raise MissingSettingError(
            f"No base_{kind}_tracking_url is configured, so the token of a"
            f" {kind} tracking URL cannot be found."
        )
    # Tracker.token_from takes text without a scheme for a bare token; a
    # URL path is asked for, so anything not on the base is refused here.
    if not isinstance(url, str) or not base.owns(url):
        raise InvalidToken(
            f"URL is not on base_{kind}_tracking_url ({base.prefix}).",
            reason="format",
        )
    token = tracker.token_from(kind, url)
    if not token:
        raise InvalidToken("The URL has no token after its base.", reason="format")
    return token


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
    Like pytracking, text is returned, also for bytes input, and
    ``base_click_tracking_url`` is needed only when there is a link to track.

    :raise MissingSettingError: a link to track, but no
        ``base_click_tracking_url``.
    :raise MailTrackError: ``open_tracking`` without
        ``base_open_tracking_url``.
    """
    tracker = get_tracker(configuration, kwargs)
    if click_tracking and tracker.click_base is None:
        # pytracking needed a click base only for the links it changed, so
        # an email without any was tracked with an open base alone.
        if _links_to_track(html_text, configuration, kwargs):
            raise MissingSettingError(
                "This HTML has links to track, so adapt_html() needs"
                " base_click_tracking_url (or click_tracking=False)."
            )
        click_tracking = False
    template = HTMLTemplate(
        tracker, html_text, click_tracking=click_tracking, open_tracking=open_tracking
    )
    result = template.render(extra_metadata)
    if isinstance(result, bytes):
        return result.decode(template.charset or "utf-8", "replace")
    return result


# A stand-in click base (the .invalid domain is reserved: no real link is on
# it), so the rewriter can count the links it would track.
_PROBE_CLICK_BASE = "https://click-base.invalid/"


def _links_to_track(
    html_text: str | bytes,
    configuration: Configuration | None,
    kwargs: t.Mapping[str, t.Any],
) -> int:
    """How many links of ``html_text`` click tracking would change."""
    probe = get_tracker(
        configuration, {**kwargs, "base_click_tracking_url": _PROBE_CLICK_BASE}
    )
    return HTMLTemplate(probe, html_text, open_tracking=False).link_count
