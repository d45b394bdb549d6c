"""The Redis stream sink against a real Redis: what lands in the stream, the
cap, the worker feeding it from a journal, Redis down or full, settings.

Tests that stop or fill Redis start a redis-server of their own
(``_redis_server``); the others use the shared server with a stream key of
their own."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import signal
import subprocess
import sys
import time
import typing as t

import pytest
from flask_mailtrack import Configuration
from flask_mailtrack import ConfigurationError
from flask_mailtrack import EventStore
from flask_mailtrack import TrackingResult
from flask_mailtrack.events import RedisStreamSink
from flask_mailtrack.events import Sink
from flask_mailtrack.events._encoding import encode_event
from flask_mailtrack.events._from_settings import journal_directory
from flask_mailtrack.events._from_settings import pipeline_from_settings
from flask_mailtrack.events._from_settings import redis_stream_sink
from flask_mailtrack.events._from_settings import sinks_from_settings
from flask_mailtrack.events._journal import Journal
from flask_mailtrack.events._redis import hide_password
from flask_mailtrack.events._sinks import EventRecord
from flask_mailtrack.events._worker import Worker

from _journal_helpers import body
from _journal_helpers import event_id
from _journal_helpers import journal_files
from _journal_helpers import WAIT
from _journal_helpers import wait_until
from _redis_server import RedisServer

KEY = "redis-test-secret-key-0123456789ab"


@pytest.fixture
def own_redis() -> t.Iterator[RedisServer]:
    """A redis-server of this test alone, running; stopped afterwards."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


def records(numbers: t.Iterable[int]) -> list[EventRecord]:
    return [EventRecord(event_id(n), body(n), json.loads(body(n))) for n in numbers]


def entries(client: t.Any, stream: str) -> list[dict[bytes, bytes]]:
    """The fields of every entry of ``stream``, oldest first."""
    return [fields for _, fields in client.xrange(stream)]


def stream_ids(client: t.Any, stream: str) -> list[str]:
    return [fields[b"id"].decode() for fields in entries(client, stream)]


# -- the sink alone -------------------------------------------------------------


def test_each_event_lands_once_with_its_id_and_exact_body(
    redis_url: str, stream: str, redis_client: t.Any
) -> None:
    results = [
        TrackingResult(
            is_open_tracking=True,
            timestamp=1_700_000_000 + n,
            metadata={"campaign": "spring", "email": f"r{n}@example.com", "é": "✓"},
        )
        for n in range(5)
    ]
    events = [
        EventRecord(r.event_id, encode_event(r.to_json_dict()), r.to_json_dict())
        for r in results
    ]
    events += records(range(5, 250))
    sink = RedisStreamSink(redis_url, stream=stream)
    assert isinstance(sink, Sink)
    assert sink.name == "redis"
    try:
        sink.write(events[:100])
        sink.write([])
        sink.write(events[100:])
    finally:
        sink.close()
    assert entries(redis_client, stream) == [
        {b"id": event.id.encode(), b"event": event.body} for event in events
    ]
    first = json.loads(entries(redis_client, stream)[0][b"event"])
    assert first["schema"] == 1
    assert first["metadata"]["é"] == "✓"


def test_maxlen_caps_the_stream_approximately(
    redis_url: str, stream: str, redis_client: t.Any
) -> None:
    node_entries = int(
        redis_client.config_get("stream-node-max-entries")["stream-node-max-entries"]
    )
    sink = RedisStreamSink(redis_url, stream=stream, maxlen=300)
    try:
        for start in range(0, 3000, 500):
            sink.write(records(range(start, start + 500)))
    finally:
        sink.close()
    length = redis_client.xlen(stream)
    # Redis trims whole nodes only: never below the cap, less than a node
    # above it.
    assert 300 <= length < 300 + node_entries
    assert stream_ids(redis_client, stream)[-300:] == [
        event_id(n) for n in range(2700, 3000)
    ]


def test_no_cap(redis_url: str, stream: str, redis_client: t.Any) -> None:
    sink = RedisStreamSink(redis_url, stream=stream, maxlen=None)
    try:
        sink.write(records(range(1000)))
    finally:
        sink.close()
    assert redis_client.xlen(stream) == 1000


@pytest.mark.parametrize("maxlen", [0, -1, True, 1.5, "10"])
def test_bad_maxlen(redis_url: str, maxlen: t.Any) -> None:
    with pytest.raises(ConfigurationError, match="maxlen"):
        RedisStreamSink(redis_url, maxlen=maxlen)


def test_not_a_redis_url_and_the_password_stays_hidden() -> None:
    pytest.importorskip("redis")
    with pytest.raises(ConfigurationError, match="Not a Redis URL") as caught:
        RedisStreamSink("http://user:s3cret@localhost:6379/0")
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://ada:s3cret@h/1", "redis://ada:***@h/1"),
        ("rediss://h/0?password=s3cret&db=2", "rediss://h/0?password=***&db=2"),
        ("unix://:s3cret@/run/redis.sock?db=0", "unix://:***@/run/redis.sock?db=0"),
        ("redis://ada@h:6379", "redis://ada@h:6379"),
        ("redis://h:6379/0", "redis://h:6379/0"),
    ],
)
def test_hide_password(url: str, shown: str) -> None:
    assert hide_password(url) == shown


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import redis` raise ImportError, as when
    # the package is not installed.
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ConfigurationError, match=r"flask-mailtrack\[redis\]"):
        RedisStreamSink("redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigurationError, match=r"flask-mailtrack\[redis\]"):
        redis_stream_sink({"MAILTRACK_REDIS_URL": "redis://127.0.0.1:6379/0"})


# -- fed by the worker ----------------------------------------------------------


def test_the_worker_delivers_the_journal_to_the_stream(
    tmp_path: pathlib.Path, redis_url: str, stream: str, redis_client: t.Any
) -> None:
    directory = str(tmp_path / "journal")
    with Journal(directory, seal_after=3600) as journal:
        for n in range(2500):
            assert journal.append(body(n))
            if n % 1000 == 999:
                journal.seal()
    sink = RedisStreamSink(redis_url, stream=stream)
    with Worker(directory, [sink], batch_size=400) as worker:
        assert worker.run_once() == 2500
        assert worker.stats()["sinks"]["redis"]["written"] == 2500
        assert worker.stats()["sinks"]["redis"]["backlog"] == 0
    assert journal_files(directory) == []
    assert entries(redis_client, stream) == [
        {b"id": event_id(n).encode(), b"event": body(n)} for n in range(2500)
    ]


def test_redis_down_then_back(
    tmp_path: pathlib.Path, own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    directory = str(tmp_path / "journal")
    sink = RedisStreamSink(own_redis.url, stream="events", timeout=2)
    sink.write(records(range(3)))  # connected while it was up
    own_redis.stop()
    with pytest.raises(Exception) as caught:
        sink.write(records(range(3, 4)))
    assert "ConnectionError" in type(caught.value).__name__
    with Journal(directory, seal_after=3600) as journal:
        for n in range(3, 503):
            assert journal.append(body(n))
    with Worker(directory, [sink], retry_base=0.05, retry_max=0.2) as worker:
        with caplog.at_level(logging.WARNING, "flask_mailtrack.worker"):
            worker.run_once()
        stats = worker.stats()["sinks"]["redis"]
        assert stats["written"] == 0
        assert stats["failures"] == 1
        assert stats["backlog"] == 500
        assert "ConnectionError" in stats["last_error"]
        assert "The sink 'redis' failed" in caplog.text
        assert len(journal_files(directory)) == 1  # the events wait there

        own_redis.start()  # empty: no persistence

        def delivered() -> bool:
            worker.run_once()
            return not journal_files(directory)

        wait_until(delivered, "the worker did not deliver after Redis came back")
        assert worker.stats()["sinks"]["redis"]["written"] == 500
    with own_redis.client() as client:
        assert stream_ids(client, "events") == [event_id(n) for n in range(3, 503)]


def padded(n: int) -> bytes:
    """A schema-1 event body of about 800 bytes."""
    event = {"schema": 1, "id": event_id(n), "padding": "x" * 700}
    return json.dumps(event).encode()


def test_redis_full_then_freed(tmp_path: pathlib.Path) -> None:
    server = RedisServer("--maxmemory", "3mb", "--maxmemory-policy", "noeviction")
    server.start()
    try:
        directory = str(tmp_path / "journal")
        with Journal(directory, seal_after=3600) as journal:
            for n in range(10_000):  # about 8 MB in the stream: too many
                assert journal.append(padded(n))
        sink = RedisStreamSink(server.url, stream="events", maxlen=None)
        # Small batches: a batch is one argument, which takes memory too.
        with Worker(
            directory, [sink], batch_size=100, retry_base=0.05, retry_max=0.2
        ) as worker:
            worker.run_once()
            stats = worker.stats()["sinks"]["redis"]
            assert stats["failures"] == 1
            assert "OutOfMemoryError" in stats["last_error"]
            assert journal_files(directory) != []
            with server.client() as client:
                assert 0 < client.xlen("events") < 10_000
                client.config_set("maxmemory", 0)

            def delivered() -> bool:
                worker.run_once()
                return not journal_files(directory)

            wait_until(delivered, "the worker did not deliver once Redis had room")
        with server.client() as client:
            # Each once: Redis refuses a script for memory at its first
            # write or never, so the refused batch added nothing.
            assert stream_ids(client, "events") == [event_id(n) for n in range(10_000)]
    finally:
        server.stop()


def test_a_password_never_shows(tmp_path: pathlib.Path) -> None:
    server = RedisServer(password="s3cret-pw").start()
    try:
        good = server.url
        bad = f"redis://:wr0ng-pw@127.0.0.1:{server.port}/0"
        sink = RedisStreamSink(good, stream="events")
        assert "s3cret-pw" not in repr(sink) and "s3cret-pw" not in sink.url
        sink.write(records(range(2)))
        sink.close()
        directory = str(tmp_path / "journal")
        with Journal(directory, seal_after=3600) as journal:
            assert journal.append(body(2))
        with Worker(directory, [RedisStreamSink(bad, stream="events")]) as worker:
            worker.run_once()
            error = worker.stats()["sinks"]["redis"]["last_error"]
        assert "AuthenticationError" in error or "invalid" in error.lower(), error
        assert "wr0ng-pw" not in error
    finally:
        server.stop()


# -- settings -------------------------------------------------------------------


def test_settings_make_the_sink(redis_url: str) -> None:
    configuration = Configuration(secret_key=KEY)
    settings = {
        "MAILTRACK_REDIS_URL": redis_url,
        "MAILTRACK_REDIS_STREAM": "events:mail",
        "MAILTRACK_REDIS_MAXLEN": "5_000",
        "MAILTRACK_JOURNAL": "/var/lib/mailtrack/journal",
    }
    (sink,) = sinks_from_settings(settings, configuration)
    try:
        assert isinstance(sink, RedisStreamSink)
        assert (sink.stream, sink.maxlen, sink.name) == ("events:mail", 5000, "redis")
    finally:
        sink.close()
    assert journal_directory(settings, configuration) == "/var/lib/mailtrack/journal"
    defaults = redis_stream_sink({"MAILTRACK_REDIS_URL": redis_url})
    assert defaults is not None
    assert (defaults.stream, defaults.maxlen) == ("mailtrack:events", 1_000_000)
    defaults.close()
    assert redis_stream_sink({}) is None


def test_settings_beside_the_store(tmp_path: pathlib.Path, redis_url: str) -> None:
    database = str(tmp_path / "events.sqlite3")
    settings = {"MAILTRACK_DATABASE": database, "MAILTRACK_REDIS_URL": redis_url}
    configuration = Configuration(secret_key=KEY)
    sinks = sinks_from_settings(settings, configuration)
    try:
        assert [type(sink) for sink in sinks] == [EventStore, RedisStreamSink]
    finally:
        for sink in sinks:
            sink.close()
    assert journal_directory(settings, configuration) == database + "-events"


@pytest.mark.parametrize("maxlen", ["0", "-5", "lots", "1.5", True])
def test_bad_maxlen_setting(redis_url: str, maxlen: t.Any) -> None:
    with pytest.raises(ConfigurationError, match="MAILTRACK_REDIS_MAXLEN"):
        redis_stream_sink(
            {"MAILTRACK_REDIS_URL": redis_url, "MAILTRACK_REDIS_MAXLEN": maxlen}
        )


def test_redis_alone_needs_a_journal_folder(redis_url: str) -> None:
    with pytest.raises(ConfigurationError, match="MAILTRACK_JOURNAL"):
        journal_directory(
            {"MAILTRACK_REDIS_URL": redis_url}, Configuration(secret_key=KEY)
        )


def test_a_pipeline_from_settings_feeds_the_stream(
    tmp_path: pathlib.Path, redis_url: str, stream: str, redis_client: t.Any
) -> None:
    settings = {
        "MAILTRACK_REDIS_URL": redis_url,
        "MAILTRACK_REDIS_STREAM": stream,
        "MAILTRACK_JOURNAL": str(tmp_path / "journal"),
    }
    pipeline = pipeline_from_settings(settings, Configuration(secret_key=KEY))
    assert pipeline is not None
    try:
        result = TrackingResult(
            is_open_tracking=True, timestamp=1_700_000_000, metadata={"n": 1}
        )
        assert pipeline.journal.record(result)
        assert pipeline.drain(WAIT)
        stats = pipeline.stats()["worker"]["sinks"]
        assert list(stats) == ["redis"]
        assert stats["redis"]["written"] == 1
    finally:
        pipeline.close()
    assert entries(redis_client, stream) == [
        {
            b"id": result.event_id.encode(),
            b"event": encode_event(result.to_json_dict()),
        }
    ]


def test_worker_command_feeds_the_stream(tmp_path: pathlib.Path) -> None:
    server = RedisServer(password="s3cret-pw").start()
    try:
        directory = str(tmp_path / "journal")
        with Journal(directory) as journal:
            for n in range(20):
                assert journal.append(body(n))
        env = {
            **os.environ,
            "MAILTRACK_REDIS_URL": server.url,
            "MAILTRACK_JOURNAL": directory,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "flask_mailtrack.cli", "worker"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            with server.client() as client:
                deadline = time.monotonic() + WAIT
                while client.xlen("mailtrack:events") < 20:
                    assert process.poll() is None, "the worker exited"
                    assert time.monotonic() < deadline, "nothing in the stream"
                    time.sleep(0.02)
                process.send_signal(signal.SIGTERM)
                stdout, stderr = process.communicate(timeout=WAIT)
                assert stream_ids(client, "mailtrack:events") == [
                    event_id(n) for n in range(20)
                ]
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 0, stderr
        assert (
            "the Redis stream mailtrack:events at"
            f" redis://:***@127.0.0.1:{server.port}/0" in stdout
        )
        assert "s3cret-pw" not in stdout + stderr
        assert journal_files(directory) == []
    finally:
        server.stop()
