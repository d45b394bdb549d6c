"""The seam between the event store and its databases: MAILTRACK_DATABASE
parsed in one place, queries normalised, rollup targets."""

from __future__ import annotations

import pathlib
import typing as t

import pytest
from flask_mailtrack import ConfigurationError
from flask_mailtrack.events._store_backend import make_query
from flask_mailtrack.events._store_backend import Query
from flask_mailtrack.events._store_database import parse_database
from flask_mailtrack.events._store_database import redact


@pytest.mark.parametrize(
    ("database", "expected"),
    [
        pytest.param("events.sqlite3", ("sqlite", "events.sqlite3"), id="path"),
        pytest.param("/var/lib/m.db", ("sqlite", "/var/lib/m.db"), id="abs-path"),
        pytest.param(pathlib.Path("a/b.db"), ("sqlite", "a/b.db"), id="pathlike"),
        pytest.param(":memory:", ("sqlite", ":memory:"), id="memory"),
        pytest.param(r"C:\data\m.db", ("sqlite", r"C:\data\m.db"), id="windows"),
        pytest.param("sqlite:///rel/m.db", ("sqlite", "rel/m.db"), id="sqlite-rel"),
        pytest.param("sqlite:////abs/m.db", ("sqlite", "/abs/m.db"), id="sqlite-abs"),
        pytest.param("sqlite://", ("sqlite", ":memory:"), id="sqlite-memory"),
        pytest.param("sqlite:///:memory:", ("sqlite", ":memory:"), id="sqlite-m"),
        pytest.param(
            "postgresql://u:p@db:5432/mail",
            ("postgresql", "postgresql://u:p@db:5432/mail"),
            id="postgresql",
        ),
        pytest.param(
            "postgres://db/mail", ("postgresql", "postgresql://db/mail"), id="postgres"
        ),
        pytest.param(
            "postgresql+psycopg://db/mail",
            ("postgresql", "postgresql://db/mail"),
            id="with-driver",
        ),
        pytest.param(
            "PostgreSQL://db/mail", ("postgresql", "postgresql://db/mail"), id="case"
        ),
    ],
)
def test_parse_database(database: t.Any, expected: tuple[str, str]) -> None:
    assert parse_database(database) == expected


@pytest.mark.parametrize(
    ("database", "message"),
    [
        pytest.param("mysql://db/mail", "unsupported", id="other-scheme"),
        pytest.param("sqlite://host/m.db", "sqlite:///relative", id="sqlite-host"),
        pytest.param("sqlite:///m.db?mode=ro", "query", id="sqlite-query"),
        pytest.param("", "empty", id="empty"),
    ],
)
def test_parse_database_refuses(database: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_database(database)


def test_redact_hides_the_password() -> None:
    assert redact("postgresql://u:secret@db:5432/m") == "postgresql://u:***@db:5432/m"
    assert redact("postgresql://db/m") == "postgresql://db/m"


@pytest.mark.parametrize(
    ("query", "target"),
    [
        pytest.param(Query(), ("", ""), id="everything"),
        pytest.param(Query(filters=(("campaign", "x"),)), ("campaign", "x"), id="dim"),
        pytest.param(Query(filters=(("campaign", 1),)), None, id="int-value"),
        pytest.param(Query(filters=(("other", "x"),)), None, id="other-key"),
        pytest.param(
            Query(filters=(("campaign", "x"), ("recipient", "y"))), None, id="two"
        ),
        pytest.param(Query(since=0), None, id="since-the-epoch"),
        pytest.param(Query(since=7200), ("", ""), id="since-a-whole-hour"),
        pytest.param(Query(since=7201), None, id="since-within-an-hour"),
        pytest.param(Query(since=-3600), None, id="since-before-the-epoch"),
        pytest.param(Query(until=7200), None, id="until"),
        pytest.param(Query(type="email.opened"), None, id="type"),
    ],
)
def test_rollup_target(query: Query, target: t.Any) -> None:
    assert query.rollup_target({"campaign"}) == target


@pytest.mark.parametrize(
    ("query", "bucket", "target"),
    [
        pytest.param(Query(), 3600, ("", ""), id="hours"),
        pytest.param(Query(), 86400, ("", ""), id="days"),
        pytest.param(Query(), 600, None, id="minutes"),
        pytest.param(Query(since=7200, until=36000), 3600, ("", ""), id="whole"),
        pytest.param(Query(since=7201), 3600, None, id="since-within-an-hour"),
        pytest.param(Query(until=7200.5), 3600, None, id="until-within-an-hour"),
    ],
)
def test_timeline_target(query: Query, bucket: int, target: t.Any) -> None:
    assert query.timeline_target({"campaign"}, bucket) == target


@pytest.mark.parametrize(
    "filters",
    [{"a": {"x": 1}}, {"a": [1]}, {'a"b': 1}, {"": 1}, {"a\nb": 1}],
)
def test_make_query_refuses_bad_filters(filters: dict[str, t.Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        make_query(filters=filters)
