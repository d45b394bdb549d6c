"""Serving tracking requests: the sans-IO handler every adapter calls, its
answers, what a request says about its client, and the WSGI side (the
middleware, the signals of an outcome, the werkzeug-request convenience).

Nothing here imports Flask.
"""

from __future__ import annotations

from ..traffic import PREFETCH_HEADERS as PREFETCH_HEADERS
from ._answers import ALLOWED_METHODS as ALLOWED_METHODS
from ._answers import Answer as Answer
from ._answers import METHOD_NOT_ALLOWED_ANSWER as METHOD_NOT_ALLOWED_ANSWER
from ._answers import NOT_FOUND_ANSWER as NOT_FOUND_ANSWER
from ._answers import PIXEL_ANSWER as PIXEL_ANSWER
from ._answers import PIXEL_HEADERS as PIXEL_HEADERS
from ._answers import redirect_answer as redirect_answer
from ._answers import REDIRECT_HEADERS as REDIRECT_HEADERS
from ._clientinfo import anonymize_ip as anonymize_ip
from ._clientinfo import client_address as client_address
from ._clientinfo import client_ip as client_ip
from ._clientinfo import read_hit as read_hit
from ._clientinfo import request_data as request_data
from ._clientinfo import request_data_of as request_data_of
from ._handler import decide as decide
from ._handler import HandledRequest as HandledRequest
from ._handler import match as match
from ._handler import Routes as Routes
from ._middleware import TrackingMiddleware as TrackingMiddleware
from ._pixel import PIXEL_MIME_TYPE as PIXEL_MIME_TYPE
from ._pixel import TRACKING_PIXEL as TRACKING_PIXEL
from ._wsgi import handle_request as handle_request
from ._wsgi import send_signals as send_signals

__all__ = [
    "ALLOWED_METHODS",
    "Answer",
    "HandledRequest",
    "METHOD_NOT_ALLOWED_ANSWER",
    "NOT_FOUND_ANSWER",
    "PIXEL_ANSWER",
    "PIXEL_HEADERS",
    "PIXEL_MIME_TYPE",
    "PREFETCH_HEADERS",
    "REDIRECT_HEADERS",
    "Routes",
    "TRACKING_PIXEL",
    "TrackingMiddleware",
    "anonymize_ip",
    "client_address",
    "decide",
    "handle_request",
    "match",
    "read_hit",
    "redirect_answer",
    "request_data_of",
    "send_signals",
]
