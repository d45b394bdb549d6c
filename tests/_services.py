"""The real PostgreSQL and Redis servers some tests need.

``.ci/services start DIR`` starts both on loopback ports and prints their
URLs as ``TEST_MAILTRACK_POSTGRES_URL`` and ``TEST_MAILTRACK_REDIS_URL``.
Without them the tests that need a server are skipped, unless
``TEST_MAILTRACK_REQUIRE_SERVICES=1`` (set by CI), under which a missing server
fails the run. No test mocks either server.
"""

from __future__ import annotations

import os
import typing as t
import urllib.parse
import uuid

import pytest

POSTGRES_VARIABLE = "TEST_MAILTRACK_POSTGRES_URL"
REDIS_VARIABLE = "TEST_MAILTRACK_REDIS_URL"


def unavailable(message: str) -> t.NoReturn:
    """Skip the test for want of a server; fail it under
    ``TEST_MAILTRACK_REQUIRE_SERVICES=1``."""
    if os.environ.get("TEST_MAILTRACK_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def service_url(variable: str) -> str:
    """The URL in ``variable``; :func:`unavailable` when it is not set."""
    url = os.environ.get(variable)
    if url:
        return url
    unavailable(f"{variable} is not set (start the servers with .ci/services)")


def with_search_path(url: str, schema: str) -> str:
    """``url`` with ``schema`` first on the connection's search path."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    query.append(("options", f"-csearch_path={schema}"))
    return parts._replace(query=urllib.parse.urlencode(query)).geturl()


@pytest.fixture
def postgres_url() -> t.Iterator[str]:
    """A PostgreSQL URL whose tables land in a schema of this test alone,
    dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    server = service_url(POSTGRES_VARIABLE)
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(server, schema)
    finally:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def redis_url() -> str:
    """The Redis server's URL; tests use stream names of their own
    (:func:`stream_name`)."""
    pytest.importorskip("redis")
    return service_url(REDIS_VARIABLE)


def stream_name() -> str:
    """A Redis stream key no other test uses."""
    return f"mailtrack-test:{uuid.uuid4().hex}"


@pytest.fixture
def stream(redis_url: str) -> t.Iterator[str]:
    """A stream key of this test alone on the shared server, deleted after."""
    import redis

    key = stream_name()
    yield key
    with redis.Redis.from_url(redis_url) as client:
        client.delete(key)


@pytest.fixture
def redis_client(redis_url: str) -> t.Iterator[t.Any]:
    """A client of the shared Redis server."""
    import redis

    with redis.Redis.from_url(redis_url) as client:
        yield client
