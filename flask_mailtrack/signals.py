"""blinker signals sent for every tracking hit.

Connect receivers to them to record events, call webhooks, or queue work::

    from flask_mailtrack import email_opened

    @email_opened.connect
    def on_open(sender, result, request, **extra):
        ...

The sender is the Flask app (through :class:`~flask_mailtrack.MailTrack`),
the :class:`~flask_mailtrack.TrackingMiddleware` instance, or the view class
of :mod:`flask_mailtrack.django` (whose ``request`` is Django's). Receivers are
called synchronously in the request; a receiver that raises is logged and
does not change the response (the adapters send with :func:`send_robust`).
Do slow work (network, disk) in a queue or a thread, as
:class:`~flask_mailtrack.WebhookSender` does.
"""

from __future__ import annotations

import contextlib
import logging
import typing as t

from blinker import Namespace

__all__ = [
    "RecordedEvent",
    "email_opened",
    "link_clicked",
    "record_events",
    "send_robust",
    "tracking_failed",
    "webhook_failed",
]

if t.TYPE_CHECKING:
    from blinker import Signal

logger = logging.getLogger("flask_mailtrack")

_signals = Namespace()

#: Sent when a valid open pixel is requested. Keyword arguments:
#: ``result`` (:class:`~flask_mailtrack.TrackingResult`), ``request``
#: (:class:`werkzeug.wrappers.Request`).
email_opened = _signals.signal(
    "email-opened", doc="A valid open-tracking pixel was requested."
)

#: Sent when a valid click link is followed, before the redirect. Keyword
#: arguments: ``result``, ``request``.
link_clicked = _signals.signal(
    "link-clicked", doc="A valid click-tracking link was followed."
)

#: Sent when a tracking request fails: bad, expired or forged token, unsafe
#: target. Keyword arguments: ``error`` (the
#: :class:`~flask_mailtrack.InvalidToken`), ``reason`` (its reason code),
#: ``kind`` (``"open"`` or ``"click"``), ``request``.
tracking_failed = _signals.signal(
    "tracking-failed", doc="A tracking request carried an invalid token."
)

#: Sent by a :class:`~flask_mailtrack.WebhookSender` when it gives up on an
#: event: the endpoint answered ``410 Gone``, or the event outlived the
#: sender's ``max_age``. The event is then in the dead-letter table. Sent
#: from the delivery thread, not a request. Keyword arguments: ``event_id``,
#: ``url``, ``payload`` (the event as a dict), ``attempts``, ``reason``
#: (``"gone"`` or ``"expired"``), ``status`` (the last HTTP status or
#: ``None``), ``error`` (the last error message or ``None``).
webhook_failed = _signals.signal(
    "webhook-failed", doc="A webhook event was given up and dead-lettered."
)


def send_robust(signal: Signal, sender: object, **kwargs: t.Any) -> None:
    """Send ``signal`` to each of its receivers for ``sender`` in turn, like
    :meth:`blinker.Signal.send`, except that a receiver that raises is logged
    on the ``flask_mailtrack`` logger and the next one still runs: a bug in
    one receiver must not change the pixel or the redirect, nor keep the
    other receivers from the event.

    :param signal: The signal to send.
    :param sender: The sender: the Flask app, or the middleware.
    :param kwargs: The payload, given to each receiver as keyword arguments.

    .. versionadded:: 0.1
    """
    if not signal.receivers:
        return
    for receiver in signal.receivers_for(sender):
        try:
            receiver(sender, **kwargs)
        except Exception:
            logger.exception(
                "A receiver of the %r signal raised; the response is unchanged.",
                getattr(signal, "name", signal),
            )


class RecordedEvent(t.NamedTuple):
    """One signal recorded by :func:`record_events`."""

    signal: str
    sender: t.Any
    kwargs: dict[str, t.Any]


@contextlib.contextmanager
def record_events() -> t.Iterator[list[RecordedEvent]]:
    """Record every tracking signal sent in the block, for tests:

    .. code-block:: python

        with record_events() as events:
            client.get(pixel_url)
        assert events[0].signal == "email-opened"
        assert events[0].kwargs["result"].metadata == {...}
    """
    events: list[RecordedEvent] = []
    receivers = []
    for signal in (email_opened, link_clicked, tracking_failed):

        def receiver(sender: t.Any, _name: str = signal.name, **kwargs: t.Any) -> None:
            events.append(RecordedEvent(_name, sender, kwargs))

        signal.connect(receiver, weak=False)
        receivers.append((signal, receiver))
    try:
        yield events
    finally:
        for signal, receiver in receivers:
            signal.disconnect(receiver)
