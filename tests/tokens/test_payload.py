"""The payload's layout and its limits."""

from __future__ import annotations

import typing as t

import pytest
from flask_mailtrack import InvalidToken
from flask_mailtrack import Tracker


def _mt_middleware(**extra: t.Any) -> t.Any:
    """A tracker on ``/mt/o/`` and ``/mt/c/`` and a test client of a
    TrackingMiddleware serving it."""
    from flask_mailtrack import TrackingMiddleware
    from werkzeug.test import Client

    def fallback(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b""]

    tracker = Tracker(
        secret_key="review-secret-key-0123456789abcdef",
        base_open_tracking_url="https://t.example.com/mt/o/",
        base_click_tracking_url="https://t.example.com/mt/c/",
        **extra,
    )
    return tracker, Client(TrackingMiddleware(fallback, tracker=tracker))


def test_deflate_bomb_in_an_authentic_token_is_refused() -> None:
    import struct
    import time
    import zlib

    from flask_mailtrack.tokens import MAX_BODY_SIZE
    from flask_mailtrack.tokens._payload import ZDICT

    tracker, _ = _mt_middleware()
    compressor = zlib.compressobj(9, zlib.DEFLATED, -10, 9, 0, ZDICT)
    bomb = compressor.compress(b"{" + b" " * (50 * MAX_BODY_SIZE)) + compressor.flush()
    # Flags 0x20: the metadata section is deflated.
    raw = struct.pack(">BI", 0x20, int(time.time())) + bomb
    token = tracker.serializer._seal("open", raw)
    assert len(token) < tracker.serializer.max_length
    with pytest.raises(InvalidToken):
        tracker.decode_open(token)
