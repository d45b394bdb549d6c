"""Faults, with real processes: nothing answered is lost, nothing is stored
twice.

gunicorn (2 workers, sync and gthread) serves ``create_app()`` with
``MAILTRACK_WORKER=external``, so its processes only journal; one
``mailtrack worker`` feeds the SQLite store and posts every event to a
webhook receiver in its own process, which verifies each signature with the
``standardwebhooks`` package. During a few thousand distinct hits a gunicorn
worker is SIGKILLed, the worker is SIGKILLed and started again, and the
receiver is stopped for a few seconds; then everything gets SIGTERM and
starts again. Afterwards the store holds every answered hit exactly once,
the receiver got every stored event id, and no journal file, outbox row or
lease is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import time
import typing as t

import pytest

from _fleet import answers
from _fleet import Fleet
from _fleet import Load
from _fleet import wait
from _servers import free_port
from _webhook_receiver import SECRET as WEBHOOK_SECRET

HITS = 3000
TESTS = pathlib.Path(__file__).resolve().parent.parent


class WebhookFleet(Fleet):
    """The fleet with an SQLite store and a webhook receiver process."""

    def __init__(self, tmp: pathlib.Path, worker_class: str) -> None:
        self.receiver_port = free_port()
        super().__init__(
            tmp,
            worker_class,
            {
                "MAILTRACK_DATABASE": str(tmp / "data" / "events.sqlite3"),
                "MAILTRACK_WEBHOOK_URL": f"http://127.0.0.1:{self.receiver_port}/hook",
                "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
            },
        )
        self.database = self.data / "events.sqlite3"
        self.ids_file = tmp / "received.txt"
        self.receiver: subprocess.Popen[bytes] | None = None

    def start_receiver(self) -> None:
        script = str(TESTS / "_receiver_process.py")
        self.receiver = self.start(
            "receiver",
            [sys.executable, script, str(self.receiver_port), WEBHOOK_SECRET]
            + [str(self.ids_file)],
        )
        self.others.append(self.receiver)
        wait(lambda: answers(self.receiver_port), "the receiver", 30)

    # -- what the processes left ------------------------------------------------

    def query(self, sql: str, *parameters: t.Any) -> list[t.Any]:
        with contextlib.closing(sqlite3.connect(self.database, timeout=30)) as db:
            return db.execute(sql, parameters).fetchall()

    def stored(self) -> list[tuple[str, int]]:
        """``(event id, metadata n)`` of every stored event."""
        rows = self.query("SELECT event_id, metadata FROM mailtrack_events")
        return [(event_id, json.loads(metadata)["n"]) for event_id, metadata in rows]

    def leased(self) -> set[int]:
        """The outbox rows claimed by a worker now (none before a worker
        made the outbox: on a loaded machine it may not have yet)."""
        try:
            rows = self.query(
                "SELECT id FROM webhook_outbox WHERE lease_until > ?", time.time()
            )
        except sqlite3.OperationalError as e:
            if "no such table" not in str(e):
                raise
            return set()
        return {row_id for (row_id,) in rows}

    def received(self) -> list[str]:
        if not self.ids_file.exists():
            return []
        return self.ids_file.read_text(encoding="ascii").split("\n")[:-1]


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_nothing_answered_is_lost_nothing_is_stored_twice(
    tmp_path: pathlib.Path, worker_class: str
) -> None:
    fleet = WebhookFleet(tmp_path, worker_class)
    paths = fleet.pixel_paths(HITS)
    try:
        fleet.start_receiver()
        fleet.start_server()
        fleet.start_worker()
        load = Load(fleet.server_port, paths)
        load.start()

        wait(lambda: load.done() >= HITS // 4, "a quarter of the hits")
        os.kill(fleet.server_workers()[0], signal.SIGKILL)

        wait(lambda: load.done() >= HITS // 2, "half of the hits")
        fleet.stop(fleet.worker, signal.SIGKILL)
        # What the killed worker had claimed waits for its lease to expire
        # (it cannot say it died); nothing else may.
        orphaned = fleet.leased()
        fleet.start_worker()

        wait(lambda: load.done() >= HITS * 3 // 4, "three quarters of the hits")
        fleet.stop(fleet.receiver, signal.SIGKILL)
        time.sleep(3)  # the scenario: the endpoint is down for a few seconds
        fleet.start_receiver()

        load.join()
        # A graceful stop of everything: nothing may stay claimed.
        fleet.stop_all()
        assert fleet.leased() <= orphaned, "a SIGTERMed worker left leases behind"

        fleet.start_receiver()
        fleet.start_server()
        fleet.start_worker()
        answered = load.answered
        assert len(answered) >= HITS * 0.9, "the load was mostly refused"

        def settled() -> bool:
            stored = {n for _, n in fleet.stored()}
            if not answered <= stored:
                return False
            ids = {event_id for event_id, _ in fleet.stored()}
            return (
                ids <= set(fleet.received())
                and not fleet.journal_files()
                and fleet.query("SELECT COUNT(*) FROM webhook_outbox") == [(0,)]
            )

        wait(settled, "every event in the store and at the receiver")
        stored = fleet.stored()
        numbers = [n for _, n in stored]
        assert len(numbers) == len(set(numbers)), "a hit stored twice"
        assert len({event_id for event_id, _ in stored}) == len(stored)
        assert answered <= set(numbers)
        received = fleet.received()
        assert not [line for line in received if line.startswith("BAD")]
        assert {event_id for event_id, _ in stored} <= set(received)
        assert fleet.query("SELECT COUNT(*) FROM webhook_dead_letter") == [(0,)]
    except BaseException:
        print(fleet.output())
        raise
    finally:
        fleet.stop_all()
