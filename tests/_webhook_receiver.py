"""A webhook endpoint on 127.0.0.1 for the tests that deliver webhooks
(``tests/events``, ``tests/cli``); the ``receiver`` fixture in
``conftest.py`` starts one per test."""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
import typing as t

import standardwebhooks
from flask_mailtrack import TrackingResult
from flask_mailtrack.events._encoding import encode_event
from flask_mailtrack.events._sinks import EventRecord

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
KEY = b"0123456789abcdef0123456789abcdef"
WAIT = 20.0  # seconds before a test gives up waiting; never reached when passing


def event(n: int = 0, **kwargs: t.Any) -> TrackingResult:
    """An open event numbered ``n`` (in its metadata), occurring now."""
    kwargs.setdefault("is_open_tracking", True)
    return TrackingResult(metadata={"n": n}, timestamp=int(time.time()), **kwargs)


def record(n: int = 0, **kwargs: t.Any) -> EventRecord:
    """:func:`event` as the worker hands it to a sink."""
    body = encode_event(event(n, **kwargs).to_json_dict())
    data = json.loads(body)
    return EventRecord(data["id"], body, data)


class Request(t.NamedTuple):
    headers: dict[str, str]
    body: bytes
    status: int
    #: Whether the signature verified with the ``standardwebhooks`` package.
    verified: bool = False


def _verified(body: bytes, headers: t.Mapping[str, str]) -> bool:
    try:
        standardwebhooks.Webhook(SECRET).verify(
            body, {k.lower(): v for k, v in headers.items()}
        )
    except standardwebhooks.webhooks.WebhookVerificationError:
        return False
    return True


class Receiver:
    """A webhook endpoint on 127.0.0.1 whose answers the test scripts."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.changed = threading.Condition()
        #: Answer 500 to this many requests first.
        self.fail_first = 0
        #: The status of the other requests.
        self.status = 200
        #: When set, requests after the first ``hold_after`` wait for
        #: ``release`` before answering.
        self.hold_after: int | None = None
        self.release = threading.Event()
        #: Requests being answered now, and the most at once.
        self.in_flight = 0
        self.most_in_flight = 0
        #: The body of the answers, and its Content-Type.
        self.reply = b""
        self.reply_type = "text/plain"
        self.server: http.server.ThreadingHTTPServer | None = None
        self.port = 0

    def start(self) -> Receiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                try:
                    body = self.rfile.read(length)
                except OSError:
                    body = b""
                if len(body) < length:  # the sender died while sending it
                    self.close_connection = True
                    return
                with receiver.changed:
                    index = len(receiver.requests)
                    if index < receiver.fail_first:
                        status = 500
                    else:
                        status = receiver.status
                    headers = dict(self.headers)
                    receiver.requests.append(
                        Request(headers, body, status, _verified(body, headers))
                    )
                    receiver.changed.notify_all()
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(
                        receiver.most_in_flight, receiver.in_flight
                    )
                hold = receiver.hold_after
                if hold is not None and index >= hold:
                    receiver.release.wait(WAIT)
                with receiver.changed:
                    receiver.in_flight -= 1
                self.send_response(status)
                # No body by default: one write, so no Nagle/delayed-ACK
                # stall per request.
                self.send_header("Content-Length", str(len(receiver.reply)))
                if receiver.reply:
                    self.send_header("Content-Type", receiver.reply_type)
                self.end_headers()
                if receiver.reply:
                    self.wfile.write(receiver.reply)

            def log_message(self, *args: t.Any) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(
            target=self.server.serve_forever, args=(0.02,), daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def wait_for(self, predicate: t.Callable[[], bool]) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, WAIT), "receiver: timed out"

    def ids(self, delivered_only: bool = True) -> set[str]:
        return {
            r.headers["webhook-id"]
            for r in self.requests
            if not delivered_only or 200 <= r.status < 300
        }

    def assert_consistent(self) -> None:
        """Duplicates only ever repeat the same event under the same id."""
        bodies: dict[str, bytes] = {}
        for r in self.requests:
            event_id = r.headers["webhook-id"]
            assert bodies.setdefault(event_id, r.body) == r.body
            assert json.loads(r.body)["id"] == event_id
