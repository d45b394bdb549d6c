"""WebhookSender, against a real loopback HTTP receiver."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
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
import standardwebhooks
from flask_mailtrack import Configuration
from flask_mailtrack import MailTrackError
from flask_mailtrack import TrackingMiddleware
from flask_mailtrack import verify_webhook
from flask_mailtrack import WebhookSender
from flask_mailtrack.events._journal_files import SUFFIX
from flask_mailtrack.events._journal_format import read_records
from flask_mailtrack.signals import webhook_failed

from _webhook_receiver import event
from _webhook_receiver import KEY
from _webhook_receiver import Receiver
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


def journal_files(outbox: str) -> list[str]:
    """The journal files in front of ``outbox``."""
    directory = outbox + "-spool"
    if not os.path.isdir(directory):
        return []
    return sorted(
        os.path.join(directory, name)
        for name in os.listdir(directory)
        if name.endswith(SUFFIX)
    )


def journaled(outbox: str) -> int:
    """Events waiting in the journals, not yet in the outbox table."""
    count = 0
    for path in journal_files(outbox):
        with open(path, "rb") as file:
            count += sum(1 for _ in read_records(file))
    return count


# -- signed delivery ------------------------------------------------------------


def test_delivery_is_signed_per_standard_webhooks(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender]
) -> None:
    sender = make_sender(receiver.url)
    result = event(7)
    assert sender.enqueue(result)
    receiver.wait_for(lambda: len(receiver.requests) == 1)
    request = receiver.requests[0]
    headers = {k.lower(): v for k, v in request.headers.items()}
    # The reference implementation accepts it.
    payload = standardwebhooks.Webhook(SECRET).verify(request.body, headers)
    assert payload == result.to_json_dict()
    # So does an independent computation of the signature.
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode()
    expected = hmac.new(KEY, signed + request.body, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(expected).decode()
    assert headers["webhook-id"] == result.event_id
    assert headers["content-type"] == "application/json"
    assert verify_webhook(request.body, request.headers, SECRET) == payload


# -- delivery -------------------------------------------------------------------


def test_failing_receiver_gets_every_event(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender], outbox: str
) -> None:
    receiver.fail_first = 7
    sender = make_sender(receiver.url)
    results = [event(n) for n in range(5)]
    for result in results:
        sender.enqueue(result)
    expected = {r.event_id for r in results}
    receiver.wait_for(lambda: receiver.ids() == expected)
    assert len(receiver.requests) >= 12
    receiver.assert_consistent()
    wait_until(lambda: sender.pending() == 0)


def test_receiver_down_then_back(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender], outbox: str
) -> None:
    receiver.stop()  # the port is closed: connections are refused
    sender = make_sender(receiver.url)
    results = [event(n) for n in range(5)]
    for result in results:
        sender.enqueue(result)
    # Wait until every event has failed at least twice.
    wait_until(
        lambda: (
            (outbox_rows(outbox, "SELECT MIN(attempts) FROM webhook_outbox") or 0) >= 2
        )
    )
    assert outbox_rows(outbox, "SELECT last_error FROM webhook_outbox LIMIT 1")
    receiver.start()  # same port
    expected = {r.event_id for r in results}
    receiver.wait_for(lambda: receiver.ids() == expected)
    receiver.assert_consistent()


def test_redirect_is_not_followed(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender], outbox: str
) -> None:
    receiver.status = 302
    sender = make_sender(receiver.url)
    sender.enqueue(event())
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
    result = event(1)
    with webhook_failed.connected_to(on_failed):
        sender.enqueue(result)
        assert arrived.wait(WAIT)
    assert [f["reason"] for f in failures] == ["gone"]
    assert failures[0]["event_id"] == result.event_id
    assert failures[0]["payload"] == result.to_json_dict()
    assert failures[0]["status"] == 410
    assert sender.pending() == 0
    letters = sender.dead_letters()
    assert [(d["event_id"], d["reason"], d["attempts"]) for d in letters] == [
        (result.event_id, "gone", 1)
    ]
    sender.flush(1)
    assert len(receiver.requests) == 1
    # Once the endpoint is back, dead letters can be sent again.
    receiver.status = 200
    assert sender.requeue_dead_letters() == 1
    receiver.wait_for(lambda: receiver.ids() == {result.event_id})
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
        sender.enqueue(event())
        assert done.wait(WAIT)
    assert reasons == ["expired"]
    (letter,) = sender.dead_letters()
    assert letter["attempts"] >= 2
    assert letter["last_status"] == 503
    assert sender.pending() == 0


def test_token_webhook_url_wins(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender]
) -> None:
    other = Receiver().start()
    try:
        sender = make_sender(receiver.url)
        mine, theirs = event(1), event(2, webhook_url=other.url)
        sender.enqueue(mine)
        sender.enqueue(theirs)
        other.wait_for(lambda: other.ids() == {theirs.event_id})
        receiver.wait_for(lambda: receiver.ids() == {mine.event_id})
    finally:
        other.stop()


def test_events_without_url_are_not_queued(
    make_sender: t.Callable[..., WebhookSender],
) -> None:
    sender = make_sender(None)
    assert not sender.enqueue(event())
    assert not sender.enqueue(event(webhook_url="file:///etc/passwd"))
    assert sender.pending() == 0


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
        assert sender.spool_directory is None
        result = event()
        sender.enqueue(result)
        receiver.wait_for(lambda: receiver.ids() == {result.event_id})
    finally:
        sender.close(timeout=0)


def test_claims_are_bounded_batches(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender], outbox: str
) -> None:
    receiver.hold_after = 0
    sender = make_sender(receiver.url, batch_size=3)
    for n in range(20):
        sender.enqueue(event(n))
    receiver.wait_for(lambda: len(receiver.requests) == 1)
    leased = "SELECT COUNT(*) FROM webhook_outbox WHERE lease_owner IS NOT NULL"
    # The worker holds one batch at most, whatever the backlog.
    assert 1 <= outbox_rows(outbox, leased) <= 3
    assert sender.pending() == 20
    receiver.release.set()
    receiver.wait_for(lambda: len(receiver.ids()) == 20)


def test_close_flushes_due_events(receiver: Receiver, outbox: str) -> None:
    sender = WebhookSender(receiver.url, secret=SECRET, outbox_path=outbox, **FAST)
    results = [event(n) for n in range(10)]
    for result in results:
        sender.enqueue(result)
    sender.close(timeout=WAIT)
    assert receiver.ids() == {r.event_id for r in results}
    assert outbox_rows(outbox) == 0


def test_close_deadline_keeps_undelivered_events(
    receiver: Receiver, outbox: str
) -> None:
    receiver.hold_after = 0
    sender = WebhookSender(
        receiver.url, secret=SECRET, outbox_path=outbox, timeout=0.5, **FAST
    )
    for n in range(3):
        sender.enqueue(event(n))
    receiver.wait_for(lambda: len(receiver.requests) == 1)
    sender.close(timeout=0)
    # Nothing was delivered; everything is still in the file for next time.
    assert outbox_rows(outbox) == 3
    assert outbox_rows(outbox, "SELECT MAX(lease_until) FROM webhook_outbox") == 0


# -- the request never waits ----------------------------------------------------


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
    sender = make_sender(receiver.url).connect(middleware)
    receiver.hold_after = 0  # every delivery hangs until released
    client = Client(middleware)
    first = client.get(middleware.tracker.open_url({"n": 1}))
    assert first.status_code == 200
    # The worker is now stuck inside the first delivery...
    receiver.wait_for(lambda: len(receiver.requests) == 1)
    # ...and pixels are still answered, their events queued behind it.
    for n in range(2, 6):
        assert client.get(middleware.tracker.open_url({"n": n})).status_code == 200
    clicked = client.get(middleware.tracker.click_url("https://example.com/", {}))
    assert clicked.status_code == 302
    assert sender.pending() == 6
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
    import json, sys, time
    from flask_mailtrack import TrackingResult, WebhookSender

    url, outbox, count, secret, spool_delay = sys.argv[1:]
    sender = WebhookSender(
        url, secret=secret, outbox_path=outbox, lease_seconds=1.0,
        retry_base=0.02, retry_max=0.05, poll_interval=0.02,
        spool_delay=float(spool_delay),
    )
    sender.start()
    ids = []
    for n in range(int(count)):
        result = TrackingResult(is_open_tracking=True, metadata={"n": n},
                                timestamp=int(time.time()))
        sender.enqueue(result)
        ids.append(result.event_id)
    print(json.dumps(ids), flush=True)
    sys.stdin.read()  # run until the test closes stdin
    sender.close(timeout=10)
    """
)


def _child(
    url: str, outbox: str, count: int, *, spool_delay: float = 0.02
) -> subprocess.Popen[str]:
    arguments = [url, outbox, str(count), SECRET, str(spool_delay)]
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
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
    receiver.hold_after = 5  # deliveries 1-5 pass, the 6th hangs
    first = _child(receiver.url, outbox, 20)
    try:
        expected = _ids(first)
        receiver.wait_for(lambda: len(receiver.requests) == 6)
        stuck = receiver.requests[5].headers["webhook-id"]
        os.kill(first.pid, signal.SIGKILL)
        first.wait(WAIT)
    finally:
        _finish(first)
    # The receiver never answered the 6th delivery: it is not delivered.
    # (Delivered rows are deleted in groups, so some of the first five may
    # still be there too, and be delivered again: at least once.)
    receiver.hold_after = None
    receiver.release.set()
    assert 15 <= outbox_rows(outbox) + journaled(outbox) <= 20
    second = _child(receiver.url, outbox, 0)
    try:
        assert _ids(second) == set()
        receiver.wait_for(lambda: receiver.ids(delivered_only=False) == expected)
        wait_until(lambda: outbox_rows(outbox) == 0)
    finally:
        _finish(second)
    receiver.assert_consistent()
    # At least once: the event cut off mid-delivery came again, same id.
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert ids.count(stuck) == 2


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_process_killed_right_after_enqueue_loses_nothing(
    receiver: Receiver, outbox: str
) -> None:
    first = _child(receiver.url, outbox, 5, spool_delay=3600)
    try:
        expected = _ids(first)  # printed once enqueue has returned 5 times
        os.kill(first.pid, signal.SIGKILL)
        first.wait(WAIT)
    finally:
        _finish(first)
    assert outbox_rows(outbox) + journaled(outbox) == 5
    second = _child(receiver.url, outbox, 0)
    try:
        _ids(second)
        # The next process takes the dead one's journal over and delivers.
        receiver.wait_for(lambda: receiver.ids() == expected)
        wait_until(lambda: outbox_rows(outbox) == 0)
        assert journal_files(outbox) == []
    finally:
        _finish(second)
    receiver.assert_consistent()


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
    assert journal_files(outbox) == []  # closed senders leave no journal


# -- the journal in front of the outbox -------------------------------------------


def test_queue_only_sender_moves_its_journal(
    receiver: Receiver, make_sender: t.Callable[..., WebhookSender], outbox: str
) -> None:
    sender = make_sender(receiver.url, deliver=False)
    for n in range(2):
        sender.enqueue(event(n))
    # Its journal thread imports, without pending() or flush() asking.
    wait_until(lambda: outbox_rows(outbox) == 2)
    assert journal_files(outbox) == [] or journaled(outbox) == 0
    assert receiver.requests == []
