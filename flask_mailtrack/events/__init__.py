"""What happens to an event after the request.

A serving process appends each event to its :class:`Journal`; a
:class:`Worker` (``mailtrack worker``, or a thread of the serving process)
hands the journaled events to every :class:`Sink`: the
:class:`EventStore`, the :class:`WebhookSender`, the
:class:`RedisStreamSink`, or your own. A
:class:`Pipeline` puts the three together, as ``MAILTRACK_*`` settings do.
"""

from __future__ import annotations

from ..exceptions import WebhookVerificationError as WebhookVerificationError
from ._journal import Journal as Journal
from ._pipeline import Pipeline as Pipeline
from ._redis import RedisStreamSink as RedisStreamSink
from ._send_webhook import send_webhook as send_webhook
from ._send_webhook import WebhookResponse as WebhookResponse
from ._signatures import decode_secret as decode_secret
from ._signatures import generate_secret as generate_secret
from ._signatures import sign as sign
from ._signatures import signature_headers as signature_headers
from ._signatures import verify_webhook as verify_webhook
from ._sinks import EventRecord as EventRecord
from ._sinks import Sink as Sink
from ._store import EventStore as EventStore
from ._store_export import CSV_COLUMNS as CSV_COLUMNS
from ._webhooks import WebhookSender as WebhookSender
from ._worker import Worker as Worker

__all__ = [
    "CSV_COLUMNS",
    "EventRecord",
    "EventStore",
    "Journal",
    "Pipeline",
    "RedisStreamSink",
    "Sink",
    "WebhookResponse",
    "WebhookSender",
    "WebhookVerificationError",
    "Worker",
    "decode_secret",
    "generate_secret",
    "send_webhook",
    "sign",
    "signature_headers",
    "verify_webhook",
]
