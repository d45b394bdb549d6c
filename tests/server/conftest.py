"""Fixtures of the standalone server's tests."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask
from flask_mailtrack.server import close_app
from flask_mailtrack.server import create_app

#: The signing key of the apps made by ``make_app``.
KEY = "server-test-secret-key-0123456789"


@pytest.fixture
def database(tmp_path: t.Any) -> str:
    return str(tmp_path / "mailtrack.sqlite3")


@pytest.fixture
def make_app(database: str) -> t.Iterator[t.Callable[..., Flask]]:
    apps: list[Flask] = []

    def make(demo: bool = False, **config: t.Any) -> Flask:
        settings = {
            "MAILTRACK_SECRET_KEY": KEY,
            "MAILTRACK_DATABASE": database,
            "TESTING": True,
            **config,
        }
        app = create_app(settings, demo=demo, environ={})
        apps.append(app)
        return app

    yield make
    for app in apps:
        close_app(app, timeout=0)
