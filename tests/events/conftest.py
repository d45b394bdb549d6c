"""Fixtures of the event store tests: one database per backend."""

from __future__ import annotations

import typing as t

import pytest

#: The backends every store test runs on.
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: t.Any) -> str:
    """A database of its own for the test, on each backend in turn: an
    SQLite file, or a PostgreSQL URL of a schema dropped afterwards (skipped
    without a server, see ``_services``)."""
    if request.param == "sqlite":
        return str(tmp_path / "events.sqlite3")
    return t.cast(str, request.getfixturevalue("postgres_url"))
