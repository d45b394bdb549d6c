"""Times as ISO 8601 text, both ways: how events, the ``mailtrack``
command and the server's query arguments write and read them.

Standard library only, so that every layer can use it.
"""

from __future__ import annotations

import datetime
import functools
import math
import time


def format_time(timestamp: float | None) -> str | None:
    """``timestamp`` (seconds since the epoch) as ISO 8601 text in UTC with a
    ``Z``, such as ``2026-05-01T12:30:00Z``; ``None`` stays ``None``."""
    if timestamp is None:
        return None
    if type(timestamp) is int:
        # Every event formats its own time and its link's; hits come many to
        # a second, and the links of one mailing were made within a few.
        return _format_second(timestamp)
    return _format(timestamp)


def _format(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


#: Whole seconds, remembered: a known second costs a lookup, not a datetime.
_format_second = functools.lru_cache(maxsize=4096)(_format)


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


# Formatting a date costs more than the rest of the request data; hits come
# many to a second, so the text of the current second is kept.
_second: tuple[int, str] = (-1, "")


def format_time_ms(timestamp: float) -> str:
    """``timestamp`` as ISO 8601 text in UTC with milliseconds, such as
    ``2026-05-01T12:30:00.250Z``: the time of a tracking hit in its request
    data."""
    global _second
    second = int(timestamp)
    cached = _second
    if cached[0] != second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        cached = _second = (second, text)
    millis = int((timestamp - second) * 1000)
    return f"{cached[1]}.{millis:03d}Z"
