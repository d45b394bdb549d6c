"""Fixtures shared by the test suite: a configuration with a secret key and
base URLs, and its tracker; a webhook receiver; the PostgreSQL and Redis
servers (:mod:`_services`); an SMTP server (:mod:`_smtp`). Test modules may
define their own."""

from __future__ import annotations

import typing as t

import pytest
from flask_mailtrack import Configuration
from flask_mailtrack import Tracker

from _services import postgres_url  # noqa: F401 (a fixture)
from _services import redis_client  # noqa: F401 (a fixture)
from _services import redis_url  # noqa: F401 (a fixture)
from _services import stream  # noqa: F401 (a fixture)
from _smtp import inbox  # noqa: F401 (a fixture)
from _webhook_receiver import Receiver

SECRET = "test-secret-key-0123456789abcdef"
OPEN_BASE = "https://t.example.com/mailtrack/o/"
CLICK_BASE = "https://t.example.com/mailtrack/c/"


@pytest.fixture
def configuration() -> Configuration:
    return Configuration(
        secret_key=SECRET,
        base_open_tracking_url=OPEN_BASE,
        base_click_tracking_url=CLICK_BASE,
    )


@pytest.fixture
def tracker(configuration: Configuration) -> Tracker:
    return Tracker(configuration)


@pytest.fixture
def receiver() -> t.Iterator[Receiver]:
    """A webhook endpoint on 127.0.0.1, stopped after the test."""
    r = Receiver().start()
    yield r
    r.release.set()
    r.stop()
