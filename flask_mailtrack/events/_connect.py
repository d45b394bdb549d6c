"""Connecting a receiver object to the event signals, for
:class:`~flask_mailtrack.WebhookSender` and :class:`~flask_mailtrack.EventStore`."""

from __future__ import annotations

import typing as t
import weakref

from blinker import ANY

from ..signals import email_opened
from ..signals import link_clicked

if t.TYPE_CHECKING:
    from ..result import TrackingResult

#: The signals that carry a tracking event.
EVENT_SIGNALS = (email_opened, link_clicked)


class SignalConnections:
    """The senders one receiver function is connected for.

    The receiver is held strongly by the signals (``weak=False``: users often
    keep no reference to a sender or store they connected), but senders are
    held weakly here, so connecting to a Flask app does not keep the app
    alive. Once every sender is gone, or on :meth:`disconnect`, the receiver
    leaves the signals altogether: blinker forgets a dead sender, but keeps a
    strongly held receiver (and the store or sender it feeds) otherwise.

    :param on_event: Called with the :class:`~flask_mailtrack.TrackingResult`
        of each event; a signal sent without a ``result`` is ignored.
    """

    def __init__(self, on_event: t.Callable[[TrackingResult], object]) -> None:
        def receiver(
            sender: t.Any, result: TrackingResult | None = None, **extra: t.Any
        ) -> None:
            if result is not None:
                on_event(result)

        self._receiver = receiver
        self._senders: list[t.Callable[[], t.Any]] = []

    def connect(self, sender: t.Any = ANY) -> None:
        for signal in EVENT_SIGNALS:
            signal.connect(self._receiver, sender=sender, weak=False)
        try:
            self._senders.append(weakref.ref(sender, self._sender_gone))
        except TypeError:  # ANY and other objects without weak references
            self._senders.append(lambda: sender)

    def _sender_gone(self, reference: weakref.ref[t.Any]) -> None:
        if all(sender() is None for sender in self._senders):
            self.disconnect()

    def disconnect(self) -> None:
        # Disconnecting from each sender would leave the receiver in the
        # signals' receivers; it serves no one else, so it goes entirely.
        for signal in EVENT_SIGNALS:
            signal.disconnect(self._receiver)
        self._senders = []
