"""A store filled like a sender's: a few thousand sends, opens and clicks of
several campaigns over several days, people and machines, and events with
hostile metadata and URLs, for the dashboard's tests."""

from __future__ import annotations

import json
import random
import typing as t

from flask_mailtrack import EventStore
from flask_mailtrack import TrackingResult
from flask_mailtrack.events._encoding import encode_event
from flask_mailtrack.events._sinks import EventRecord
from flask_mailtrack.events._store_backend import SENT

#: Metadata and URLs an attacker could put in links: they must show as text.
HOSTILE_CAMPAIGN = '<script>alert("campaign")</script>'
HOSTILE_URL = "javascript:alert(document.domain)//"
HOSTILE_RECIPIENT = '"><img src=x onerror=alert(1)>'

#: campaign -> (recipients, days since it was sent, whether sends are recorded)
CAMPAIGNS = {
    "spring-sale": (600, 9, True),
    "weekly-digest": (500, 3, True),
    "welcome": (300, 1, False),
    HOSTILE_CAMPAIGN: (20, 0, False),
}

MACHINES = ("apple-mpp", "image-proxy", "scanner", "prefetch", "bot")


def event_record(result: TrackingResult, kind: str | None = None) -> EventRecord:
    data = result.to_json_dict()
    if kind is not None:
        data["type"] = kind
    body = encode_event(data)
    return EventRecord(data["id"], body, json.loads(body))


def fill(store: EventStore, now: int, *, seed: int = 16) -> int:
    """Write the events into ``store``, the latest a few minutes before
    ``now``; return how many."""
    rng = random.Random(seed)
    records: list[EventRecord] = []
    for campaign, (recipients, days_ago, with_sends) in CAMPAIGNS.items():
        sent_at = now - days_ago * 86400 - 3600
        for n in range(recipients):
            recipient = f"r{n}@example.com"
            if campaign == HOSTILE_CAMPAIGN and n == 0:
                recipient = HOSTILE_RECIPIENT
            metadata = {"campaign": campaign, "recipient": recipient}
            if with_sends:
                records.append(
                    event_record(
                        TrackingResult(metadata=metadata, timestamp=sent_at),
                        SENT,
                    )
                )
            # Opens and clicks spread over the hours and days after sending.
            when = sent_at + int(rng.expovariate(1 / 20000))
            machine = rng.choice(MACHINES) if rng.random() < 0.25 else None
            if rng.random() < 0.6 and when < now:
                records.append(
                    event_record(
                        TrackingResult(
                            is_open_tracking=True,
                            metadata=metadata,
                            timestamp=when,
                            machine=machine,
                            machine_reasons=[machine] if machine else [],
                        )
                    )
                )
                if rng.random() < 0.4 and when + 60 < now:
                    url = (
                        HOSTILE_URL
                        if campaign == HOSTILE_CAMPAIGN
                        else f"https://shop.example.com/{campaign}/{rng.randint(1, 6)}"
                    )
                    records.append(
                        event_record(
                            TrackingResult(
                                is_click_tracking=True,
                                tracked_url=url,
                                metadata=metadata,
                                timestamp=when + 60,
                            )
                        )
                    )
    # The latest events: a few minutes ago, so that "1h" has some.
    for n in range(30):
        metadata = {"campaign": "welcome", "recipient": f"late{n}@example.com"}
        records.append(
            event_record(
                TrackingResult(
                    is_open_tracking=True, metadata=metadata, timestamp=now - 60 * n
                )
            )
        )
    for start in range(0, len(records), 500):
        store.write(records[start : start + 500])
    return len(records)


def filters(campaign: str | None) -> dict[str, t.Any]:
    """The store's metadata filters of one campaign page."""
    return {} if campaign is None else {"campaign": campaign}
