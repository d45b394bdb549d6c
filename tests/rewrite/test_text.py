from __future__ import annotations

import re
import typing as t

import flask_mailtrack.tracker
import pytest
from flask_mailtrack import Tracker
from flask_mailtrack.rewrite import track_text

from _apps import mt_middleware

CLICK_BASE = "https://t.example.com/c/"
METADATA = {"recipient": 7}
_TRACKED = re.compile(re.escape(CLICK_BASE) + r"[0-9A-Za-z_-]+")


@pytest.fixture
def tracker(monkeypatch: pytest.MonkeyPatch) -> Tracker:
    monkeypatch.setattr(flask_mailtrack.tracker.time, "time", lambda: 1_800_000_000)
    return Tracker(
        secret_key="text-secret-key-0123456789-01234",
        base_open_tracking_url="https://t.example.com/o/",
        base_click_tracking_url=CLICK_BASE,
    )


def expand(tracker: Tracker, expected: str) -> str:
    return re.sub(
        r"@@(.*?)@@", lambda m: tracker.click_url(m.group(1), METADATA), expected
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "Visit https://example.com/a today",
            "Visit @@https://example.com/a@@ today",
            id="bare",
        ),
        pytest.param(
            "See https://example.com/a.", "See @@https://example.com/a@@.", id="period"
        ),
        pytest.param(
            "https://example.com/?a=1&b=2, then",
            "@@https://example.com/?a=1&b=2@@, then",
            id="comma-and-query",
        ),
        pytest.param(
            "Really? https://example.com/!?",
            "Really? @@https://example.com/@@!?",
            id="trailing-marks",
        ),
        pytest.param(
            "(see https://example.com/a)",
            "(see @@https://example.com/a@@)",
            id="parenthesised",
        ),
        pytest.param(
            "(https://en.wikipedia.org/wiki/Mail_(disambiguation))",
            "(@@https://en.wikipedia.org/wiki/Mail_(disambiguation)@@)",
            id="balanced-parentheses-kept",
        ),
        pytest.param(
            "<https://example.com/x>", "<@@https://example.com/x@@>", id="angle-wrapper"
        ),
        pytest.param(
            'Link: "https://example.com/q"',
            'Link: "@@https://example.com/q@@"',
            id="quoted",
        ),
        pytest.param(
            "HTTP://EXAMPLE.COM/A\n", "@@HTTP://EXAMPLE.COM/A@@\n", id="upper-case"
        ),
        pytest.param(
            "a https://example.com/x\nb https://example.com/y",
            "a @@https://example.com/x@@\nb @@https://example.com/y@@",
            id="lines",
        ),
        pytest.param(
            "[https://example.com/]", "[@@https://example.com/@@]", id="brackets"
        ),
        pytest.param(
            "Café → https://example.com/é …",
            "Café → @@https://example.com/é@@ …",
            id="unicode",
        ),
    ],
)
def test_tracked(tracker: Tracker, source: str, expected: str) -> None:
    output = track_text(tracker, source, METADATA)
    assert output == expand(tracker, expected)
    assert track_text(tracker, output, METADATA) == output


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("No links here.", id="none"),
        pytest.param("", id="empty"),
        pytest.param("mailto:a@example.com tel:+1555", id="other-schemes"),
        pytest.param("xhttps://example.com/", id="inside-word"),
        pytest.param("www.example.com and example.com/x", id="no-scheme"),
        pytest.param("https://", id="no-host"),
        pytest.param("Leave: https://example.com/unsubscribe?u=1", id="unsubscribe"),
        pytest.param("https://example.com/?u={{id}}", id="merge-tag"),
        pytest.param("https://example.com/{{ id }}", id="merge-tag-spaced"),
        pytest.param("https://example.com/*|EMAIL|*", id="mailchimp"),
        pytest.param("https://example.com/?r=%recipient%", id="mailgun"),
        pytest.param("Tracked already: https://t.example.com/c/1abc", id="tracked"),
        pytest.param("https://user@example.com/", id="userinfo"),
    ],
)
def test_untouched(tracker: Tracker, source: str) -> None:
    assert track_text(tracker, source, METADATA) == source


def test_one_token_per_distinct_url(tracker: Tracker) -> None:
    output = track_text(
        tracker,
        "https://example.com/a https://example.com/b https://example.com/a",
        METADATA,
    )
    first, second, third = _TRACKED.findall(output)
    assert first == third != second
    assert tracker.decode_click(second).tracked_url == "https://example.com/b"
    assert tracker.decode_click(first).metadata == METADATA


def test_utm_params(tracker: Tracker) -> None:
    output = track_text(
        tracker,
        "Go https://example.com/?id=1.",
        METADATA,
        utm_params={"utm_medium": "email"},
    )
    (url,) = _TRACKED.findall(output)
    assert output.endswith(url + ".")
    assert tracker.decode_click(url).tracked_url == (
        "https://example.com/?id=1&utm_medium=email"
    )


def test_errors(tracker: Tracker) -> None:
    with pytest.raises(TypeError):
        track_text(tracker, b"https://example.com/", METADATA)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        track_text(tracker, "https://example.com/", t.cast(t.Any, 5))


def test_long_text_finishes(tracker: Tracker) -> None:
    source = (
        "https://" * 150_000 + "(" * 100_000 + "https://example.com/" + ")" * 100_000
    )
    output = track_text(tracker, source, METADATA)
    assert output.startswith("https://" * 1000)
    source = "(https://example.com/" + ")." * 500_000
    output = track_text(tracker, source, METADATA)
    assert output.endswith(")." * 500_000)
    assert _TRACKED.search(output)


# -- worst-case inputs complete ------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("http://" + "a" * 1_000_000, id="long-url"),
        pytest.param("http://a " * (1_000_000 // 9), id="many-urls"),
        pytest.param("http://a/" + "(" * 1_000_000, id="brackets"),
        pytest.param("http://a/" + "." * 1_000_000, id="trailing"),
    ],
)
def test_text_rewriter_worst_case_inputs_complete(text: str) -> None:
    tracker, _ = mt_middleware()
    tracked = track_text(tracker, text)
    assert tracked.startswith("https://t.example.com/mt/c/")
