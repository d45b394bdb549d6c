"""The interface between the worker and the places events go: :class:`Sink`.

The serving process appends each event to its journal (schema-1 JSON, one
line); the worker (``mailtrack worker``, or a thread of the serving process
with ``MAILTRACK_WORKER=embedded``) reads sealed and orphaned journal files
and hands their events to every sink in batches. The event store, the
webhook sender and the Redis stream are sinks; so is anything with a
``name``, a ``write`` and a ``close``::

    class PrintSink:
        name = "print"

        def write(self, events):
            for event in events:
                print(event.id, event.data["type"])

        def close(self):
            pass
"""

from __future__ import annotations

import typing as t


class EventRecord(t.NamedTuple):
    """One journaled event, as the worker hands it to a sink.

    .. versionadded:: 0.2
    """

    #: The event id (``evt_`` and 32 hex digits): unique per event, the
    #: same on every offer of it. Sinks deduplicate on it.
    id: str
    #: The event as journaled: schema-1 JSON in UTF-8. Webhooks post these
    #: exact bytes.
    body: bytes
    #: :attr:`body`, parsed.
    data: dict[str, t.Any]


@t.runtime_checkable
class Sink(t.Protocol):
    """Where the worker writes events.

    The worker calls :meth:`write` from one thread at a time, with batches
    in journal order. A sink advances on its own: one that raises is offered
    the same events again later (with a growing delay), while the other
    sinks go on.

    .. versionadded:: 0.2
    """

    #: Names the sink in logs and in the worker's progress (``"store"``,
    #: ``"webhooks"``); unique among one worker's sinks.
    name: str

    def write(self, events: t.Sequence[EventRecord]) -> None:
        """Accept ``events`` durably, or raise to have them offered again.

        Must be idempotent on :attr:`EventRecord.id`: a batch can be offered
        twice (a worker killed after writing it, before recording that it
        did). An event this sink can never accept (it is malformed for it)
        is dead-lettered or logged by the sink, which then goes on; raising
        is for failures that may pass (a database or server down).
        """

    def close(self) -> None:
        """Release connections and threads; called once, when the worker
        stops."""
