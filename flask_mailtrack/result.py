"""What a tracking hit produced."""

from __future__ import annotations

import dataclasses
import os
import typing as t

from ._isotime import format_time

__all__ = [
    "EVENT_SCHEMA_VERSION",
    "TrackingResult",
]

#: Version of the event schema produced by :meth:`TrackingResult.to_json_dict`.
EVENT_SCHEMA_VERSION = 1


# Event ids are 128 random bits. Reading them from the OS in batches makes
# one id cost a slice instead of a system call, on every tracking hit.
_EVENT_IDS_PER_BATCH = 256
_event_ids: t.Iterator[str] = iter(())


def _new_event_id() -> str:
    global _event_ids
    # next() on a list iterator is atomic, so threads never share an id;
    # two threads refilling at once each take fresh random bytes.
    for random_hex in _event_ids:
        return "evt_" + random_hex
    batch = os.urandom(16 * _EVENT_IDS_PER_BATCH).hex()
    _event_ids = iter([batch[i : i + 32] for i in range(32, len(batch), 32)])
    return "evt_" + batch[:32]


def _forget_event_ids() -> None:
    # A forked child must not hand out the ids its parent still holds.
    global _event_ids
    _event_ids = iter(())


if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=_forget_event_ids)


@dataclasses.dataclass
class TrackingResult:
    """A decoded tracking token and, when it comes from a request, what that
    request looked like.

    The first seven fields are pytracking's.
    """

    #: Whether this is an open (pixel) event.
    is_open_tracking: bool = False
    #: Whether this is a click (redirect) event.
    is_click_tracking: bool = False
    #: The verified click target (``None`` for opens).
    tracked_url: str | None = None
    #: The webhook to notify: from the token when ``include_webhook_url``,
    #: else the configuration's ``webhook_url``.
    webhook_url: str | None = None
    #: The token's metadata merged with the configuration's default metadata.
    metadata: dict[str, t.Any] = dataclasses.field(default_factory=dict)
    #: What the request looked like: ``user_agent``, ``user_ip``, ``method``,
    #: ``accept``, prefetch headers. ``None`` when not decoded from a request.
    request_data: dict[str, t.Any] | None = None
    #: When the hit happened (or the token was decoded), in seconds since the
    #: epoch (UTC).
    timestamp: int = 0
    #: When the token was made (``None`` for legacy pytracking tokens).
    issued_at: int | None = None
    #: When the token expires, or ``None``.
    expires_at: int | None = None
    #: ``None`` for a person, or a label for machine traffic (``prefetch``,
    #: ``apple-mpp``, ``image-proxy``, ``scanner``, ``bot``). The response is
    #: the same either way; the label is for statistics.
    machine: str | None = None
    #: The names of the rules that labelled this hit as machine traffic.
    machine_reasons: list[str] = dataclasses.field(default_factory=list)
    #: Unique id of this event, stable across webhook retries (deduplicate
    #: on it).
    event_id: str = dataclasses.field(default_factory=_new_event_id)
    #: Whether the token was a legacy pytracking token.
    legacy: bool = False

    @property
    def event_type(self) -> str:
        """``"email.opened"`` or ``"link.clicked"``."""
        return "email.opened" if self.is_open_tracking else "link.clicked"

    def to_json_dict(self) -> dict[str, t.Any]:
        """The event as a JSON-serializable dict (schema version 1).

        Signals, webhooks and the event store all carry this shape. The
        pytracking keys are kept, so existing webhook receivers still work.
        """
        return {
            "schema": EVENT_SCHEMA_VERSION,
            "id": self.event_id,
            "type": self.event_type,
            "occurred_at": format_time(self.timestamp),
            "issued_at": format_time(self.issued_at),
            "expires_at": format_time(self.expires_at),
            "is_open_tracking": self.is_open_tracking,
            "is_click_tracking": self.is_click_tracking,
            "tracked_url": self.tracked_url,
            "webhook_url": self.webhook_url,
            "metadata": self.metadata,
            "request_data": self.request_data,
            "timestamp": self.timestamp,
            "machine": self.machine,
            "machine_reasons": list(self.machine_reasons),
            "legacy": self.legacy,
        }
