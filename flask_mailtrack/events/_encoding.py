"""Events as compact JSON, one way for the webhooks and the event store.

Event schema (version 1)
------------------------

Every event (webhook body, :class:`~flask_mailtrack.EventStore` record,
:meth:`TrackingResult.to_json_dict() <flask_mailtrack.TrackingResult.to_json_dict>`)
is one JSON object:

``schema``
    ``1``. Incremented only for incompatible changes; new keys may appear
    in the same version, so ignore keys you do not know.
``id``
    The event id, ``evt_`` and 32 hex digits. Unique per event and the same
    on every delivery attempt of it (it is also the ``webhook-id`` header):
    deliveries are *at least once*, so deduplicate on it.
``type``
    ``"email.opened"``, ``"link.clicked"``, or ``"email.sent"`` for an email
    sent by an integration (one per recipient; ``request_data`` is
    ``null``, ``occurred_at`` is when the mail host took it, and the
    metadata has the message's ``message_id``).
``occurred_at``
    When the pixel was loaded or the link followed, ISO 8601 in UTC
    (``"2026-05-04T10:11:12Z"``).
``issued_at``, ``expires_at``
    When the tracking link was made and when it stops working (``null`` for
    legacy pytracking tokens, or no expiry).
``metadata``
    The object given when the link was made, plus the configuration's
    default metadata.
``tracked_url``
    The click target (``null`` for opens).
``request_data``
    What the request looked like, after IP anonymisation when enabled:
    ``user_agent``, ``user_ip``, ``method`` and prefetch headers; ``null``
    when the event was not made from a request.
``machine``, ``machine_reasons``
    ``null`` when the hit looks like a person; otherwise a label
    (``"prefetch"``, ``"apple-mpp"``, ``"image-proxy"``, ``"scanner"``,
    ``"bot"``) and the names of the rules that matched. Machine hits get the
    same response as people; the label is there for statistics.
``is_open_tracking``, ``is_click_tracking``, ``timestamp``, ``webhook_url``, ``legacy``
    pytracking's keys, kept so that existing receivers keep working
    (``timestamp`` is ``occurred_at`` in seconds since the epoch).
"""

from __future__ import annotations

import json
import typing as t
from collections.abc import Mapping

#: Reused: json.dumps with options builds a new encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_SORTED_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, sort_keys=True
)


def dumps(value: t.Any, *, sort_keys: bool = False) -> str:
    """``value`` as JSON without spaces, non-ASCII characters kept."""
    return (_SORTED_ENCODER if sort_keys else _ENCODER).encode(value)


def encode_event(event: Mapping[str, t.Any]) -> bytes:
    """The body of an event: compact JSON in UTF-8."""
    return _ENCODER.encode(event).encode("utf-8")
