"""``mailtrack export``, ``mailtrack deliver`` and
``MAILTRACK_WEBHOOK_DELIVER`` (servers that only queue webhook events)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import threading
import typing as t

import click
import pytest
import standardwebhooks
from click.testing import CliRunner
from click.testing import Result
from flask import Flask
from flask.cli import ScriptInfo
from flask_mailtrack import EventStore
from flask_mailtrack import MailTrack
from flask_mailtrack import MailTrackError
from flask_mailtrack import TrackingResult
from flask_mailtrack import WebhookSender
from flask_mailtrack.cli import mailtrack_group
from flask_mailtrack.cli import main
from flask_mailtrack.cli._settings import FlaskCommandSettings
from flask_mailtrack.events import CSV_COLUMNS
from flask_mailtrack.events._from_settings import find_receiver
from flask_mailtrack.extension import get_state
from flask_mailtrack.server import close_app
from flask_mailtrack.server import create_app
from flask_mailtrack.server._run import serve

from _webhook_receiver import Receiver
from _webhook_receiver import record
from _webhook_receiver import SECRET as WEBHOOK_SECRET
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


# -- MAILTRACK_WEBHOOK_DELIVER ----------------------------------------------------


def outbox_sender(
    outbox: str, url: str | None = None, **options: t.Any
) -> WebhookSender:
    return WebhookSender(url, secret=WEBHOOK_SECRET, outbox_path=outbox, **options)


def test_the_server_queues_without_delivering(
    receiver: Receiver, tmp_path: pathlib.Path
) -> None:
    database = str(tmp_path / "mailtrack.sqlite3")
    app = create_app(
        {
            "MAILTRACK_SECRET_KEY": KEY,
            "MAILTRACK_DATABASE": database,
            "MAILTRACK_WEBHOOK_URL": receiver.url,
            "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "MAILTRACK_WEBHOOK_DELIVER": "false",
        },
        environ={},
    )
    try:
        sender = find_receiver(get_state(app).receivers, WebhookSender)
        assert sender is not None and sender.deliver is False
        assert sender.outbox_path == database
        with app.test_request_context():
            pixel = get_state(app).link_tracker(app).open_url({"recipient": "ed"})
        assert app.test_client().get(pixel).status_code == 200
        assert sender.pending() == 1
    finally:
        # Closing delivers what is due, if the app delivers at all.
        close_app(app, timeout=5)
    assert receiver.requests == []
    with EventStore(database) as store:
        (stored,) = store.events()
    # The event waits in the outbox, for another process to deliver.
    other = outbox_sender(database)
    try:
        assert other.pending() == 1
        assert other.flush(WAIT)
        assert other.pending() == 0
    finally:
        other.close(0)
    (request,) = receiver.requests
    headers = {k.lower(): v for k, v in request.headers.items()}
    delivered = standardwebhooks.Webhook(WEBHOOK_SECRET).verify(request.body, headers)
    assert delivered["id"] == stored["id"]
    assert delivered["metadata"] == {"recipient": "ed"}


@pytest.mark.parametrize(
    ("deliver", "said"), [pytest.param("false", True), pytest.param("true", False)]
)
def test_serve_says_where_webhooks_wait(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, deliver: str, said: bool
) -> None:
    import werkzeug.serving

    monkeypatch.setattr(werkzeug.serving, "run_simple", lambda *a, **k: None)
    database = str(tmp_path / "mailtrack.sqlite3")
    config = {
        "MAILTRACK_SECRET_KEY": KEY,
        "MAILTRACK_DATABASE": database,
        "MAILTRACK_WEBHOOK_URL": "http://127.0.0.1:9/hook",
        "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MAILTRACK_WEBHOOK_DELIVER": deliver,
    }
    lines: list[str] = []
    # In a thread: serve() sets a SIGTERM handler only in the main thread.
    thread = threading.Thread(
        target=serve, kwargs={"config": config, "echo": lines.append}
    )
    thread.start()
    thread.join(WAIT)
    message = f"Webhook events are queued in {database} for `mailtrack deliver`."
    assert (message in lines) is said
    assert f"Events are recorded in {database}." in lines


@pytest.mark.parametrize(
    ("value", "deliver"),
    [
        pytest.param(None, True, id="unset"),
        pytest.param("", True, id="empty"),
        pytest.param("true", True, id="true"),
        pytest.param(" Yes ", True, id="yes-spaced"),
        pytest.param("1", True, id="one"),
        pytest.param("on", True, id="on"),
        pytest.param(True, True, id="bool-true"),
        pytest.param("false", False, id="false"),
        pytest.param("FALSE", False, id="upper-false"),
        pytest.param("0", False, id="zero"),
        pytest.param("no", False, id="no"),
        pytest.param("off", False, id="off"),
        pytest.param(False, False, id="bool-false"),
    ],
)
def test_the_flask_extension_reads_the_deliver_setting(
    value: object, deliver: bool, tmp_path: pathlib.Path
) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        SECRET_KEY=KEY,
        MAILTRACK_WEBHOOK_URL="http://127.0.0.1:9/hook",
        MAILTRACK_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    if value is not None:
        app.config["MAILTRACK_WEBHOOK_DELIVER"] = value
    MailTrack(app)
    sender = find_receiver(get_state(app).receivers, WebhookSender)
    try:
        assert sender is not None
        assert sender.deliver is deliver
    finally:
        close_app(app, timeout=0)


@pytest.mark.parametrize("value", ["flase", "2", "disabled"])
def test_a_misspelled_deliver_setting_is_an_error(
    value: str, tmp_path: pathlib.Path
) -> None:
    with pytest.raises(MailTrackError, match="MAILTRACK_WEBHOOK_DELIVER"):
        create_app(
            {
                "MAILTRACK_SECRET_KEY": KEY,
                "MAILTRACK_DATABASE": str(tmp_path / "m.sqlite3"),
                "MAILTRACK_WEBHOOK_URL": "http://127.0.0.1:9/hook",
                "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "MAILTRACK_WEBHOOK_DELIVER": value,
            },
            environ={},
        )


# -- deliver ---------------------------------------------------------------------

FLASK_APP = textwrap.dedent(
    """
    import os

    from flask import Flask
    from flask_mailtrack import MailTrack

    app = Flask(__name__, instance_path=os.environ["TEST_INSTANCE_PATH"])
    app.config["SECRET_KEY"] = "deliver-test-app-key-0123456789-"
    # Only the settings the test gives: the environment may hold other
    # MAILTRACK_* variables, which the extension refuses as unknown.
    app.config.update(
        {k: os.environ[k] for k in os.environ["TEST_MAILTRACK_KEYS"].split()}
    )
    MailTrack(app)
    """
)


def queue_events(outbox: str, url: str, count: int) -> list[str]:
    """Events queued by a sender that does not deliver, as a server with
    ``MAILTRACK_WEBHOOK_DELIVER=false`` queues them."""
    sender = outbox_sender(outbox, url, deliver=False)
    events = [record(n) for n in range(count)]
    try:
        sender.write(events)
    finally:
        sender.close(0)
    return [event.id for event in events]


def pending(outbox: str) -> int:
    sender = outbox_sender(outbox)
    try:
        return sender.pending()
    finally:
        sender.close(0)


@contextlib.contextmanager
def delivering(
    command: list[str], env: dict[str, str], cwd: pathlib.Path
) -> t.Iterator[subprocess.Popen[str]]:
    """Run ``deliver`` as a subprocess; kill it if the test fails first."""
    process = subprocess.Popen(
        command,
        env={**os.environ, **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    except BaseException:
        if process.poll() is None:
            process.kill()
        stdout, stderr = process.communicate()
        # Shown by pytest with the failure.
        print(f"deliver exited {process.returncode}:\n{stdout}\n{stderr}")
        raise
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def stop(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=WAIT)
    return process.returncode, stdout, stderr


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="needs SIGTERM")
@pytest.mark.parametrize("group", ["standalone", "flask"])
def test_deliver_process(
    receiver: Receiver, tmp_path: pathlib.Path, group: str
) -> None:
    env = {
        "MAILTRACK_WEBHOOK_URL": receiver.url,
        "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MAILTRACK_WEBHOOK_DELIVER": "false",  # the servers' setting; ignored
        "TEST_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    env["TEST_MAILTRACK_KEYS"] = " ".join(k for k in env if k.startswith("MAILTRACK_"))
    if group == "standalone":
        outbox = str(tmp_path / "outbox.sqlite3")
        env["MAILTRACK_WEBHOOK_OUTBOX"] = outbox
        command = [sys.executable, "-m", "flask_mailtrack.cli"]
    else:
        # The app's default outbox, in its instance folder.
        outbox = str(tmp_path / "instance" / "mailtrack.sqlite3")
        (tmp_path / "deliver_app.py").write_text(FLASK_APP)
        command = [sys.executable, "-m", "flask", "--app", "deliver_app", "mailtrack"]
    first = queue_events(outbox, receiver.url, 30)
    assert receiver.requests == []
    with delivering(
        [*command, "deliver", "--poll-interval", "0.05"], env, tmp_path
    ) as process:
        receiver.wait_for(lambda: receiver.ids() == set(first))
        # Queued while it runs, by another process's sender: found by polling.
        later = queue_events(outbox, receiver.url, 5)
        receiver.wait_for(lambda: receiver.ids() == set(first + later))
        code, stdout, stderr = stop(process)
    assert code == 0, stderr
    assert f"Delivering webhooks from {outbox}" in stdout
    assert "Stopped; the outbox is empty." in stdout
    assert pending(outbox) == 0
    receiver.assert_consistent()
    webhook = standardwebhooks.Webhook(WEBHOOK_SECRET)
    for request in receiver.requests:
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert webhook.verify(request.body, headers)["id"] == headers["webhook-id"]


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="needs SIGTERM")
def test_deliver_stopped_while_the_endpoint_fails(
    receiver: Receiver, tmp_path: pathlib.Path
) -> None:
    """Events that could not be delivered stay in the outbox, for the next
    run: stopping loses nothing."""
    receiver.status = 503
    outbox = str(tmp_path / "outbox.sqlite3")
    ids = queue_events(outbox, receiver.url, 4)
    env = {
        "MAILTRACK_WEBHOOK_URL": receiver.url,
        "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MAILTRACK_WEBHOOK_OUTBOX": outbox,
    }
    command = [sys.executable, "-m", "flask_mailtrack.cli", "deliver"]
    with delivering([*command, "--flush-timeout", "1"], env, tmp_path) as process:
        receiver.wait_for(lambda: receiver.ids(delivered_only=False) == set(ids))
        code, stdout, stderr = stop(process)
    assert code == 0, stderr
    assert "Stopped; 4 events left in the outbox." in stdout
    assert pending(outbox) == 4
    sender = outbox_sender(outbox)
    try:
        assert sender.dead_letters() == []
    finally:
        sender.close(0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({}, "MAILTRACK_WEBHOOK_URL is not set", id="no-url"),
        pytest.param(
            {"MAILTRACK_WEBHOOK_URL": "http://127.0.0.1:9/hook"},
            "MAILTRACK_WEBHOOK_SECRET",
            id="no-secret",
        ),
        pytest.param(
            {
                "MAILTRACK_WEBHOOK_URL": "http://127.0.0.1:9/hook",
                "MAILTRACK_WEBHOOK_SECRET": "whsec_not*base64",
            },
            "secret",
            id="bad-secret",
        ),
        pytest.param(
            {
                "MAILTRACK_WEBHOOK_URL": "http://127.0.0.1:9/hook",
                "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "MAILTRACK_WEBHOOK_DELIVER": "maybe",
            },
            "MAILTRACK_WEBHOOK_DELIVER",
            id="bad-deliver-setting",
        ),
    ],
)
def test_deliver_needs_a_webhook(
    settings: dict[str, str], message: str, tmp_path: pathlib.Path
) -> None:
    outbox = tmp_path / "m.sqlite3"
    settings = {"MAILTRACK_DATABASE": str(outbox), **settings}
    result = CliRunner().invoke(main, ["deliver"], env=settings)
    assert result.exit_code == 1
    assert message in result.output
    assert not outbox.exists()


def test_flask_deliver_needs_a_webhook(tmp_path: pathlib.Path) -> None:
    # (An app whose webhook settings are wrong does not load at all.)
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(SECRET_KEY=KEY)
    MailTrack(app)
    result = CliRunner().invoke(
        mailtrack_group, ["deliver"], obj=ScriptInfo(create_app=lambda: app)
    )
    assert result.exit_code == 1
    assert "MAILTRACK_WEBHOOK_URL is not set" in result.output


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--poll-interval", "0"], id="poll-zero"),
        pytest.param(["--flush-timeout", "-1"], id="flush-negative"),
        pytest.param(["--flush-timeout", "soon"], id="flush-text"),
    ],
)
def test_deliver_bad_options(args: list[str]) -> None:
    result = CliRunner().invoke(main, ["deliver", *args])
    assert result.exit_code == 2


def test_flask_deliver_uses_the_apps_outbox(tmp_path: pathlib.Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        SECRET_KEY=KEY,
        MAILTRACK_WEBHOOK_URL="http://127.0.0.1:9/hook",
        MAILTRACK_WEBHOOK_SECRET=WEBHOOK_SECRET,
        MAILTRACK_WEBHOOK_DELIVER=False,
    )
    MailTrack(app)
    own = find_receiver(get_state(app).receivers, WebhookSender)
    assert own is not None
    with click.Context(mailtrack_group, obj=ScriptInfo(create_app=lambda: app)) as ctx:
        sender = FlaskCommandSettings(ctx).webhook_sender(deliver=True)
    try:
        assert sender.outbox_path == own.outbox_path
        assert sender.outbox_path == str(tmp_path / "mailtrack.sqlite3")
        assert sender.url == own.url and sender.deliver
    finally:
        sender.close(0)
        close_app(app, timeout=0)
