"""The journal file format: framed lines, read back with bounded memory."""

from __future__ import annotations

import io

import pytest
from flask_mailtrack.events._journal_format import frame
from flask_mailtrack.events._journal_format import read_records
from flask_mailtrack.events._journal_format import unframe


def test_frame_round_trip() -> None:
    line = frame(b'{"id":"evt_1"}')
    assert line.endswith(b"\n")
    assert unframe(line) == b'{"id":"evt_1"}'
    assert unframe(frame(b"")) == b""


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(frame(b"abc").replace(b"abc", b"abd"), id="changed"),
        pytest.param(b"zzzzzzzz abc\n", id="not-hex"),
        pytest.param(b" 352441c abc\n", id="padded-hex"),
        pytest.param(frame(b"abc").replace(b" ", b"-", 1), id="no-space"),
        pytest.param(frame(b"abc")[:-1], id="no-newline"),
        pytest.param(b"\n", id="empty-line"),
        pytest.param(b"\x00" * 20 + b"\n", id="zeros"),
    ],
)
def test_damaged_lines_are_refused(line: bytes) -> None:
    assert unframe(line) is None


def test_damaged_line_loses_only_itself(caplog: pytest.LogCaptureFixture) -> None:
    content = frame(b"one") + b"00000000 garbage\n" + frame(b"three")
    assert list(read_records(io.BytesIO(content), source="j")) == [b"one", b"three"]
    assert "damaged record at offset 13 of j" in caplog.text


def test_torn_tail_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    content = frame(b"one") + frame(b"two") + frame(b"three")[:-3]
    assert list(read_records(io.BytesIO(content), source="j")) == [b"one", b"two"]
    assert "torn record" in caplog.text


class CountingReader(io.BytesIO):
    """Remembers the longest piece ``readline`` returned."""

    longest = 0

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        self.longest = max(self.longest, len(line))
        return line


def test_oversized_lines_are_skipped_in_bounded_pieces(
    caplog: pytest.LogCaptureFixture,
) -> None:
    huge = b"x" * (1024 * 1024) + b"\n"
    reader = CountingReader(frame(b"before") + huge + frame(b"after"))
    records = list(read_records(reader, max_record_size=100, source="j"))
    assert records == [b"before", b"after"]
    assert reader.longest <= 64 * 1024
    assert "oversized line" in caplog.text
