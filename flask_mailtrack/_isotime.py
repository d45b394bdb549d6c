"""Times as ISO 8601 text, both ways: how events, the ``mailtrack``
command and the server's query arguments write and read them.

Standard library only, so that every layer can use it.
"""

from __future__ import annotations

import datetime
import math


def format_time(timestamp: float | None) -> str | None:
    """``timestamp`` (seconds since the epoch) as ISO 8601 text in UTC with a
    ``Z``, such as ``2026-05-01T12:30:00Z``; ``None`` stays ``None``."""
    if timestamp is None:
        return None
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> float:
    """Seconds since the epoch from a number or an ISO 8601 date or time
    (UTC unless it has an offset).

    :raise ValueError: anything else.
    :raise OverflowError: a time out of range.
    """
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ValueError(f"Not a time: {text!r}")
        return value
    if text.endswith(("Z", "z")):
        # fromisoformat reads "Z" only from Python 3.11.
        text = text[:-1] + "+00:00"
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()
