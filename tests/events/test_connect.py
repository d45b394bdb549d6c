"""Receivers connected to the event signals for their senders: they leave the
signals when disconnected, and when their last sender is gone."""

from __future__ import annotations

import gc
import typing as t

import pytest
from flask_mailtrack import email_opened
from flask_mailtrack import link_clicked
from flask_mailtrack import TrackingResult
from flask_mailtrack.events._connect import EVENT_SIGNALS
from flask_mailtrack.events._connect import SignalConnections


class Sender:
    """Something with weak references, like a Flask app or a middleware."""


def _connected(connections: SignalConnections) -> list[bool]:
    """Whether the receiver of ``connections`` is among each signal's
    receivers (counting receivers would also see other tests' receivers
    leave when their senders are collected)."""
    receiver = connections._receiver
    return [
        any(value is receiver for value in signal.receivers.values())
        for signal in EVENT_SIGNALS
    ]


@pytest.fixture
def events() -> list[TrackingResult]:
    return []


def test_disconnect_removes_the_receiver(events: list[TrackingResult]) -> None:
    connections = SignalConnections(events.append)
    first, second = Sender(), Sender()
    connections.connect(first)
    connections.connect(second)
    assert _connected(connections) == [True, True]
    result = TrackingResult(is_open_tracking=True)
    email_opened.send(second, result=result)
    link_clicked.send(Sender(), result=result)  # not a sender of ours
    assert events == [result]
    connections.disconnect()
    assert _connected(connections) == [False, False]
    email_opened.send(first, result=result)
    assert events == [result]


def test_the_receiver_leaves_with_its_last_sender(
    events: list[TrackingResult],
) -> None:
    connections = SignalConnections(events.append)
    first, second = Sender(), Sender()
    connections.connect(first)
    connections.connect(second)
    del first
    gc.collect()
    assert _connected(connections) == [True, True]  # second is still there
    del second
    gc.collect()
    assert _connected(connections) == [False, False]


def test_any_sender_is_kept(events: list[TrackingResult]) -> None:
    connections = SignalConnections(events.append)
    connections.connect()
    gc.collect()
    assert _connected(connections) == [True, True]
    result = TrackingResult(is_click_tracking=True)
    link_clicked.send(t.cast(t.Any, object()), result=result)
    assert events == [result]
    connections.disconnect()
    assert _connected(connections) == [False, False]
