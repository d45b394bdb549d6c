"""The documentation's front page shows its title."""

from __future__ import annotations

import pathlib

INDEX = pathlib.Path(__file__).parents[1] / "docs" / "index.rst"


def test_index_opens_with_a_visible_title() -> None:
    lines = INDEX.read_text("utf-8").splitlines()
    # The theme's "hide-header" class hid the title (Pallets projects put a
    # logo in its place; this one has none), leaving the page without one.
    assert "hide-header" not in INDEX.read_text("utf-8")
    title, underline = lines[0], lines[1]
    assert title == "flask_mailtrack"
    assert underline == "=" * len(title)
