"""How webhook requests reach their endpoint: :class:`Transport`.

:class:`~flask_mailtrack.WebhookSender` and
:func:`~flask_mailtrack.send_webhook` post through a :class:`Transport`,
the one place that talks to the network, so that another HTTP client can
take its place without touching delivery, retries or the outbox.
:class:`SocketTransport` is the one implementation: HTTP/1.1 written on
kept-alive sockets.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import itertools
import re
import socket
import ssl
import urllib.parse

from ..exceptions import MailTrackError

_USER_AGENT = "flask-mailtrack-webhooks/1"
#: Bytes of a response body read (and discarded) before a connection is
#: reused; a longer body closes the connection instead.
_MAX_RESPONSE_BYTES = 64 * 1024
#: Limits on a response's head.
_MAX_LINE = 8 * 1024
_MAX_HEADERS = 100
#: Characters refused in a header value (control characters, non-Latin-1).
UNSAFE_HEADER_VALUE = re.compile(r"[\x00-\x1f\x7f]|[^\x00-\xff]")


class Transport:
    """Posts webhook requests and returns the status of each answer.

    Errors tell the sender what to do with the event: ``OSError`` (a
    connection error or a timeout), :exc:`http.client.HTTPException` (a
    malformed answer) and :exc:`~flask_mailtrack.MailTrackError` (a bad URL
    or header value) mean try again later; :exc:`RefusedAddress` means
    never. A transport is used by one thread at a time.
    """

    def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        public_only: bool = False,
    ) -> int:
        """POST ``body`` (JSON) with ``headers`` to ``url``; return the
        status code of the answer.

        :param public_only: Connect only to a public address of the host
            (see :func:`public_address`); :exc:`RefusedAddress` otherwise.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Close the connections kept open."""


_UNSAFE = re.compile(r"[\x00-\x20\x7f]")


def check_url(url: str) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or _UNSAFE.search(url)
    ):
        raise MailTrackError(
            f"A webhook URL must be http(s) with a host, without spaces or"
            f" control characters: {url!r}"
        )
    return parts


class _ResponseError(http.client.HTTPException):
    """A response that is not HTTP/1.x as expected."""


class RefusedAddress(MailTrackError):
    """A webhook host resolved to a non-public address, with
    ``refuse_private_addresses``."""


def public_address(host: str, port: int) -> tuple[str, int]:
    """The first public address of ``host``.

    The connection is then made to that very address, so a name that
    resolves differently a moment later (DNS rebinding) cannot slip through.

    :raise RefusedAddress: every address is loopback, private, link-local,
        reserved or multicast (cloud metadata services, admin interfaces).
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for _, _, _, _, address in infos:
        ip = ipaddress.ip_address(str(address[0]).partition("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_global and not ip.is_multicast:
            return str(address[0]), port
    raise RefusedAddress(f"The webhook host {host!r} has no public address.")


class _Connection:
    """One kept-alive HTTP/1.1 connection to an endpoint.

    The webhook worker only needs the status of each answer, so requests are
    written in one ``sendall`` and answers parsed minimally; this costs a
    fifth of the CPU time of :mod:`http.client`, which matters because the
    worker shares the process with the requests it serves.
    """

    def __init__(
        self,
        parts: urllib.parse.SplitResult,
        timeout: float,
        ssl_context: ssl.SSLContext | None,
        *,
        public_only: bool = False,
    ) -> None:
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = public_address(host, port) if public_only else (host, port)
        sock = socket.create_connection(address, timeout=timeout)
        try:
            # Small writes are sent at once, not held for the previous ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ssl_context is not None:
                sock = ssl_context.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.reader = sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def post(self, head: bytes, body: bytes) -> tuple[int, bool]:
        """Send one request; return the status and whether the connection
        can be reused."""
        status, headers, reusable = self._send(head, body)
        if status in (204, 304):
            return status, reusable
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return status, reusable and self._read_chunks(None)
        length = headers.get("content-length")
        if length is None:
            return status, False  # the body ends when the server closes
        if not length.isdigit() or int(length) > _MAX_RESPONSE_BYTES:
            return status, False
        if len(self.reader.read(int(length))) != int(length):
            return status, False
        return status, reusable

    def exchange(
        self, head: bytes, body: bytes, limit: int
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request; return the status, the headers (names in lower
        case) and up to ``limit`` bytes of the body. The connection is not
        reused after it."""
        status, headers, _ = self._send(head, body)
        if status in (204, 304):
            return status, headers, b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            self._read_chunks(chunks, limit)
            return status, headers, b"".join(chunks)
        length = headers.get("content-length")
        if length is not None and length.isdigit():
            limit = min(limit, int(length))
        # Without a length, the body ends when the endpoint closes.
        return status, headers, self.reader.read(limit)

    def _send(self, head: bytes, body: bytes) -> tuple[int, dict[str, str], bool]:
        """Send one request and read the head of its final answer: the
        status, the headers, and whether the connection may be reused."""
        self.sock.sendall(head + body)
        while True:
            status, headers, version = self._read_head()
            # 1xx answers (a 100 Continue nobody asked for) come before the
            # real one.
            if not 100 <= status < 200:
                break
        reusable = version == "HTTP/1.1" and headers.get("connection") != "close"
        return status, headers, reusable

    def _read_head(self) -> tuple[int, dict[str, str], str]:
        line = self.reader.readline(_MAX_LINE)
        if not line:
            raise http.client.RemoteDisconnected("Connection closed by the endpoint.")
        version, _, rest = line.decode("latin-1").partition(" ")
        code = rest[:3]
        if version not in ("HTTP/1.1", "HTTP/1.0") or not code.isdigit():
            raise _ResponseError(f"Not an HTTP/1.x status line: {line[:80]!r}")
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = self.reader.readline(_MAX_LINE)
            if line in (b"\r\n", b"\n"):
                return int(code), headers, version
            if not line.endswith(b"\n"):
                raise _ResponseError("Truncated or oversized response header.")
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        raise _ResponseError("Too many response headers.")

    def _read_chunks(
        self, keep: list[bytes] | None, limit: int = _MAX_RESPONSE_BYTES
    ) -> bool:
        """Read a chunked body, appending its chunks to ``keep`` if given;
        ``False`` when it is cut short or longer than ``limit`` (then the
        chunk that crosses the limit and the rest are not read)."""
        total = 0
        while True:
            size_line = self.reader.readline(_MAX_LINE).split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise _ResponseError("Invalid chunk size.") from None
            total += size
            if total > limit:
                return False
            if size == 0:
                # Trailers, then the blank line.
                while self.reader.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                    pass
                return True
            chunk = self.reader.read(size + 2)
            if len(chunk) != size + 2:
                return False
            if keep is not None:
                keep.append(chunk[:size])


class SocketTransport(Transport):
    """POSTs with keep-alive connections, one per endpoint; one thread only."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._connections: dict[tuple[str, str, bool], _Connection] = {}
        self._ssl_context: ssl.SSLContext | None = None

    def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        public_only: bool = False,
    ) -> int:
        """POST ``body`` and return the status code.

        :param public_only: Connect only to a public address of the host.
        :raise OSError: connection errors and timeouts.
        :raise http.client.HTTPException: a malformed response.
        :raise MailTrackError: a bad URL or header value, or (with
            ``public_only``) a host without a public address.
        """
        parts = check_url(url)
        key = (parts.scheme, parts.netloc, public_only)
        head = self._head(parts, body, headers)
        for attempt in itertools.count():
            connection = self._connections.pop(key, None)
            reused = connection is not None
            if connection is None:
                connection = self._connect(parts, public_only)
            try:
                status, reusable = connection.post(head, body)
            except (
                http.client.RemoteDisconnected,
                BrokenPipeError,
                ConnectionResetError,
            ):
                connection.close()
                # A kept-alive connection the endpoint closed meanwhile: try
                # once on a new one.
                if reused and attempt == 0:
                    continue
                raise
            except BaseException:
                connection.close()
                raise
            if reusable:
                self._connections[key] = connection
            else:
                connection.close()
            return status
        raise AssertionError("unreachable")  # pragma: no cover

    def exchange(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        limit: int = 1024 * 1024,
    ) -> tuple[int, dict[str, str], bytes]:
        """POST ``body`` once, on a new connection closed after it, and
        return the whole answer: the status, the headers (names in lower
        case) and the first ``limit`` bytes of the body.

        :raise OSError: connection errors and timeouts.
        :raise http.client.HTTPException: a malformed response.
        :raise MailTrackError: a bad URL or header value.
        """
        parts = check_url(url)
        head = self._head(parts, body, {"Connection": "close", **headers})
        connection = self._connect(parts, False)
        try:
            return connection.exchange(head, body, limit)
        finally:
            connection.close()

    def _connect(
        self, parts: urllib.parse.SplitResult, public_only: bool
    ) -> _Connection:
        context = None
        if parts.scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            context = self._ssl_context
        return _Connection(parts, self.timeout, context, public_only=public_only)

    @staticmethod
    def _head(
        parts: urllib.parse.SplitResult, body: bytes, headers: dict[str, str]
    ) -> bytes:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        fields = {
            "Host": parts.netloc.rpartition("@")[2],
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            "User-Agent": _USER_AGENT,
            **headers,
        }
        if parts.username is not None:
            credentials = f"{urllib.parse.unquote(parts.username)}:"
            credentials += urllib.parse.unquote(parts.password or "")
            encoded = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
            fields["Authorization"] = f"Basic {encoded}"
        lines = [f"POST {target} HTTP/1.1"]
        for name, value in fields.items():
            if UNSAFE_HEADER_VALUE.search(value):
                raise MailTrackError(f"Invalid character in header {name}.")
            lines.append(f"{name}: {value}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def close(self) -> None:
        connections, self._connections = self._connections, {}
        for connection in connections.values():
            connection.close()
