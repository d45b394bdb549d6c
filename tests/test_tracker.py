"""Tracker.decode_any (links of either kind, on any host), and the deprecated
wrappers that rewriting and serving left behind on Tracker."""

from __future__ import annotations

import email
import email.policy
import time
import typing as t

import pytest
from flask_mailtrack import InvalidToken
from flask_mailtrack import rewrite
from flask_mailtrack import Tracker
from flask_mailtrack import web
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

BASE = "https://t.example.com/mailtrack"  # conftest's tracker's base


@pytest.fixture
def bare(tracker: Tracker) -> Tracker:
    """The same keys, no base URLs (a Flask app without MAILTRACK_BASE_URL)."""
    return Tracker(
        tracker.configuration,
        base_open_tracking_url=None,
        base_click_tracking_url=None,
    )


@pytest.mark.parametrize(
    "form",
    [
        pytest.param(lambda url, token: url, id="url"),
        pytest.param(lambda url, token: token, id="token"),
        pytest.param(lambda url, token: f"  {url}/\n", id="spaces-slash"),
        pytest.param(
            lambda url, token: f"https://elsewhere.example/x/{token}?utm=1",
            id="other-host",
        ),
    ],
)
def test_either_kind(tracker: Tracker, bare: Tracker, form: object) -> None:
    click_token = tracker.click_token("https://example.com/a", {"id": 1})
    open_token = tracker.open_token({"id": 2})
    for decoder in (tracker, bare):
        clicked = decoder.decode_any(
            form(tracker.click_url("https://example.com/a", {"id": 1}), click_token)  # type: ignore[operator]
        )
        assert clicked.is_click_tracking
        assert clicked.tracked_url == "https://example.com/a"
        opened = decoder.decode_any(
            form(tracker.open_url({"id": 2}), open_token)  # type: ignore[operator]
        )
        assert opened.is_open_tracking and opened.metadata == {"id": 2}


def test_the_tracking_base_names_the_kind(tracker: Tracker) -> None:
    click_token = tracker.click_token("https://example.com/")
    with pytest.raises(InvalidToken):
        tracker.decode_any(f"{BASE}/o/{click_token}")
    with pytest.raises(InvalidToken):
        tracker.decode_any(click_token, "open")
    assert tracker.decode_any(click_token, "click").is_click_tracking


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("https://t.example.com/", "format", id="no-path"),
        pytest.param("not a token", "format", id="garbage"),
        pytest.param("A" * 10000, "length", id="too-long"),
    ],
)
def test_invalid(tracker: Tracker, text: str, reason: str) -> None:
    with pytest.raises(InvalidToken) as info:
        tracker.decode_any(text)
    assert info.value.reason == reason


def test_not_text(tracker: Tracker) -> None:
    with pytest.raises(InvalidToken):
        tracker.decode_any(b"token")  # type: ignore[arg-type]


def test_a_forged_token_is_neither_kind(tracker: Tracker) -> None:
    forger = Tracker(secret_key="somebody else's key-0123456789ab")
    with pytest.raises(InvalidToken, match="Neither a click token"):
        tracker.decode_any(forger.click_token("https://evil.example/"))


HTML = '<p><a href="https://example.com/sale">Sale</a></p>'
MESSAGE = email.message_from_string(
    "Subject: hi\nContent-Type: text/html\n\n" + HTML,
    policy=email.policy.default,
)
# Each deprecated Tracker method, and the call that replaces it. time.time is
# fixed so that both make the same tokens.
WRAPPERS = [
    pytest.param(
        lambda tr: tr.track_html(HTML, {"a": 1}),
        lambda tr: rewrite.track_html(tr, HTML, {"a": 1}),
        id="track_html",
    ),
    pytest.param(
        lambda tr: tr.compile_html(HTML).render({"a": 1}),
        lambda tr: rewrite.HTMLTemplate(tr, HTML).render({"a": 1}),
        id="compile_html",
    ),
    pytest.param(
        lambda tr: tr.track_text("See https://example.com/sale", {"a": 1}),
        lambda tr: rewrite.track_text(tr, "See https://example.com/sale", {"a": 1}),
        id="track_text",
    ),
    pytest.param(
        lambda tr: tr.track_message(MESSAGE, {"a": 1}).as_string(),
        lambda tr: rewrite.track_message(tr, MESSAGE, {"a": 1}).as_string(),
        id="track_message",
    ),
    pytest.param(
        lambda tr: tr.match("/mailtrack/c/1abc"),
        lambda tr: web.match(tr, "/mailtrack/c/1abc"),
        id="match",
    ),
]


@pytest.mark.parametrize(("old", "new"), WRAPPERS)
def test_deprecated_wrappers_warn_and_give_the_same(
    tracker: Tracker,
    monkeypatch: pytest.MonkeyPatch,
    old: t.Callable[[Tracker], object],
    new: t.Callable[[Tracker], object],
) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000)
    with pytest.warns(DeprecationWarning, match="removed in flask_mailtrack 0.2"):
        deprecated = old(tracker)
    assert deprecated == new(tracker)


def test_deprecated_handle_answers_like_handle_request(tracker: Tracker) -> None:
    token = tracker.open_token({"a": 1})
    request = Request(EnvironBuilder(path=f"/mailtrack/o/{token}").get_environ())
    with pytest.warns(DeprecationWarning, match="Tracker.handle"):
        handled = tracker.handle(request, sender=None)
    assert handled.answer == web.handle_request(tracker, request, sender=None).answer
    assert handled.result is not None and handled.result.metadata == {"a": 1}


def test_deprecated_for_configuration_keeps_one_tracker(tracker: Tracker) -> None:
    configuration = tracker.configuration
    with pytest.warns(DeprecationWarning, match="for_configuration"):
        first = Tracker.for_configuration(configuration)
    with pytest.warns(DeprecationWarning):
        assert Tracker.for_configuration(configuration) is first
    assert "_tracker" not in vars(configuration)
