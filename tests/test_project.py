"""Consistency of the project itself: CI runs README's test command, and
every public name is importable."""

from __future__ import annotations

import importlib
import pathlib
import re

import flask_mailtrack

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
    ):
        assert name in flask_mailtrack.__all__, name


def test_core_modules_do_not_import_flask() -> None:
    for module in ("tokens", "payload", "signing", "encryption", "legacy", "urls"):
        source = (ROOT / "flask_mailtrack" / f"{module}.py").read_text("utf-8")
        assert not re.search(r"^\s*(from|import) flask\b", source, re.M), module
        importlib.import_module(f"flask_mailtrack.{module}")


def test_no_version_attribute() -> None:
    assert not hasattr(flask_mailtrack, "__version__")
