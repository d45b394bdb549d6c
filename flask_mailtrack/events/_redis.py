"""Events into a Redis stream: :class:`RedisStreamSink`.

A sink of the events worker (see ``_sinks``) that appends each event to a
`Redis stream`_ with ``XADD``, for consumers other than this project: a
data pipeline, a CRM sync, a second region. Each batch is one pipelined
round trip; each entry has two fields:

``id``
    The event id (``evt_`` and 32 hex digits).
``event``
    The event, schema-1 JSON in UTF-8: the very bytes the journal holds and
    webhooks post.

The stream is capped with ``MAXLEN ~ maxlen`` on every ``XADD``: Redis
trims whole nodes of old entries once the stream is past the cap, so it
holds about ``maxlen`` entries, never fewer.

At least once
-------------

Redis has no way to refuse an entry it already holds, so an event may
appear twice in the stream: the worker offers a batch again after a write
that failed part way (the connection dropped after Redis added some of its
entries) or after being killed before recording that the batch was
written. Consumers deduplicate on the ``id`` field. When Redis is down,
refuses a write (out of memory, a wrong password) or does not answer
within ``timeout``, :meth:`RedisStreamSink.write` raises: the events wait
in the journal, and the worker offers them again with a growing delay.

.. _Redis stream: https://redis.io/docs/latest/develop/data-types/streams/
"""

from __future__ import annotations

import typing as t
import urllib.parse

from ..exceptions import ConfigurationError
from ._sinks import EventRecord

if t.TYPE_CHECKING:
    import redis

#: The stream key of ``MAILTRACK_REDIS_STREAM`` by default.
DEFAULT_STREAM = "mailtrack:events"
#: The approximate cap of ``MAILTRACK_REDIS_MAXLEN`` by default.
DEFAULT_MAXLEN = 1_000_000

#: Shown instead of a password.
_HIDDEN = "***"


class RedisStreamSink:
    """Appends every event to a Redis stream (``XADD``), for other
    consumers.

    A sink (``name = "redis"``) of the events worker::

        sink = RedisStreamSink("redis://redis.internal:6379/0")
        worker = Worker("/var/lib/mailtrack/journal", [store, sink])

    Each entry has the fields ``id`` (the event id) and ``event`` (the
    schema-1 JSON of the event, as journaled). Delivery is at least once:
    consumers deduplicate on ``id`` (see :doc:`/redis`).

    :param url: A ``redis://``, ``rediss://`` (TLS) or ``unix://`` URL, as
        :meth:`redis.Redis.from_url` takes it; a password in it is never
        shown (:attr:`url`, ``repr``).
    :param stream: The stream's key.
    :param maxlen: Keep about this many entries (``MAXLEN ~``); ``None``
        for no cap.
    :param name: The sink's name in the worker (unique among its sinks).
    :param timeout: Seconds to connect, and to wait for each answer, before
        the write fails and is retried later.
    :raise ConfigurationError: the ``redis`` package is missing (``pip
        install 'flask-mailtrack[redis]'``), the URL is not a Redis URL, or
        ``maxlen`` is not positive.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        url: str,
        *,
        stream: str = DEFAULT_STREAM,
        maxlen: int | None = DEFAULT_MAXLEN,
        name: str = "redis",
        timeout: float = 5.0,
    ) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:
            raise ConfigurationError(
                "The Redis stream sink needs the 'redis' package:"
                " pip install 'flask-mailtrack[redis]'."
            ) from None
        if not stream:
            raise ConfigurationError("The Redis stream needs a key.")
        if maxlen is not None and (
            isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 1
        ):
            raise ConfigurationError(
                f"maxlen must be a positive integer or None, not {maxlen!r}."
            )
        #: The Redis URL, its password (if any) replaced with ``***``.
        self.url = hide_password(url)
        #: The stream's key.
        self.stream = stream
        #: The approximate cap on the stream's length (``None``: no cap).
        self.maxlen = maxlen
        #: The sink's name in the worker.
        self.name = name
        self._trim: tuple[t.Any, ...] = (
            () if maxlen is None else ("MAXLEN", "~", maxlen)
        )
        try:
            self._client: redis.Redis = redis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                # One quick retry takes over from a connection the server
                # closed while idle; longer waits are the worker's
                # (growing delays, the events safe in the journal).
                retry=Retry(NoBackoff(), 1),
            )
        except ValueError as e:
            raise ConfigurationError(f"Not a Redis URL: {self.url!r} ({e})") from None

    def write(self, events: t.Sequence[EventRecord]) -> None:
        """Append ``events`` to the stream, in order, in one pipelined round
        trip of ``XADD`` commands (not a transaction).

        :raise redis.exceptions.RedisError: Redis is unreachable, slow
            (``timeout``), or refused an entry (out of memory under
            ``maxmemory-policy noeviction``, a read-only replica, no
            permission); the entries before the refused one may be in the
            stream already, and are added again when the worker offers the
            batch again.
        """
        if not events:
            return
        head = ("XADD", self.stream, *self._trim, "*", "id")
        pipeline = self._client.pipeline(transaction=False)
        # execute_command: xadd() spends longer building the same arguments.
        add: t.Callable[..., object] = pipeline.execute_command
        for event in events:
            add(*head, event.id, "event", event.body)
        pipeline.execute()

    def close(self) -> None:
        """Close the connections to Redis."""
        self._client.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.url!r}, stream={self.stream!r},"
            f" maxlen={self.maxlen!r})"
        )


def hide_password(url: str) -> str:
    """``url`` with the password of its user part and of a ``password``
    query parameter replaced with ``***``, for logs and messages."""
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return "<a URL that cannot be parsed>"
    netloc = parts.netloc
    if password is not None:
        user, _, host = netloc.rpartition("@")
        name = user.partition(":")[0]
        netloc = f"{name}:{_HIDDEN}@{host}"
    query = parts.query
    if query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        query = urllib.parse.urlencode(
            [(key, _HIDDEN if key == "password" else value) for key, value in pairs],
            safe="*",
        )
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))
