"""The HTTP transport, against a raw endpoint that answers scripted bytes."""

from __future__ import annotations

import base64
import http.client
import re
import socket
import threading
import typing as t

import pytest
from flask_mailtrack import MailTrackError
from flask_mailtrack import send_webhook
from flask_mailtrack import WebhookDeliveryError
from flask_mailtrack import WebhookSender

from _webhook_receiver import event
from _webhook_receiver import SECRET


class ScriptedServer:
    """A raw TCP endpoint on 127.0.0.1 that answers each request with the
    next scripted bytes, then closes the connection if told to."""

    def __init__(self, answers: list[tuple[bytes, bool]]) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook?x=1"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn, conn.makefile("rb") as reader:
                while self.answers:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = reader.readline()
                        if not line:
                            break
                        head += line
                    if not head:
                        break
                    length = int(re.search(rb"Content-Length: (\d+)", head)[1])
                    self.requests.append(head + reader.read(length))
                    answer, close = self.answers.pop(0)
                    conn.sendall(answer)
                    if close:
                        break

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize(
    ("answer", "status", "body"),
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, b"ok", id="length"
        ),
        pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n", 204, b"", id="no-content"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nok\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n",
            200,
            b"okabc",
            id="chunked",
        ),
        pytest.param(
            b"HTTP/1.0 202 Accepted\r\n\r\nbody until close",
            202,
            b"body until close",
            id="1.0",
        ),
        pytest.param(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
            b"Content-Length: 0\r\n\r\n",
            201,
            b"",
            id="100-continue",
        ),
        pytest.param(
            b"HTTP/1.1 500 Oops\r\nContent-Length: 999999\r\n\r\n" + b"x" * 10,
            500,
            b"x" * 10,  # all there was before the endpoint closed
            id="huge-body-not-read",
        ),
    ],
)
def test_http_answers(answer: bytes, status: int, body: bytes) -> None:
    from flask_mailtrack.events._transport import SocketTransport

    # send_webhook reads the whole answer...
    server = ScriptedServer([(answer, True)])
    try:
        response = send_webhook(event(webhook_url=server.url))
        assert (response.status_code, response.content) == (status, body)
        (request,) = server.requests
        assert request.startswith(b"POST /hook?x=1 HTTP/1.1\r\n")
        assert b"\r\nHost: 127.0.0.1:" in request
        assert b"\r\nConnection: close\r\n" in request
    finally:
        server.close()
    # ... the webhook worker's transport only its status.
    server = ScriptedServer([(answer, True)])
    transport = SocketTransport(timeout=5)
    try:
        assert transport.post(server.url, b"{}", {}) == status
    finally:
        transport.close()
        server.close()


def test_send_webhook_keeps_at_most_a_mebibyte() -> None:
    from flask_mailtrack.events._send_webhook import MAX_BODY_BYTES

    size = MAX_BODY_BYTES + 10
    for answer in (
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % MAX_BODY_BYTES
        + b"x" * MAX_BODY_BYTES
        + b"\r\n10\r\n"
        + b"y" * 16
        + b"\r\n0\r\n\r\n",
    ):
        server = ScriptedServer([(answer, True)])
        try:
            response = send_webhook(event(webhook_url=server.url))
            assert response.content == b"x" * MAX_BODY_BYTES
        finally:
            server.close()


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"SMTP ready\r\n\r\n", id="not-http"),
        pytest.param(b"HTTP/1.1 2xx OK\r\n\r\n", id="bad-status"),
        pytest.param(b"", id="closed"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200 + b"\r\n", id="too-many-headers"
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            id="bad-chunk",
        ),
    ],
)
def test_bad_http_answers_are_failures(answer: bytes) -> None:
    server = ScriptedServer([(answer, True)])
    try:
        with pytest.raises(WebhookDeliveryError) as info:
            send_webhook(event(webhook_url=server.url))
        assert isinstance(info.value.__cause__, (OSError, http.client.HTTPException))
    finally:
        server.close()


def test_keep_alive_and_reconnect() -> None:
    from flask_mailtrack.events._transport import SocketTransport

    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    # Two answers on one connection; then the endpoint closes it, as idle
    # keep-alive connections get closed, and the next request reconnects.
    server = ScriptedServer([(ok, False), (ok, True), (ok, True)])
    transport = SocketTransport(timeout=5)
    try:
        for _ in range(3):
            assert transport.post(server.url, b"{}", {}) == 200
        assert len(server.requests) == 3
        assert server.connections == 2
    finally:
        transport.close()
        server.close()


def test_credentials_in_url_become_basic_auth() -> None:
    server = ScriptedServer([(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True)])
    try:
        url = server.url.replace("http://", "http://hook%40user:p%3Ass@")
        send_webhook(event(webhook_url=url))
        token = base64.b64encode(b"hook@user:p:ss").decode()
        assert f"\r\nAuthorization: Basic {token}\r\n".encode() in server.requests[0]
        assert b"\r\nHost: 127.0.0.1:" in server.requests[0]
    finally:
        server.close()


@pytest.mark.parametrize(
    "event_id",
    [
        pytest.param("evt_1\r\nX-Injected: 1", id="crlf"),
        pytest.param("evt_\x00", id="nul"),
    ],
)
def test_header_injection_is_refused(event_id: str) -> None:
    result = event(webhook_url="http://127.0.0.1:9/")
    result.event_id = event_id
    with pytest.raises(MailTrackError):
        send_webhook(result, secret=SECRET)
    sender = WebhookSender(None, secret=SECRET, outbox_path=":memory:")
    try:
        assert not sender.enqueue(result)
        assert sender.pending() == 0
    finally:
        sender.close(0)


def test_socket_transport_is_the_transport() -> None:
    from flask_mailtrack.events._transport import SocketTransport
    from flask_mailtrack.events._transport import Transport

    assert isinstance(SocketTransport(timeout=1), Transport)
    with pytest.raises(NotImplementedError):
        Transport().post("http://127.0.0.1:9/", b"{}", {})
    Transport().close()  # nothing to close


# -- webhook URLs from tokens and private addresses ----------------------------


class _Hook:
    """A loopback endpoint that counts POSTs."""

    def __init__(self) -> None:
        import http.server
        import threading

        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                hits.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: t.Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> t.Iterator[_Hook]:
    server = _Hook()
    yield server
    server.close()


def _event(webhook_url: str | None = None) -> t.Any:
    import time

    from flask_mailtrack import TrackingResult

    return TrackingResult(
        is_open_tracking=True, timestamp=int(time.time()), webhook_url=webhook_url
    )


def _wait(condition: t.Callable[[], bool]) -> None:
    import time

    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("127.0.0.1", id="loopback"),
        pytest.param("localhost", id="loopback-name"),
        pytest.param("[::1]", id="loopback-v6"),
        pytest.param("169.254.169.254", id="metadata-service"),
        pytest.param("10.1.2.3", id="private"),
        pytest.param("[::ffff:127.0.0.1]", id="v4-mapped"),
        pytest.param("0.0.0.0", id="unspecified"),
    ],
)
def test_private_token_webhook_url_is_refused(
    hook: _Hook, tmp_path: t.Any, host: str
) -> None:
    from flask_mailtrack import WebhookSender

    port = hook.url.rsplit(":", 1)[1]
    sender = WebhookSender(
        hook.url + "/configured",
        secret=b"k" * 32,
        outbox_path=tmp_path / "outbox.sqlite3",
        refuse_private_addresses=True,
        timeout=1,
    )
    try:
        assert sender.enqueue(_event(f"http://{host}:{port}/from-token"))
        _wait(lambda: bool(sender.dead_letters()))
        (letter,) = sender.dead_letters()
        assert letter["reason"] == "refused"
        assert "no public address" in letter["last_error"]
        # The sender's own URL, though on loopback, is still served.
        assert sender.enqueue(_event())
        _wait(lambda: hook.hits == ["/configured"])
    finally:
        sender.close()
    assert hook.hits == ["/configured"]


def test_private_token_webhook_url_is_allowed_by_default(
    hook: _Hook, tmp_path: t.Any
) -> None:
    from flask_mailtrack import WebhookSender

    sender = WebhookSender(
        None, secret=b"k" * 32, outbox_path=tmp_path / "outbox.sqlite3", timeout=1
    )
    try:
        assert sender.enqueue(_event(hook.url + "/from-token"))
        _wait(lambda: hook.hits == ["/from-token"])
    finally:
        sender.close()


def test_public_address_check() -> None:
    from flask_mailtrack.events._transport import public_address
    from flask_mailtrack.events._transport import RefusedAddress

    assert public_address("93.184.215.14", 443) == ("93.184.215.14", 443)
    for host in ("127.0.0.1", "::1", "192.168.1.1", "100.64.0.1", "224.0.0.1"):
        with pytest.raises(RefusedAddress):
            public_address(host, 80)
