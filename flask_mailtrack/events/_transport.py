"""How webhook requests reach their endpoint: :class:`Transport`.

:class:`~flask_mailtrack.WebhookSender` and
:func:`~flask_mailtrack.send_webhook` post through a :class:`Transport`, the
one place that talks to the network: urllib3 connection pools, one per
endpoint, kept alive, with TLS verification against the system's trusted
certificates. A transport never retries (the sender's backoff does) and never
follows a redirect (a 3xx is a failure: the event was not accepted).
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import threading
import typing as t
import urllib.parse

import urllib3
from urllib3 import HTTPConnectionPool
from urllib3 import HTTPSConnectionPool
from urllib3.exceptions import HTTPError

from ..exceptions import MailTrackError

_USER_AGENT = "flask-mailtrack-webhooks/1"
#: Bytes of a response body read (and discarded) before a connection is
#: reused; a longer body closes the connection instead of being read.
MAX_DISCARDED_BYTES = 64 * 1024
#: Endpoints (scheme, host and port) with a pool of connections kept open.
MAX_POOLS = 64
#: Characters refused in a header value (control characters, non-Latin-1).
UNSAFE_HEADER_VALUE = re.compile(r"[\x00-\x1f\x7f]|[^\x00-\xff]")
_UNSAFE_URL = re.compile(r"[\x00-\x20\x7f]")


class Unreachable(OSError):
    """No answer: the connection failed or timed out, or the answer was not
    HTTP. ``__cause__`` is the underlying error (a
    :exc:`ConnectionRefusedError`, a :exc:`TimeoutError`, a
    :exc:`http.client.HTTPException`...) when there is one."""


class RefusedAddress(MailTrackError):
    """A webhook host resolved to a non-public address, with
    ``refuse_private_addresses``."""


class Answer(t.NamedTuple):
    """What :meth:`Transport.exchange` returns."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def check_url(url: str) -> urllib.parse.SplitResult:
    """Split ``url``, refusing anything but an http(s) URL with a host.

    :raise MailTrackError: another scheme, no host, spaces or control
        characters.
    """
    parts = urllib.parse.urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or _UNSAFE_URL.search(url)
    ):
        raise MailTrackError(
            f"A webhook URL must be http(s) with a host, without spaces or"
            f" control characters: {url!r}"
        )
    return parts


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


class _Endpoint(t.NamedTuple):
    """What a URL's requests share: the pool key, target and fixed headers."""

    scheme: str
    host: str
    port: int
    target: str
    headers: dict[str, str]
    #: The ``Host`` header, sent when connecting to a checked address.
    netloc: str


class Transport:
    """POSTs webhook requests with urllib3; safe to use from several
    threads at once.

    Each endpoint (scheme, host and port) gets a urllib3 connection pool of
    ``connections`` kept-alive connections; the least recently created
    pools are closed beyond :data:`MAX_POOLS`.

    Errors tell the sender what to do with the event: :exc:`Unreachable`
    (an :exc:`OSError`) and :exc:`~flask_mailtrack.MailTrackError` (a bad
    URL or header value) mean try again later; :exc:`RefusedAddress` means
    never.

    :param timeout: Seconds to connect, and to wait for each read.
    :param connections: Connections kept alive per endpoint: as many as
        requests in flight to it.
    :param ssl_context: Trusts other certificates than the system's (a
        private CA); verification stays on.
    """

    def __init__(
        self,
        timeout: float,
        *,
        connections: int = 1,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = timeout
        self._connections = connections
        self._ssl_context = ssl_context
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._pools: dict[tuple[str, str, int, str | None], HTTPConnectionPool] = {}
        # Parsing and checking a URL costs as much as a tenth of a post;
        # the sender posts to few URLs, many times each.
        self._endpoints: dict[str, _Endpoint] = {}
        self._lock = threading.Lock()

    def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        public_only: bool = False,
    ) -> int:
        """POST ``body`` (JSON) with ``headers`` to ``url``; return the
        status code of the answer, whose body is discarded.

        :param public_only: Connect only to a public address of the host
            (see :func:`public_address`).
        :raise Unreachable: no answer (connection error, timeout, not HTTP).
        :raise MailTrackError: a bad URL or header value;
            :exc:`RefusedAddress` with ``public_only``.
        """
        response = self._request(url, body, headers, public_only=public_only)
        try:
            _read_at_most(response, MAX_DISCARDED_BYTES)
        except Unreachable:
            pass  # the status came; a body cut short only loses the connection
        finally:
            response.release_conn()
        return response.status

    def exchange(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        limit: int,
    ) -> Answer:
        """POST ``body`` once and return the whole answer: the status, the
        headers and the first ``limit`` bytes of the body.

        :raise Unreachable: no answer.
        :raise MailTrackError: a bad URL or header value.
        """
        response = self._request(url, body, headers, public_only=False)
        try:
            content = _read_at_most(response, limit)
        finally:
            response.release_conn()
        return Answer(response.status, list(response.headers.items()), content)

    def _endpoint(self, url: str) -> _Endpoint:
        endpoint = self._endpoints.get(url)
        if endpoint is not None:
            return endpoint
        parts = check_url(url)
        headers = {"Content-Type": "application/json", "User-Agent": _USER_AGENT}
        if parts.username is not None:
            credentials = urllib.parse.unquote(parts.username) + ":"
            credentials += urllib.parse.unquote(parts.password or "")
            headers.update(urllib3.make_headers(basic_auth=credentials))
        _check_headers(headers)
        endpoint = _Endpoint(
            parts.scheme,
            parts.hostname or "",
            parts.port or (443 if parts.scheme == "https" else 80),
            (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
            headers,
            parts.netloc.rpartition("@")[2],
        )
        with self._lock:
            if len(self._endpoints) >= MAX_POOLS:  # URLs from tokens
                self._endpoints.clear()
            self._endpoints[url] = endpoint
        return endpoint

    def _pool(
        self, scheme: str, host: str, port: int, server_hostname: str | None
    ) -> HTTPConnectionPool:
        key = (scheme, host, port, server_hostname)
        pool = self._pools.get(key)
        if pool is not None:
            return pool
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                return pool
            options: dict[str, t.Any] = {
                "timeout": self._timeout,
                "maxsize": self._connections,
                "retries": False,
            }
            if scheme == "https":
                pool = HTTPSConnectionPool(
                    host,
                    port,
                    cert_reqs="CERT_REQUIRED",
                    ssl_context=self._ssl_context,
                    server_hostname=server_hostname,
                    **options,
                )
            else:
                pool = HTTPConnectionPool(host, port, **options)
            if len(self._pools) >= MAX_POOLS:
                oldest = next(iter(self._pools))
                self._pools.pop(oldest).close()
            self._pools[key] = pool
        return pool

    def _request(
        self, url: str, body: bytes, headers: dict[str, str], *, public_only: bool
    ) -> urllib3.BaseHTTPResponse:
        endpoint = self._endpoint(url)
        _check_headers(headers)
        fields = {**endpoint.headers, **headers}
        try:
            if public_only:
                address, _ = public_address(endpoint.host, endpoint.port)
                # Connect to the address checked, not to a second lookup of
                # the name; the request and the certificate still name the
                # host (server_hostname is SNI and what TLS verifies).
                pool = self._pool(
                    endpoint.scheme, address, endpoint.port, endpoint.host
                )
                fields["Host"] = endpoint.netloc
            else:
                pool = self._pool(endpoint.scheme, endpoint.host, endpoint.port, None)
            return pool.urlopen(
                "POST",
                endpoint.target,
                body=body,
                headers=fields,
                redirect=False,
                preload_content=False,
            )
        except (HTTPError, OSError, http.client.HTTPException) as e:
            if isinstance(e, RefusedAddress):
                raise
            raise _unreachable(e) from _cause(e)

    def close(self) -> None:
        """Close the connections kept open."""
        with self._lock:
            pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.close()


def _check_headers(headers: dict[str, str]) -> None:
    for name, value in headers.items():
        if UNSAFE_HEADER_VALUE.search(value):
            raise MailTrackError(f"Invalid character in header {name}.")


def _read_at_most(response: urllib3.BaseHTTPResponse, limit: int) -> bytes:
    """The first ``limit`` bytes of the body; a longer body is not read
    (its connection is closed rather than drained)."""
    try:
        content = response.read(limit, decode_content=False)
        # (Also where a body cut short is noticed.)
        if response.read(1, decode_content=False):
            response.close()  # not reusable: the rest of the body is unread
        return content
    except (HTTPError, OSError, http.client.HTTPException) as e:
        response.close()
        raise _unreachable(e) from _cause(e)


def _unreachable(error: BaseException) -> Unreachable:
    return Unreachable(f"{type(error).__name__}: {error}")


def _cause(error: BaseException) -> BaseException:
    """The error under urllib3's wrappers: the first network or protocol
    error (``OSError``, ``HTTPException``) of the chain that is not
    urllib3's own, else the first one that is, else ``error``."""
    found: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and len(found) < 10:
        if isinstance(seen, (OSError, http.client.HTTPException)):
            if not isinstance(seen, HTTPError):
                return seen
            found.append(seen)
        # ProtocolError("Connection aborted.", RemoteDisconnected(...)) keeps
        # its cause in its arguments.
        nested = [a for a in seen.args if isinstance(a, BaseException)]
        seen = seen.__cause__ or (nested[0] if nested else seen.__context__)
    return found[0] if found else error
