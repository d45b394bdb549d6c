"""The urllib3 transport, against raw endpoints that answer scripted bytes,
a TLS endpoint, and the private-address guard."""

from __future__ import annotations

import base64
import datetime
import http.client
import http.server
import ipaddress
import re
import socket
import ssl
import threading
import typing as t

import pytest
from flask_mailtrack import MailTrackError
from flask_mailtrack import send_webhook
from flask_mailtrack import WebhookDeliveryError
from flask_mailtrack import WebhookSender
from flask_mailtrack.events._transport import MAX_DISCARDED_BYTES
from flask_mailtrack.events._transport import public_address
from flask_mailtrack.events._transport import RefusedAddress
from flask_mailtrack.events._transport import Transport
from flask_mailtrack.events._transport import Unreachable

from _webhook_receiver import event
from _webhook_receiver import record
from _webhook_receiver import SECRET
from _webhook_receiver import WAIT

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class ScriptedServer:
    """A raw TCP endpoint on 127.0.0.1 that answers each request with the
    next scripted bytes, then closes the connection if told to (or, told
    ``"hold"``, keeps it open until the client closes it)."""

    def __init__(self, answers: list[tuple[bytes, bool | str]]) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.held_until_closed = False
        #: Set each time the server has closed a connection.
        self.closed_one = threading.Event()
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
                    length = int(re.search(rb"(?i)Content-Length: (\d+)", head)[1])
                    self.requests.append(head + reader.read(length))
                    answer, close = self.answers.pop(0)
                    try:
                        conn.sendall(answer)
                    except OSError:
                        break
                    if close == "hold":
                        # Until the client closes the connection.
                        conn.settimeout(WAIT)
                        try:
                            self.held_until_closed = conn.recv(1) == b""
                        except OSError:
                            self.held_until_closed = True
                    if close:
                        break
            self.closed_one.set()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def transport() -> t.Iterator[Transport]:
    transport = Transport(timeout=WAIT)
    yield transport
    transport.close()


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
            b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/\r\n"
            b"Content-Length: 0\r\n\r\n",
            302,
            b"",
            id="redirect-not-followed",
        ),
    ],
)
def test_http_answers(
    transport: Transport, answer: bytes, status: int, body: bytes
) -> None:
    # send_webhook reads the whole answer...
    server = ScriptedServer([(answer, True)])
    try:
        response = send_webhook(event(webhook_url=server.url))
        assert (response.status_code, response.content) == (status, body)
        (request,) = server.requests
        assert request.startswith(b"POST /hook?x=1 HTTP/1.1\r\n")
        assert re.search(rb"(?i)\r\nHost: 127.0.0.1:", request)
    finally:
        server.close()
    # ... the sender's transport only its status.
    server = ScriptedServer([(answer, True)])
    try:
        assert transport.post(server.url, b"{}", {}) == status
        assert len(server.requests) == 1  # a redirect was not followed
    finally:
        server.close()


def test_an_oversized_answer_is_not_read_whole(transport: Transport) -> None:
    # A gigabyte announced, a mebibyte sent, and the connection held open:
    # reading it all would wait for the timeout.
    huge = b"HTTP/1.1 500 Oops\r\nContent-Length: 1000000000\r\n\r\n" + b"x" * 2**20
    server = ScriptedServer([(huge, "hold"), (OK, True)])
    try:
        assert transport.post(server.url, b"{}", {}) == 500
        # The connection was closed, not kept: the next post opens another.
        assert transport.post(server.url, b"{}", {}) == 200
        assert server.connections == 2
        assert server.held_until_closed
    finally:
        server.close()
    assert MAX_DISCARDED_BYTES < 2**20


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
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nshort", id="cut-short"
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


def test_no_answer_is_unreachable(transport: Transport) -> None:
    server = ScriptedServer([(b"", True)])
    try:
        with pytest.raises(Unreachable):
            transport.post(server.url, b"{}", {})
    finally:
        server.close()


def test_keep_alive_and_reconnect(transport: Transport) -> None:
    # Two answers on one connection; then the endpoint closes it, as idle
    # keep-alive connections get closed, and the next request reconnects.
    server = ScriptedServer([(OK, False), (OK, True), (OK, True)])
    try:
        for _ in range(2):
            assert transport.post(server.url, b"{}", {}) == 200
        # Posting while the close is on its way would fail that attempt (the
        # sender retries it later); the test is about the reconnect.
        assert server.closed_one.wait(WAIT)
        assert transport.post(server.url, b"{}", {}) == 200
        assert len(server.requests) == 3
        assert server.connections == 2
    finally:
        server.close()


def test_credentials_in_url_become_basic_auth() -> None:
    server = ScriptedServer([(OK, True)])
    try:
        url = server.url.replace("http://", "http://hook%40user:p%3Ass@")
        send_webhook(event(webhook_url=url))
        token = base64.b64encode(b"hook@user:p:ss").decode()
        assert re.search(
            rb"(?i)\r\nAuthorization: Basic " + token.encode() + rb"\r\n",
            server.requests[0],
        )
        head = server.requests[0].partition(b"\r\n\r\n")[0]
        assert b"hook%40user" not in head
    finally:
        server.close()


@pytest.mark.parametrize(
    "event_id",
    [
        pytest.param("evt_1\r\nX-Injected: 1", id="crlf"),
        pytest.param("evt_\x00", id="nul"),
    ],
)
def test_header_injection_is_refused(event_id: str, transport: Transport) -> None:
    result = event(webhook_url="http://127.0.0.1:9/")
    result.event_id = event_id
    with pytest.raises(MailTrackError):
        send_webhook(result, secret=SECRET)
    with pytest.raises(MailTrackError):
        transport.post("http://127.0.0.1:9/", b"{}", {"webhook-id": event_id})


# -- TLS ------------------------------------------------------------------------


def _certificate(tmp_path: t.Any, name: str) -> tuple[str, str]:
    """A self-signed certificate for ``name`` and 127.0.0.1: its PEM file
    and its key's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


@pytest.fixture
def tls_hook(tmp_path: t.Any) -> t.Iterator[tuple[str, str]]:
    """An HTTPS endpoint on localhost; its URL and its certificate."""
    cert_file, key_file = _certificate(tmp_path, "localhost")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: t.Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield f"https://localhost:{server.server_address[1]}/hook", cert_file
    finally:
        server.shutdown()
        server.server_close()


def test_tls_certificates_are_verified(
    tls_hook: tuple[str, str], tmp_path: t.Any
) -> None:
    url, cert_file = tls_hook
    untrusting = Transport(timeout=WAIT)
    trusting = Transport(
        timeout=WAIT, ssl_context=ssl.create_default_context(cafile=cert_file)
    )
    other_cert, _ = _certificate(tmp_path, "other.example")
    wrong = Transport(
        timeout=WAIT, ssl_context=ssl.create_default_context(cafile=other_cert)
    )
    try:
        with pytest.raises(Unreachable) as info:
            untrusting.post(url, b"{}", {})
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        with pytest.raises(Unreachable):
            wrong.post(url, b"{}", {})
        assert trusting.post(url, b"{}", {}) == 204
    finally:
        for transport in (untrusting, trusting, wrong):
            transport.close()


# -- webhook URLs from tokens and private addresses ----------------------------


class _Hook:
    """A loopback endpoint that counts POSTs."""

    def __init__(self) -> None:
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
        threading.Thread(
            target=self.server.serve_forever, args=(0.02,), daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> t.Iterator[_Hook]:
    server = _Hook()
    yield server
    server.close()


def _wait(condition: t.Callable[[], bool]) -> None:
    import time

    deadline = time.monotonic() + WAIT
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
    port = hook.url.rsplit(":", 1)[1]
    sender = WebhookSender(
        hook.url + "/configured",
        secret=b"k" * 32,
        outbox_path=tmp_path / "outbox.sqlite3",
        refuse_private_addresses=True,
        timeout=1,
    )
    try:
        sender.write([record(webhook_url=f"http://{host}:{port}/from-token")])
        _wait(lambda: bool(sender.dead_letters()))
        (letter,) = sender.dead_letters()
        assert letter["reason"] == "refused"
        assert "no public address" in letter["last_error"]
        # The sender's own URL, though on loopback, is still served.
        sender.write([record()])
        _wait(lambda: hook.hits == ["/configured"])
    finally:
        sender.close()
    assert hook.hits == ["/configured"]


def test_private_token_webhook_url_is_allowed_by_default(
    hook: _Hook, tmp_path: t.Any
) -> None:
    sender = WebhookSender(
        None, secret=b"k" * 32, outbox_path=tmp_path / "outbox.sqlite3", timeout=1
    )
    try:
        sender.write([record(webhook_url=hook.url + "/from-token")])
        _wait(lambda: hook.hits == ["/from-token"])
    finally:
        sender.close()


def test_public_address_check() -> None:
    assert public_address("93.184.215.14", 443) == ("93.184.215.14", 443)
    for host in ("127.0.0.1", "::1", "192.168.1.1", "100.64.0.1", "224.0.0.1"):
        with pytest.raises(RefusedAddress):
            public_address(host, 80)


def test_the_address_checked_is_the_address_connected(
    hook: _Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that resolves to a public address, then (rebinding) to the
    loopback: the connection goes to the address checked, never to a
    second lookup's."""
    port = int(hook.url.rsplit(":", 1)[1])
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding_dns(host: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
        if host != "rebind.test":
            return real_getaddrinfo(host, *args, **kwargs)
        lookups.append(host)
        # TEST-NET addresses are not global; this one is (and unroutable
        # from the test machine, as far as it matters).
        address = "93.184.215.14" if len(lookups) == 1 else "127.0.0.1"
        return real_getaddrinfo(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    transport = Transport(timeout=0.5)
    try:
        with pytest.raises(Unreachable):
            transport.post(
                f"http://rebind.test:{port}/hook", b"{}", {}, public_only=True
            )
        # Resolved to loopback at the first lookup: refused.
        with pytest.raises(RefusedAddress):
            transport.post(
                f"http://rebind.test:{port}/hook", b"{}", {}, public_only=True
            )
    finally:
        transport.close()
    assert lookups == ["rebind.test", "rebind.test"]  # one per post
    assert hook.hits == []
