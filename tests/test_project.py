"""Consistency of the project itself: CI runs README's test command, and
every public name is importable."""

from __future__ import annotations

import importlib
import pathlib
import re

import flask_mailtrack

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```(?:sh|bash|console)?\n(.+?)\n```", readme)
    assert match is not None, "README.md must open with the test command"
    assert readme.index(match.group(0)) < readme.index("\n## "), (
        "the test command must come before the first section"
    )
    command = match.group(1).strip()
    assert "\n" not in command and "pytest" in command
    return command


def test_ci_runs_readme_test_command_verbatim() -> None:
    command = _readme_test_command()
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
    ):
        assert name in flask_mailtrack.__all__, name


def test_core_modules_do_not_import_flask() -> None:
    for module in ("tokens", "payload", "signing", "encryption", "legacy", "urls"):
        source = (ROOT / "flask_mailtrack" / f"{module}.py").read_text("utf-8")
        assert not re.search(r"^\s*(from|import) flask\b", source, re.M), module
        importlib.import_module(f"flask_mailtrack.{module}")


def test_no_version_attribute() -> None:
    assert not hasattr(flask_mailtrack, "__version__")
