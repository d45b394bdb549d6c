"""What happens to an event after the request: the event store, webhooks,
and the journal they are fed from."""

from __future__ import annotations

from ..exceptions import WebhookVerificationError as WebhookVerificationError
from ._send_webhook import send_webhook as send_webhook
from ._send_webhook import WebhookResponse as WebhookResponse
from ._signatures import decode_secret as decode_secret
from ._signatures import generate_secret as generate_secret
from ._signatures import sign as sign
from ._signatures import signature_headers as signature_headers
from ._signatures import verify_webhook as verify_webhook
from ._store import EventStore as EventStore
from ._store_export import CSV_COLUMNS as CSV_COLUMNS
from ._webhooks import WebhookSender as WebhookSender

__all__ = [
    "CSV_COLUMNS",
    "EventStore",
    "WebhookResponse",
    "WebhookSender",
    "WebhookVerificationError",
    "decode_secret",
    "generate_secret",
    "send_webhook",
    "sign",
    "signature_headers",
    "verify_webhook",
]
