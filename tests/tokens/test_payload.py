"""The payload's layout and its limits."""

from __future__ import annotations

import pytest
from flask_mailtrack import InvalidToken

from _apps import mt_middleware


def test_deflate_bomb_in_an_authentic_token_is_refused() -> None:
    import struct
    import time
    import zlib

    from flask_mailtrack.tokens import MAX_BODY_SIZE
    from flask_mailtrack.tokens._payload import ZDICT

    tracker, _ = mt_middleware()
    compressor = zlib.compressobj(9, zlib.DEFLATED, -10, 9, 0, ZDICT)
    bomb = compressor.compress(b"{" + b" " * (50 * MAX_BODY_SIZE)) + compressor.flush()
    # Flags 0x20: the metadata section is deflated.
    raw = struct.pack(">BI", 0x20, int(time.time())) + bomb
    token = tracker.serializer._seal("open", raw)
    assert len(token) < tracker.serializer.max_length
    with pytest.raises(InvalidToken):
        tracker.decode_open(token)
