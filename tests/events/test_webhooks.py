"""WebhookSender as a sink, against a real loopback HTTP receiver."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import typing as t

import pytest
from flask_mailtrack import Configuration
from flask_mailtrack import MailTrackError
from flask_mailtrack import TrackingMiddleware
from flask_mailtrack import verify_webhook
from flask_mailtrack import WebhookSender
from flask_mailtrack.events._sinks import Sink
from flask_mailtrack.signals import webhook_failed

from _webhook_receiver import KEY
from _webhook_receiver import Receiver
from _webhook_receiver import record
from _webhook_receiver import SECRET
from _webhook_receiver import WAIT

#: Settings that make retries fast enough for tests.
FAST = {"retry_base": 0.02, "retry_max": 0.05, "poll_interval": 0.02}


@pytest.fixture
def outbox(tmp_path: t.Any) -> str:
    return str(tmp_path / "outbox.sqlite3")


@pytest.fixture
def make_sender(outbox: str) -> t.Iterator[t.Callable[..., WebhookSender]]:
    senders: list[WebhookSender] = []

    def make(url: str | None, **kwargs: t.Any) -> WebhookSender:
        options = {"secret": SECRET, "outbox_path": outbox, **FAST, **kwargs}
        sender = WebhookSender(url, **options)
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        sender.close(timeout=0)


def wait_until(predicate: t.Callable[[], object]) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def outbox_rows(path: str, sql: str = "SELECT COUNT(*) FROM webhook_outbox") -> t.Any:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return connection.execute(sql).fetchone()[0]


def test_a_sender_is_a_sink(make_sender: t.Callable[..., WebhookSender]) -> None:
    sender = make_sender(None)
    assert isinstance(sender, Sink)
    assert sender.name == "webhooks"


# -- signed delivery ------------------------------------------------------------


def test_delivery_is_signed_per_standard_webhooks(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender]
) -> None:
    sender = make_sender(receiver.url)
    event = record(7)
    sender.write([event])
    receiver.wait_for(lambda: len(receiver.requests) == 1)
    request = receiver.requests[0]
    assert request.verified  # by the standardwebhooks package
    # The journaled bytes, posted as they are.
    assert request.body == event.body
    headers = {k.lower(): v for k, v in request.headers.items()}
    # An independent computation of the signature agrees.
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode()
    expected = hmac.new(KEY, signed + request.body, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(expected).decode()
    assert headers["webhook-id"] == event.id
    assert headers["content-type"] == "application/json"
    assert verify_webhook(request.body, request.headers, SECRET) == event.data


def test_many_events_several_in_flight(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender]
) -> None:
    receiver.hold_after = 0  # every request waits for the release
    sender = make_sender(receiver.url, concurrency=4)
    events = [record(n) for n in range(300)]
    sender.write(events)
    # Four requests arrive before any is answered: four in flight.
    receiver.wait_for(lambda: len(receiver.requests) == 4)
    receiver.release.set()
    receiver.wait_for(lambda: receiver.ids() == {e.id for e in events})
    assert receiver.most_in_flight == 4
    assert all(request.verified for request in receiver.requests)
    receiver.assert_consistent()
    wait_until(lambda: sender.pending() == 0)


# -- the sink: what write queues -----------------------------------------------


def test_writing_a_batch_twice_queues_it_once(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender], outbox: str
) -> None:
    sender = make_sender(receiver.url, deliver=False)
    events = [record(n) for n in range(5)]
    sender.write(events)
    sender.write(events[2:] + [record(5)])  # a batch offered again, and more
    assert sender.pending() == 6
    sender.start()
    receiver.wait_for(lambda: len(receiver.ids()) == 6)
    wait_until(lambda: sender.pending() == 0)
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert sorted(ids) == sorted(set(ids))  # one delivery per id


def test_a_given_up_event_is_not_queued_again(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender]
) -> None:
    receiver.status = 410
    sender = make_sender(receiver.url)
    event = record(1)
    sender.write([event])
    wait_until(lambda: bool(sender.dead_letters()))
    sender.write([event])
    assert sender.pending() == 0
    assert len(receiver.requests) == 1


def test_token_webhook_url_wins(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender]
) -> None:
    other = Receiver().start()
    try:
        sender = make_sender(receiver.url)
        mine, theirs = record(1), record(2, webhook_url=other.url)
        sender.write([mine, theirs])
        other.wait_for(lambda: other.ids() == {theirs.id})
        receiver.wait_for(lambda: receiver.ids() == {mine.id})
    finally:
        other.stop()


def test_events_that_cannot_be_sent_are_skipped(
    make_sender: t.Callable[..., WebhookSender], caplog: pytest.LogCaptureFixture
) -> None:
    sender = make_sender(None, deliver=False)
    bad_id = record(3, webhook_url="http://127.0.0.1:9/")._replace(id="evt_1\r\nX: 1")
    with caplog.at_level(logging.ERROR, "flask_mailtrack.webhooks"):
        sender.write(
            [
                record(1),  # no URL at all
                record(2, webhook_url="file:///etc/passwd"),
                bad_id,
                record(4, webhook_url="http://127.0.0.1:9/"),
            ]
        )
    assert sender.pending() == 1
    assert "bad webhook URL 'file:///etc/passwd'" in caplog.text
    assert "bad event id" in caplog.text


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("ftp://example.com/", id="ftp"),
        pytest.param("http:///path", id="no-host"),
    ],
)
def test_bad_webhook_urls_are_refused(url: str, outbox: str) -> None:
    with pytest.raises(MailTrackError):
        WebhookSender(url, secret=SECRET, outbox_path=outbox)


def test_memory_outbox_when_asked(receiver: Receiver) -> None:
    sender = WebhookSender(receiver.url, secret=SECRET, outbox_path=":memory:", **FAST)
    try:
        event = record()
        sender.write([event])
        receiver.wait_for(lambda: receiver.ids() == {event.id})
    finally:
        sender.close(timeout=0)


# -- retries and dead letters -----------------------------------------------------


def test_failing_receiver_gets_every_event(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender]
) -> None:
    receiver.fail_first = 7
    sender = make_sender(receiver.url)
    events = [record(n) for n in range(5)]
    sender.write(events)
    receiver.wait_for(lambda: receiver.ids() == {e.id for e in events})
    assert len(receiver.requests) >= 12
    receiver.assert_consistent()
    wait_until(lambda: sender.pending() == 0)


def test_receiver_down_then_back(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender], outbox: str
) -> None:
    receiver.stop()  # the port is closed: connections are refused
    sender = make_sender(receiver.url)
    events = [record(n) for n in range(5)]
    sender.write(events)
    # Wait until every event has failed at least twice.
    wait_until(
        lambda: (
            (outbox_rows(outbox, "SELECT MIN(attempts) FROM webhook_outbox") or 0) >= 2
        )
    )
    error = outbox_rows(outbox, "SELECT last_error FROM webhook_outbox LIMIT 1")
    assert "Connection refused" in error
    receiver.start()  # same port
    receiver.wait_for(lambda: receiver.ids() == {e.id for e in events})
    receiver.assert_consistent()


def test_redirect_is_not_followed(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender], outbox: str
) -> None:
    receiver.status = 302
    sender = make_sender(receiver.url)
    sender.write([record()])
    receiver.wait_for(lambda: len(receiver.requests) >= 2)
    assert sender.pending() == 1
    assert outbox_rows(outbox, "SELECT last_status FROM webhook_outbox") == 302


def test_gone_stops_retries_and_dead_letters(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender]
) -> None:
    receiver.status = 410
    failures: list[dict[str, t.Any]] = []
    arrived = threading.Event()

    def on_failed(sender: t.Any, **kwargs: t.Any) -> None:
        failures.append(kwargs)
        arrived.set()

    sender = make_sender(receiver.url)
    event = record(1)
    with webhook_failed.connected_to(on_failed):
        sender.write([event])
        assert arrived.wait(WAIT)
    assert [f["reason"] for f in failures] == ["gone"]
    assert failures[0]["event_id"] == event.id
    assert failures[0]["payload"] == event.data
    assert failures[0]["status"] == 410
    assert sender.pending() == 0
    letters = sender.dead_letters()
    assert [(d["event_id"], d["reason"], d["attempts"]) for d in letters] == [
        (event.id, "gone", 1)
    ]
    sender.flush(1)
    assert len(receiver.requests) == 1
    # Once the endpoint is back, dead letters can be sent again.
    receiver.status = 200
    assert sender.requeue_dead_letters() == 1
    receiver.wait_for(lambda: receiver.ids() == {event.id})
    assert sender.dead_letters() == []


def test_too_old_events_are_dead_lettered(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender]
) -> None:
    receiver.status = 503
    reasons: list[str] = []
    done = threading.Event()

    def on_failed(sender: t.Any, **kwargs: t.Any) -> None:
        reasons.append(kwargs["reason"])
        done.set()

    sender = make_sender(receiver.url, max_age=0.2)
    with webhook_failed.connected_to(on_failed):
        sender.write([record()])
        assert done.wait(WAIT)
    assert reasons == ["expired"]
    (letter,) = sender.dead_letters()
    assert letter["attempts"] >= 2
    assert letter["last_status"] == 503
    assert sender.pending() == 0


# -- claims, close and leases -------------------------------------------------------


def test_claims_are_bounded_batches(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender], outbox: str
) -> None:
    receiver.hold_after = 0
    sender = make_sender(receiver.url, batch_size=3)
    sender.write([record(n) for n in range(20)])
    receiver.wait_for(lambda: len(receiver.requests) == 3)
    leased = "SELECT COUNT(*) FROM webhook_outbox WHERE lease_owner IS NOT NULL"
    # The loop holds one batch at most, whatever the backlog.
    assert outbox_rows(outbox, leased) == 3
    assert sender.pending() == 20
    receiver.release.set()
    receiver.wait_for(lambda: len(receiver.ids()) == 20)


def test_close_flushes_due_events(receiver: Receiver, outbox: str) -> None:
    sender = WebhookSender(receiver.url, secret=SECRET, outbox_path=outbox, **FAST)
    events = [record(n) for n in range(10)]
    sender.write(events)
    sender.close(timeout=WAIT)
    assert receiver.ids() == {e.id for e in events}
    assert outbox_rows(outbox) == 0
    sender.close()  # again: nothing to do


def test_close_gives_back_what_it_claimed(receiver: Receiver, outbox: str) -> None:
    receiver.hold_after = 0
    # A lease of an hour: only the release at close lets the next sender in.
    sender = WebhookSender(
        receiver.url, secret=SECRET, outbox_path=outbox, lease_seconds=3600, **FAST
    )
    events = [record(n) for n in range(3)]
    sender.write(events)
    receiver.wait_for(lambda: len(receiver.requests) == 3)
    sender.close(timeout=0)
    # Nothing was delivered; everything is in the file, claimable at once.
    assert outbox_rows(outbox) == 3
    assert outbox_rows(outbox, "SELECT MAX(lease_until) FROM webhook_outbox") == 0
    receiver.hold_after = None
    receiver.release.set()
    with WebhookSender(receiver.url, secret=SECRET, outbox_path=outbox, **FAST) as new:
        new.start()
        receiver.wait_for(lambda: receiver.ids() == {e.id for e in events})
        wait_until(lambda: new.pending() == 0)


def test_a_closed_sender_refuses_to_start(outbox: str) -> None:
    sender = WebhookSender(None, secret=SECRET, outbox_path=outbox)
    sender.start()
    sender.close()
    with pytest.raises(RuntimeError):
        sender.start()


# -- connect: the signals, through the pipeline --------------------------------------


def test_pixel_response_does_not_wait_for_the_webhook(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender]
) -> None:
    from werkzeug.test import Client

    configuration = Configuration(
        secret_key="webhooks-test-secret-key-0123456789",
        base_open_tracking_url="http://t.example.com/o/",
        base_click_tracking_url="http://t.example.com/c/",
    )

    def app(environ: t.Any, start_response: t.Any) -> t.Iterable[bytes]:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    middleware = TrackingMiddleware(app, configuration=configuration)
    sender = make_sender(receiver.url, concurrency=1).connect(middleware)
    receiver.hold_after = 0  # every delivery hangs until released
    client = Client(middleware)
    first = client.get(middleware.tracker.open_url({"n": 1}))
    assert first.status_code == 200
    # The loop is now stuck inside the first delivery...
    receiver.wait_for(lambda: len(receiver.requests) == 1)
    # ...and pixels are still answered, their events queued behind it.
    for n in range(2, 6):
        assert client.get(middleware.tracker.open_url({"n": n})).status_code == 200
    clicked = client.get(middleware.tracker.click_url("https://example.com/", {}))
    assert clicked.status_code == 302
    wait_until(lambda: sender.pending() == 6)
    assert len(receiver.requests) == 1
    receiver.release.set()
    receiver.wait_for(lambda: len(receiver.ids()) == 6)
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert {b["type"] for b in bodies} == {"email.opened", "link.clicked"}
    wait_until(lambda: sender.pending() == 0)
    sender.disconnect()
    client.get(middleware.tracker.open_url({"n": 99}))
    assert sender.pending() == 0


# -- several processes ------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, sys
    from flask_mailtrack import WebhookSender
    from _webhook_receiver import record

    url, outbox, count, secret = sys.argv[1:]
    sender = WebhookSender(
        url, secret=secret, outbox_path=outbox, lease_seconds=1.0,
        retry_base=0.02, retry_max=0.05, poll_interval=0.02,
    )
    sender.start()
    events = [record(n) for n in range(int(count))]
    sender.write(events)
    print(json.dumps([event.id for event in events]), flush=True)
    sys.stdin.read()  # run until the test closes stdin
    sender.close(timeout=10)
    """
)


def _child(url: str, outbox: str, count: int) -> subprocess.Popen[str]:
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, url, outbox, str(count), SECRET],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
    )


def _ids(child: subprocess.Popen[str]) -> set[str]:
    assert child.stdout is not None
    return set(json.loads(child.stdout.readline()))


def _finish(child: subprocess.Popen[str]) -> None:
    with contextlib.suppress(OSError):
        assert child.stdin is not None
        child.stdin.close()
    try:
        child.wait(WAIT)
    finally:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_process_events_are_delivered_by_the_next(
    receiver: Receiver, outbox: str
) -> None:
    receiver.hold_after = 5  # deliveries 1-5 pass, the next ones hang
    first = _child(receiver.url, outbox, 20)
    try:
        expected = _ids(first)
        receiver.wait_for(lambda: len(receiver.requests) >= 6)
        stuck = receiver.requests[5].headers["webhook-id"]
        os.kill(first.pid, signal.SIGKILL)
        first.wait(WAIT)
    finally:
        _finish(first)
    # Hanging deliveries are not delivered. (Delivered rows are deleted in
    # groups, so some of the first five may still be there too, and be
    # delivered again: at least once.)
    receiver.hold_after = None
    receiver.release.set()
    assert 15 <= outbox_rows(outbox) <= 20
    second = _child(receiver.url, outbox, 0)
    try:
        assert _ids(second) == set()
        # Once the dead process's lease has run out.
        receiver.wait_for(lambda: receiver.ids(delivered_only=False) == expected)
        wait_until(lambda: outbox_rows(outbox) == 0)
    finally:
        _finish(second)
    receiver.assert_consistent()
    # At least once: the event cut off mid-delivery came again, same id.
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert ids.count(stuck) == 2


def test_two_processes_share_one_outbox(receiver: Receiver, outbox: str) -> None:
    WebhookSender(None, secret=SECRET, outbox_path=outbox).close(0)  # create it
    children = [_child(receiver.url, outbox, 40) for _ in range(2)]
    try:
        expected = _ids(children[0]) | _ids(children[1])
        assert len(expected) == 80
        receiver.wait_for(lambda: receiver.ids() == expected)
        wait_until(lambda: outbox_rows(outbox) == 0)
    finally:
        for child in children:
            _finish(child)
    receiver.assert_consistent()
