"""The webhook journal's records: a :class:`~flask_mailtrack.TrackingResult`
as one line of a journal file, and back as an outbox row.

The request thread writes the fields of the result, pickled, and leaves
encoding the event's JSON body to the journal thread. Records are read back
with an unpickler that loads builtin values only.
"""

from __future__ import annotations

import io
import operator
import pickle
import typing as t

from ..result import TrackingResult
from ._encoding import encode_event

#: Version of the journal record layout (the first item of each record).
_RECORD_VERSION = 1
_PICKLE_PROTOCOL = 5


#: The fields of a :class:`TrackingResult` a journal record keeps, in
#: their order in the record (after the version, URL and time).
_RECORD_FIELDS = (
    "event_id",
    "is_open_tracking",
    "is_click_tracking",
    "tracked_url",
    "webhook_url",
    "metadata",
    "request_data",
    "timestamp",
    "issued_at",
    "expires_at",
    "machine",
    "machine_reasons",
    "legacy",
)
_record_fields = operator.attrgetter(*_RECORD_FIELDS)


def journal_record(result: TrackingResult, url: str, now: float) -> bytes:
    """A journal line for ``result``: its fields, pickled, not its JSON.

    Encoding the event (``to_json_dict()`` and JSON) costs a pixel request
    three times what pickling the fields does, so it is left to the journal
    thread. Backslashes and newlines are escaped: a journal record is one
    line.
    """
    data = pickle.dumps(
        (_RECORD_VERSION, url, now) + _record_fields(result), _PICKLE_PROTOCOL
    )
    return data.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")


class _PlainUnpickler(pickle.Unpickler):
    """Loads builtin values only: a record naming any class or function
    (which a pickle can call) is refused, whoever wrote the file."""

    def find_class(self, module: str, name: str) -> t.Any:
        raise pickle.UnpicklingError(f"Journal records name no {module}.{name}.")


def outbox_row(record: bytes) -> tuple[str, str, bytes, float, float]:
    """The outbox row (event id, URL, body, created at twice) of a journal
    record.

    :raise Exception: a damaged record.
    """
    # Undo the escapes: a doubled backslash is a backslash, and a backslash
    # and an "n" in the pieces between doubled backslashes are a newline.
    data = b"\\".join(piece.replace(b"\\n", b"\n") for piece in record.split(b"\\\\"))
    fields = _PlainUnpickler(io.BytesIO(data)).load()
    if not isinstance(fields, tuple) or fields[0] != _RECORD_VERSION:
        raise ValueError("Not a journal record of this version.")
    _, url, created_at, *values = fields
    if len(values) != len(_RECORD_FIELDS):
        raise ValueError("A journal record with other fields.")
    result = TrackingResult(**dict(zip(_RECORD_FIELDS, values)))
    body = encode_event(result.to_json_dict())
    if not (isinstance(url, str) and isinstance(created_at, float)):
        raise ValueError("A journal record without its URL or time.")
    return result.event_id, url, body, created_at, created_at
