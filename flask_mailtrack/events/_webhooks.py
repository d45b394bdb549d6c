"""Signed webhooks that lose nothing: :class:`WebhookSender`.

A :class:`WebhookSender` is a receiver of the :data:`~flask_mailtrack.email_opened`
and :data:`~flask_mailtrack.link_clicked` signals. In the request it only
appends the event to a journal file of its process (one ``os.write``, see
:mod:`flask_mailtrack.spool`); a background thread moves the journal into
an *outbox*, a table in a SQLite file, every few milliseconds, and another
posts the events to the webhook and retries until the endpoint accepts them.
A webhook that is down, slow or failing therefore never slows the pixel or
the redirect, and no event is lost when the process dies: the next process
using the same outbox file imports its journal and delivers what is left.

::

    sender = WebhookSender(
        "https://example.com/hooks/mail",
        secret="whsec_...",  # generate_secret() makes one
        outbox_path="/var/lib/mailtrack/outbox.sqlite3",
    )
    sender.connect()

Event schema (version 1)
------------------------

Every event (webhook body, :class:`~flask_mailtrack.EventStore` record,
:meth:`TrackingResult.to_json_dict() <flask_mailtrack.TrackingResult.to_json_dict>`)
is one JSON object:

``schema``
    ``1``. Incremented only for incompatible changes; new keys may appear
    in the same version, so ignore keys you do not know.
``id``
    The event id, ``evt_`` and 32 hex digits. Unique per event and the same
    on every delivery attempt of it (it is also the ``webhook-id`` header):
    deliveries are *at least once*, so deduplicate on it.
``type``
    ``"email.opened"`` or ``"link.clicked"``.
``occurred_at``
    When the pixel was loaded or the link followed, ISO 8601 in UTC
    (``"2026-05-04T10:11:12Z"``).
``issued_at``, ``expires_at``
    When the tracking link was made and when it stops working (``null`` for
    legacy pytracking tokens, or no expiry).
``metadata``
    The object given when the link was made, plus the configuration's
    default metadata.
``tracked_url``
    The click target (``null`` for opens).
``request_data``
    What the request looked like, after IP anonymisation when enabled:
    ``user_agent``, ``user_ip``, ``method`` and prefetch headers; ``null``
    when the event was not made from a request.
``machine``, ``machine_reasons``
    ``null`` when the hit looks like a person; otherwise a label
    (``"prefetch"``, ``"apple-mpp"``, ``"image-proxy"``, ``"scanner"``,
    ``"bot"``) and the names of the rules that matched. Machine hits get the
    same response as people; the label is there for statistics.
``is_open_tracking``, ``is_click_tracking``, ``timestamp``, ``webhook_url``, ``legacy``
    pytracking's keys, kept so that existing receivers keep working
    (``timestamp`` is ``occurred_at`` in seconds since the epoch).

Signatures
----------

Requests follow the `Standard Webhooks`_ specification: a ``POST`` with a
JSON body and three headers, ``webhook-id`` (the event id),
``webhook-timestamp`` (seconds since the epoch) and ``webhook-signature``,
``v1,`` followed by the base64 HMAC-SHA256 of ``"{id}.{timestamp}.{body}"``
under the secret. The secret is written ``whsec_<base64 key>``. Receivers
check requests with :func:`verify_webhook` or any Standard Webhooks library.

.. _Standard Webhooks: https://www.standardwebhooks.com/

Delivery
--------

A ``2xx`` answer means delivered. Anything else, a timeout or a connection
error is retried with exponential backoff and jitter (first retry after
about ``retry_base`` seconds, then doubling up to ``retry_max``) until the
event is ``max_age`` old (24 hours by default); it is then moved to the
dead-letter table and :data:`~flask_mailtrack.signals.webhook_failed` is
sent. ``410 Gone`` stops the retries of that event at once. Redirects are
not followed.

Several processes (gunicorn workers) may share one outbox file. A worker
*claims* a batch of due events with one atomic ``UPDATE`` that gives it a
lease; a process killed mid-delivery leaves leased events behind, which any
process delivers again once the lease has run out. Memory use does not
depend on the backlog: events are read in batches.

The journal
-----------

An event is safe once :meth:`WebhookSender.enqueue` returns: it is in the
kernel's page cache, in a file of the directory ``<outbox>-spool`` beside
the outbox (as SQLite keeps ``<outbox>-wal``), which survives the death of
the process; a power loss may lose the last seconds, as it may lose
SQLite's last commits with ``synchronous=NORMAL``. The journal thread moves
the events into the outbox and notes, in the same transaction, how far it
got in that journal (table ``webhook_journals``), so a journal imported
again (a crash between the import and the file's deletion) queues each
event once. Every process with a sender takes over the journals of dead
processes. An in-memory outbox (``":memory:"``) has no journal: events are
inserted directly.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import http.client
import io
import ipaddress
import itertools
import json
import logging
import operator
import os
import pickle
import random
import re
import socket
import ssl
import threading
import time
import typing as t
import urllib.parse
import uuid
from collections.abc import Mapping

from blinker import ANY

from ..configuration import Configuration
from ..exceptions import MailTrackError
from ..exceptions import WebhookVerificationError
from ..result import TrackingResult
from ..signals import webhook_failed
from ._connect import SignalConnections
from ._journal import Spool
from ._journal import SUPPORTED as SPOOL_SUPPORTED
from ._sqlite import ConnectionPool

logger = logging.getLogger("flask_mailtrack.webhooks")

SecretInput = t.Union[str, bytes]

#: Prefix of a Standard Webhooks secret.
SECRET_PREFIX = "whsec_"

_USER_AGENT = "flask-mailtrack-webhooks/1"
#: Bytes of a response body read (and discarded) before a connection is
#: reused; a longer body closes the connection instead.
_MAX_RESPONSE_BYTES = 64 * 1024
#: Limits on a response's head.
_MAX_LINE = 8 * 1024
_MAX_HEADERS = 100
#: Characters refused in a header value (control characters, non-Latin-1).
_UNSAFE_VALUE = re.compile(r"[\x00-\x1f\x7f]|[^\x00-\xff]")

#: Delivered events are deleted from the outbox in groups of at most this
#: many, or after this many seconds.
_DELETE_BATCH = 20
_DELETE_SECONDS = 0.1

_ENQUEUE = (
    "INSERT INTO webhook_outbox (event_id, url, body, created_at, next_attempt_at)"
    " VALUES (?, ?, ?, ?, ?)"
)

#: Seconds after which what is known of a journal is forgotten, when the
#: process that imported it died before it could say the file was deleted.
_JOURNAL_MEMORY = 7 * 24 * 60 * 60

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    last_status INTEGER,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS webhook_outbox_due
    ON webhook_outbox (next_attempt_at);
CREATE TABLE IF NOT EXISTS webhook_dead_letter (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    failed_at REAL NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    last_status INTEGER,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS webhook_journals (
    name TEXT PRIMARY KEY,
    imported INTEGER NOT NULL,
    imported_at REAL NOT NULL
) WITHOUT ROWID;
"""


# -- signatures ---------------------------------------------------------------


def generate_secret() -> str:
    """A new random webhook secret, ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode("ascii")


def decode_secret(secret: SecretInput) -> bytes:
    """The key bytes of a secret: ``whsec_<base64>`` text, or raw bytes.

    :raise MailTrackError: text without the ``whsec_`` prefix, bad base64,
        or an empty key.
    """
    if isinstance(secret, bytes):
        key = secret
    elif isinstance(secret, str) and secret.startswith(SECRET_PREFIX):
        encoded = secret[len(SECRET_PREFIX) :]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise MailTrackError(
                "The webhook secret is not valid base64 after 'whsec_'."
            ) from None
    else:
        raise MailTrackError(
            "A webhook secret is 'whsec_' followed by a base64 key (use"
            " flask_mailtrack.webhooks.generate_secret()), or the key as bytes."
        )
    if not key:
        raise MailTrackError("The webhook secret is empty.")
    return key


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) of a request."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(
    key: bytes, message_id: str, body: bytes, *, now: float | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``."""
    timestamp = int(time.time() if now is None else now)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, message_id, timestamp, body),
    }


def verify_webhook(
    payload: bytes | str,
    headers: Mapping[str, str],
    secret: SecretInput | t.Sequence[SecretInput],
    tolerance: float = 300,
    *,
    now: float | None = None,
) -> dict[str, t.Any]:
    """Check a webhook request on the receiving side and return its event.

    ::

        @app.post("/hooks/mail")
        def mail_hook():
            event = verify_webhook(request.get_data(), request.headers, SECRET)
            ...

    Pass the raw body exactly as received, not re-serialized JSON.

    :param payload: The request body.
    :param headers: The request headers (any case).
    :param secret: The ``whsec_...`` secret, or a list of them while
        rotating.
    :param tolerance: Seconds the ``webhook-timestamp`` may differ from now,
        which bounds how long a captured request can be replayed.
    :return: The parsed JSON event.
    :raise WebhookVerificationError: missing headers, a timestamp outside the
        tolerance, no matching signature, or a body that is not a JSON object.
    """
    body = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    lowered = {key.lower(): value for key, value in headers.items()}
    message_id = lowered.get("webhook-id")
    timestamp_text = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (message_id and timestamp_text and signatures):
        raise WebhookVerificationError("Missing webhook-id, -timestamp or -signature.")
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        raise WebhookVerificationError("Invalid webhook-timestamp.") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("The webhook-timestamp is out of tolerance.")
    secrets = [secret] if isinstance(secret, (str, bytes)) else list(secret)
    expected = [
        sign(decode_secret(item), message_id, timestamp, body).encode("ascii")
        for item in secrets
    ]
    for candidate in signatures.split():
        # Compare every pair, so the time taken does not tell which matched.
        given = candidate.encode("ascii", "replace")
        if any(hmac.compare_digest(given, value) for value in expected):
            break
    else:
        raise WebhookVerificationError("No matching webhook signature.")
    try:
        event = json.loads(body)
    except ValueError:
        raise WebhookVerificationError("The webhook body is not JSON.") from None
    if not isinstance(event, dict):
        raise WebhookVerificationError("The webhook body is not a JSON object.")
    return event


# -- HTTP ---------------------------------------------------------------------


_UNSAFE = re.compile(r"[\x00-\x20\x7f]")


def _check_url(url: str) -> urllib.parse.SplitResult:
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


class _RefusedAddress(MailTrackError):
    """A webhook host resolved to a non-public address, with
    ``refuse_private_addresses``."""


def _public_address(host: str, port: int) -> tuple[str, int]:
    """The first public address of ``host``.

    The connection is then made to that very address, so a name that
    resolves differently a moment later (DNS rebinding) cannot slip through.

    :raise _RefusedAddress: every address is loopback, private, link-local,
        reserved or multicast (cloud metadata services, admin interfaces).
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for _, _, _, _, address in infos:
        ip = ipaddress.ip_address(str(address[0]).partition("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_global and not ip.is_multicast:
            return str(address[0]), port
    raise _RefusedAddress(f"The webhook host {host!r} has no public address.")


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
        address = _public_address(host, port) if public_only else (host, port)
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
        self.sock.sendall(head + body)
        while True:
            status, headers, version = self._read_head()
            # 1xx answers (a 100 Continue nobody asked for) come before the
            # real one.
            if not 100 <= status < 200:
                break
        reusable = version == "HTTP/1.1" and headers.get("connection") != "close"
        if status in (204, 304):
            return status, reusable
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return status, reusable and self._skip_chunks()
        length = headers.get("content-length")
        if length is None:
            return status, False  # the body ends when the server closes
        if not length.isdigit() or int(length) > _MAX_RESPONSE_BYTES:
            return status, False
        if len(self.reader.read(int(length))) != int(length):
            return status, False
        return status, reusable

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

    def _skip_chunks(self) -> bool:
        """Read a chunked body; ``False`` when it is too long to bother."""
        total = 0
        while True:
            size_line = self.reader.readline(_MAX_LINE).split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise _ResponseError("Invalid chunk size.") from None
            total += size
            if total > _MAX_RESPONSE_BYTES:
                return False
            if size == 0:
                # Trailers, then the blank line.
                while self.reader.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                    pass
                return True
            if len(self.reader.read(size + 2)) != size + 2:
                return False


class _Transport:
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
        parts = _check_url(url)
        key = (parts.scheme, parts.netloc, public_only)
        head = self._head(parts, body, headers)
        for attempt in itertools.count():
            connection = self._connections.pop(key, None)
            reused = connection is not None
            if connection is None:
                context = None
                if parts.scheme == "https":
                    if self._ssl_context is None:
                        self._ssl_context = ssl.create_default_context()
                    context = self._ssl_context
                connection = _Connection(
                    parts, self.timeout, context, public_only=public_only
                )
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
            if _UNSAFE_VALUE.search(value):
                raise MailTrackError(f"Invalid character in header {name}.")
            lines.append(f"{name}: {value}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def close(self) -> None:
        connections, self._connections = self._connections, {}
        for connection in connections.values():
            connection.close()


class WebhookResponse(t.NamedTuple):
    """What :func:`send_webhook` got back."""

    #: The HTTP status code.
    status_code: int

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status_code < 300


def send_webhook(
    tracking_result: TrackingResult,
    configuration: Configuration | None = None,
    *,
    secret: SecretInput | None = None,
    **kwargs: t.Any,
) -> WebhookResponse:
    """Post one event to its webhook now, once, and return the response.

    pytracking's function, kept for code moving over: the request is made in
    the calling thread with no retry. Prefer :class:`WebhookSender`, which
    neither blocks the request nor loses events. Unlike pytracking's, the
    body is the full event (schema 1, a superset of pytracking's body) and
    the request is signed when ``secret`` is given.

    The URL is ``tracking_result.webhook_url``: it comes from the token only
    when ``include_webhook_url`` is set, and tokens are authenticated, so
    nobody else can choose where it points.

    :param tracking_result: The event to post.
    :param configuration: Gives ``webhook_timeout_seconds`` (and the URL when
        the result has none); ``kwargs`` override its fields.
    :param secret: A ``whsec_...`` secret to sign the request with.
    :return: The response; ``.status_code`` is the HTTP status.
    :raise MailTrackError: no webhook URL, or not an http(s) URL.
    :raise OSError: the connection failed or timed out.
    """
    settings = configuration if configuration is not None else Configuration()
    if kwargs:
        settings = settings.replace(**kwargs)
    url = tracking_result.webhook_url or settings.webhook_url
    if not url:
        raise MailTrackError("This result has no webhook_url to send to.")
    body = _encode_event(tracking_result.to_json_dict())
    headers: dict[str, str] = {}
    if secret is not None:
        headers = signature_headers(
            decode_secret(secret), tracking_result.event_id, body
        )
    transport = _Transport(settings.webhook_timeout_seconds)
    try:
        return WebhookResponse(transport.post(url, body, headers))
    finally:
        transport.close()


#: One encoder for every event: json.dumps with options builds a new one
#: per call.
_EVENT_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _encode_event(event: Mapping[str, t.Any]) -> bytes:
    return _EVENT_ENCODER.encode(event).encode("utf-8")


# -- the sender ---------------------------------------------------------------


#: What :meth:`WebhookSender._attempt` returns as the status of a refused URL.
_REFUSED = -1


#: Version of the journal record layout (the first item of each record).
_RECORD_VERSION = 1
_PICKLE_PROTOCOL = 5


#: The fields of a :class:`TrackingResult` a journal record keeps, in
#: their order in the record (after the version, URL and time).
_RECORD_FIELDS = (
    "event_id",
    "is_open_tracking",
    "is_click_tracking",
    "tracked_url",
    "webhook_url",
    "metadata",
    "request_data",
    "timestamp",
    "issued_at",
    "expires_at",
    "machine",
    "machine_reasons",
    "legacy",
)
_record_fields = operator.attrgetter(*_RECORD_FIELDS)


def _journal_record(result: TrackingResult, url: str, now: float) -> bytes:
    """A journal line for ``result``: its fields, pickled, not its JSON.

    Encoding the event (``to_json_dict()`` and JSON) costs a pixel request
    three times what pickling the fields does, so it is left to the journal
    thread. Backslashes and newlines are escaped: a journal record is one
    line.
    """
    data = pickle.dumps(
        (_RECORD_VERSION, url, now) + _record_fields(result), _PICKLE_PROTOCOL
    )
    return data.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")


class _PlainUnpickler(pickle.Unpickler):
    """Loads builtin values only: a record naming any class or function
    (which a pickle can call) is refused, whoever wrote the file."""

    def find_class(self, module: str, name: str) -> t.Any:
        raise pickle.UnpicklingError(f"Journal records name no {module}.{name}.")


def _outbox_row(record: bytes) -> tuple[str, str, bytes, float, float]:
    """The outbox row (event id, URL, body, created at twice) of a journal
    record.

    :raise Exception: a damaged record.
    """
    # Undo the escapes: a doubled backslash is a backslash, and a backslash
    # and an "n" in the pieces between doubled backslashes are a newline.
    data = b"\\".join(piece.replace(b"\\n", b"\n") for piece in record.split(b"\\\\"))
    fields = _PlainUnpickler(io.BytesIO(data)).load()
    if not isinstance(fields, tuple) or fields[0] != _RECORD_VERSION:
        raise ValueError("Not a journal record of this version.")
    _, url, created_at, *values = fields
    if len(values) != len(_RECORD_FIELDS):
        raise ValueError("A journal record with other fields.")
    result = TrackingResult(**dict(zip(_RECORD_FIELDS, values)))
    body = _encode_event(result.to_json_dict())
    if not (isinstance(url, str) and isinstance(created_at, float)):
        raise ValueError("A journal record without its URL or time.")
    return result.event_id, url, body, created_at, created_at


class _Row(t.NamedTuple):
    id: int
    event_id: str
    url: str
    body: bytes
    created_at: float
    attempts: int


class WebhookSender:
    """Delivers every tracking event to a webhook, signed, retried, durably.

    :param url: The webhook URL. Events whose token carries its own
        ``webhook_url`` (``include_webhook_url``) go there instead; events
        with neither are not sent.
    :param secret: The signing secret, ``whsec_<base64>`` (see
        :func:`generate_secret`) or the key as bytes.
    :param outbox_path: The SQLite file of the outbox; share it between the
        processes of one server. Events are first journaled in the directory
        ``<outbox_path>-spool`` beside it (see :attr:`spool_directory`).
        ``":memory:"`` keeps events in memory, lost with the process: only
        for tests.
    :param timeout: Seconds to wait to connect and for each read of one
        delivery attempt.
    :param max_age: Seconds (or a :class:`~datetime.timedelta`) an event is
        retried before it is dead-lettered.
    :param retry_base: Delay before the first retry, in seconds; each retry
        doubles it, with jitter between half and all of it.
    :param retry_max: The longest delay between two attempts.
    :param batch_size: Events claimed at once by the delivery thread.
    :param lease_seconds: How long a claim lasts. Events claimed by a process
        that died are delivered by another one after this; the lease is
        renewed while a batch takes longer.
    :param poll_interval: Seconds between looks at the outbox for events
        added by other processes (events of this process wake the thread at
        once), and for journals left by dead processes.
    :param spool_delay: Seconds events gather in this process's journal
        after the first one arrives before they are moved into the outbox,
        all in one transaction.
    :param deliver: Start the delivery thread when events arrive. ``False``
        makes a sender that only queues, for processes that leave delivery
        to another process sharing the outbox (which calls :meth:`start`);
        its journal is still moved into the outbox by a thread.
    :param refuse_private_addresses: Post to a URL other than ``url`` (one
        written in a token with ``include_webhook_url``) only when its host
        resolves to a public address; loopback, private, link-local,
        reserved and multicast addresses are refused, and the event is
        dead-lettered with the reason ``"refused"``. Tokens are
        authenticated, so only key holders choose these URLs; this limits
        what a leaked key could reach inside your network. ``url`` itself is
        always allowed.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        secret: SecretInput,
        outbox_path: str | os.PathLike[str],
        timeout: float = 5.0,
        max_age: float | datetime.timedelta = 24 * 60 * 60,
        retry_base: float = 2.0,
        retry_max: float = 60 * 60,
        batch_size: int = 50,
        lease_seconds: float = 60.0,
        poll_interval: float = 1.0,
        spool_delay: float = 0.02,
        deliver: bool = True,
        refuse_private_addresses: bool = False,
    ) -> None:
        if url is not None:
            _check_url(url)
        if isinstance(max_age, datetime.timedelta):
            max_age = max_age.total_seconds()
        if max_age <= 0 or timeout <= 0 or lease_seconds <= 0 or batch_size < 1:
            raise ValueError(
                "max_age, timeout, lease_seconds must be positive, batch_size >= 1."
            )
        #: The default webhook URL.
        self.url = url
        #: Seconds per connect or read of one attempt.
        self.timeout = timeout
        #: Seconds an event is retried.
        self.max_age = float(max_age)
        #: Seconds before the first retry (doubling after each failure).
        self.retry_base = retry_base
        #: The longest wait between two attempts.
        self.retry_max = retry_max
        #: Events claimed at once.
        self.batch_size = batch_size
        #: Seconds a claim lasts before another process may take the events.
        self.lease_seconds = lease_seconds
        #: Seconds between looks for events queued by other processes.
        self.poll_interval = poll_interval
        #: Whether events start the delivery thread.
        self.deliver = deliver
        #: Whether URLs other than :attr:`url` must resolve to public
        #: addresses.
        self.refuse_private_addresses = refuse_private_addresses
        self._key = decode_secret(secret)
        self._db = ConnectionPool(outbox_path, _SCHEMA)
        self._spool: Spool | None = None
        #: Journals deleted since the last import, to forget in the next.
        self._deleted_journals: list[str] = []
        if not self._db.memory and SPOOL_SUPPORTED:
            self._spool = Spool(
                self._db.path + "-spool",
                self._import,
                on_deleted=self._deleted_journals.append,
                name="webhooks",
                delay=spool_delay,
                poll_interval=poll_interval,
            )
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._deadline = float("inf")
        self._thread: threading.Thread | None = None
        self._thread_pid = 0
        self._start_lock = threading.Lock()
        self._signals = SignalConnections(self.enqueue)
        self._claims = itertools.count()
        self._good_urls: set[str] = set()

    @property
    def outbox_path(self) -> str:
        """The outbox file (or ``":memory:"``)."""
        return self._db.path

    @property
    def spool_directory(self) -> str | None:
        """The directory of the journals in front of the outbox,
        ``<outbox_path>-spool``; ``None`` for an in-memory outbox."""
        return None if self._spool is None else self._spool.directory

    # -- receiving ------------------------------------------------------------

    def connect(self, sender: t.Any = ANY) -> WebhookSender:
        """Subscribe to :data:`~flask_mailtrack.email_opened` and
        :data:`~flask_mailtrack.link_clicked` and start delivering.

        :param sender: Only events sent by this sender (a Flask app, a
            middleware); all by default.
        :return: ``self``, so ``sender = WebhookSender(...).connect()`` works.
        """
        self._signals.connect(sender)
        if self.deliver:
            self.start()
        elif self._spool is not None:
            self._spool.start()
        return self

    def disconnect(self) -> None:
        """Stop receiving events (delivery of the outbox continues)."""
        self._signals.disconnect()

    def enqueue(self, result: TrackingResult) -> bool:
        """Append ``result`` to the outbox; the delivery thread sends it.

        This is all the request thread does: pickle the event's fields and
        append them to this process's journal, one ``os.write`` (the journal
        thread encodes the event as it moves it into the outbox). An
        in-memory outbox, or a failed write, gets a direct SQLite insert
        instead. The event survives the death of the process from then on.

        :return: Whether the event has a webhook URL and was queued.
        """
        url = result.webhook_url or self.url
        if not url:
            return False
        event_id = result.event_id
        # Printable ASCII (every id the library makes) passes without the
        # regular expression, a tenth of its cost.
        if not (event_id.isascii() and event_id.isprintable()) and (
            _UNSAFE_VALUE.search(event_id)
        ):
            logger.error("Event not queued: bad event id %r.", event_id)
            return False
        if url not in self._good_urls:
            try:
                _check_url(url)
            except MailTrackError:
                logger.error(
                    "Event %s not queued: bad webhook URL %r.", result.event_id, url
                )
                return False
            if len(self._good_urls) >= 64:  # URLs from tokens: keep it bounded
                self._good_urls.clear()
            self._good_urls.add(url)
        now = time.time()
        if self._spool is not None:
            try:
                self._spool.append(_journal_record(result, url, now))
            except (OSError, ValueError) as e:
                # A full disk, or an event too large for a journal line.
                logger.warning(
                    "Event %s inserted directly, not journaled: %s",
                    result.event_id,
                    e,
                )
            else:
                if self.deliver:
                    self.start()  # the journal thread wakes it after the import
                return True
        body = _encode_event(result.to_json_dict())
        self._db.write(_ENQUEUE, (result.event_id, url, body, now, now))
        if self.deliver:
            self.start()
            if not self._wake.is_set():  # set() takes a lock; is_set() does not
                self._wake.set()
        return True

    def _import(self, journal: str, start: int, records: list[bytes]) -> None:
        """Move records ``start`` and following of a journal into the
        outbox, in one transaction (the journal thread's importer).

        The transaction also notes how far the journal is imported: a
        journal offered again (its process died before deleting it) queues
        each event once.
        """
        now = time.time()
        deleted = self._deleted_journals[:]
        with self._db.transaction() as connection:
            row = connection.execute(
                "SELECT imported FROM webhook_journals WHERE name = ?", (journal,)
            ).fetchone()
            skip = 0 if row is None else max(0, row[0] - start)
            rows = []
            damaged = 0
            for record in records[skip:]:
                try:
                    rows.append(_outbox_row(record))
                except Exception:
                    damaged += 1
            if damaged:
                logger.error(
                    "Skipped %d damaged records of the journal %s.", damaged, journal
                )
            connection.executemany(_ENQUEUE, rows)
            connection.execute(
                "INSERT OR REPLACE INTO webhook_journals VALUES (?, ?, ?)",
                (journal, start + len(records), now),
            )
            if deleted:
                marks = ",".join("?" * len(deleted))
                connection.execute(
                    f"DELETE FROM webhook_journals WHERE name IN ({marks})", deleted
                )
            connection.execute(
                "DELETE FROM webhook_journals WHERE imported_at < ?",
                (now - _JOURNAL_MEMORY,),
            )
        # (Only the journal thread appends to the list meanwhile.)
        del self._deleted_journals[: len(deleted)]
        if rows and self.deliver and not self._wake.is_set():
            self._wake.set()

    # -- the delivery thread --------------------------------------------------

    def start(self) -> None:
        """Start the delivery thread if it is not running in this process.

        Called by :meth:`connect` and :meth:`enqueue` (unless ``deliver`` is
        false); call it yourself to deliver an outbox filled by other
        processes without receiving events.
        """
        if self._thread_pid == os.getpid() and self._thread is not None:
            return
        if self._spool is not None:
            self._spool.start()
        with self._start_lock:
            if self._thread_pid == os.getpid() and self._thread is not None:
                return
            if self._stop.is_set():
                raise RuntimeError("This WebhookSender has been closed.")
            # After a fork the parent's thread does not exist in the child.
            self._thread = threading.Thread(
                target=self._run, name="mailtrack-webhooks", daemon=True
            )
            self._thread_pid = os.getpid()
            self._thread.start()

    def _run(self) -> None:
        transport = _Transport(self.timeout)
        try:
            while True:
                closing = self._stop.is_set()
                if closing and time.time() >= self._deadline:
                    break
                try:
                    claimed = self._deliver_batch(transport)
                    self._db.checkpoint()
                    delay = 0.0 if claimed else self._idle_delay()
                except Exception:
                    logger.exception("Webhook delivery failed; retrying shortly.")
                    claimed, delay = 0, min(self.poll_interval, 1.0)
                if closing and not claimed:
                    break
                if delay > 0:
                    self._wake.wait(delay)
                    self._wake.clear()
        finally:
            transport.close()

    def _idle_delay(self) -> float:
        """Seconds until the next retry is due, at most ``poll_interval``."""
        with self._db.connection() as connection:
            # MIN over the index; due rows that could not be claimed are
            # leased by another process, so they are not worth waking for.
            row = connection.execute(
                "SELECT MIN(next_attempt_at) FROM webhook_outbox"
            ).fetchone()
        delay = self.poll_interval if row[0] is None else row[0] - time.time()
        return self.poll_interval if delay <= 0 else min(delay, self.poll_interval)

    def _claim(self) -> tuple[str, list[_Row]]:
        owner = f"{os.getpid()}-{uuid.uuid4().hex}-{next(self._claims)}"
        now = time.time()
        # BEGIN IMMEDIATE holds the write lock from the SELECT to the
        # UPDATE, so two processes never claim the same row while its lease
        # runs. (No index on lease_owner: it would triple the cost of the
        # insert on the request path.)
        with self._db.transaction() as connection:
            ids = [
                row[0]
                for row in connection.execute(
                    "SELECT id FROM webhook_outbox"
                    " WHERE next_attempt_at <= ? AND lease_until <= ?"
                    " ORDER BY next_attempt_at LIMIT ?",
                    (now, now, self.batch_size),
                )
            ]
            if not ids:
                return owner, []
            marks = ",".join("?" * len(ids))
            connection.execute(
                "UPDATE webhook_outbox SET lease_owner = ?, lease_until = ?"
                f" WHERE id IN ({marks}) AND lease_until <= ?",
                (owner, now + self.lease_seconds, *ids, now),
            )
            rows = connection.execute(
                "SELECT id, event_id, url, body, created_at, attempts"
                f" FROM webhook_outbox WHERE id IN ({marks}) AND lease_owner = ?"
                " ORDER BY id",
                (*ids, owner),
            ).fetchall()
        return owner, [_Row(*row) for row in rows]

    def _deliver_batch(self, transport: _Transport) -> int:
        owner, rows = self._claim()
        lease_until = time.time() + self.lease_seconds
        # Endpoints that failed to connect in this batch: their other events
        # fail the same way, without waiting for the same timeout again.
        unreachable: dict[str, tuple[float, str | None]] = {}
        # Delivered rows are deleted a few at a time: one commit per event
        # would cost more than the delivery. A process killed before the
        # delete delivers them again, which at-least-once allows.
        delivered: list[int] = []
        deleted_at = time.monotonic()
        try:
            for index, row in enumerate(rows):
                if time.time() >= self._deadline:
                    self._release(owner, [r.id for r in rows[index:]])
                    break
                if row.url in unreachable:
                    next_at, error = unreachable[row.url]
                    self._failed(owner, row, None, error, next_at=next_at)
                    continue
                if time.time() > lease_until - self.lease_seconds / 2:
                    lease_until = self._renew(owner, [r.id for r in rows[index:]])
                status, error = self._attempt(transport, row)
                if status is not None and 200 <= status < 300:
                    delivered.append(row.id)
                    if (
                        len(delivered) >= _DELETE_BATCH
                        or time.monotonic() - deleted_at > _DELETE_SECONDS
                    ):
                        self._delete(delivered)
                        delivered, deleted_at = [], time.monotonic()
                elif status == 410:
                    self._dead_letter(owner, row, "gone", status, error)
                elif status == _REFUSED:
                    self._dead_letter(owner, row, "refused", None, error)
                else:
                    retry_at = self._failed(owner, row, status, error)
                    if status is None and retry_at is not None:
                        unreachable[row.url] = (retry_at, error)
        finally:
            if delivered:
                self._delete(delivered)
        return len(rows)

    def _delete(self, ids: t.Sequence[int]) -> None:
        marks = ",".join("?" * len(ids))
        with self._db.connection() as connection:
            connection.execute(f"DELETE FROM webhook_outbox WHERE id IN ({marks})", ids)

    def _attempt(
        self, transport: _Transport, row: _Row
    ) -> tuple[int | None, str | None]:
        headers = signature_headers(self._key, row.event_id, row.body)
        public_only = self.refuse_private_addresses and row.url != self.url
        try:
            status = transport.post(row.url, row.body, headers, public_only=public_only)
        except _RefusedAddress as e:
            logger.warning("Webhook %s to %s refused: %s", row.event_id, row.url, e)
            return _REFUSED, str(e)
        except (OSError, http.client.HTTPException, MailTrackError) as e:
            logger.info("Webhook %s to %s failed: %r", row.event_id, row.url, e)
            return None, f"{type(e).__name__}: {e}"
        if 200 <= status < 300:
            return status, None
        logger.info("Webhook %s to %s answered %d.", row.event_id, row.url, status)
        return status, f"HTTP {status}"

    def _renew(self, owner: str, ids: t.Sequence[int]) -> float:
        lease_until = time.time() + self.lease_seconds
        with self._db.connection() as connection:
            connection.executemany(
                "UPDATE webhook_outbox SET lease_until = ?"
                " WHERE id = ? AND lease_owner = ?",
                [(lease_until, row_id, owner) for row_id in ids],
            )
        return lease_until

    def _release(self, owner: str, ids: t.Sequence[int]) -> None:
        with self._db.connection() as connection:
            connection.executemany(
                "UPDATE webhook_outbox SET lease_owner = NULL, lease_until = 0"
                " WHERE id = ? AND lease_owner = ?",
                [(row_id, owner) for row_id in ids],
            )

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        delay = min(self.retry_base * 2 ** min(attempts - 1, 62), self.retry_max)
        return float(delay * random.uniform(0.5, 1.0))

    def _failed(
        self,
        owner: str,
        row: _Row,
        status: int | None,
        error: str | None,
        *,
        next_at: float | None = None,
    ) -> float | None:
        """Schedule the next attempt, or dead-letter an event too old."""
        attempts = row.attempts + 1
        now = time.time()
        give_up_at = row.created_at + self.max_age
        if now >= give_up_at:
            self._dead_letter(owner, row, "expired", status, error)
            return None
        if next_at is None:
            next_at = now + self.backoff(attempts)
        # The last attempt is made right at max_age, not skipped.
        next_at = min(next_at, give_up_at)
        with self._db.connection() as connection:
            connection.execute(
                "UPDATE webhook_outbox SET attempts = ?, next_attempt_at = ?,"
                " lease_owner = NULL, lease_until = 0, last_status = ?,"
                " last_error = ? WHERE id = ? AND lease_owner = ?",
                (attempts, next_at, status, error, row.id, owner),
            )
        return next_at

    def _dead_letter(
        self, owner: str, row: _Row, reason: str, status: int | None, error: str | None
    ) -> None:
        attempts = row.attempts + 1
        with self._db.transaction() as connection:
            moved = connection.execute(
                "DELETE FROM webhook_outbox WHERE id = ? AND lease_owner = ?",
                (row.id, owner),
            ).rowcount
            if moved:
                connection.execute(
                    "INSERT INTO webhook_dead_letter (event_id, url, body,"
                    " created_at, failed_at, attempts, reason, last_status,"
                    " last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        row.event_id,
                        row.url,
                        row.body,
                        row.created_at,
                        time.time(),
                        attempts,
                        reason,
                        status,
                        error,
                    ),
                )
        if not moved:
            return
        logger.warning(
            "Webhook event %s to %s given up (%s) after %d attempts.",
            row.event_id,
            row.url,
            reason,
            attempts,
        )
        try:
            webhook_failed.send(
                self,
                event_id=row.event_id,
                url=row.url,
                payload=json.loads(row.body),
                attempts=attempts,
                reason=reason,
                status=status,
                error=error,
            )
        except Exception:
            logger.exception("A webhook_failed receiver raised.")

    # -- inspection and shutdown ----------------------------------------------

    def pending(self) -> int:
        """Events in the outbox (of every process sharing it), once this
        process's journal is moved into it.

        Other live processes' journals are counted once their threads have
        moved them (within ``spool_delay``).
        """
        if self._spool is not None:
            self._spool.drain(orphans=False)
        with self._db.connection() as connection:
            row = connection.execute("SELECT COUNT(*) FROM webhook_outbox").fetchone()
        return int(row[0])

    def dead_letters(self, limit: int = 100) -> list[dict[str, t.Any]]:
        """The most recently given-up events, newest first: ``event_id``,
        ``url``, ``payload``, ``attempts``, ``reason``, ``last_status``,
        ``last_error``, ``created_at``, ``failed_at`` (seconds since the epoch).
        """
        with self._db.connection() as connection:
            rows = connection.execute(
                "SELECT event_id, url, body, attempts, reason, last_status,"
                " last_error, created_at, failed_at FROM webhook_dead_letter"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        keys = (
            "event_id",
            "url",
            "payload",
            "attempts",
            "reason",
            "last_status",
            "last_error",
            "created_at",
            "failed_at",
        )
        letters = [dict(zip(keys, row)) for row in rows]
        for letter in letters:
            letter["payload"] = json.loads(letter["payload"])
        return letters

    def requeue_dead_letters(self) -> int:
        """Move every dead-lettered event back to the outbox, with a fresh
        ``max_age``, e.g. once an endpoint is fixed. Returns how many."""
        now = time.time()
        with self._db.transaction() as connection:
            count = connection.execute(
                "INSERT INTO webhook_outbox"
                " (event_id, url, body, created_at, next_attempt_at)"
                " SELECT event_id, url, body, ?, ? FROM webhook_dead_letter"
                " ORDER BY id",
                (now, now),
            ).rowcount
            connection.execute("DELETE FROM webhook_dead_letter")
        if count:
            self.start()
            self._wake.set()
        return int(count)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until no event is due for delivery (delivered, or waiting
        for a retry), at most ``timeout`` seconds. Returns whether it got
        there.

        This process's journal, and those of dead processes, are moved into
        the outbox first.
        """
        self.start()
        deadline = time.monotonic() + timeout
        orphans = True
        while True:
            if self._spool is not None:
                self._spool.drain(orphans=orphans)
                orphans = False
            self._wake.set()
            with self._db.connection() as connection:
                due = connection.execute(
                    "SELECT COUNT(*) FROM webhook_outbox WHERE next_attempt_at <= ?",
                    (time.time(),),
                ).fetchone()[0]
            if not due:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def close(self, timeout: float = 5.0) -> None:
        """Stop receiving, move this process's journal into the outbox,
        deliver what is due for at most ``timeout`` seconds, then stop the
        threads and close the outbox.

        Events not delivered by then stay in the outbox file for the next
        process.
        """
        self.disconnect()
        if self._spool is not None:
            self._spool.close()
        self._deadline = time.time() + timeout
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and self._thread_pid == os.getpid():
            thread.join(timeout + self.timeout + 1)
        self._db.close()

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
