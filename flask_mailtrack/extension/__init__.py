"""The Flask extension: :class:`MailTrack`, its blueprint and its template
helpers."""

from __future__ import annotations

from ._extension import MailTrack as MailTrack
from ._state import DEFAULT_URL_PREFIX as DEFAULT_URL_PREFIX
from ._state import get_state as get_state
from ._state import MailTrackState as MailTrackState
from ._state import normalize_url_prefix as normalize_url_prefix
from ._state import ROUTE_SEGMENTS as ROUTE_SEGMENTS
from ._state import tracking_base_urls as tracking_base_urls

__all__ = [
    "DEFAULT_URL_PREFIX",
    "MailTrack",
    "MailTrackState",
    "ROUTE_SEGMENTS",
    "get_state",
    "normalize_url_prefix",
    "tracking_base_urls",
]
