"""The rewriters take a :class:`~flask_mailtrack.rewrite.LinkMaker`, not a
:class:`~flask_mailtrack.Tracker`: any object with its members works, and
no module of the package imports the tracker."""

from __future__ import annotations

import ast
import importlib
import pathlib
import sys
import typing as t
from email.message import EmailMessage

import flask_mailtrack.rewrite
import pytest
from flask_mailtrack import Tracker
from flask_mailtrack.rewrite import HTMLTemplate
from flask_mailtrack.rewrite import LinkMaker
from flask_mailtrack.rewrite import track_html
from flask_mailtrack.rewrite import track_message
from flask_mailtrack.rewrite import track_text
from flask_mailtrack.rewrite._link_maker import Metadata

PACKAGE = pathlib.Path(flask_mailtrack.rewrite.__file__).parent


class CountingLinkMaker:
    """A link maker that is not a Tracker: it hands the work to one and
    counts what the rewriters ask of it."""

    def __init__(self, tracker: Tracker) -> None:
        self._tracker = tracker
        self.configuration = tracker.configuration
        self.open_base = tracker.open_base
        self.click_base = tracker.click_base
        self.calls: list[str] = []

    def open_token(self, metadata: Metadata = None) -> str:
        self.calls.append("open_token")
        return self._tracker.open_token(metadata)

    def click_tokens(
        self, urls: t.Iterable[str], metadata: Metadata = None
    ) -> list[str]:
        self.calls.append("click_tokens")
        return self._tracker.click_tokens(urls, metadata)

    def click_url(self, url: str, metadata: Metadata = None) -> str:
        self.calls.append("click_url")
        return self._tracker.click_url(url, metadata)


@pytest.fixture
def maker(tracker: Tracker) -> CountingLinkMaker:
    return CountingLinkMaker(tracker)


def test_a_tracker_is_a_link_maker(tracker: Tracker) -> None:
    # mypy checks it wherever the package passes a tracker; this is the
    # same check at run time, member by member.
    members = {
        name
        for name in vars(LinkMaker)
        if not name.startswith("_") and name not in dir(t.Protocol)
    }
    assert members == {
        "configuration",
        "open_base",
        "click_base",
        "open_token",
        "click_tokens",
        "click_url",
    }
    for name in members:
        assert hasattr(tracker, name), name


def test_html_with_a_link_maker(tracker: Tracker, maker: CountingLinkMaker) -> None:
    html = '<a href="https://example.com/a">a</a><a href="https://example.com/b">b</a>'
    tracked = t.cast(str, track_html(maker, html, {"to": 1}))
    assert maker.calls == ["click_tokens", "open_token"]
    links = [part for part in tracked.split('"') if part.startswith("http")]
    assert [tracker.decode_click(link).tracked_url for link in links[:2]] == [
        "https://example.com/a",
        "https://example.com/b",
    ]
    assert tracker.decode_open(links[2]).metadata == {"to": 1}
    template = HTMLTemplate(maker, html, open_tracking=False)
    assert template.urls == ("https://example.com/a", "https://example.com/b")


def test_text_and_message_with_a_link_maker(
    tracker: Tracker, maker: CountingLinkMaker
) -> None:
    text = "See https://example.com/a and https://example.com/a."
    tracked = track_text(maker, text, {"to": 2})
    assert maker.calls == ["click_url"]
    link = tracked.split()[1]
    assert tracker.decode_click(link).tracked_url == "https://example.com/a"

    message = EmailMessage()
    message.set_content(text)
    message.add_alternative('<a href="https://example.com/b">b</a>', subtype="html")
    copy = track_message(maker, message, {"to": 3}, track_text=True)
    assert "https://example.com/b" not in str(copy.get_body(("html",)))
    assert maker.calls[1:] == ["click_url", "click_tokens", "open_token"]


def _imported_modules(path: pathlib.Path) -> t.Iterator[str]:
    """Every module ``path`` imports, as an absolute name, including
    imports under ``if TYPE_CHECKING:`` and inside functions."""
    package = "flask_mailtrack.rewrite"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            prefix = ".".join(base) if node.level else ""
            name = node.module or ""
            yield f"{prefix}.{name}".strip(".") if node.level else name


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.glob("*.py")), ids=lambda path: path.name
)
def test_rewrite_never_imports_the_tracker(path: pathlib.Path) -> None:
    for module in _imported_modules(path):
        assert not module.startswith("flask_mailtrack.tracker"), module
        assert module != "flask_mailtrack", module


def test_public_names() -> None:
    names = flask_mailtrack.rewrite.__all__
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(flask_mailtrack.rewrite, name) is not None
    for name in ("LinkMaker", "LinkPolicy", "has_merge_tag", "add_query_params"):
        assert name in names


@pytest.mark.parametrize(
    ("old", "names"),
    [
        (
            "flask_mailtrack.html",
            ["HTMLTemplate", "track_html", "OPT_OUT_ATTRIBUTE", "PIXEL_ATTRIBUTES"],
        ),
        (
            "flask_mailtrack.links",
            ["LinkPolicy", "has_merge_tag", "add_query_params", "clean_url"],
        ),
    ],
)
def test_old_paths_keep_their_names(old: str, names: list[str]) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match="flask_mailtrack.rewrite"):
        module = importlib.import_module(old)
    sys.modules.pop(old, None)
    for name in names:
        assert getattr(module, name) is getattr(
            flask_mailtrack.rewrite, name, getattr(module, name)
        )
