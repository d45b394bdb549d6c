"""Realistic tracking events for the store benchmarks: a recipient among
200,000, a campaign among 8, a message id, request data like a pixel hit's,
one click in four and one machine (Apple Mail Privacy Protection) in five,
in time order over 60 days, as a journal holds them."""

from __future__ import annotations

import json
import time
import typing as t

from flask_mailtrack import TrackingResult
from flask_mailtrack.events._encoding import encode_event
from flask_mailtrack.events._sinks import EventRecord

#: The events ``make_bodies`` spreads over ``SPREAD`` seconds.
STORED_EVENTS = 2_000_000
RECIPIENTS = 200_000
CAMPAIGNS = 8
SPREAD = 60 * 86400

SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.4 Safari/605.1.15"
)


def make_bodies(start: int, count: int) -> t.Iterator[bytes]:
    """Journal bodies of events ``start`` to ``start + count``."""
    first = int(time.time()) - SPREAD
    for n in range(start, start + count):
        click = n % 4 == 3
        recipient = (n * 7919) % RECIPIENTS
        result = TrackingResult(
            is_open_tracking=not click,
            is_click_tracking=click,
            tracked_url=f"https://shop.example.com/p/{n % 40}?utm_source=mail"
            if click
            else None,
            metadata={
                "recipient": f"user{recipient}@example.com",
                "campaign": f"spring-{n % CAMPAIGNS}",
                "message_id": f"<{recipient}.{n % CAMPAIGNS}@mail.example.com>",
            },
            request_data={
                "user_agent": SAFARI,
                "user_ip": "203.0.113.0",
                "method": "GET",
            },
            # In time order, as a journal holds them: 60 days make
            # 2,000,000 events, one every 2.6 seconds.
            timestamp=first + n * SPREAD // STORED_EVENTS,
            machine="apple-mpp" if n % 5 == 0 else None,
            machine_reasons=["apple-mpp-address"] if n % 5 == 0 else [],
        )
        yield encode_event(result.to_json_dict())


def records(start: int, count: int) -> list[EventRecord]:
    out = []
    for body in make_bodies(start, count):
        data = json.loads(body)
        out.append(EventRecord(data["id"], body, data))
    return out
