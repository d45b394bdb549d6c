"""Tracker.decode_any: links of either kind, on any host."""

from __future__ import annotations

import pytest
from flask_mailtrack import InvalidToken
from flask_mailtrack import Tracker

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
