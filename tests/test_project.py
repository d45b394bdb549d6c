"""Consistency of the project itself: CI runs README's test command, and
every public name is importable."""

from __future__ import annotations

import importlib
import pathlib
import re
import subprocess
import sys

import flask_mailtrack
import pytest
from flask_mailtrack._moved import MOVED

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    """The shell commands README.md opens with, before its first section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    intro = readme[: readme.index("\n## ")]
    commands = re.findall(r"```(?:sh|bash|console)\n(.+?)\n```", intro, re.DOTALL)
    assert all("\n" not in command for command in commands)
    return [command.strip() for command in commands]


def test_readme_opens_with_the_main_command_then_the_test_command() -> None:
    main, tests = _readme_commands()[:2]
    assert main.startswith("pip install -e . && ")
    assert main.endswith("mailtrack serve --demo")
    assert tests.startswith("pip install -e '.[test]' && ")
    assert tests.endswith("pytest")


def test_readme_main_command_exists() -> None:
    from click.testing import CliRunner
    from flask_mailtrack.cli import main

    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    assert "--demo" in result.output


def test_ci_runs_readme_test_command_verbatim() -> None:
    command = _readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert command in ci.splitlines()


def test_ci_lints_and_checks_types() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "ruff check" in ci
    assert "mypy --strict flask_mailtrack" in ci


def test_every_public_name_is_importable() -> None:
    assert flask_mailtrack.__all__ == sorted(flask_mailtrack.__all__)
    assert len(set(flask_mailtrack.__all__)) == len(flask_mailtrack.__all__)
    namespace: dict[str, object] = {}
    exec(f"from flask_mailtrack import {', '.join(flask_mailtrack.__all__)}", namespace)
    for name in flask_mailtrack.__all__:
        assert namespace[name] is getattr(flask_mailtrack, name)


def test_design_names_are_public() -> None:
    for name in (
        "Configuration",
        "Tracker",
        "TrackingResult",
        "MailTrackError",
        "InvalidToken",
        "ExpiredToken",
        "email_opened",
        "link_clicked",
        "tracking_failed",
        "get_open_tracking_url",
        "get_click_tracking_url",
        "get_open_tracking_result",
        "get_click_tracking_result",
        "get_open_tracking_pixel",
        "get_open_tracking_url_path",
        "get_click_tracking_url_path",
        "adapt_html",
        "send_webhook",
    ):
        assert name in flask_mailtrack.__all__, name


# What a project that only makes links, or only wraps its WSGI app, loads.
_CORE_USE = """
import sys
import flask_mailtrack
from flask_mailtrack import Tracker, TrackingMiddleware
tracker = Tracker(
    secret_key="k" * 32,
    base_open_tracking_url="https://t.example.com/o/",
    base_click_tracking_url="https://t.example.com/c/",
)
tracker.decode_click(tracker.click_url("https://example.com/", {"a": 1}))
TrackingMiddleware(lambda environ, start_response: [], tracker=tracker)
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_core_does_not_load_flask_jinja_click_or_sqlite() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", _CORE_USE],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "flask_mailtrack" in loaded
    for name in ("flask", "jinja2", "click", "sqlite3", "_sqlite3"):
        assert name not in loaded, name


def test_no_version_attribute() -> None:
    assert not hasattr(flask_mailtrack, "__version__")


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()), ids=lambda p: p)
def test_moved_module_paths_still_import_with_a_warning(old: str, new: str) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=re.escape(old)):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    sys.modules.pop(old, None)
