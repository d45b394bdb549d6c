"""The journal into a Redis stream: how fast the worker moves events from
journal files into :class:`~flask_mailtrack.events.RedisStreamSink`, and
what an entry costs Redis in memory.

On events made by real pixel requests through
:class:`~flask_mailtrack.TrackingMiddleware` on the reference link of
``../shared/bench/reference.json`` (as ``bench_worker.py`` makes them):

- the worker into the stream: events per second from sealed journal files
  (100,000 events by default) through a :class:`Worker` into the sink (one
  script of ``XADD ... MAXLEN ~`` per batch of 1,000 events), target at
  least 50,000 events per second; wall time of one pass, the stream
  deleted and the files copied afresh for each repeat, best of three;
- for comparison, the same worker into a sink that does nothing (the
  worker's own cost: reading, CRC checks, ``json.loads``);
- memory per entry: ``MEMORY USAGE`` of the stream (every node sampled)
  divided by its length, and the growth of ``used_memory`` (``INFO
  memory``) over the empty server's divided by the entries added.

Needs a Redis server; do not point it at one in production use: it writes
and deletes the stream ``mailtrack-bench:<random>``.

Run: ``python benchmarks/bench_redis.py [--url URL] [--events N]``; the URL
defaults to ``$TEST_MAILTRACK_REDIS_URL``, else ``redis://127.0.0.1:6379/0``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys
import tempfile
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import redis  # noqa: E402
from bench_worker import NullSink  # noqa: E402
from bench_worker import pixel_results  # noqa: E402
from bench_worker import worker_rate as pass_rate  # noqa: E402
from bench_worker import write_journal  # noqa: E402
from flask_mailtrack.events import RedisStreamSink  # noqa: E402

EVENTS = 100_000
TARGET = 50_000


def worker_rate(
    source: str, folder: str, url: str, stream: str, client: redis.Redis
) -> float:
    """Events per second of one worker pass over a copy of ``source``, best
    of three (``bench_worker.REPEAT``); the stream is left holding the last
    pass."""

    def make_sink() -> RedisStreamSink:
        client.delete(stream)
        return RedisStreamSink(url, stream=stream, maxlen=10_000_000)

    def check(read: int) -> None:
        assert client.xlen(stream) == read, "entries missing from the stream"

    return pass_rate(source, folder, make_sink, check)


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("TEST_MAILTRACK_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    parser.add_argument("--events", type=int, default=EVENTS)
    args = parser.parse_args()
    count = args.events
    stream = f"mailtrack-bench:{uuid.uuid4().hex}"
    client = redis.Redis.from_url(args.url)
    info = client.info("server")
    scratch = tempfile.mkdtemp(prefix="bench-redis-")
    try:
        results = pixel_results(count)
        source = os.path.join(scratch, "source")
        files, size = write_journal(results, source)
        print(f"Redis {info['redis_version']} at {RedisStreamSink(args.url).url}")
        print(f"events: {count:,} in {files} journal files, {size / count:.0f} B/event")
        null = pass_rate(source, os.path.join(scratch, "null"), NullSink)
        print(f"worker -> no-op sink:   {null:10,.0f} events/s")
        client.delete(stream)
        before = used_memory(client)
        rate = worker_rate(
            source, os.path.join(scratch, "work"), args.url, stream, client
        )
        grown = used_memory(client) - before
        length = client.xlen(stream)
        usage = client.memory_usage(stream, samples=0) or 0
        print(f"worker -> Redis stream: {rate:10,.0f} events/s (target >= {TARGET:,})")
        print(f"memory: MEMORY USAGE {usage / length:6.0f} B/entry")
        print(
            f"        used_memory  {grown / length:6.0f} B/entry ({length:,} entries)"
        )
    finally:
        client.delete(stream)
        client.close()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
