"""``mailtrack worker`` (and its old name ``deliver``) as a real process on
a journal folder written by a real :class:`Journal`, and servers with
``MAILTRACK_WORKER=external`` that only journal."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time
import typing as t

import click
import pytest
import standardwebhooks
from click.testing import CliRunner
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
from flask_mailtrack.events._journal import Journal
from flask_mailtrack.events._worker import Worker
from flask_mailtrack.extension import get_state
from flask_mailtrack.server import close_app

from _webhook_receiver import Receiver
from _webhook_receiver import SECRET as WEBHOOK_SECRET
from _webhook_receiver import WAIT

KEY = "worker-test-secret-key-0123456789"

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="SIGTERM")


def journal_events(directory: str, count: int, first: int = 0) -> list[str]:
    """Journal ``count`` events as a server process does, and seal the file
    (the writer closes it, as a server does on exit)."""
    ids = []
    with Journal(directory) as journal:
        for n in range(first, first + count):
            event = TrackingResult(
                is_open_tracking=True, timestamp=int(time.time()), metadata={"n": n}
            )
            assert journal.record(event)
            ids.append(event.event_id)
    return ids


def stored_ids(database: str) -> set[str]:
    with EventStore(database) as store:
        return {event["id"] for event in store.events(limit=10_000)}


def wait_until(condition: t.Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.02)


def journal_files(directory: str) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".journal"))


@contextlib.contextmanager
def running(
    arguments: list[str],
    env: dict[str, str],
    cwd: pathlib.Path,
    command: list[str] | None = None,
) -> t.Iterator[subprocess.Popen[str]]:
    """``python -m flask_mailtrack.cli ARGUMENTS`` (or ``COMMAND
    ARGUMENTS``) as a subprocess; killed if the test fails first."""
    if command is None:
        command = [sys.executable, "-m", "flask_mailtrack.cli"]
    process = subprocess.Popen(
        [*command, *arguments],
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
        print(f"worker exited {process.returncode}:\n{stdout}\n{stderr}")
        raise
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def terminate(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=WAIT)
    return process.returncode, stdout, stderr


@pytest.mark.parametrize("command", ["worker", "deliver"])
def test_worker_process_feeds_the_store(tmp_path: pathlib.Path, command: str) -> None:
    database = str(tmp_path / "events.sqlite3")
    EventStore(database).close()  # the server made it
    directory = database + "-events"
    first = journal_events(directory, 30)
    env = {"MAILTRACK_DATABASE": database}
    with running([command, "--poll-interval", "0.05"], env, tmp_path) as process:
        wait_until(lambda: stored_ids(database) == set(first))
        # Journaled while it runs, by another process: found by polling.
        later = journal_events(directory, 5, first=30)
        wait_until(lambda: stored_ids(database) == set(first + later))
        code, stdout, stderr = terminate(process)
    assert code == 0, stderr
    assert f"Feeding the event store {database} from the journal in" in stdout
    assert "Stopped; the journal is empty." in stdout
    assert ("deprecated" in stderr) is (command == "deliver")
    assert journal_files(directory) == []
    with EventStore(database) as store:
        assert store.count() == 35  # one row per event
    # Nothing stays locked: a new worker claims a new file at once.
    (file_id,) = journal_events(directory, 1, first=35)
    with Worker(directory, [EventStore(database)]) as worker:
        assert worker.run_once() == 1
    assert file_id in stored_ids(database)


def test_external_mode_only_journals(tmp_path: pathlib.Path) -> None:
    database = str(tmp_path / "events.sqlite3")
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        SECRET_KEY=KEY,
        MAILTRACK_DATABASE=database,
        MAILTRACK_WORKER="external",
        MAILTRACK_BASE_URL="https://t.example.com",
    )
    MailTrack(app)
    pipeline = get_state(app).pipeline
    assert pipeline is not None
    assert pipeline.sinks == () and pipeline.worker is None
    try:
        with app.app_context():
            pixels = [
                get_state(app)
                .tracker.open_url({"n": n})
                .replace("https://t.example.com", "")
                for n in range(3)
            ]
        client = app.test_client()
        for pixel in pixels:
            assert client.get(pixel).status_code == 200
        pipeline.journal.seal()
        directory = database + "-events"
        assert journal_files(directory)
        # No store was opened, let alone written.
        assert not os.path.exists(database)
        with Worker(directory, [EventStore(database)]) as worker:
            assert worker.run_once() == 3
        assert len(stored_ids(database)) == 3
        assert journal_files(directory) == []
    finally:
        pipeline.close(0)


def test_worker_needs_a_sink(tmp_path: pathlib.Path) -> None:
    result = CliRunner().invoke(
        main, ["worker"], env={"MAILTRACK_DATABASE": ""}, catch_exceptions=False
    )
    assert result.exit_code == 1
    assert "there is no sink to feed" in result.output


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--poll-interval", "0"], id="poll-zero"),
        pytest.param(["--batch-size", "0"], id="batch-zero"),
        pytest.param(["--flush-timeout", "-1"], id="flush-negative"),
    ],
)
def test_worker_bad_options(args: list[str]) -> None:
    assert CliRunner().invoke(main, ["worker", *args]).exit_code == 2


def test_close_app_leaves_nothing_in_the_journal(tmp_path: pathlib.Path) -> None:
    from flask_mailtrack.server import create_app

    database = str(tmp_path / "events.sqlite3")
    app = create_app(
        {"MAILTRACK_SECRET_KEY": KEY, "MAILTRACK_DATABASE": database}, environ={}
    )
    with app.test_request_context():
        pixel = get_state(app).link_tracker(app).open_url({"n": 1})
    assert app.test_client().get(pixel).status_code == 200
    close_app(app, timeout=WAIT)
    assert journal_files(database + "-events") == []
    assert len(stored_ids(database)) == 1


# -- webhooks --------------------------------------------------------------------


def outbox_sender(outbox: str, url: str | None = None) -> WebhookSender:
    return WebhookSender(url, secret=WEBHOOK_SECRET, outbox_path=outbox, deliver=False)


def pending(outbox: str) -> int:
    with outbox_sender(outbox) as sender:
        return sender.pending()


FLASK_APP = textwrap.dedent(
    """
    import os

    from flask import Flask
    from flask_mailtrack import MailTrack

    app = Flask(__name__, instance_path=os.environ["TEST_INSTANCE_PATH"])
    app.config["SECRET_KEY"] = "worker-test-app-key-0123456789-"
    # Only the settings the test gives: the environment may hold other
    # MAILTRACK_* variables, which the extension refuses as unknown.
    app.config.update(
        {k: os.environ[k] for k in os.environ["TEST_MAILTRACK_KEYS"].split()}
    )
    MailTrack(app)
    """
)


@pytest.mark.parametrize("group", ["standalone", "flask"])
def test_worker_process_delivers_webhooks(
    receiver: Receiver, tmp_path: pathlib.Path, group: str
) -> None:
    env = {
        "MAILTRACK_WEBHOOK_URL": receiver.url,
        "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MAILTRACK_WORKER": "external",  # the servers' setting
        "TEST_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    env["TEST_MAILTRACK_KEYS"] = " ".join(k for k in env if k.startswith("MAILTRACK_"))
    if group == "standalone":
        outbox = str(tmp_path / "outbox.sqlite3")
        env["MAILTRACK_WEBHOOK_OUTBOX"] = outbox
        env["MAILTRACK_DATABASE"] = str(tmp_path / "events.sqlite3")
        directory = env["MAILTRACK_DATABASE"] + "-events"
        arguments = ["worker"]
        command = None
    else:
        # The app's default outbox, in its instance folder, and no store.
        outbox = str(tmp_path / "instance" / "mailtrack.sqlite3")
        directory = outbox + "-events"
        (tmp_path / "worker_app.py").write_text(FLASK_APP)
        arguments = ["--app", "worker_app", "mailtrack", "worker"]
        command = [sys.executable, "-m", "flask"]
    first = journal_events(directory, 30)
    with running(arguments, env, tmp_path, command=command) as process:
        receiver.wait_for(lambda: receiver.ids() == set(first))
        later = journal_events(directory, 5, first=30)
        receiver.wait_for(lambda: receiver.ids() == set(first + later))
        code, stdout, stderr = terminate(process)
    assert code == 0, stderr
    assert f"webhooks (outbox {outbox})" in stdout
    assert "Stopped; the journal is empty; the outbox is empty." in stdout
    assert pending(outbox) == 0
    receiver.assert_consistent()
    webhook = standardwebhooks.Webhook(WEBHOOK_SECRET)
    for request in receiver.requests:
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert webhook.verify(request.body, headers)["id"] == headers["webhook-id"]


def test_worker_stopped_while_the_endpoint_fails(
    receiver: Receiver, tmp_path: pathlib.Path
) -> None:
    """Events that could not be delivered stay in the outbox, for the next
    run: stopping loses nothing, and the store is fed all the same."""
    receiver.status = 503
    database = str(tmp_path / "events.sqlite3")
    EventStore(database).close()
    ids = journal_events(database + "-events", 4)
    env = {
        "MAILTRACK_DATABASE": database,
        "MAILTRACK_WEBHOOK_URL": receiver.url,
        "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    with running(["worker", "--flush-timeout", "1"], env, tmp_path) as process:
        receiver.wait_for(lambda: receiver.ids(delivered_only=False) == set(ids))
        wait_until(lambda: stored_ids(database) == set(ids))
        code, stdout, stderr = terminate(process)
    assert code == 0, stderr
    assert "Stopped; the journal is empty; 4 webhook events left in the outbox." in (
        stdout
    )
    assert pending(database) == 4
    with outbox_sender(database) as sender:
        assert sender.dead_letters() == []


def test_the_server_only_journals_with_the_old_setting(
    receiver: Receiver, tmp_path: pathlib.Path
) -> None:
    """``MAILTRACK_WEBHOOK_DELIVER=false`` (deprecated) is ``external``: the
    server journals, a worker stores and delivers."""
    from flask_mailtrack.server import create_app
    from flask_mailtrack.server import get_server_state

    database = str(tmp_path / "mailtrack.sqlite3")
    settings = {
        "MAILTRACK_SECRET_KEY": KEY,
        "MAILTRACK_DATABASE": database,
        "MAILTRACK_WEBHOOK_URL": receiver.url,
        "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MAILTRACK_WEBHOOK_DELIVER": "false",
    }
    with pytest.warns(DeprecationWarning, match="MAILTRACK_WORKER=external"):
        app = create_app(settings, environ={})
    pipeline = get_state(app).pipeline
    assert pipeline is not None
    try:
        assert pipeline.mode == "external" and pipeline.sinks == ()
        with app.test_request_context():
            pixel = get_state(app).link_tracker(app).open_url({"recipient": "ed"})
        assert app.test_client().get(pixel).status_code == 200
        assert get_server_state(app).store.count() == 0
    finally:
        close_app(app, timeout=WAIT)
    assert receiver.requests == []
    (sender,) = [s for s in _sinks(settings) if isinstance(s, WebhookSender)]
    store = EventStore(database)
    with Worker(database + "-events", [store, sender]) as worker:
        assert worker.run_once() == 1
        assert sender.flush(WAIT)
    (request,) = receiver.requests
    headers = {k.lower(): v for k, v in request.headers.items()}
    delivered = standardwebhooks.Webhook(WEBHOOK_SECRET).verify(request.body, headers)
    assert stored_ids(database) == {delivered["id"]}
    assert delivered["metadata"] == {"recipient": "ed"}


def _sinks(settings: dict[str, str]) -> list[t.Any]:
    from flask_mailtrack import Configuration
    from flask_mailtrack.events._from_settings import sinks_from_settings

    return sinks_from_settings(settings, Configuration.from_mapping(settings))


@pytest.mark.parametrize("mode", ["external", "embedded"])
def test_serve_says_where_events_go(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    import threading

    import werkzeug.serving
    from flask_mailtrack.server._run import serve

    monkeypatch.setattr(werkzeug.serving, "run_simple", lambda *a, **k: None)
    database = str(tmp_path / "mailtrack.sqlite3")
    config = {
        "MAILTRACK_SECRET_KEY": KEY,
        "MAILTRACK_DATABASE": database,
        "MAILTRACK_WEBHOOK_URL": "http://127.0.0.1:9/hook",
        "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MAILTRACK_WORKER": mode,
    }
    lines: list[str] = []
    # In a thread: serve() sets a SIGTERM handler only in the main thread.
    thread = threading.Thread(
        target=serve, kwargs={"config": config, "echo": lines.append}
    )
    thread.start()
    thread.join(WAIT)
    assert f"Events are journaled in {database}-events." in lines
    embedded = "A worker thread of this process writes them to store, webhooks."
    assert (embedded in lines) is (mode == "embedded")
    assert any("run `mailtrack worker`" in line for line in lines) is (
        mode == "external"
    )
    assert f"The stats pages read {database}." in lines


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        pytest.param("true", "embedded", id="true"),
        pytest.param(" Yes ", "embedded", id="yes-spaced"),
        pytest.param(True, "embedded", id="bool-true"),
        pytest.param("FALSE", "external", id="upper-false"),
        pytest.param("0", "external", id="zero"),
        pytest.param(False, "external", id="bool-false"),
    ],
)
def test_the_flask_extension_reads_the_old_deliver_setting(
    value: object, mode: str, tmp_path: pathlib.Path
) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        SECRET_KEY=KEY,
        MAILTRACK_WEBHOOK_URL="http://127.0.0.1:9/hook",
        MAILTRACK_WEBHOOK_SECRET=WEBHOOK_SECRET,
        MAILTRACK_WEBHOOK_DELIVER=value,
    )
    with pytest.warns(DeprecationWarning, match="MAILTRACK_WORKER"):
        MailTrack(app)
    pipeline = get_state(app).pipeline
    assert pipeline is not None
    try:
        assert pipeline.mode == mode
    finally:
        pipeline.close(0)


@pytest.mark.parametrize("value", ["flase", "2", "disabled"])
def test_a_misspelled_deliver_setting_is_an_error(
    value: str, tmp_path: pathlib.Path
) -> None:
    from flask_mailtrack.server import create_app

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


@pytest.mark.parametrize(
    ("settings", "message"),
    [
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
        pytest.param({"MAILTRACK_WORKER": "thread"}, "MAILTRACK_WORKER", id="mode"),
    ],
)
@pytest.mark.parametrize("command", ["worker", "deliver"])
def test_worker_refuses_bad_settings(
    settings: dict[str, str], message: str, command: str, tmp_path: pathlib.Path
) -> None:
    database = tmp_path / "m.sqlite3"
    settings = {"MAILTRACK_DATABASE": str(database), **settings}
    result = CliRunner().invoke(main, [command], env=settings)
    assert result.exit_code == 1
    assert message in result.output
    assert not database.exists()


def test_flask_worker_needs_a_sink(tmp_path: pathlib.Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(SECRET_KEY=KEY)
    MailTrack(app)
    result = CliRunner().invoke(
        mailtrack_group, ["worker"], obj=ScriptInfo(create_app=lambda: app)
    )
    assert result.exit_code == 1
    assert "there is no sink to feed" in result.output


def test_flask_worker_uses_the_apps_journal_and_outbox(tmp_path: pathlib.Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        SECRET_KEY=KEY,
        MAILTRACK_WEBHOOK_URL="http://127.0.0.1:9/hook",
        MAILTRACK_WEBHOOK_SECRET=WEBHOOK_SECRET,
        MAILTRACK_WORKER="external",
    )
    MailTrack(app)
    pipeline = get_state(app).pipeline
    assert pipeline is not None
    with click.Context(mailtrack_group, obj=ScriptInfo(create_app=lambda: app)) as ctx:
        settings = FlaskCommandSettings(ctx)
        directory = settings.journal_directory()
        (sender,) = settings.sinks()
    try:
        assert directory == pipeline.directory
        assert isinstance(sender, WebhookSender)
        assert sender.outbox_path == str(tmp_path / "mailtrack.sqlite3")
        assert directory == sender.outbox_path + "-events"
    finally:
        sender.close(0)
        pipeline.close(0)
