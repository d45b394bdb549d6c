"""The delivery loop of a :class:`~flask_mailtrack.WebhookSender`:
:class:`DeliveryLoop`.

One thread per process claims batches of due events from the outbox (a
lease: see ``_outbox``) and hands them to a small pool of threads that post
them, several requests in flight over kept-alive connections. The loop
thread alone writes the outcomes back, a batch at a time: deletes the
delivered events, reschedules the failed ones with backoff, dead-letters the
ones to give up and sends :data:`~flask_mailtrack.signals.webhook_failed`.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import logging
import os
import threading
import time
import typing as t

from ..exceptions import MailTrackError
from ..signals import webhook_failed
from ._outbox import Outbox
from ._outbox import Retry
from ._outbox import Row
from ._signatures import signature_headers
from ._transport import RefusedAddress
from ._transport import Transport

if t.TYPE_CHECKING:
    from ._webhooks import WebhookSender

logger = logging.getLogger("flask_mailtrack.webhooks")

#: Outcomes are written back this often, in seconds, and when a claim is
#: done: one commit per event would cost more than the post.
_WRITE_SECONDS = 0.1

#: The status of an attempt refused by the private-address guard, and of one
#: not made because the endpoint failed earlier in the batch or the loop is
#: closing.
_REFUSED = -1
_SKIPPED = -2


class _Attempt(t.NamedTuple):
    row: Row
    status: int | None
    error: str | None


class _Finished:
    """Attempts done by the poster threads, taken by the loop thread a few
    times a second: waking it for each one would cost more CPU than the
    rest of its work on the attempt."""

    def __init__(self, expected: int) -> None:
        self._attempts: list[_Attempt] = []
        self._counter = itertools.count(1)
        self._expected = expected
        self._all_done = threading.Event()

    def put(self, attempt: _Attempt) -> None:
        # list.append and next() on a count are atomic: no lock needed.
        self._attempts.append(attempt)
        if next(self._counter) == self._expected:
            self._all_done.set()

    def take(self, timeout: float) -> list[_Attempt]:
        """The attempts finished since the last call, once all are or after
        ``timeout`` seconds."""
        self._all_done.wait(timeout)
        count = len(self._attempts)
        taken = self._attempts[:count]
        del self._attempts[:count]  # the posters only ever append
        return taken


class _Outcomes:
    """What the posts of one claim came to, not yet written back."""

    def __init__(self) -> None:
        self.delivered: list[int] = []
        self.retries: list[Retry] = []
        self.letters: list[tuple[Row, str, int | None, str | None]] = []


class DeliveryLoop:
    """Posts the outbox's due events for ``sender``, from a thread of this
    process (started by :meth:`start`, stopped by :meth:`stop`)."""

    def __init__(self, sender: WebhookSender, outbox: Outbox, key: bytes) -> None:
        self._sender = sender
        self._outbox = outbox
        self._key = key
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._deadline = float("inf")
        self._thread: threading.Thread | None = None
        self._thread_pid = 0
        self._start_lock = threading.Lock()

    def start(self) -> None:
        """Start the thread unless it runs in this process already.

        :raise RuntimeError: the loop was stopped.
        """
        if self._stop.is_set():
            raise RuntimeError("This WebhookSender has been closed.")
        if self._thread_pid == os.getpid() and self._thread is not None:
            return
        with self._start_lock:
            if self._thread_pid == os.getpid() and self._thread is not None:
                return
            # After a fork the parent's thread does not exist in the child.
            self._thread = threading.Thread(
                target=self._run, name="mailtrack-webhooks", daemon=True
            )
            self._thread_pid = os.getpid()
            self._thread.start()

    def wake(self) -> None:
        """Look at the outbox now (events were queued)."""
        if not self._wake.is_set():  # set() takes a lock; is_set() does not
            self._wake.set()

    def stop(self, timeout: float) -> None:
        """Deliver what is due for at most ``timeout`` seconds, give the
        events still claimed back to the outbox, and end the thread."""
        self._deadline = time.time() + timeout
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and self._thread_pid == os.getpid():
            thread.join(timeout + 5)

    def _closed(self) -> bool:
        return self._stop.is_set() and time.time() >= self._deadline

    def _run(self) -> None:
        sender = self._sender
        transport = Transport(
            sender.timeout,
            connections=sender.concurrency,
            ssl_context=sender.ssl_context,
        )
        posters = concurrent.futures.ThreadPoolExecutor(
            sender.concurrency, thread_name_prefix="mailtrack-webhooks-post"
        )
        try:
            while True:
                closing = self._stop.is_set()
                if closing and self._closed():
                    break
                try:
                    claimed = self._deliver_batch(transport, posters)
                    self._outbox.db.checkpoint()
                    delay = 0.0 if claimed else self._idle_delay()
                except Exception:
                    logger.exception("Webhook delivery failed; retrying shortly.")
                    claimed, delay = 0, min(sender.poll_interval, 1.0)
                if closing and not claimed:
                    break
                if delay > 0:
                    self._wake.wait(delay)
                    self._wake.clear()
        finally:
            # Posts still in flight after the deadline finish on their own;
            # their events were given back and will be delivered again.
            posters.shutdown(wait=False, cancel_futures=True)
            transport.close()

    def _idle_delay(self) -> float:
        """Seconds until the next retry is due, at most ``poll_interval``."""
        poll = self._sender.poll_interval
        next_at = self._outbox.next_attempt_at()
        delay = poll if next_at is None else next_at - time.time()
        return poll if delay <= 0 else min(delay, poll)

    def _deliver_batch(
        self, transport: Transport, posters: concurrent.futures.Executor
    ) -> int:
        lease_seconds = self._sender.lease_seconds
        owner, rows = self._outbox.claim(self._sender.batch_size, lease_seconds)
        if not rows:
            return 0
        lease_until = time.time() + lease_seconds
        # Endpoints that failed to connect in this batch: their other events
        # fail the same way, without waiting for the same timeout again.
        unreachable: dict[str, str] = {}
        retry_at: dict[str, float] = {}
        done = _Finished(len(rows))
        futures = [
            posters.submit(self._post, transport, row, unreachable, done)
            for row in rows
        ]
        waiting = {row.id: row for row in rows}
        outcomes = _Outcomes()
        try:
            while waiting and not self._closed():
                if time.time() > lease_until - lease_seconds / 2:
                    ids = list(waiting)
                    lease_until = self._outbox.renew(owner, ids, lease_seconds)
                timeout = min(_WRITE_SECONDS, max(0.0, self._deadline - time.time()))
                for attempt in done.take(timeout):
                    del waiting[attempt.row.id]
                    self._judge(attempt, outcomes, retry_at)
                self._write(owner, outcomes)
                outcomes = _Outcomes()
        finally:
            self._write(owner, outcomes)
            if waiting:
                # Closing: nobody waits for a lease to run out after a
                # restart.
                for future in futures:
                    future.cancel()
                self._outbox.release(owner, list(waiting))
        return len(rows)

    def _post(
        self,
        transport: Transport,
        row: Row,
        unreachable: dict[str, str],
        done: _Finished,
    ) -> None:
        """One attempt, in a poster thread; its outcome goes to ``done``."""
        if row.url in unreachable:
            done.put(_Attempt(row, _SKIPPED, unreachable[row.url]))
            return
        if self._closed():
            return  # given back by the loop thread
        sender = self._sender
        public_only = sender.refuse_private_addresses and row.url != sender.url
        try:
            headers = signature_headers(self._key, row.event_id, row.body)
            status = transport.post(row.url, row.body, headers, public_only=public_only)
        except RefusedAddress as e:
            logger.warning("Webhook %s to %s refused: %s", row.event_id, row.url, e)
            done.put(_Attempt(row, _REFUSED, str(e)))
        except (OSError, MailTrackError) as e:
            logger.info("Webhook %s to %s failed: %s", row.event_id, row.url, e)
            error = f"{type(e).__name__}: {e}"
            unreachable.setdefault(row.url, error)
            done.put(_Attempt(row, None, error))
        except BaseException as e:  # a bug: the event must not stay claimed
            logger.exception("Webhook %s to %s failed.", row.event_id, row.url)
            done.put(_Attempt(row, None, f"{type(e).__name__}: {e}"))
        else:
            if not 200 <= status < 300:
                logger.info(
                    "Webhook %s to %s answered %d.", row.event_id, row.url, status
                )
            done.put(_Attempt(row, status, None if status < 300 else f"HTTP {status}"))

    def _judge(
        self, attempt: _Attempt, outcomes: _Outcomes, retry_at: dict[str, float]
    ) -> None:
        """Decide what becomes of an attempted event."""
        row, status, error = attempt
        if status is not None and 200 <= status < 300:
            outcomes.delivered.append(row.id)
        elif status == 410:
            outcomes.letters.append((row, "gone", status, error))
        elif status == _REFUSED:
            outcomes.letters.append((row, "refused", None, error))
        else:
            sender = self._sender
            attempts = row.attempts + 1
            now = time.time()
            give_up_at = row.created_at + sender.max_age
            status = None if status == _SKIPPED else status
            if now >= give_up_at:
                outcomes.letters.append((row, "expired", status, error))
                return
            if status is None:
                # Every event of an unreachable endpoint waits as long.
                next_at = retry_at.setdefault(row.url, now + sender.backoff(attempts))
            else:
                next_at = now + sender.backoff(attempts)
            # The last attempt is made right at max_age, not skipped.
            next_at = min(next_at, give_up_at)
            outcomes.retries.append(Retry(row.id, attempts, next_at, status, error))

    def _write(self, owner: str, outcomes: _Outcomes) -> None:
        """Write the outcomes back to the outbox and report the given up."""
        if outcomes.delivered:
            self._outbox.delete(outcomes.delivered)
        if outcomes.retries:
            self._outbox.reschedule(owner, outcomes.retries)
        for row, reason, status, error in outcomes.letters:
            self._dead_letter(owner, row, reason, status, error)

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
                self._sender,
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
