"""Email open and click tracking for Flask and any WSGI app.

The core (:class:`Configuration`, :class:`Tracker`, :class:`TrackingResult`,
the exceptions and the signals) is imported with the package. The names that
build on other libraries (Flask for :class:`MailTrack`, SQLite for
:class:`EventStore`, ...) are imported on first use, so that a project that
only makes links or only wraps its WSGI app in :class:`TrackingMiddleware`
never loads Flask, Jinja, click or sqlite3.
"""

from __future__ import annotations

import importlib
import typing as t

from . import _moved
from ._urls import is_safe_target as is_safe_target
from .configuration import Configuration as Configuration
from .configuration import DEFAULT_TIMEOUT_SECONDS as DEFAULT_TIMEOUT_SECONDS
from .exceptions import ConfigurationError as ConfigurationError
from .exceptions import ExpiredToken as ExpiredToken
from .exceptions import InsecureTokenWarning as InsecureTokenWarning
from .exceptions import InvalidToken as InvalidToken
from .exceptions import MailTrackError as MailTrackError
from .exceptions import MailTrackWarning as MailTrackWarning
from .exceptions import MissingSettingError as MissingSettingError
from .exceptions import UnknownSettingError as UnknownSettingError
from .exceptions import WeakSecretKeyWarning as WeakSecretKeyWarning
from .exceptions import WebhookDeliveryError as WebhookDeliveryError
from .exceptions import WebhookVerificationError as WebhookVerificationError
from .result import TrackingResult as TrackingResult
from .signals import email_opened as email_opened
from .signals import link_clicked as link_clicked
from .signals import record_events as record_events
from .signals import tracking_failed as tracking_failed
from .signals import webhook_failed as webhook_failed
from .tracker import Tracker as Tracker

if t.TYPE_CHECKING:
    from ._pytracking import adapt_html as adapt_html
    from ._pytracking import get_click_tracking_result as get_click_tracking_result
    from ._pytracking import get_click_tracking_url as get_click_tracking_url
    from ._pytracking import get_click_tracking_url_path as get_click_tracking_url_path
    from ._pytracking import get_open_tracking_pixel as get_open_tracking_pixel
    from ._pytracking import get_open_tracking_result as get_open_tracking_result
    from ._pytracking import get_open_tracking_url as get_open_tracking_url
    from ._pytracking import get_open_tracking_url_path as get_open_tracking_url_path
    from ._pytracking import send_webhook as send_webhook
    from .events import EventStore as EventStore
    from .events import verify_webhook as verify_webhook
    from .events import WebhookSender as WebhookSender
    from .extension import MailTrack as MailTrack
    from .rewrite import HTMLTemplate as HTMLTemplate
    from .web import TrackingMiddleware as TrackingMiddleware

# Public names imported on first access (PEP 562), with their modules.
_LAZY = {
    "adapt_html": "._pytracking",
    "get_click_tracking_result": "._pytracking",
    "get_click_tracking_url": "._pytracking",
    "get_click_tracking_url_path": "._pytracking",
    "get_open_tracking_pixel": "._pytracking",
    "get_open_tracking_result": "._pytracking",
    "get_open_tracking_url": "._pytracking",
    "get_open_tracking_url_path": "._pytracking",
    "send_webhook": "._pytracking",
    "EventStore": ".events",
    "verify_webhook": ".events",
    "WebhookSender": ".events",
    "MailTrack": ".extension",
    "HTMLTemplate": ".rewrite",
    "TrackingMiddleware": ".web",
}


def __getattr__(name: str) -> t.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


_moved.install()

__all__ = [
    "Configuration",
    "ConfigurationError",
    "DEFAULT_TIMEOUT_SECONDS",
    "EventStore",
    "ExpiredToken",
    "HTMLTemplate",
    "InsecureTokenWarning",
    "InvalidToken",
    "MailTrack",
    "MailTrackError",
    "MailTrackWarning",
    "MissingSettingError",
    "Tracker",
    "TrackingMiddleware",
    "TrackingResult",
    "UnknownSettingError",
    "WeakSecretKeyWarning",
    "WebhookDeliveryError",
    "WebhookSender",
    "WebhookVerificationError",
    "adapt_html",
    "email_opened",
    "get_click_tracking_result",
    "get_click_tracking_url",
    "get_click_tracking_url_path",
    "get_open_tracking_pixel",
    "get_open_tracking_result",
    "get_open_tracking_url",
    "get_open_tracking_url_path",
    "is_safe_target",
    "link_clicked",
    "record_events",
    "send_webhook",
    "tracking_failed",
    "verify_webhook",
    "webhook_failed",
]
