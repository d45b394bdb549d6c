"""What the journal and worker tests share: a sink that keeps what it is
given (a stand-in for a user's sink), events, and waiting with a deadline."""

from __future__ import annotations

import json
import os
import threading
import time
import typing as t

from flask_mailtrack.events._journal_files import SUFFIX
from flask_mailtrack.events._sinks import EventRecord

WAIT = 20.0  # seconds before a test gives up waiting; never reached when passing


class ListSink:
    """A sink that keeps every batch; raises while ``failing`` is set."""

    def __init__(self, name: str = "list") -> None:
        self.name = name
        self.batches: list[list[EventRecord]] = []
        self.failing = False
        self.failures = 0
        self.closed = False
        self.lock = threading.Lock()

    def write(self, events: t.Sequence[EventRecord]) -> None:
        with self.lock:
            if self.failing:
                self.failures += 1
                raise ConnectionError(f"{self.name} is down")
            self.batches.append(list(events))

    def close(self) -> None:
        self.closed = True

    @property
    def ids(self) -> list[str]:
        with self.lock:
            return [event.id for batch in self.batches for event in batch]


def event_id(n: int) -> str:
    return f"evt_{n:032x}"


def body(n: int) -> bytes:
    """A schema-1 event body (not every key, the worker needs only ``id``)."""
    event = {"schema": 1, "id": event_id(n), "type": "email.opened", "metadata": {}}
    return json.dumps(event, separators=(",", ":")).encode()


def journal_files(directory: str) -> list[str]:
    if not os.path.isdir(directory):
        return []
    return sorted(name for name in os.listdir(directory) if name.endswith(SUFFIX))


def wait_until(predicate: t.Callable[[], object], what: str = "timed out") -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)
