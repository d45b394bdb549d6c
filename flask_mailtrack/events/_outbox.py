"""The webhook outbox: :class:`Outbox`, events waiting for delivery in a
SQLite file shared by the processes of one server.

Table ``webhook_outbox`` holds the events to deliver, each with its next
attempt time and, while a process delivers it, a lease (owner and end
time), once per event and URL; ``webhook_dead_letter`` holds the events
given up. Deciding when to retry and when to give up is the sender's; this
module only keeps the rows.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import time
import typing as t
import uuid

from ._sqlite import ConnectionPool

# An event offered again (the worker re-reads a journal from its start after
# a restart) is queued once per URL, and not again once given up.
_ENQUEUE = (
    "INSERT OR IGNORE INTO webhook_outbox"
    " (event_id, url, body, created_at, next_attempt_at)"
    " SELECT ?1, ?2, ?3, ?4, ?4 WHERE NOT EXISTS (SELECT 1 FROM webhook_dead_letter"
    " WHERE event_id = ?1 AND url = ?2)"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    last_status INTEGER,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS webhook_outbox_due
    ON webhook_outbox (next_attempt_at);
CREATE TABLE IF NOT EXISTS webhook_dead_letter (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    failed_at REAL NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    last_status INTEGER,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS webhook_dead_letter_event
    ON webhook_dead_letter (event_id, url);
-- Journal imports of 0.1 (the worker reads journals now).
DROP TABLE IF EXISTS webhook_journals;
"""

#: Makes (event id, URL) unique in an outbox of 0.1, which allowed
#: duplicates: the oldest row of each pair is kept.
_UNIQUE_INDEX = "webhook_outbox_event"
_MIGRATE = f"""
DELETE FROM webhook_outbox WHERE id NOT IN
    (SELECT MIN(id) FROM webhook_outbox GROUP BY event_id, url);
CREATE UNIQUE INDEX {_UNIQUE_INDEX} ON webhook_outbox (event_id, url);
"""


class Row(t.NamedTuple):
    """An event claimed for delivery."""

    id: int
    event_id: str
    url: str
    body: bytes
    created_at: float
    attempts: int


class Retry(t.NamedTuple):
    """A failed attempt: when to try the row again, and why it failed."""

    row_id: int
    attempts: int
    next_at: float
    status: int | None
    error: str | None


#: Keys of :meth:`Outbox.dead_letters`, in the order of the query's columns.
_DEAD_LETTER_KEYS = (
    "event_id",
    "url",
    "payload",
    "attempts",
    "reason",
    "last_status",
    "last_error",
    "created_at",
    "failed_at",
)


class Outbox:
    """The outbox tables in the SQLite file ``path`` (or ``":memory:"``).

    Rows are claimed with a lease: a claim's owner is the only one to
    update or remove its rows until the lease runs out, so every method
    that changes a claimed row takes the owner.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.db = ConnectionPool(path, _SCHEMA)
        self._claims = itertools.count()
        with self.db.connection() as connection:
            if not _has_unique_index(connection):
                connection.execute("BEGIN IMMEDIATE")
                if not _has_unique_index(connection):  # another process won
                    for statement in _MIGRATE.split(";")[:-1]:
                        connection.execute(statement)
                connection.execute("COMMIT")

    @property
    def path(self) -> str:
        """The outbox file (or ``":memory:"``)."""
        return self.db.path

    # -- queueing ---------------------------------------------------------------

    def insert(self, rows: t.Iterable[tuple[str, str, bytes, float]]) -> int:
        """Queue events, due at once, in one transaction: ``(event id, URL,
        body, created at)`` each. A pair already queued, or given up, is
        skipped.

        :return: How many were queued.
        """
        with self.db.transaction() as connection:
            before = connection.total_changes
            connection.executemany(_ENQUEUE, rows)
            return connection.total_changes - before

    # -- claims -----------------------------------------------------------------

    def next_attempt_at(self) -> float | None:
        """When the next event is due, ``None`` when the outbox is empty."""
        with self.db.connection() as connection:
            # MIN over the index; due rows that could not be claimed are
            # leased by another process, so they are not worth waking for.
            row = connection.execute(
                "SELECT MIN(next_attempt_at) FROM webhook_outbox"
            ).fetchone()
        return t.cast("float | None", row[0])

    def claim(self, batch_size: int, lease_seconds: float) -> tuple[str, list[Row]]:
        """Lease at most ``batch_size`` due events; return the lease's owner
        and the events."""
        owner = f"{os.getpid()}-{uuid.uuid4().hex}-{next(self._claims)}"
        now = time.time()
        # BEGIN IMMEDIATE holds the write lock from the SELECT to the
        # UPDATE, so two processes never claim the same row while its lease
        # runs. (No index on lease_owner: it would triple the cost of the
        # insert on the request path.)
        with self.db.transaction() as connection:
            ids = [
                row[0]
                for row in connection.execute(
                    "SELECT id FROM webhook_outbox"
                    " WHERE next_attempt_at <= ? AND lease_until <= ?"
                    " ORDER BY next_attempt_at LIMIT ?",
                    (now, now, batch_size),
                )
            ]
            if not ids:
                return owner, []
            marks = ",".join("?" * len(ids))
            connection.execute(
                "UPDATE webhook_outbox SET lease_owner = ?, lease_until = ?"
                f" WHERE id IN ({marks}) AND lease_until <= ?",
                (owner, now + lease_seconds, *ids, now),
            )
            rows = connection.execute(
                "SELECT id, event_id, url, body, created_at, attempts"
                f" FROM webhook_outbox WHERE id IN ({marks}) AND lease_owner = ?"
                " ORDER BY id",
                (*ids, owner),
            ).fetchall()
        return owner, [Row(*row) for row in rows]

    def delete(self, ids: t.Sequence[int]) -> None:
        """Remove delivered events."""
        marks = ",".join("?" * len(ids))
        with self.db.connection() as connection:
            connection.execute(f"DELETE FROM webhook_outbox WHERE id IN ({marks})", ids)

    def renew(self, owner: str, ids: t.Sequence[int], lease_seconds: float) -> float:
        """Extend the lease of ``owner`` on ``ids``; return its new end."""
        lease_until = time.time() + lease_seconds
        with self.db.connection() as connection:
            connection.executemany(
                "UPDATE webhook_outbox SET lease_until = ?"
                " WHERE id = ? AND lease_owner = ?",
                [(lease_until, row_id, owner) for row_id in ids],
            )
        return lease_until

    def release(self, owner: str, ids: t.Sequence[int]) -> None:
        """Give the events back, due as they were, to whoever claims next."""
        with self.db.connection() as connection:
            connection.executemany(
                "UPDATE webhook_outbox SET lease_owner = NULL, lease_until = 0"
                " WHERE id = ? AND lease_owner = ?",
                [(row_id, owner) for row_id in ids],
            )

    def reschedule(self, owner: str, retries: t.Sequence[Retry]) -> None:
        """Release failed events, each due again at its ``next_at``, in one
        transaction."""
        with self.db.transaction() as connection:
            connection.executemany(
                "UPDATE webhook_outbox SET attempts = ?, next_attempt_at = ?,"
                " lease_owner = NULL, lease_until = 0, last_status = ?,"
                " last_error = ? WHERE id = ? AND lease_owner = ?",
                [(*retry[1:], retry.row_id, owner) for retry in retries],
            )

    def dead_letter(
        self,
        owner: str,
        row: Row,
        attempts: int,
        reason: str,
        status: int | None,
        error: str | None,
    ) -> bool:
        """Move a claimed event to the dead letters.

        :return: Whether it moved (``False`` when the lease was lost).
        """
        with self.db.transaction() as connection:
            moved = connection.execute(
                "DELETE FROM webhook_outbox WHERE id = ? AND lease_owner = ?",
                (row.id, owner),
            ).rowcount
            if moved:
                connection.execute(
                    "INSERT INTO webhook_dead_letter (event_id, url, body,"
                    " created_at, failed_at, attempts, reason, last_status,"
                    " last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        row.event_id,
                        row.url,
                        row.body,
                        row.created_at,
                        time.time(),
                        attempts,
                        reason,
                        status,
                        error,
                    ),
                )
        return bool(moved)

    # -- inspection -------------------------------------------------------------

    def count(self) -> int:
        """Events waiting, due or not."""
        with self.db.connection() as connection:
            row = connection.execute("SELECT COUNT(*) FROM webhook_outbox").fetchone()
        return int(row[0])

    def count_due(self, now: float) -> int:
        """Events due for an attempt at ``now``."""
        with self.db.connection() as connection:
            due = connection.execute(
                "SELECT COUNT(*) FROM webhook_outbox WHERE next_attempt_at <= ?",
                (now,),
            ).fetchone()[0]
        return int(due)

    def dead_letters(self, limit: int) -> list[dict[str, t.Any]]:
        """See :meth:`WebhookSender.dead_letters`."""
        with self.db.connection() as connection:
            rows = connection.execute(
                "SELECT event_id, url, body, attempts, reason, last_status,"
                " last_error, created_at, failed_at FROM webhook_dead_letter"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        letters = [dict(zip(_DEAD_LETTER_KEYS, row)) for row in rows]
        for letter in letters:
            letter["payload"] = json.loads(letter["payload"])
        return letters

    def requeue_dead_letters(self, now: float) -> int:
        """Move every dead letter back, due at ``now`` and created then."""
        with self.db.transaction() as connection:
            count = connection.execute(
                "INSERT OR IGNORE INTO webhook_outbox"
                " (event_id, url, body, created_at, next_attempt_at)"
                " SELECT event_id, url, body, ?, ? FROM webhook_dead_letter"
                " ORDER BY id",
                (now, now),
            ).rowcount
            connection.execute("DELETE FROM webhook_dead_letter")
        return int(count)


def _has_unique_index(connection: sqlite3.Connection) -> bool:
    row = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?",
        (_UNIQUE_INDEX,),
    ).fetchone()
    return row is not None
