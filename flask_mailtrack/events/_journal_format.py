"""The format of a journal file: :func:`frame`, :func:`unframe`,
:func:`read_records`, :func:`read_positioned`.

One line per record: eight hexadecimal digits of the record's CRC-32, a
space, the record, a newline. Records must not contain a newline (compact
JSON never does), so a damaged line loses that line only: reading resumes
at the next newline. A last line without its newline (a write cut short)
and a line whose checksum does not match are skipped and logged. Files are
read line by line with a length limit, so memory stays bounded whatever
their size.
"""

from __future__ import annotations

import logging
import typing as t
import zlib

logger = logging.getLogger("flask_mailtrack.journal")

#: Longest record a journal accepts, in bytes.
MAX_RECORD_SIZE = 1024 * 1024

#: Bytes of a line around the record: checksum, space, newline.
_FRAMING = 10

#: Read size while skipping an oversized line.
_SKIP_CHUNK = 64 * 1024


def frame(record: bytes) -> bytes:
    """The line that stores ``record`` in a journal file."""
    return b"%08x %s\n" % (zlib.crc32(record), record)


def unframe(line: bytes) -> bytes | None:
    """The record of a complete line (newline included), or ``None`` when
    the line is damaged."""
    if len(line) < _FRAMING or line[8:9] != b" " or not line.endswith(b"\n"):
        return None
    head = line[:8]
    if head.strip(b"0123456789abcdef"):
        return None
    record = line[9:-1]
    if zlib.crc32(record) != int(head, 16):
        return None
    return record


def read_records(
    file: t.BinaryIO, *, max_record_size: int = MAX_RECORD_SIZE, source: str = "?"
) -> t.Iterator[bytes]:
    """The intact records of a journal file, in order.

    Lines are read with a length limit: a line longer than any record is
    skipped in chunks, never held in memory whole. Damaged lines and a torn
    last line are skipped and logged.

    :param file: The file, open for reading in binary mode.
    :param max_record_size: Records longer than this are damaged.
    :param source: Names the file in log messages.
    """
    for _, record in read_positioned(
        file, max_record_size=max_record_size, source=source
    ):
        yield record


def read_positioned(
    file: t.BinaryIO,
    *,
    start: int = 0,
    max_record_size: int = MAX_RECORD_SIZE,
    source: str = "?",
    on_damaged: t.Callable[[int], object] | None = None,
) -> t.Iterator[tuple[int, bytes]]:
    """The intact records of a journal file, each with the offset of the end
    of its line (where reading would resume after it), as
    :func:`read_records` reads them.

    :param file: The file, open for reading in binary mode, at ``start``.
    :param start: The offset of ``file``'s position, counted from the
        file's start: the offsets yielded are counted from there too.
    :param max_record_size: Records longer than this are damaged.
    :param source: Names the file in log messages.
    :param on_damaged: Called with the offset of each damaged, torn or
        oversized line skipped.
    """
    limit = max_record_size + _FRAMING
    offset = start
    while True:
        line = file.readline(limit)
        if not line:
            return
        line_start = offset
        offset += len(line)
        if not line.endswith(b"\n"):
            if len(line) < limit:
                # The end of the file in the middle of a line: a write that
                # was cut short by the death of its process.
                logger.warning(
                    "Skipped a torn record (%d bytes) at the end of %s.",
                    len(line),
                    source,
                )
                if on_damaged is not None:
                    on_damaged(line_start)
                return
            while line and not line.endswith(b"\n"):
                line = file.readline(_SKIP_CHUNK)
                offset += len(line)
            logger.warning(
                "Skipped an oversized line (%d bytes) at offset %d of %s.",
                offset - line_start,
                line_start,
                source,
            )
            if on_damaged is not None:
                on_damaged(line_start)
            continue
        record = unframe(line)
        if record is None:
            logger.warning(
                "Skipped a damaged record at offset %d of %s.", line_start, source
            )
            if on_damaged is not None:
                on_damaged(line_start)
            continue
        yield offset, record
