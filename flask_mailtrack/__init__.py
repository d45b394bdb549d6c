"""Email open and click tracking for Flask and any WSGI app."""

from __future__ import annotations

from .compat import adapt_html as adapt_html
from .compat import get_click_tracking_result as get_click_tracking_result
from .compat import get_click_tracking_url as get_click_tracking_url
from .compat import get_open_tracking_pixel as get_open_tracking_pixel
from .compat import get_open_tracking_result as get_open_tracking_result
from .compat import get_open_tracking_url as get_open_tracking_url
from .compat import send_webhook as send_webhook
from .configuration import Configuration as Configuration
from .exceptions import ExpiredToken as ExpiredToken
from .exceptions import InsecureTokenWarning as InsecureTokenWarning
from .exceptions import InvalidToken as InvalidToken
from .exceptions import MailTrackError as MailTrackError
from .extension import MailTrack as MailTrack
from .html import HTMLTemplate as HTMLTemplate
from .middleware import TrackingMiddleware as TrackingMiddleware
from .result import TrackingResult as TrackingResult
from .signals import email_opened as email_opened
from .signals import link_clicked as link_clicked
from .signals import record_events as record_events
from .signals import tracking_failed as tracking_failed
from .signals import webhook_failed as webhook_failed
from .store import EventStore as EventStore
from .tracker import Tracker as Tracker
from .urls import is_safe_target as is_safe_target
from .webhooks import verify_webhook as verify_webhook
from .webhooks import WebhookSender as WebhookSender

__all__ = [
    "Configuration",
    "EventStore",
    "ExpiredToken",
    "HTMLTemplate",
    "InsecureTokenWarning",
    "InvalidToken",
    "MailTrack",
    "MailTrackError",
    "Tracker",
    "TrackingMiddleware",
    "TrackingResult",
    "WebhookSender",
    "adapt_html",
    "email_opened",
    "get_click_tracking_result",
    "get_click_tracking_url",
    "get_open_tracking_pixel",
    "get_open_tracking_result",
    "get_open_tracking_url",
    "is_safe_target",
    "link_clicked",
    "record_events",
    "send_webhook",
    "tracking_failed",
    "verify_webhook",
    "webhook_failed",
]
