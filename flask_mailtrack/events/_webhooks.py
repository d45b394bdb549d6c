"""Signed webhooks that lose nothing: :class:`WebhookSender`.

A :class:`WebhookSender` is a sink of the events worker (see ``_sinks``): the
worker hands it batches of journaled events, which it inserts into an
*outbox*, a table in a SQLite file, in one transaction; a delivery loop
(``_delivery``) posts them to the webhook, several at a time, and retries
until the endpoint accepts them. A webhook that is down, slow or failing
therefore never slows the pixel or the redirect, nor any other sink.

::

    sender = WebhookSender(
        "https://example.com/hooks/mail",
        secret="whsec_...",  # generate_secret() makes one
        outbox_path="/var/lib/mailtrack/outbox.sqlite3",
    )

Every event is posted as one JSON object, schema 1 (see ``_encoding``): the
very bytes the journal holds.

Requests are signed as the `Standard Webhooks`_ specification says (see
:func:`sign`); receivers check them with :func:`verify_webhook` or any
Standard Webhooks library.

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

Several processes may share one outbox file. A process *claims* a batch of
due events with one atomic ``UPDATE`` that gives it a lease; a process
killed mid-delivery leaves leased events behind, which any process delivers
again once the lease has run out. :meth:`WebhookSender.close` gives back the
events it claimed and did not finish, so a process stopped with SIGTERM
leaves nothing waiting for a lease. Memory use does not depend on the
backlog: events are read in batches.
"""

from __future__ import annotations

import datetime
import logging
import os
import ssl
import time
import typing as t

from blinker import ANY

from ..exceptions import ConfigurationError
from ..exceptions import MailTrackError
from ._backoff import backoff as backoff_delay
from ._delivery import DeliveryLoop
from ._outbox import Outbox
from ._signatures import decode_secret
from ._signatures import SecretInput
from ._sinks import EventRecord
from ._store_backend import CLICKED
from ._store_backend import OPENED
from ._store_backend import SENT
from ._transport import check_url
from ._transport import UNSAFE_HEADER_VALUE

logger = logging.getLogger("flask_mailtrack.webhooks")

#: Webhook URLs from tokens checked once and remembered, at most this many.
_KNOWN_URLS = 64


#: Every type of event, and those posted unless ``event_types`` says
#: otherwise (sends are many and rarely wanted by a webhook).
EVENT_TYPES = (OPENED, CLICKED, SENT)
DEFAULT_EVENT_TYPES = (OPENED, CLICKED)


class WebhookSender:
    """Delivers every tracking event to a webhook, signed, retried, durably.

    A sink (``name = "webhooks"``): the events worker calls :meth:`write`.

    :param url: The webhook URL. Events whose token carries its own
        ``webhook_url`` (``include_webhook_url``) go there instead; events
        with neither are not sent.
    :param secret: The signing secret, ``whsec_<base64>`` (see
        :func:`generate_secret`) or the key as bytes.
    :param outbox_path: The SQLite file of the outbox; share it between the
        processes of one server. ``":memory:"`` keeps events in memory, lost
        with the process: only for tests.
    :param timeout: Seconds to wait to connect and for each read of one
        delivery attempt.
    :param max_age: Seconds (or a :class:`~datetime.timedelta`) an event is
        retried before it is dead-lettered.
    :param retry_base: Delay before the first retry, in seconds; each retry
        doubles it, with jitter between half and all of it.
    :param retry_max: The longest delay between two attempts.
    :param batch_size: Events claimed at once by the delivery loop.
    :param concurrency: Requests in flight at once (threads posting, and
        connections kept alive per endpoint). The threads share one
        interpreter: beyond a few, they cost more CPU per post than they
        save waiting (measured with ``benchmarks/bench_webhooks.py``: 4 in
        flight post 10-20% more per second than 8, with a third less CPU per
        post). Raise it for slow endpoints far away.
    :param lease_seconds: How long a claim lasts. Events claimed by a process
        that died are delivered by another one after this; the lease is
        renewed while a batch takes longer.
    :param poll_interval: Seconds between looks at the outbox for events
        added by other processes and for retries coming due (events written
        by this process wake the loop at once).
    :param deliver: Start the delivery loop when events are written.
        ``False`` makes a sender that only queues, for processes that leave
        delivery to another process sharing the outbox (which calls
        :meth:`start`).
    :param refuse_private_addresses: Post to a URL other than ``url`` (one
        written in a token with ``include_webhook_url``) only when its host
        resolves to a public address; loopback, private, link-local,
        reserved and multicast addresses are refused, and the event is
        dead-lettered with the reason ``"refused"``. Tokens are
        authenticated, so only key holders choose these URLs; this limits
        what a leaked key could reach inside your network. ``url`` itself is
        always allowed.
    :param ssl_context: Certificates to trust instead of the system's (an
        endpoint with a private CA); certificates and host names are always
        verified.
    :param event_types: The types of the events posted; others are
        skipped. Default: opens and clicks (``email.opened``,
        ``link.clicked``); add ``email.sent`` to be told of every email
        sent (``MAILTRACK_WEBHOOK_EVENTS``).

    .. versionadded:: 0.1

    .. versionchanged:: 0.2
        A sink of the events worker (:meth:`write`); posts with urllib3,
        ``concurrency`` requests at a time. ``enqueue``, ``spool_delay`` and
        ``spool_directory`` are removed: the worker's journal replaces the
        sender's own. ``event_types``.
    """

    #: The sink's name in the worker's progress and logs.
    name = "webhooks"

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
        batch_size: int = 200,
        concurrency: int = 4,
        lease_seconds: float = 60.0,
        poll_interval: float = 1.0,
        deliver: bool = True,
        refuse_private_addresses: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        event_types: t.Iterable[str] = DEFAULT_EVENT_TYPES,
    ) -> None:
        if url is not None:
            check_url(url)
        event_types = frozenset(event_types)
        unknown = sorted(event_types - frozenset(EVENT_TYPES))
        if unknown or not event_types:
            raise ConfigurationError(
                f"event_types must name some of {', '.join(EVENT_TYPES)};"
                f" unknown: {', '.join(unknown) or 'none given'}."
            )
        if isinstance(max_age, datetime.timedelta):
            max_age = max_age.total_seconds()
        if max_age <= 0 or timeout <= 0 or lease_seconds <= 0:
            raise ConfigurationError(
                "max_age, timeout and lease_seconds must be positive."
            )
        if batch_size < 1 or concurrency < 1:
            raise ConfigurationError("batch_size and concurrency must be >= 1.")
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
        #: Requests in flight at once.
        self.concurrency = concurrency
        #: Seconds a claim lasts before another process may take the events.
        self.lease_seconds = lease_seconds
        #: Seconds between looks for events queued by other processes.
        self.poll_interval = poll_interval
        #: Whether written events start the delivery loop.
        self.deliver = deliver
        #: Whether URLs other than :attr:`url` must resolve to public
        #: addresses.
        self.refuse_private_addresses = refuse_private_addresses
        #: Certificates trusted instead of the system's, if given.
        self.ssl_context = ssl_context
        #: The types of the events posted.
        self.event_types = event_types
        key = decode_secret(secret)  # a bad secret creates no outbox file
        self._outbox = Outbox(outbox_path)
        self._loop = DeliveryLoop(self, self._outbox, key)
        self._good_urls: set[str] = set()
        self._connected = False
        self._closing = False

    @property
    def outbox_path(self) -> str:
        """The outbox file (or ``":memory:"``)."""
        return self._outbox.path

    # -- the sink -------------------------------------------------------------

    def write(self, events: t.Sequence[EventRecord]) -> None:
        """Queue ``events`` in the outbox, in one transaction; the delivery
        loop posts them.

        An event goes to its own ``webhook_url`` (from its token), else to
        :attr:`url`; one with neither is skipped, as is one whose URL or id
        could never be sent (logged). An event already queued for that URL,
        or given up, is not queued again: writing a batch twice is harmless.

        :raise Exception: the outbox could not be written (the worker offers
            the batch again later).
        """
        now = time.time()
        rows = []
        for event in events:
            if event.data.get("type") not in self.event_types:
                continue
            url = event.data.get("webhook_url") or self.url
            if url and self._sendable(event.id, url):
                rows.append((event.id, url, event.body, now))
        if rows:
            self._outbox.insert(rows)
            if self.deliver:
                self.start()
                self._loop.wake()

    def _sendable(self, event_id: str, url: str) -> bool:
        # Printable ASCII (every id the library makes) passes without the
        # regular expression, a tenth of its cost.
        if not (event_id.isascii() and event_id.isprintable()) and (
            UNSAFE_HEADER_VALUE.search(event_id)
        ):
            logger.error("Event not queued: bad event id %r.", event_id)
            return False
        if url not in self._good_urls:
            try:
                check_url(url)
            except MailTrackError:
                logger.error("Event %s not queued: bad webhook URL %r.", event_id, url)
                return False
            if len(self._good_urls) >= _KNOWN_URLS:  # URLs from tokens
                self._good_urls.clear()
            self._good_urls.add(url)
        return True

    # -- the signals (through the events pipeline) -----------------------------

    def connect(self, sender: t.Any = ANY) -> WebhookSender:
        """Receive the events of :data:`~flask_mailtrack.email_opened` and
        :data:`~flask_mailtrack.link_clicked` (through a journal and a worker
        thread of this process) and start delivering.

        :param sender: Only events sent by this sender (a Flask app, a
            middleware); all by default.
        :return: ``self``, so ``sender = WebhookSender(...).connect()`` works.
        """
        from ._pipeline import connect_sink

        connect_sink(self, sender)
        self._connected = True
        if self.deliver:
            self.start()
        return self

    def disconnect(self) -> None:
        """Stop receiving events (delivery of the outbox continues)."""
        from ._pipeline import disconnect_sink

        self._connected = False
        disconnect_sink(self)

    # -- delivery -------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery loop if it is not running in this process.

        Called by :meth:`write` (unless ``deliver`` is false); call it
        yourself to deliver an outbox filled by other processes.

        :raise RuntimeError: the sender is closed.
        """
        self._loop.start()

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        return backoff_delay(attempts, self.retry_base, self.retry_max)

    # -- inspection and shutdown ----------------------------------------------

    def pending(self) -> int:
        """Events in the outbox (of every process sharing it), due or not."""
        return self._outbox.count()

    def dead_letters(self, limit: int = 100) -> list[dict[str, t.Any]]:
        """The most recently given-up events, newest first: ``event_id``,
        ``url``, ``payload``, ``attempts``, ``reason``, ``last_status``,
        ``last_error``, ``created_at``, ``failed_at`` (seconds since the epoch).
        """
        return self._outbox.dead_letters(limit)

    def requeue_dead_letters(self) -> int:
        """Move every dead-lettered event back to the outbox, with a fresh
        ``max_age``, e.g. once an endpoint is fixed. Returns how many."""
        count = self._outbox.requeue_dead_letters(time.time())
        if count:
            self.start()
            self._loop.wake()
        return count

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until no event is due for delivery (delivered, or waiting
        for a retry), at most ``timeout`` seconds. Returns whether it got
        there."""
        self.start()
        deadline = time.monotonic() + timeout
        while True:
            self._loop.wake()
            if not self._outbox.count_due(time.time()):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def close(self, timeout: float = 5.0) -> None:
        """Stop receiving, deliver what is due for at most ``timeout``
        seconds, give back the events claimed and not delivered by then,
        and close the outbox.

        Events not delivered stay in the outbox file, due at once for the
        next process: none waits for a lease to run out. Closing twice does
        nothing.
        """
        if self._closing:
            return
        self._closing = True
        if self._connected:
            self.disconnect()
        self._loop.stop(timeout)
        self._outbox.db.close()

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
