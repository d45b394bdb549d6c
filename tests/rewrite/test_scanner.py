"""The byte-preserving scanner on inputs built to make a backtracking regular
expression or a quadratic scan take forever."""

from __future__ import annotations

import typing as t

import pytest
from flask_mailtrack import Tracker
from flask_mailtrack.rewrite import track_html

MEGABYTE = 1_000_000

#: Inputs of 1 MB built to make a backtracking regular expression or a
#: quadratic scan take forever. They must simply complete; their speed is
#: not asserted (the machine is noisy), but each takes seconds at most.
WORST_HTML = [
    pytest.param("<" * MEGABYTE, id="lt"),
    pytest.param("<a " * (MEGABYTE // 3), id="open-tags"),
    pytest.param("<a href=" * (MEGABYTE // 8), id="open-hrefs"),
    pytest.param('<a href="' + "x" * MEGABYTE, id="unclosed-value"),
    pytest.param("<a " + "b " * (MEGABYTE // 2), id="attributes"),
    pytest.param("<a" + " " * MEGABYTE + "href", id="whitespace"),
    pytest.param("<!--[if mso]>" * (MEGABYTE // 13), id="conditionals"),
    pytest.param("<v:" * (MEGABYTE // 3), id="vml"),
    pytest.param("<a href=https://x.example/ " * (MEGABYTE // 26), id="unquoted"),
    pytest.param(b"<meta charset" * (MEGABYTE // 13), id="meta-charset"),
]


def _mt_middleware(**extra: t.Any) -> t.Any:
    """A tracker on ``/mt/o/`` and ``/mt/c/`` and a test client of a
    TrackingMiddleware serving it."""
    from flask_mailtrack import TrackingMiddleware
    from werkzeug.test import Client

    def fallback(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b""]

    tracker = Tracker(
        secret_key="review-secret-key-0123456789abcdef",
        base_open_tracking_url="https://t.example.com/mt/o/",
        base_click_tracking_url="https://t.example.com/mt/c/",
        **extra,
    )
    return tracker, Client(TrackingMiddleware(fallback, tracker=tracker))


@pytest.mark.parametrize("document", WORST_HTML)
def test_rewriter_worst_case_inputs_complete(document: str | bytes) -> None:
    tracker, _ = _mt_middleware()
    tracked = track_html(tracker, document)
    assert len(tracked) >= len(document)
