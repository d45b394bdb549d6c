"""The error tree of flask_mailtrack.exceptions: every exception raised on
purpose is a MailTrackError, and each is also the built-in exception Python
code would catch for it."""

from __future__ import annotations

import inspect
import typing as t

import flask_mailtrack
import pytest
from flask_mailtrack import exceptions
from flask_mailtrack.exceptions import ConfigurationError
from flask_mailtrack.exceptions import ExpiredToken
from flask_mailtrack.exceptions import InvalidToken
from flask_mailtrack.exceptions import MailTrackError
from flask_mailtrack.exceptions import MissingSettingError
from flask_mailtrack.exceptions import UnknownSettingError


def _exception_classes() -> list[type[BaseException]]:
    return [
        value
        for value in vars(exceptions).values()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == exceptions.__name__
    ]


def test_every_exception_is_listed_public_and_drawn() -> None:
    names = {cls.__name__ for cls in _exception_classes()}
    assert names == set(exceptions.__all__)
    for name in names:
        assert getattr(flask_mailtrack, name) is getattr(exceptions, name)
        assert name in exceptions.__doc__, f"{name} is missing from the tree"


@pytest.mark.parametrize(
    "cls", [c for c in _exception_classes() if issubclass(c, Exception)]
)
def test_every_error_is_a_mailtrack_error(cls: type[BaseException]) -> None:
    if issubclass(cls, Warning):
        return  # warnings are not raised
    assert issubclass(cls, MailTrackError)


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        pytest.param(ConfigurationError, ValueError, id="configuration"),
        pytest.param(UnknownSettingError, TypeError, id="unknown-setting"),
        pytest.param(UnknownSettingError, ConfigurationError, id="unknown-is-config"),
        pytest.param(MissingSettingError, ConfigurationError, id="missing-is-config"),
        pytest.param(ExpiredToken, InvalidToken, id="expired"),
    ],
)
def test_subclasses(cls: type[BaseException], builtin: type[BaseException]) -> None:
    assert issubclass(cls, builtin)


def test_configuration_errors_from_the_configuration() -> None:
    with pytest.raises(UnknownSettingError, match="secret_kye"):
        flask_mailtrack.Configuration(secret_kye="x")  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError):
        flask_mailtrack.Configuration(secret_key="k" * 32, pixel_position="middle")


def test_invalid_token_keeps_short_tokens_only() -> None:
    assert InvalidToken("bad", token="abc").token == "abc"
    assert InvalidToken("bad", token="a" * 5000).token is None
    error = ExpiredToken("old", expires_at=5)
    assert error.reason == "expired" and error.expires_at == 5


def test_setting_errors_of_the_adapters_and_sinks(tmp_path: t.Any) -> None:
    from flask_mailtrack import TrackingMiddleware
    from flask_mailtrack import WebhookSender
    from flask_mailtrack.events import decode_secret
    from flask_mailtrack.rewrite import track_html

    key = "exceptions-test-secret-key-0123456789"
    with pytest.raises(MissingSettingError):
        TrackingMiddleware(lambda environ, start_response: [], secret_key=key)
    with pytest.raises(ConfigurationError):
        decode_secret("whsec_%%%")
    with pytest.raises(ConfigurationError):
        WebhookSender(None, secret=b"s" * 32, outbox_path=tmp_path / "o", timeout=0)
    link = tmp_path / "link.sqlite3"
    link.symlink_to(tmp_path / "target.sqlite3")
    with pytest.raises(ConfigurationError, match="symbolic link"):
        flask_mailtrack.EventStore(link)
    tracker = flask_mailtrack.Tracker(secret_key=key)
    with pytest.raises(MissingSettingError):
        track_html(tracker, "<p>x</p>")
