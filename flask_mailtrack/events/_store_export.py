"""Writing events out of the store: JSON lines and CSV."""

from __future__ import annotations

import csv
import json
import typing as t

from ._encoding import dumps

#: Columns of :meth:`EventStore.export_csv`.
CSV_COLUMNS = (
    "id",
    "type",
    "occurred_at",
    "issued_at",
    "machine",
    "machine_reasons",
    "tracked_url",
    "user_agent",
    "user_ip",
    "method",
    "metadata",
)


def write_jsonl(file: t.TextIO, events: t.Iterable[dict[str, t.Any]]) -> int:
    """Write ``events``, one JSON object per line; return how many."""
    written = 0
    for event in events:
        file.write(dumps(event))
        file.write("\n")
        written += 1
    return written


def write_csv(file: t.TextIO, events: t.Iterable[dict[str, t.Any]]) -> int:
    """Write a header row of :data:`CSV_COLUMNS`, then ``events``; return how
    many."""
    writer = csv.writer(file)
    writer.writerow(CSV_COLUMNS)
    written = 0
    for event in events:
        request = event.get("request_data") or {}
        writer.writerow(
            [
                event["id"],
                event["type"],
                event["occurred_at"],
                event.get("issued_at") or "",
                event.get("machine") or "",
                " ".join(event.get("machine_reasons") or ()),
                event.get("tracked_url") or "",
                request.get("user_agent") or "",
                request.get("user_ip") or "",
                request.get("method") or "",
                json.dumps(event.get("metadata") or {}, ensure_ascii=False),
            ]
        )
        written += 1
    return written
