"""An event store as flask-mailtrack 0.2 left it (schema version 1: the
events alone), for the migration tests."""

from __future__ import annotations

import contextlib
import sqlite3
import typing as t

from flask_mailtrack import EventStore
from flask_mailtrack.events._sinks import EventRecord

V1_SCHEMA = """
CREATE TABLE mailtrack_events (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    machine TEXT,
    tracked_url TEXT,
    identity TEXT NOT NULL,
    metadata TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX mailtrack_events_time ON mailtrack_events (occurred_at);
"""


def version_1_file(path: t.Any, events: t.Sequence[EventRecord]) -> None:
    """An event store as flask-mailtrack 0.2 left it: the events alone."""
    with EventStore(":memory:") as rows:
        values = [rows._record_row(event)[:8] for event in events]
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.executescript(V1_SCHEMA)
        db.executemany(
            "INSERT INTO mailtrack_events (event_id, type, occurred_at, machine,"
            " tracked_url, identity, metadata, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            values,
        )
