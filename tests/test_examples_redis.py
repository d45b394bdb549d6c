"""examples/redis_consumer.py against the real Redis, fed by the real sink:
every event stored once, a crashed consumer's entries taken over, and the
script itself run until Ctrl-C."""

from __future__ import annotations

import importlib.util
import pathlib
import signal
import sqlite3
import subprocess
import sys
import time
import types
import typing as t

import pytest
from flask_mailtrack import TrackingResult
from flask_mailtrack.events import RedisStreamSink
from flask_mailtrack.events._encoding import encode_event
from flask_mailtrack.events._sinks import EventRecord

EXAMPLE = pathlib.Path(__file__).parents[1] / "examples" / "redis_consumer.py"
WAIT = 20.0  # seconds; never reached when passing


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("redis_consumer", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def events(count: int) -> list[EventRecord]:
    records = []
    for n in range(count):
        result = TrackingResult(
            is_open_tracking=n % 2 == 0,
            is_click_tracking=n % 2 == 1,
            tracked_url="https://example.com/sale" if n % 2 else None,
            timestamp=1_700_000_000 + n,
            metadata={"campaign": "spring", "n": n},
        )
        data = result.to_json_dict()
        records.append(EventRecord(result.event_id, encode_event(data), data))
    return records


def published(redis_url: str, stream: str, count: int) -> list[EventRecord]:
    """``count`` events, appended to ``stream`` as the worker's sink does."""
    sent = events(count)
    sink = RedisStreamSink(redis_url, stream=stream)
    try:
        sink.write(sent)
    finally:
        sink.close()
    return sent


def stored(path: pathlib.Path) -> dict[str, str]:
    database = sqlite3.connect(path)
    try:
        return dict(database.execute("SELECT id, type FROM events"))
    except sqlite3.OperationalError:  # the consumer made the file, not the table
        return {}
    finally:
        database.close()


def pending(client: t.Any, stream: str, group: str) -> int:
    return int(client.xpending(stream, group)["pending"])


def test_every_event_stored_once(
    example: types.ModuleType,
    redis_url: str,
    stream: str,
    redis_client: t.Any,
    tmp_path: pathlib.Path,
) -> None:
    example.ensure_group(redis_client, stream)  # before the worker made the stream
    example.ensure_group(redis_client, stream)  # and again: BUSYGROUP is fine
    sent = events(250)
    sink = RedisStreamSink(redis_url, stream=stream)
    try:
        sink.write(sent)
        sink.write(sent[:30])  # offered again: in the stream twice
    finally:
        sink.close()
    database = example.open_database(str(tmp_path / "events.sqlite3"))
    handled = 0
    while True:
        n = example.consume_once(redis_client, stream, "one", database, block_ms=10)
        if not n:
            break
        handled += n
    database.close()
    assert handled == 280
    assert stored(tmp_path / "events.sqlite3") == {
        event.id: event.data["type"] for event in sent
    }
    assert pending(redis_client, stream, example.GROUP) == 0


def test_a_crashed_consumers_entries_are_taken_over(
    example: types.ModuleType,
    redis_url: str,
    stream: str,
    redis_client: t.Any,
    tmp_path: pathlib.Path,
) -> None:
    example.ensure_group(redis_client, stream)
    sent = published(redis_url, stream, 150)
    database = example.open_database(str(tmp_path / "events.sqlite3"))

    class Crash(Exception):
        pass

    def crash(database: sqlite3.Connection, event: dict[str, t.Any]) -> None:
        raise Crash

    # "doomed" reads a batch and dies before acknowledging any of it.
    original = example.store
    example.store = crash
    with pytest.raises(Crash):
        example.consume_once(redis_client, stream, "doomed", database, block_ms=10)
    example.store = original
    assert pending(redis_client, stream, example.GROUP) == example.BATCH

    # Not idle long enough yet: "rescuer" takes only the new entries.
    assert (
        example.consume_once(redis_client, stream, "rescuer", database, block_ms=10)
        == 50
    )
    assert pending(redis_client, stream, example.GROUP) == example.BATCH
    time.sleep(0.05)
    taken = example.consume_once(
        redis_client, stream, "rescuer", database, claim_idle_ms=20, block_ms=10
    )
    assert taken == example.BATCH
    assert pending(redis_client, stream, example.GROUP) == 0
    database.close()
    assert set(stored(tmp_path / "events.sqlite3")) == {event.id for event in sent}


def test_resume_reads_its_own_pending_entries(
    example: types.ModuleType,
    redis_url: str,
    stream: str,
    redis_client: t.Any,
    tmp_path: pathlib.Path,
) -> None:
    example.ensure_group(redis_client, stream)
    published(redis_url, stream, 20)
    # Read by "again" in an earlier life, never acknowledged.
    redis_client.xreadgroup(example.GROUP, "again", {stream: ">"}, count=15)
    database = example.open_database(str(tmp_path / "events.sqlite3"))
    assert example.resume(redis_client, stream, "again", database) == 15
    assert example.resume(redis_client, stream, "again", database) == 0
    database.close()
    assert pending(redis_client, stream, example.GROUP) == 0
    assert len(stored(tmp_path / "events.sqlite3")) == 15


def test_the_script_runs_until_ctrl_c(
    redis_url: str, stream: str, tmp_path: pathlib.Path
) -> None:
    sent = events(40)
    sink = RedisStreamSink(redis_url, stream=stream)
    sink.write(sent)
    path = tmp_path / "events.sqlite3"
    process = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLE),
            redis_url,
            "--stream",
            stream,
            "--name",
            "script",
            "--database",
            str(path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + WAIT
        while not (path.exists() and len(stored(path)) == 40):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the consumer stored nothing"
            time.sleep(0.05)
        sink.write(events(1))  # while it waits in XREADGROUP
        deadline = time.monotonic() + WAIT
        while len(stored(path)) < 41:
            assert time.monotonic() < deadline, "the new event was not read"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=WAIT)
    finally:
        sink.close()
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert f"script: consuming {stream}" in stdout
    assert "script: handled 41 entries" in stdout
