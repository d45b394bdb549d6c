"""The reading half of :class:`~flask_mailtrack.EventStore`: statistics,
timelines, campaigns, events and exports.

:class:`StoreReader` holds the methods that only read the store's backend;
the store inherits them, so they are documented (and called) as the
store's. They never write: a stats page waits for a database lock at
worst, a tracking hit never.
"""

from __future__ import annotations

import time
import typing as t
from collections.abc import Mapping

from ._sqlite import TimeInput
from ._store_backend import make_query
from ._store_backend import StoreBackend
from ._store_campaigns import assemble_campaigns
from ._store_campaigns import CampaignFigures
from ._store_campaigns import DAY
from ._store_export import write_csv
from ._store_export import write_jsonl
from ._store_stats import assemble_stats
from ._store_stats import assemble_timeline

#: The metadata key that names a campaign (:meth:`StoreReader.campaigns`).
DEFAULT_CAMPAIGN_KEY = "campaign"


def _first_day(days: int) -> int:
    """The start of the first of the last ``days`` UTC days."""
    if days < 1:
        raise ValueError("days must be at least 1.")
    return int(time.time()) // DAY * DAY - (days - 1) * DAY


class StoreReader:
    """The read methods of :class:`~flask_mailtrack.EventStore`, over its
    backend."""

    _backend: StoreBackend
    #: Statistics and timelines read rollups when they can; tests turn this
    #: off to compare with a scan of the events.
    _read_rollups: bool = True

    def stats(
        self,
        *,
        since: TimeInput = None,
        until: TimeInput = None,
        **metadata_filters: t.Any,
    ) -> dict[str, t.Any]:
        """Statistics of the events in a time range matching the filters.

        :param since: Only events at or after this time (a datetime, naive
            meaning UTC, or seconds since the epoch).
        :param until: Only events before this time.
        :param metadata_filters: Only events whose metadata has these values,
            e.g. ``campaign="spring"``.
        :return: A JSON-ready dict::

                {
                  "opens": COUNTS, "clicks": COUNTS,
                  "links": [{"url": ..., **COUNTS}, ...],  # most clicked first
                  "engaged": {"total": n, "human": n, "machine": n},
                  "click_through_rate": {"total": r, "human": r, "machine": r},
                  "open_rate": {"total": r, "human": r, "machine": r},
                  "machine_labels": {"apple-mpp": n, ...},
                  "sent": {"total": n, "open_rate": RATES, "click_rate": RATES},
                  "since": ..., "until": ..., "filters": {...},
                }

            where ``COUNTS`` is ``{"total": n, "unique": n, "human": {"total":
            n, "unique": n}, "machine": {"total": n, "unique": n}}``.
            ``engaged`` counts the unique recipients who opened or clicked.
            The click-through rate is the unique recipients who clicked
            divided by ``engaged``, and the open rate the unique recipients
            who opened divided by ``engaged``, in total, for people and for
            machines; ``None`` when ``engaged`` is 0. Neither can exceed 1,
            even when clicks come without a recorded open (images blocked,
            or the open counted as a machine's). ``sent`` counts the
            ``email.sent`` events (one per recipient of a message sent with
            :mod:`flask_mailtrack.outgoing`), and its rates are the unique
            recipients who opened, or clicked, divided by it; ``RATES`` is
            ``{"total": r, "human": r, "machine": r}``, ``None`` when
            nothing was sent.

        .. versionchanged:: 0.2
            ``sent``, with the open and click rates per email sent.
        """
        query = make_query(since, until, metadata_filters)
        figures = self._backend.stats_figures(query, rollups=self._read_rollups)
        return assemble_stats(figures, query)

    def timeline(
        self,
        *,
        bucket_seconds: int = 3600,
        since: TimeInput = None,
        until: TimeInput = None,
        max_buckets: int = 1000,
        **metadata_filters: t.Any,
    ) -> list[dict[str, int]]:
        """Event counts per time bucket, oldest first, for charts.

        Each item is ``{"start": epoch seconds, "opens": n, "clicks": n,
        "machine": n, "opens_machine": n, "clicks_machine": n}``:
        ``opens`` and ``clicks`` count people and machines, ``machine`` the
        machines' opens and clicks together, ``opens_machine`` and
        ``clicks_machine`` each apart. Empty buckets between the first and
        the last (or ``since`` and ``until``) are included; at most
        ``max_buckets``, the most recent.

        .. versionchanged:: 0.2
            ``opens_machine`` and ``clicks_machine``.
        """
        if bucket_seconds < 1:
            raise ValueError("bucket_seconds must be at least 1.")
        query = make_query(since, until, metadata_filters)
        counts = self._backend.timeline_counts(
            query, bucket_seconds, rollups=self._read_rollups
        )
        return assemble_timeline(counts, query, bucket_seconds, max_buckets)

    def campaigns(
        self, key: str | None = DEFAULT_CAMPAIGN_KEY, *, days: int = 14
    ) -> list[dict[str, t.Any]]:
        """A summary of each campaign, for an overview: one item per value
        of the metadata ``key``, the most recent activity first, read from
        the rollups with a few grouped queries (not one per campaign).

        :param key: The metadata key that names a campaign; it must be one
            of the store's ``dimensions`` (its values are rolled up).
            ``None``: one item, of every event, named ``None``.
        :param days: Days of the sparkline (``daily``), today (UTC) the last.
        :return: A list of JSON-ready dicts::

                {
                  "campaign": "spring",
                  "sent": n,
                  "opens": {"unique": n, "human": n, "machine": n},
                  "clicks": {"unique": n, "human": n, "machine": n},
                  "engaged": {"total": n, "human": n, "machine": n},
                  "open_rate": {"human": r, "total": r, "basis": "sent"},
                  "click_rate": {"human": r, "total": r, "basis": "sent"},
                  "machine_share": r,
                  "first": epoch, "last": epoch,
                  "daily": [{"start": epoch, "opens": n, "clicks": n}, ...],
                }

            Each figure is the one :meth:`stats` gives for
            ``stats(**{key: campaign})``: ``sent`` the ``email.sent``
            events, ``opens`` and ``clicks`` the unique recipients (people,
            machines, either), ``engaged`` those who opened or clicked. The
            rates are per email sent when ``sent`` is not 0 (``"basis":
            "sent"``, ``stats()["sent"]``'s rates), otherwise per engaged
            recipient (``"basis": "engaged"``, ``stats()``'s ``open_rate``
            and ``click_through_rate``); ``None`` when there is nothing to
            divide by, and never above 1: more recipients opening than
            emails recorded as sent (mail sent before tracking was set up,
            or sent elsewhere) counts 1. ``machine_share`` is the machines'
            opens and clicks divided by all opens and clicks (events, not
            recipients). ``first`` and ``last`` are the start of the hour of
            the first and of the last event of any type (the rollups count
            by hour). ``daily`` counts the opens and clicks (events, people
            and machines) of each of the last ``days`` UTC days.
        :raise ValueError: ``key`` is not rolled up, or ``days`` is below 1.

        .. versionadded:: 0.2
        """
        first_day = _first_day(days)
        found = self._backend.campaign_figures(key or "", first_day)
        return assemble_campaigns(found, key, first_day=first_day, days=days)

    def campaign(
        self, name: str | None, key: str = DEFAULT_CAMPAIGN_KEY, *, days: int = 14
    ) -> dict[str, t.Any]:
        """The item of :meth:`campaigns` of one campaign, read from its
        rollup rows only (what :meth:`stats` of it costs); its figures are
        0 (``first`` and ``last`` ``None``) when it has no events.

        :param name: The value of ``key``; ``None`` for every event (the
            item of ``campaigns(None)``).
        :param key: The metadata key that names a campaign, a dimension.
        :param days: Days of the sparkline.
        :raise ValueError: as :meth:`campaigns`.

        .. versionadded:: 0.2
        """
        if name is None:
            return self.campaigns(None, days=days)[0]
        first_day = _first_day(days)
        found = self._backend.campaign_figures(key, first_day, name)
        found.setdefault(name, CampaignFigures())
        (item,) = assemble_campaigns(found, key, first_day=first_day, days=days)
        return item

    def events(
        self,
        *,
        since: TimeInput = None,
        until: TimeInput = None,
        type: str | None = None,
        limit: int | None = 100,
        **metadata_filters: t.Any,
    ) -> list[dict[str, t.Any]]:
        """The most recent events, newest first, as schema-1 dicts.

        :param type: ``"email.opened"`` or ``"link.clicked"``; both by default.
        :param limit: At most this many; ``None`` for all.
        """
        return self._backend.events(
            make_query(since, until, metadata_filters, type), limit
        )

    def related_events(
        self, event_id: str, *, limit: int | None = 500
    ) -> list[dict[str, t.Any]]:
        """Every event of the recipient of an event: those with the same
        recipient identity (see :attr:`identity_keys`), that event among
        them, oldest first, as schema-1 dicts. Read by an index, whatever
        the size of the store.

        :param event_id: The ``id`` of any stored event.
        :param limit: At most this many, the oldest; ``None`` for all.
        :return: ``[]`` when no event has that id.

        .. versionadded:: 0.2
        """
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1.")
        return self._backend.related_events(event_id, limit)

    def count(self) -> int:
        """The number of stored events."""
        return self._backend.count()

    def _iter_events(
        self, since: TimeInput, until: TimeInput, metadata: Mapping[str, t.Any]
    ) -> t.Iterator[dict[str, t.Any]]:
        yield from self._backend.iter_events(make_query(since, until, metadata))

    def export_jsonl(
        self,
        file: t.TextIO,
        *,
        since: TimeInput = None,
        until: TimeInput = None,
        **metadata_filters: t.Any,
    ) -> int:
        """Write the events, oldest first, one schema-1 JSON object per line.

        :return: The number of events written.
        """
        return write_jsonl(file, self._iter_events(since, until, metadata_filters))

    def export_csv(
        self,
        file: t.TextIO,
        *,
        since: TimeInput = None,
        until: TimeInput = None,
        **metadata_filters: t.Any,
    ) -> int:
        """Write the events, oldest first, as CSV with a header row.

        Columns are :data:`CSV_COLUMNS`; ``metadata`` is a JSON object and
        ``machine_reasons`` is space-separated. Open the file with
        ``newline=""``.

        :return: The number of events written.
        """
        return write_csv(file, self._iter_events(since, until, metadata_filters))
