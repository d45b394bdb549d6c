"""Faults on the scale-out path, with real processes: PostgreSQL holds every
answered hit exactly once, the Redis stream every event at least once.

gunicorn (2 sync workers) serves ``create_app()`` with
``MAILTRACK_WORKER=external``; one ``mailtrack worker`` feeds a PostgreSQL
store and a Redis stream, both servers of this test's own. During a few
thousand distinct hits the PostgreSQL server is stopped for 5 s and started
again, the worker is SIGKILLed and started again, and Redis is restarted.
Afterwards nothing is left in the journal.
"""

from __future__ import annotations

import json
import pathlib
import signal
import time
import typing as t

import pytest

from _fleet import Fleet
from _fleet import Load
from _fleet import wait
from _own_servers import OwnPostgres
from _redis_server import RedisServer

HITS = 3000
STREAM = "mailtrack:fault-test"


@pytest.fixture
def postgres() -> t.Iterator[OwnPostgres]:
    pytest.importorskip("psycopg")
    server = OwnPostgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_server(tmp_path: pathlib.Path) -> t.Iterator[RedisServer]:
    server = RedisServer(folder=tmp_path / "redis")
    try:
        yield server.start()
    finally:
        server.stop()


def stored(postgres: OwnPostgres) -> list[tuple[str, int]]:
    """``(event id, metadata n)`` of every event in PostgreSQL."""
    import psycopg

    with psycopg.connect(postgres.url) as connection:
        rows = connection.execute(
            "SELECT event_id, metadata FROM mailtrack_events"
        ).fetchall()
    return [
        (event_id, (json.loads(m) if isinstance(m, str) else m)["n"])
        for event_id, m in rows
    ]


def streamed(redis_server: RedisServer) -> list[str]:
    """The event id of every entry of the stream, in order."""
    import redis

    with redis.Redis.from_url(redis_server.url) as client:
        entries = client.xrange(STREAM)
    return [fields[b"id"].decode("ascii") for _, fields in entries]


def test_postgres_and_redis_restarts_lose_nothing(
    tmp_path: pathlib.Path, postgres: OwnPostgres, redis_server: RedisServer
) -> None:
    fleet = Fleet(
        tmp_path,
        "sync",
        {
            "MAILTRACK_DATABASE": postgres.url,
            "MAILTRACK_REDIS_URL": redis_server.url,
            "MAILTRACK_REDIS_STREAM": STREAM,
        },
    )
    paths = fleet.pixel_paths(HITS)
    try:
        fleet.start_server()
        fleet.start_worker()
        load = Load(fleet.server_port, paths)
        load.start()

        wait(lambda: load.done() >= HITS // 4, "a quarter of the hits")
        postgres.stop()
        time.sleep(5)  # the scenario: the database is down for 5 s
        postgres.start()

        wait(lambda: load.done() >= HITS // 2, "half of the hits")
        fleet.stop(fleet.worker, signal.SIGKILL)
        fleet.start_worker()

        wait(lambda: load.done() >= HITS * 3 // 4, "three quarters of the hits")
        redis_server.stop()
        redis_server.start()

        load.join()
        answered = load.answered
        assert len(answered) >= HITS * 0.9, "the load was mostly refused"

        def settled() -> bool:
            if fleet.journal_files():
                return False
            numbers = {n for _, n in stored(postgres)}
            return answered <= numbers

        wait(settled, "every answered hit in PostgreSQL, an empty journal")
        rows = stored(postgres)
        numbers = [n for _, n in rows]
        assert len(numbers) == len(set(numbers)), "a hit stored twice"
        assert len({event_id for event_id, _ in rows}) == len(rows)
        assert answered <= set(numbers)
        # At least once: a batch the killed worker had sent may come again.
        assert {event_id for event_id, _ in rows} <= set(streamed(redis_server))
    except BaseException:
        print(fleet.output())
        raise
    finally:
        fleet.stop_all()
