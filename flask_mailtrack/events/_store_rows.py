"""Events as table rows: what the store checks before any backend sees an
event, and the recipient identity of unique counts."""

from __future__ import annotations

import math
import typing as t
from collections.abc import Mapping

from ._encoding import dumps
from ._sinks import EventRecord
from ._store_backend import StoredEvent

#: Metadata keys that identify a recipient, for unique counts.
DEFAULT_IDENTITY_KEYS = (
    "message_id",
    "recipient",
    "email",
    "user_id",
    "customer_id",
    "subscriber_id",
    "contact_id",
)


class RejectedEvent(ValueError):
    """An event the store can never take; the message says why."""


def _text(data: Mapping[str, t.Any], key: str, *, required: bool = False) -> t.Any:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise RejectedEvent(f"{key!r} is not a non-empty string")
    return value


def identity(metadata: Mapping[str, t.Any], identity_keys: t.Sequence[str]) -> str:
    """The recipient identity of ``metadata``: the values of the
    ``identity_keys`` present, or the whole metadata when none is."""
    present = [[key, metadata[key]] for key in identity_keys if key in metadata]
    return dumps(present if present else metadata, sort_keys=True)


def record_row(event: EventRecord, identity_keys: t.Sequence[str]) -> StoredEvent:
    """The row of a journaled event.

    :raise RejectedEvent: the event cannot be stored.
    """
    if event.data.get("id") != event.id:
        raise RejectedEvent("its id is not the id of its record")
    try:
        body = event.body.decode("utf-8")
    except UnicodeDecodeError:
        raise RejectedEvent("its body is not UTF-8") from None
    return event_row(event.data, body, identity_keys)


def event_row(
    data: Mapping[str, t.Any], body: str, identity_keys: t.Sequence[str]
) -> StoredEvent:
    """The row of the event ``data`` whose JSON is ``body``.

    :raise RejectedEvent: ``data`` lacks what the table needs.
    """
    if not isinstance(data, Mapping):
        raise RejectedEvent("not a JSON object")
    timestamp = data.get("timestamp")
    if (
        not isinstance(timestamp, (int, float))
        or isinstance(timestamp, bool)
        or not math.isfinite(timestamp)
    ):
        raise RejectedEvent("'timestamp' is not a number of seconds")
    metadata = data.get("metadata")
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, Mapping):
        raise RejectedEvent("'metadata' is not an object")
    return StoredEvent(
        _text(data, "id", required=True),
        _text(data, "type", required=True),
        int(timestamp),
        _text(data, "machine"),
        _text(data, "tracked_url"),
        identity(metadata, identity_keys),
        dumps(metadata),
        body,
        metadata,
    )
