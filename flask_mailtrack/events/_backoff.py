"""How long to wait before trying again: :func:`backoff`."""

from __future__ import annotations

import random


def backoff(attempts: int, base: float, maximum: float) -> float:
    """Seconds to wait after the ``attempts``-th failure in a row: ``base``,
    doubling with each failure up to ``maximum``, times a random factor
    between a half and one, so that many waiting for the same thing do not
    all try again at once."""
    delay = min(base * 2 ** min(attempts - 1, 62), maximum)
    return float(delay * random.uniform(0.5, 1.0))
