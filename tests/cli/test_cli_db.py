"""``mailtrack db upgrade`` and ``flask mailtrack db upgrade``: the event
store's schema migrated by hand, for operators who turn off migrating on
connect (``MAILTRACK_DATABASE_MIGRATE=false``)."""

from __future__ import annotations

import json
import pathlib

from click.testing import CliRunner
from click.testing import Result
from flask import Flask
from flask.cli import ScriptInfo
from flask_mailtrack import EventStore
from flask_mailtrack import MailTrack
from flask_mailtrack import TrackingResult
from flask_mailtrack.cli import mailtrack_group
from flask_mailtrack.cli import main
from flask_mailtrack.events._encoding import encode_event
from flask_mailtrack.events._sinks import EventRecord
from flask_mailtrack.server import close_app

from _store_v1 import version_1_file

KEY = "db-test-secret-key-0123456789abcdef"
T0 = 1_700_000_000


def opens(n: int) -> list[EventRecord]:
    records = []
    for i in range(n):
        result = TrackingResult(
            is_open_tracking=True,
            timestamp=T0 + i,
            metadata={"campaign": "spring", "recipient": f"r{i % 3}"},
        )
        body = encode_event(result.to_json_dict())
        records.append(EventRecord(result.event_id, body, json.loads(body)))
    return records


def standalone(args: list[str], database: str, **env: str) -> Result:
    return CliRunner().invoke(main, args, env={"MAILTRACK_DATABASE": database, **env})


def test_db_upgrade_migrates_a_version_1_file(tmp_path: pathlib.Path) -> None:
    database = str(tmp_path / "old.sqlite3")
    version_1_file(database, opens(5))
    by_hand = {"MAILTRACK_DATABASE_MIGRATE": "false"}
    refused = standalone(["stats"], database, **by_hand)
    assert refused.exit_code == 1
    assert "mailtrack db upgrade" in refused.output
    result = standalone(["db", "upgrade"], database, **by_hand)
    assert result.exit_code == 0, result.output
    assert f"The event store {database} is at schema version 3." in result.output
    stats = standalone(["stats", "--json", "--filter", "campaign=spring"], database)
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.output)["opens"]["unique"] == 3
    again = standalone(["db", "upgrade"], database, **by_hand)
    assert again.exit_code == 0 and "version 3" in again.output


def test_db_upgrade_creates_a_new_database(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "new" / "events.sqlite3"
    result = standalone(["db", "upgrade"], f"sqlite:///{path}")
    assert result.exit_code == 0, result.output
    with EventStore(path, migrate=False) as store:
        assert store.schema_version() == 3


def test_db_upgrade_rolls_up_new_dimensions(tmp_path: pathlib.Path) -> None:
    database = str(tmp_path / "e.sqlite3")
    with EventStore(database) as store:
        store.write(opens(6))
    by_hand = {
        "MAILTRACK_DATABASE_MIGRATE": "false",
        "MAILTRACK_DIMENSIONS": "campaign,recipient",
    }
    assert standalone(["stats"], database, **by_hand).exit_code == 1
    assert standalone(["db", "upgrade"], database, **by_hand).exit_code == 0
    stats = standalone(["stats", "--json", "--filter", "recipient=r1"], database)
    assert json.loads(stats.output)["opens"]["total"] == 2


def test_flask_db_upgrade(tmp_path: pathlib.Path) -> None:
    database = str(tmp_path / "old.sqlite3")
    version_1_file(database, opens(4))
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=KEY,
        MAILTRACK_DATABASE=database,
        MAILTRACK_DATABASE_MIGRATE=False,
        # The servers only journal: nothing opens the store but the command.
        MAILTRACK_WORKER="external",
    )
    MailTrack(app)
    try:
        result = CliRunner().invoke(
            mailtrack_group, ["db", "upgrade"], obj=ScriptInfo(create_app=lambda: app)
        )
    finally:
        close_app(app, timeout=0)
    assert result.exit_code == 0, result.output
    assert "schema version 3" in result.output
    with EventStore(database, migrate=False) as store:
        assert store.stats()["opens"]["total"] == 4


def test_db_upgrade_on_postgresql(postgres_url: str) -> None:
    result = standalone(["db", "upgrade"], postgres_url)
    assert result.exit_code == 0, result.output
    assert "schema version 3" in result.output
    assert "postgresql://" in result.output
    with EventStore(postgres_url, migrate=False) as store:
        assert store.schema_version() == 3


def test_db_upgrade_refuses_an_unknown_url() -> None:
    result = standalone(["db", "upgrade"], "mysql://db/mail")
    assert result.exit_code == 1
    assert "unsupported database URL scheme 'mysql'" in result.output


def test_db_purge_deletes_events_before_a_time(tmp_path: pathlib.Path) -> None:
    database = str(tmp_path / "e.sqlite3")
    with EventStore(database) as store:
        store.write(opens(6))  # at T0 .. T0 + 5
    cutoff = "2023-11-14T22:13:23Z"  # T0 + 3
    result = standalone(["db", "purge", "--older-than", cutoff, "--yes"], database)
    assert result.exit_code == 0, result.output
    assert f"Deleted 3 events from {database}." in result.output
    with EventStore(database) as store:
        assert store.stats()["opens"]["total"] == 3
        assert min(event["timestamp"] for event in store.events()) == T0 + 3


def test_db_purge_takes_an_age_and_asks_first(tmp_path: pathlib.Path) -> None:
    database = str(tmp_path / "e.sqlite3")
    with EventStore(database) as store:
        store.write(opens(2))  # in 2023: older than 400 days
    args = ["db", "purge", "--older-than", "400d"]
    declined = CliRunner().invoke(
        main, args, input="n\n", env={"MAILTRACK_DATABASE": database}
    )
    assert declined.exit_code == 1 and "older than 400 days?" in declined.output
    with EventStore(database) as store:
        assert store.stats()["opens"]["total"] == 2
    accepted = CliRunner().invoke(
        main, args, input="y\n", env={"MAILTRACK_DATABASE": database}
    )
    assert accepted.exit_code == 0, accepted.output
    assert "Deleted 2 events" in accepted.output


def test_db_purge_refuses_a_bad_age(tmp_path: pathlib.Path) -> None:
    result = standalone(
        ["db", "purge", "--older-than", "400 days", "--yes"], str(tmp_path / "e.db")
    )
    assert result.exit_code == 2
    assert "use an age (400d, 12h, 30m, 2w) or an ISO 8601 time" in result.output
