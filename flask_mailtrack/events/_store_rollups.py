"""Rollups of newly stored events, in pure Python, for every backend.

:func:`rollup` turns the events a write has just inserted into the changes
of the rollup tables (``_store_backend`` describes them): the counts to add
to ``mailtrack_hourly`` and the last times to merge into
``mailtrack_recipients`` and ``mailtrack_link_recipients``. A backend
applies them in the transaction that inserted the events; migrations,
``purge`` and ``forget`` (:class:`Erasure`) use the same function to
backfill, recompute and take back, so every path counts alike.
"""

from __future__ import annotations

import dataclasses
import typing as t

from ._store_backend import CLICKED
from ._store_backend import HOUR
from ._store_backend import OPENED
from ._store_backend import StoredEvent

#: Integers a dimension value may be: what every backend compares exactly.
_INT64 = (-(2**63), 2**63 - 1)

#: ``(dimension, value, hour, type, url, machine)``
HourlyKey = tuple[str, str, int, str, str, str]
#: ``(dimension, value, identity)``
RecipientKey = tuple[str, str, str]
#: ``(dimension, value, url, identity)``
LinkRecipientKey = tuple[str, str, str, str]


def dimension_value(value: t.Any) -> str | None:
    """The rollup key of a metadata value: a str itself, an integer (not a
    bool, within 64 bits) its decimal form; ``None`` for any other value,
    which the dimension's rollups leave out."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if _INT64[0] <= value <= _INT64[1]:
            return str(value)
    return None


def event_time(occurred_at: int) -> int:
    """The time kept in the recipient tables: at least 1, as 0 means never."""
    return max(occurred_at, 1)


@dataclasses.dataclass
class Rollup:
    """The changes of the rollup tables for some events; apply them in the
    order of :meth:`hourly_rows` and friends (sorted keys), so that two
    writers upserting at once cannot deadlock."""

    #: Events to add per hourly key.
    hourly: dict[HourlyKey, int] = dataclasses.field(default_factory=dict)
    #: ``[opened_human, opened_machine, clicked_human, clicked_machine]``
    #: last times per recipient key, ``0`` for never.
    recipients: dict[RecipientKey, list[int]] = dataclasses.field(default_factory=dict)
    #: ``[human, machine]`` last click times per link recipient key.
    link_recipients: dict[LinkRecipientKey, list[int]] = dataclasses.field(
        default_factory=dict
    )

    def hourly_rows(self) -> list[tuple[t.Any, ...]]:
        """``(dimension, value, hour, type, url, machine, n)``, sorted."""
        return [(*key, n) for key, n in sorted(self.hourly.items())]

    def recipient_rows(self) -> list[tuple[t.Any, ...]]:
        """``(dimension, value, identity, opened_human, opened_machine,
        clicked_human, clicked_machine)``, sorted."""
        return [(*key, *times) for key, times in sorted(self.recipients.items())]

    def link_recipient_rows(self) -> list[tuple[t.Any, ...]]:
        """``(dimension, value, url, identity, human, machine)``, sorted."""
        return [(*key, *times) for key, times in sorted(self.link_recipients.items())]

    def add(
        self, event: StoredEvent, dimensions: t.Iterable[str], everything: bool = True
    ) -> None:
        """Count ``event`` in the rollups of every event (unless not
        ``everything``) and of each of ``dimensions`` it has a str or int
        value for."""
        groups = [("", "")] if everything else []
        for dimension in dimensions:
            value = dimension_value(event.values.get(dimension))
            if value is not None:
                groups.append((dimension, value))
        hour = event.occurred_at // HOUR * HOUR
        url = event.tracked_url or ""
        machine = event.machine or ""
        when = event_time(event.occurred_at)
        side = 1 if event.machine is not None else 0
        for dimension, value in groups:
            key = (dimension, value, hour, event.type, url, machine)
            self.hourly[key] = self.hourly.get(key, 0) + 1
            if event.type == OPENED:
                column = side
            elif event.type == CLICKED:
                column = 2 + side
                link = (dimension, value, url, event.identity)
                times = self.link_recipients.setdefault(link, [0, 0])
                times[side] = max(times[side], when)
            else:
                continue
            recipient = (dimension, value, event.identity)
            times = self.recipients.setdefault(recipient, [0, 0, 0, 0])
            times[column] = max(times[column], when)


def rollup(
    events: t.Iterable[StoredEvent],
    dimensions: t.Iterable[str],
    *,
    everything: bool = True,
) -> Rollup:
    """The rollup changes of ``events``, newly stored: the rows of every
    event (unless not ``everything``: a backfill of new dimensions) and
    those of ``dimensions``."""
    dimensions = tuple(sorted(dimensions))
    result = Rollup()
    for event in events:
        result.add(event, dimensions, everything)
    return result


class Erasure:
    """The rollup changes of deleting some events (``EventStore.forget``).

    Hourly counts are taken back exactly: :attr:`removed` holds what the
    deleted events added. A last time in the recipient tables cannot be
    taken back, as other events may share it: the rows the deleted events
    touched are deleted, then rolled up again from the events left of their
    identities (:meth:`restore`), into :attr:`restored`.

    :param dimensions: The dimensions rolled up (``mailtrack_dimensions``).
    """

    def __init__(self, dimensions: t.Iterable[str]) -> None:
        self.dimensions = tuple(sorted(dimensions))
        #: The rollup of the deleted events: hourly counts to subtract,
        #: recipient rows to delete.
        self.removed = Rollup()
        #: The recipient rows to put back, from the events left.
        self.restored = Rollup()

    def remove(self, events: t.Iterable[StoredEvent]) -> None:
        """Count ``events``, just deleted."""
        for event in events:
            self.removed.add(event, self.dimensions)

    def identities(self) -> list[str]:
        """The identities whose recipient rows the deleted events touched,
        sorted: the events left of these are to :meth:`restore`."""
        found = {key[-1] for key in self.removed.recipients}
        return sorted(found | {key[-1] for key in self.removed.link_recipients})

    def restore(self, events: t.Iterable[StoredEvent]) -> None:
        """Roll up ``events``, left of the :meth:`identities`, into the
        recipient rows that are deleted (and only those: the others hold
        these events already)."""
        changes = rollup(events, self.dimensions)
        _keep_latest(
            changes.recipients, self.removed.recipients, self.restored.recipients
        )
        _keep_latest(
            changes.link_recipients,
            self.removed.link_recipients,
            self.restored.link_recipients,
        )


_Key = t.TypeVar("_Key", RecipientKey, LinkRecipientKey)


def _keep_latest(
    found: dict[_Key, list[int]],
    wanted: t.Container[_Key],
    into: dict[_Key, list[int]],
) -> None:
    """Merge the last times ``found`` of the keys in ``wanted`` into ``into``."""
    for key, times in found.items():
        if key in wanted:
            latest = into.setdefault(key, [0] * len(times))
            latest[:] = map(max, latest, times)
