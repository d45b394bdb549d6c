"""The events pipeline: a journal connected to the signals, the sinks, and
an embedded worker (or none); the private pipelines of the direct API,
``EventStore(...).connect()``."""

from __future__ import annotations

import os
import pathlib
import typing as t

import pytest
from flask_mailtrack import ConfigurationError
from flask_mailtrack import email_opened
from flask_mailtrack import EventStore
from flask_mailtrack import TrackingResult
from flask_mailtrack.events._pipeline import connect_sink
from flask_mailtrack.events._pipeline import disconnect_sink
from flask_mailtrack.events._pipeline import Pipeline
from flask_mailtrack.events._pipeline import sink_pipeline
from flask_mailtrack.events._sinks import EventRecord

WAIT = 20.0


class Sender:
    """Something with weak references, like a Flask app."""


class ListSink:
    """A sink that keeps what it is given."""

    name = "list"

    def __init__(self) -> None:
        self.events: list[EventRecord] = []
        self.closed = False

    def write(self, events: t.Sequence[EventRecord]) -> None:
        self.events.extend(events)

    def close(self) -> None:
        self.closed = True


def send(sender: object, n: int) -> TrackingResult:
    result = TrackingResult(is_open_tracking=True, timestamp=1_700_000_000 + n)
    email_opened.send(sender, result=result)
    return result


def test_embedded_pipeline_feeds_its_sinks(tmp_path: pathlib.Path) -> None:
    sink = ListSink()
    sender = Sender()
    pipeline = Pipeline(tmp_path / "journal", [sink]).connect(sender)
    try:
        sent = [send(sender, n).event_id for n in range(5)]
        send(Sender(), 99)  # another sender's event: not journaled here
        assert pipeline.drain(WAIT)
        assert [event.id for event in sink.events] == sent
        stats = pipeline.stats()
        assert stats["mode"] == "embedded"
        assert (stats["dropped"], stats["buffered"]) == (0, 0)
        assert stats["worker"]["events_read"] == 5
    finally:
        pipeline.close(WAIT)
    assert sink.closed
    assert os.listdir(tmp_path / "journal") == []


def test_close_hands_the_last_events_to_the_sinks(tmp_path: pathlib.Path) -> None:
    sink = ListSink()
    sender = Sender()
    pipeline = Pipeline(tmp_path / "journal", [sink]).connect(sender)
    sent = send(sender, 1).event_id
    pipeline.close(WAIT)
    assert [event.id for event in sink.events] == [sent]
    pipeline.close()  # again: nothing
    with pytest.raises(RuntimeError, match="closed"):
        pipeline.connect(sender)


def test_external_pipeline_only_journals(tmp_path: pathlib.Path) -> None:
    sink = ListSink()
    sender = Sender()
    pipeline = Pipeline(tmp_path / "journal", [sink], worker="external")
    pipeline.connect(sender)
    try:
        send(sender, 1)
        assert pipeline.worker is None
        assert not pipeline.drain(0.2)  # nobody takes the file
        files = os.listdir(tmp_path / "journal")
        assert len(files) == 1 and files[0].endswith(".journal")
        assert sink.events == []
    finally:
        pipeline.close(0)
    assert sink.closed
    assert len(os.listdir(tmp_path / "journal")) == 1  # left for the worker


def test_unknown_worker_mode(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigurationError, match="embedded"):
        Pipeline(tmp_path / "journal", [], worker="thread")


def test_the_journal_folder_must_be_private(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    with pytest.raises(ConfigurationError):
        Pipeline(folder, [ListSink()])


def test_store_connect_uses_a_private_pipeline(tmp_path: pathlib.Path) -> None:
    database = tmp_path / "events.sqlite3"
    sender = Sender()
    with EventStore(database) as store:
        store.connect(sender)
        pipeline = sink_pipeline(store)
        assert pipeline is not None
        assert pipeline.directory == f"{database}-store-events"
        sent = send(sender, 1).event_id
        assert pipeline.drain(WAIT)
        assert [event["id"] for event in store.events()] == [sent]
        store.disconnect()
        assert sink_pipeline(store) is None
        assert pipeline.closed
        send(sender, 2)
        assert store.count() == 1  # no longer recorded; the store stays open


def test_in_memory_store_journals_in_a_temporary_folder() -> None:
    sender = Sender()
    store = EventStore(":memory:")
    connect_sink(store, sender)
    pipeline = sink_pipeline(store)
    assert pipeline is not None
    folder = pipeline.directory
    assert os.stat(folder).st_mode & 0o777 == 0o700
    send(sender, 1)
    disconnect_sink(store, WAIT)  # writes what was journaled first
    assert store.count() == 1
    assert not os.path.exists(folder)
    store.close()


def test_a_postgresql_store_journals_in_a_temporary_folder(postgres_url: str) -> None:
    # No file to journal beside: not a folder named after the URL.
    sender = Sender()
    with EventStore(postgres_url) as store:
        store.connect(sender)
        pipeline = sink_pipeline(store)
        assert pipeline is not None
        folder = pipeline.directory
        assert "://" not in folder
        assert os.stat(folder).st_mode & 0o777 == 0o700
        send(sender, 1)
        store.disconnect()
        assert store.count() == 1
        assert not os.path.exists(folder)


def test_two_sinks_on_one_file_have_their_own_journals(tmp_path: pathlib.Path) -> None:
    """A store and another sink on the same file: each worker takes only its
    own sink's journal, so neither loses the other's events."""
    database = str(tmp_path / "events.sqlite3")
    sender = Sender()

    class FileSink(ListSink):
        name = "other"
        path = database

    other = FileSink()
    with EventStore(database) as store:
        store.connect(sender)
        connect_sink(other, sender)
        send(sender, 1)
        disconnect_sink(other, WAIT)
        store.disconnect()
        assert store.count() == 1
    assert len(other.events) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_runs_its_own_worker(tmp_path: pathlib.Path) -> None:
    # A preforking server (gunicorn --preload) makes the app, then forks:
    # the parent's worker thread does not exist in the child, which starts
    # its own on the same folder.
    sink = ListSink()
    sender = Sender()
    pipeline = Pipeline(tmp_path / "journal", [sink]).connect(sender)
    try:
        # Any worker on the folder may take the child's file: with the
        # parent's stopped, only the child's own worker can feed its sink.
        assert pipeline.worker is not None
        pipeline.worker.stop()
        pid = os.fork()
        if pid == 0:  # the child: only os._exit leaves it
            code = 1
            try:
                sent = send(sender, 1).event_id
                code = 0 if pipeline.drain(WAIT) and sink.events[-1].id == sent else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        pipeline.close()
