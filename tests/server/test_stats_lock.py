"""A database held locked holds up no tracking hit: hits only append to the
journal, whatever the store and the worker are waiting for; the stats pages
only read, so a writer's lock does not hold them up either (WAL)."""

from __future__ import annotations

import base64
import os
import pathlib
import sqlite3
import threading

from flask_mailtrack import Configuration
from flask_mailtrack import EventStore
from flask_mailtrack import Tracker
from flask_mailtrack.server import close_app
from flask_mailtrack.server import create_app

from _apps import drain

KEY = "lock-test-signing-key-0123456789abcdef"
PASSWORD = "correct horse"
HITS = 50
WAIT = 60.0


def _journaled(folder: pathlib.Path) -> int:
    return sum(
        (folder / name).read_bytes().count(b"\n")
        for name in os.listdir(folder)
        if name.endswith(".journal")
    )


def test_a_locked_database_delays_no_tracking_hit(tmp_path: pathlib.Path) -> None:
    database = tmp_path / "events.sqlite3"
    journal = tmp_path / "journal"
    EventStore(database).close()  # the schema exists
    app = create_app(
        {
            "MAILTRACK_SECRET_KEY": KEY,
            "MAILTRACK_DATABASE": str(database),
            "MAILTRACK_JOURNAL": str(journal),
            "MAILTRACK_WORKER": "embedded",
            "MAILTRACK_STATS_PASSWORD": PASSWORD,
        }
    )
    tracker = Tracker(
        Configuration(
            secret_key=KEY, base_open_tracking_url="http://localhost/mailtrack/o/"
        )
    )
    auth = "Basic " + base64.b64encode(f"any:{PASSWORD}".encode()).decode()
    # A writer in the middle of a long transaction (an operator's session, a
    # slow batch): every other writer, the worker included, waits for it.
    locker = sqlite3.connect(database, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    locker.execute("DELETE FROM mailtrack_events")
    stats: dict[str, int] = {}

    def read_stats() -> None:
        with app.test_client() as client:
            response = client.get("/stats.json", headers={"Authorization": auth})
            stats["status"] = response.status_code
            stats["opens"] = response.get_json()["opens"]["total"]

    try:
        with app.test_client() as client:
            for n in range(HITS):
                url = tracker.open_url({"n": n})
                assert client.get(url[len("http://localhost") :]).status_code == 200
        reader = threading.Thread(target=read_stats)
        reader.start()
        reader.join(WAIT)
        # Everything was answered while the lock was held: the hits are in
        # the journal, not yet in the store, and the stats were read.
        assert stats == {"status": 200, "opens": 0}
        assert _journaled(journal) == HITS
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    drain(app, WAIT)
    with EventStore(database) as store:
        assert store.count() == HITS
    close_app(app)
