"""PLACEHOLDER of the webhooks branch, replaced by the wiring helper's
module: :func:`connect_sink` and :func:`disconnect_sink` hand each event of
the signals straight to the sink, without a journal or a worker, so that
``WebhookSender.connect()`` works while the pipeline is written."""

from __future__ import annotations

import json
import typing as t

from blinker import ANY

from ._connect import SignalConnections
from ._encoding import encode_event
from ._sinks import EventRecord
from ._sinks import Sink

if t.TYPE_CHECKING:
    from ..result import TrackingResult

_connections: dict[int, SignalConnections] = {}


def connect_sink(sink: Sink, sender: t.Any = ANY) -> None:
    """Feed ``sink`` the events that ``sender`` signals."""

    def write(result: TrackingResult) -> None:
        body = encode_event(result.to_json_dict())
        sink.write([EventRecord(result.event_id, body, json.loads(body))])

    connections = _connections.setdefault(id(sink), SignalConnections(write))
    connections.connect(sender)


def disconnect_sink(sink: Sink) -> None:
    """Stop feeding ``sink``."""
    connections = _connections.pop(id(sink), None)
    if connections is not None:
        connections.disconnect()
