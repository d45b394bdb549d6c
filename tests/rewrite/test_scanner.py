"""The byte-preserving scanner on inputs built to make a backtracking regular
expression or a quadratic scan take forever."""

from __future__ import annotations

import pytest
from flask_mailtrack.rewrite import track_html

from _apps import mt_middleware

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


@pytest.mark.parametrize("document", WORST_HTML)
def test_rewriter_worst_case_inputs_complete(document: str | bytes) -> None:
    tracker, _ = mt_middleware()
    tracked = track_html(tracker, document)
    assert len(tracked) >= len(document)
