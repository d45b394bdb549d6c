"""Signed webhooks that lose nothing: :class:`WebhookSender`.

A :class:`WebhookSender` is a receiver of the :data:`~flask_mailtrack.email_opened`
and :data:`~flask_mailtrack.link_clicked` signals. In the request it only
appends the event to a journal file of its process (one ``os.write``, see
``_journal``); a background thread moves the journal into
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

Every event is posted as one JSON object, schema 1 (see ``_encoding``).

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

import datetime
import http.client
import json
import logging
import os
import random
import threading
import time
import typing as t

from blinker import ANY

from ..exceptions import ConfigurationError
from ..exceptions import MailTrackError
from ..result import TrackingResult
from ..signals import webhook_failed
from ._connect import SignalConnections
from ._encoding import encode_event
from ._outbox import Outbox
from ._outbox import Row
from ._signatures import decode_secret
from ._signatures import SecretInput
from ._signatures import signature_headers
from ._transport import check_url
from ._transport import RefusedAddress
from ._transport import SocketTransport
from ._transport import Transport
from ._transport import UNSAFE_HEADER_VALUE

logger = logging.getLogger("flask_mailtrack.webhooks")

#: Delivered events are deleted from the outbox in groups of at most this
#: many, or after this many seconds.
_DELETE_BATCH = 20
_DELETE_SECONDS = 0.1

#: What :meth:`WebhookSender._attempt` returns as the status of a refused URL.
_REFUSED = -1


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
            check_url(url)
        if isinstance(max_age, datetime.timedelta):
            max_age = max_age.total_seconds()
        if max_age <= 0 or timeout <= 0 or lease_seconds <= 0 or batch_size < 1:
            raise ConfigurationError(
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
        self._outbox = Outbox(outbox_path)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._deadline = float("inf")
        self._thread: threading.Thread | None = None
        self._thread_pid = 0
        self._start_lock = threading.Lock()
        self._signals = SignalConnections(self.enqueue)
        self._good_urls: set[str] = set()

    @property
    def outbox_path(self) -> str:
        """The outbox file (or ``":memory:"``)."""
        return self._outbox.path

    @property
    def spool_directory(self) -> str | None:
        """``None``: events are inserted into the outbox directly (the
        journal in front of every sink is the worker's now)."""
        return None

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
        return self

    def disconnect(self) -> None:
        """Stop receiving events (delivery of the outbox continues)."""
        self._signals.disconnect()

    def enqueue(self, result: TrackingResult) -> bool:
        """Append ``result`` to the outbox; the delivery thread sends it.

        A direct SQLite insert into the outbox (the journal in front of
        every sink is the worker's, ``_journal`` and ``_worker``). The event
        survives the death of the process from then on.

        :return: Whether the event has a webhook URL and was queued.
        """
        url = result.webhook_url or self.url
        if not url:
            return False
        event_id = result.event_id
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
                logger.error(
                    "Event %s not queued: bad webhook URL %r.", result.event_id, url
                )
                return False
            if len(self._good_urls) >= 64:  # URLs from tokens: keep it bounded
                self._good_urls.clear()
            self._good_urls.add(url)
        now = time.time()
        body = encode_event(result.to_json_dict())
        self._outbox.insert(result.event_id, url, body, now)
        if self.deliver:
            self.start()
            if not self._wake.is_set():  # set() takes a lock; is_set() does not
                self._wake.set()
        return True

    # -- the delivery thread --------------------------------------------------

    def start(self) -> None:
        """Start the delivery thread if it is not running in this process.

        Called by :meth:`connect` and :meth:`enqueue` (unless ``deliver`` is
        false); call it yourself to deliver an outbox filled by other
        processes without receiving events.
        """
        if self._thread_pid == os.getpid() and self._thread is not None:
            return
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
        transport: Transport = SocketTransport(self.timeout)
        try:
            while True:
                closing = self._stop.is_set()
                if closing and time.time() >= self._deadline:
                    break
                try:
                    claimed = self._deliver_batch(transport)
                    self._outbox.db.checkpoint()
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
        next_at = self._outbox.next_attempt_at()
        delay = self.poll_interval if next_at is None else next_at - time.time()
        return self.poll_interval if delay <= 0 else min(delay, self.poll_interval)

    def _deliver_batch(self, transport: Transport) -> int:
        owner, rows = self._outbox.claim(self.batch_size, self.lease_seconds)
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
                    self._outbox.release(owner, [r.id for r in rows[index:]])
                    break
                if row.url in unreachable:
                    next_at, error = unreachable[row.url]
                    self._failed(owner, row, None, error, next_at=next_at)
                    continue
                if time.time() > lease_until - self.lease_seconds / 2:
                    lease_until = self._outbox.renew(
                        owner, [r.id for r in rows[index:]], self.lease_seconds
                    )
                status, error = self._attempt(transport, row)
                if status is not None and 200 <= status < 300:
                    delivered.append(row.id)
                    if (
                        len(delivered) >= _DELETE_BATCH
                        or time.monotonic() - deleted_at > _DELETE_SECONDS
                    ):
                        self._outbox.delete(delivered)
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
                self._outbox.delete(delivered)
        return len(rows)

    def _attempt(self, transport: Transport, row: Row) -> tuple[int | None, str | None]:
        headers = signature_headers(self._key, row.event_id, row.body)
        public_only = self.refuse_private_addresses and row.url != self.url
        try:
            status = transport.post(row.url, row.body, headers, public_only=public_only)
        except RefusedAddress as e:
            logger.warning("Webhook %s to %s refused: %s", row.event_id, row.url, e)
            return _REFUSED, str(e)
        except (OSError, http.client.HTTPException, MailTrackError) as e:
            logger.info("Webhook %s to %s failed: %r", row.event_id, row.url, e)
            return None, f"{type(e).__name__}: {e}"
        if 200 <= status < 300:
            return status, None
        logger.info("Webhook %s to %s answered %d.", row.event_id, row.url, status)
        return status, f"HTTP {status}"

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        delay = min(self.retry_base * 2 ** min(attempts - 1, 62), self.retry_max)
        return float(delay * random.uniform(0.5, 1.0))

    def _failed(
        self,
        owner: str,
        row: Row,
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
        self._outbox.reschedule(owner, row, attempts, next_at, status, error)
        return next_at

    def _dead_letter(
        self, owner: str, row: Row, reason: str, status: int | None, error: str | None
    ) -> None:
        attempts = row.attempts + 1
        moved = self._outbox.dead_letter(owner, row, attempts, reason, status, error)
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
            self._wake.set()
        return count

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until no event is due for delivery (delivered, or waiting
        for a retry), at most ``timeout`` seconds. Returns whether it got
        there.

        This process's journal, and those of dead processes, are moved into
        the outbox first.
        """
        self.start()
        deadline = time.monotonic() + timeout
        while True:
            self._wake.set()
            due = self._outbox.count_due(time.time())
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
        self._deadline = time.time() + timeout
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and self._thread_pid == os.getpid():
            thread.join(timeout + self.timeout + 1)
        self._outbox.db.close()

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
