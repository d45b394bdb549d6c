"""``mailtrack export``. (``mailtrack worker``, its old name ``deliver``
and servers that only journal are in ``test_cli_worker.py``.)"""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
import subprocess
import sys
import typing as t

import pytest
from click.testing import CliRunner
from click.testing import Result
from flask import Flask
from flask.cli import ScriptInfo
from flask_mailtrack import EventStore
from flask_mailtrack import MailTrack
from flask_mailtrack import TrackingResult
from flask_mailtrack.cli import mailtrack_group
from flask_mailtrack.cli import main
from flask_mailtrack.events import CSV_COLUMNS
from flask_mailtrack.server import close_app

from _webhook_receiver import WAIT

KEY = "export-test-secret-key-0123456789"
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z

#: The events of the ``database`` fixture, oldest first.
EVENTS = (
    TrackingResult(
        is_open_tracking=True,
        timestamp=T0,
        metadata={"campaign": "spring", "recipient": "ann", "name": "Zoë"},
        request_data={"user_agent": "Mozilla/5.0 (Macintosh)", "user_ip": "192.0.2.1"},
    ),
    TrackingResult(
        is_open_tracking=True,
        timestamp=T0 + 1,
        metadata={"campaign": "autumn", "recipient": "bo"},
        machine="apple-mpp",
        machine_reasons=["apple-mpp-network", "generic-ua"],
    ),
    TrackingResult(
        is_click_tracking=True,
        tracked_url='https://example.com/a?x=1,2&y="q"',
        timestamp=T0 + 10,
        metadata={"campaign": "spring", "recipient": "bo", "n": 42},
    ),
)
IDS = [event.event_id for event in EVENTS]


@pytest.fixture
def database(tmp_path: pathlib.Path) -> str:
    path = str(tmp_path / "events.sqlite3")
    with EventStore(path) as store:
        for event in EVENTS:
            store.record(event)
    return path


Invoke = t.Callable[..., Result]


def make_invoke(group: str, database: str | None) -> Invoke:
    """Runs ``mailtrack ...`` with ``MAILTRACK_DATABASE`` in the environment,
    or ``flask mailtrack ...`` with it in the app's config."""
    if group == "standalone":
        env = {"MAILTRACK_DATABASE": database}

        def invoke_standalone(args: list[str]) -> Result:
            return CliRunner().invoke(main, args, env=env)

        return invoke_standalone

    def invoke_flask(args: list[str]) -> Result:
        app = Flask(__name__)
        app.config.update(SECRET_KEY=KEY, MAILTRACK_DATABASE=database)
        MailTrack(app)
        try:
            return CliRunner().invoke(
                mailtrack_group, args, obj=ScriptInfo(create_app=lambda: app)
            )
        finally:
            close_app(app, timeout=0)

    return invoke_flask


@pytest.fixture(params=["standalone", "flask"])
def invoke(request: pytest.FixtureRequest, database: str) -> Invoke:
    return make_invoke(request.param, database)


def jsonl_ids(output: bytes) -> list[str]:
    return [json.loads(line)["id"] for line in output.decode("utf-8").splitlines()]


# -- export ----------------------------------------------------------------------


def test_export_jsonl_to_stdout(invoke: Invoke) -> None:
    result = invoke(["export"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # stdout is the data, and nothing else
    lines = result.stdout_bytes.split(b"\n")
    assert lines[-1] == b""  # every event ends its line
    events = [json.loads(line) for line in lines[:-1]]
    assert [event["id"] for event in events] == IDS  # oldest first
    assert events == [event.to_json_dict() for event in EVENTS]
    # UTF-8 as it is, not \u escapes.
    assert "Zoë".encode() in result.stdout_bytes


def test_export_csv_to_stdout(invoke: Invoke) -> None:
    result = invoke(["export", "--format", "csv"])
    assert result.exit_code == 0, result.output
    text = result.stdout_bytes.decode("utf-8")
    # CSV's own CRLF line ends, not translated again.
    assert text.count("\r\n") == 4
    assert "\r\r" not in text
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [row["id"] for row in rows] == IDS
    first, machine, click_row = rows
    assert first["type"] == "email.opened"
    assert first["user_agent"] == "Mozilla/5.0 (Macintosh)"
    assert json.loads(first["metadata"])["name"] == "Zoë"
    assert machine["machine"] == "apple-mpp"
    assert machine["machine_reasons"] == "apple-mpp-network generic-ua"
    assert click_row["tracked_url"] == EVENTS[2].tracked_url  # quoted, comma kept
    assert click_row["occurred_at"] == "2023-11-14T22:13:30Z"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["--filter", "campaign=spring"], [0, 2], id="campaign"),
        pytest.param(
            ["--filter", "campaign=spring", "--filter", "recipient=bo"],
            [2],
            id="two-filters",
        ),
        pytest.param(["--filter", "n=42"], [2], id="number-as-text"),
        pytest.param(["--filter", "campaign=winter"], [], id="no-match"),
        pytest.param(["--filter", "name=Zoë"], [0], id="non-ascii"),
        pytest.param(["--since", str(T0 + 1)], [1, 2], id="since-seconds"),
        pytest.param(["--until", "2023-11-14T22:13:21Z"], [0], id="until-iso"),
        pytest.param(
            ["--since", "2023-11-14T22:13:21+00:00", "--until", str(T0 + 10)],
            [1],
            id="range",
        ),
        pytest.param(
            ["--since", str(T0 + 1), "--filter", "campaign=spring"],
            [2],
            id="time-and-filter",
        ),
    ],
)
@pytest.mark.parametrize("format_name", ["jsonl", "csv"])
def test_export_filters(
    database: str, args: list[str], expected: list[int], format_name: str
) -> None:
    invoke = make_invoke("standalone", database)
    result = invoke(["export", "--format", format_name, *args])
    assert result.exit_code == 0, result.output
    if format_name == "jsonl":
        ids = jsonl_ids(result.stdout_bytes)
    else:
        text = result.stdout_bytes.decode("utf-8")
        ids = [row["id"] for row in csv.DictReader(io.StringIO(text, newline=""))]
    assert ids == [IDS[n] for n in expected]
    # The same filters as stats: the counts agree.
    stats = json.loads(invoke(["stats", "--json", *args]).stdout)
    assert stats["opens"]["total"] + stats["clicks"]["total"] == len(expected)


def test_export_to_a_file(invoke: Invoke, tmp_path: pathlib.Path) -> None:
    out = tmp_path / "out" / "events.jsonl"
    out.parent.mkdir()
    out.write_text("an older export\n")
    result = invoke(["export", "--output", str(out), "--filter", "campaign=spring"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr == f"Exported 2 events to {out}.\n"
    assert jsonl_ids(out.read_bytes()) == [IDS[0], IDS[2]]
    assert os.listdir(out.parent) == ["events.jsonl"]  # no temporary file left
    result = invoke(["export", "-o", str(out), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"id,type,occurred_at,")
    assert out.read_bytes().count(b"\r\n") == 4


def test_a_failed_export_keeps_the_previous_file(
    database: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "events.jsonl"
    out.write_text("the previous export\n")

    def failing_export(self: EventStore, file: t.TextIO, **query: t.Any) -> int:
        file.write('{"half": ')
        raise OSError("disk full")

    monkeypatch.setattr(EventStore, "export_jsonl", failing_export)
    result = make_invoke("standalone", database)(["export", "-o", str(out)])
    assert result.exit_code == 1
    assert f"Could not write '{out}': disk full" in result.output
    assert out.read_text() == "the previous export\n"
    assert os.listdir(tmp_path) == ["events.jsonl", "events.sqlite3"]


@pytest.mark.parametrize(
    ("format_name", "expected"),
    [
        pytest.param("jsonl", b"", id="jsonl-nothing"),
        pytest.param("csv", ",".join(CSV_COLUMNS).encode() + b"\r\n", id="csv-header"),
    ],
)
@pytest.mark.parametrize("group", ["standalone", "flask"])
def test_export_an_empty_store(
    tmp_path: pathlib.Path, group: str, format_name: str, expected: bytes
) -> None:
    path = str(tmp_path / "empty.sqlite3")
    EventStore(path).close()
    result = make_invoke(group, path)(["export", "--format", format_name])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == expected
    out = tmp_path / "empty.out"
    result = make_invoke(group, path)(["export", "--format", format_name, "-o", out])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == expected
    assert "Exported 0 events" in result.stderr


def test_export_pages_through_a_large_store(tmp_path: pathlib.Path) -> None:
    """More events than one page of the store's reader: all of them, in
    order, once."""
    path = str(tmp_path / "large.sqlite3")
    with EventStore(path) as store:
        ids = []
        for n in range(1234):
            event = TrackingResult(
                is_open_tracking=True, timestamp=T0 + n, metadata={"n": n % 3}
            )
            store.record(event)
            ids.append(event.event_id)
    invoke = make_invoke("standalone", path)
    assert jsonl_ids(invoke(["export"]).stdout_bytes) == ids
    every_third = jsonl_ids(invoke(["export", "--filter", "n=0"]).stdout_bytes)
    assert every_third == ids[::3]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--filter", "campaign"], "KEY=VALUE", id="filter-no-equals"),
        pytest.param(["--filter", "=spring"], "KEY=VALUE", id="filter-no-key"),
        pytest.param(["--filter", 'a"b=1'], "no quotes", id="filter-quote"),
        pytest.param(["--filter", "a\\b=1"], "no quotes", id="filter-backslash"),
        pytest.param(["--filter", "a\x01b=1"], "control", id="filter-control"),
        # Store parameters, not metadata: they clashed with --since (a
        # TypeError and a traceback).
        pytest.param(["--filter", "since=1"], "not a metadata", id="filter-since"),
        pytest.param(["--filter", "type=x"], "not a metadata", id="filter-type"),
        pytest.param(["--since", "yesterday"], "ISO 8601", id="bad-since"),
        pytest.param(["--until", "nan"], "ISO 8601", id="until-nan"),
        pytest.param(["--until", "1e400"], "ISO 8601", id="until-overflow"),
        pytest.param(["--format", "xml"], "'jsonl', 'csv'", id="bad-format"),
    ],
)
def test_export_bad_arguments(
    invoke: Invoke, args: list[str], message: str, tmp_path: pathlib.Path
) -> None:
    out = tmp_path / "not-written.jsonl"
    result = invoke(["export", "-o", str(out), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert result.stdout == ""
    assert not out.exists()


def test_export_to_a_directory(database: str, tmp_path: pathlib.Path) -> None:
    result = make_invoke("standalone", database)(["export", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "is a directory" in result.output


def test_export_without_a_database(tmp_path: pathlib.Path) -> None:
    # (A Flask app with MailTrack creates its database on start.)
    missing = str(tmp_path / "missing.sqlite3")
    result = make_invoke("standalone", missing)(["export"])
    assert result.exit_code == 1
    assert "No event database" in result.output
    assert not os.path.exists(missing)


def test_flask_export_without_a_database_setting() -> None:
    result = make_invoke("flask", None)(["export"])
    assert result.exit_code == 1
    assert "MAILTRACK_DATABASE is not set" in result.output


def test_export_to_a_closed_pipe(database: str) -> None:
    """``mailtrack export | head -1``: the reader going away is no traceback."""
    script = [sys.executable, "-m", "flask_mailtrack.cli", "export"]
    env = {**os.environ, "MAILTRACK_DATABASE": database}
    with subprocess.Popen(
        script, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # before the export writes anything
        stderr = process.stderr.read()
        assert process.wait(WAIT) == 1
    assert b"Traceback" not in stderr
    assert b"Exception ignored" not in stderr
