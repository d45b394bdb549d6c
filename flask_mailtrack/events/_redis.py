"""Events into a Redis stream: :class:`RedisStreamSink`.

A sink of the events worker (see ``_sinks``) that appends each event to a
`Redis stream`_ with ``XADD``, for consumers other than this project: a
data pipeline, a CRM sync, a second region. Each batch is one command, a
short Lua script that runs one ``XADD`` per event (``_ADD_BATCH``): one
round trip and one reply for the whole batch. Each entry has two
fields:

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
appear twice in the stream: the worker offers a batch again when the
connection dropped before Redis answered (the batch may have been added),
or after being killed before recording that the batch was written.
Consumers deduplicate on the ``id`` field. When Redis is down, refuses the
batch (out of memory, a read-only replica, a wrong password) or does not
answer within ``timeout``, :meth:`RedisStreamSink.write` raises: the events
wait in the journal, and the worker offers them again with a growing delay.
A batch refused for memory adds nothing: Redis checks memory at a script's
first write, and a script that has written runs to its end.

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

#: Appends a batch. KEYS[1]: the stream; ARGV[1]: the cap ("" for none);
#: ARGV[2]: the byte sizes of each event's id and body, in turn, separated
#: by spaces; ARGV[3]: those ids and bodies, concatenated. Returns how many
#: entries it added.
#:
#: Why a script, and why three arguments: redis-py packs each argument and
#: reads each reply in Python, which for a pipeline of one XADD per event
#: cost as much as the worker's own work per event. Here the client sends
#: one command of three arguments and reads one reply; Lua cuts the batch
#: up. The script holds Redis for the batch (about 3 ms per 1,000 events).
_ADD_BATCH = """
local sizes = {}
for size in string.gmatch(ARGV[2], '%d+') do
  sizes[#sizes + 1] = tonumber(size)
end
local data, at, added = ARGV[3], 1, 0
for i = 1, #sizes, 2 do
  local id = string.sub(data, at, at + sizes[i] - 1)
  at = at + sizes[i]
  local event = string.sub(data, at, at + sizes[i + 1] - 1)
  at = at + sizes[i + 1]
  if ARGV[1] == '' then
    redis.call('XADD', KEYS[1], '*', 'id', id, 'event', event)
  else
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
               'id', id, 'event', event)
  end
  added = added + 1
end
return added
"""


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
        # EVALSHA, loading the script first where Redis lacks it (a new or
        # restarted server).
        self._add_batch = self._client.register_script(_ADD_BATCH)
        self._cap = "" if maxlen is None else str(maxlen)

    def write(self, events: t.Sequence[EventRecord]) -> None:
        """Append ``events`` to the stream, in order, with one command (a
        script of one ``XADD`` per event).

        :raise redis.exceptions.RedisError: Redis is unreachable, slow
            (``timeout``), or refused the batch (out of memory under
            ``maxmemory-policy noeviction``, a read-only replica, no
            permission for scripts or streams). Part of the batch may be in
            the stream already (the connection dropped before the answer);
            it is added again when the worker offers the batch again.
        """
        if not events:
            return
        sizes: list[str] = []
        data: list[bytes] = []
        for event in events:
            event_id = event.id.encode("utf-8")
            sizes += (str(len(event_id)), str(len(event.body)))
            data += (event_id, event.body)
        self._add_batch(
            keys=[self.stream], args=[self._cap, " ".join(sizes), b"".join(data)]
        )

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
