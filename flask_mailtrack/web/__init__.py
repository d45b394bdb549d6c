"""Serving tracking requests: the handler every adapter calls, its answers,
what a request says about its client, and the WSGI middleware.

Nothing here imports Flask.
"""

from __future__ import annotations

from ._clientinfo import anonymize_ip as anonymize_ip
from ._clientinfo import client_ip as client_ip
from ._clientinfo import PREFETCH_HEADERS as PREFETCH_HEADERS
from ._clientinfo import request_data as request_data
from ._handler import ALLOWED_METHODS as ALLOWED_METHODS
from ._handler import Answer as Answer
from ._handler import handle_request as handle_request
from ._handler import HandledRequest as HandledRequest
from ._handler import match as match
from ._handler import METHOD_NOT_ALLOWED_ANSWER as METHOD_NOT_ALLOWED_ANSWER
from ._handler import NOT_FOUND_ANSWER as NOT_FOUND_ANSWER
from ._handler import PIXEL_ANSWER as PIXEL_ANSWER
from ._handler import PIXEL_HEADERS as PIXEL_HEADERS
from ._handler import redirect_answer as redirect_answer
from ._handler import REDIRECT_HEADERS as REDIRECT_HEADERS
from ._middleware import TrackingMiddleware as TrackingMiddleware
from ._pixel import PIXEL_MIME_TYPE as PIXEL_MIME_TYPE
from ._pixel import TRACKING_PIXEL as TRACKING_PIXEL

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
    "TRACKING_PIXEL",
    "TrackingMiddleware",
    "anonymize_ip",
    "client_ip",
    "handle_request",
    "match",
    "redirect_answer",
    "request_data",
]
