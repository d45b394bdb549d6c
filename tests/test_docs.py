"""The documentation cannot rot: its code runs, and it names every setting,
public name, signal and command the code defines.

The Sphinx build itself (``sphinx-build -W``, warnings are errors) runs in
``.ci/run``, not here.

Code blocks: every ``.. code-block:: python`` of the pages in
:data:`TESTED_PAGES` is executed, in page order, in one namespace per page
(as a reader would paste them into one session). A block that cannot run
here is preceded by a comment saying why, ``.. skip-test: <reason>``.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pathlib
import re
import typing as t
import weakref

import click
import flask_mailtrack
import pytest
from flask_mailtrack import EventStore
from flask_mailtrack import signals
from flask_mailtrack import WebhookSender
from flask_mailtrack.cli import mailtrack_group
from flask_mailtrack.cli import main
from flask_mailtrack.configuration import ConfigKeys
from flask_mailtrack.configuration import Configuration
from flask_mailtrack.extension import DEFAULT_URL_PREFIX

DOCS = pathlib.Path(__file__).parents[1] / "docs"

#: Pages whose Python blocks are executed.
TESTED_PAGES = (
    "quickstart",
    "migrating",
    "flask",
    "rewriting",
    "signals",
    "webhooks",
    "store",
    "privacy",
    "machine",
    "wsgi",
    "django",
)

_CODE_BLOCK = re.compile(r"^(?P<indent>[ ]*)\.\. code-block:: python[ ]*$")
_SKIP = re.compile(r"^[ ]*\.\. skip-test: \S")


class CodeBlock(t.NamedTuple):
    line: int  # 1-based line of the first line of code
    source: str
    skipped: bool


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def code_blocks(path: pathlib.Path) -> list[CodeBlock]:
    """The ``.. code-block:: python`` blocks of a reST file, dedented."""
    lines = path.read_text("utf-8").splitlines()
    blocks = []
    for index, line in enumerate(lines):
        match = _CODE_BLOCK.match(line)
        if match is None:
            continue
        directive_indent = len(match.group("indent"))
        previous = [text for text in lines[:index] if text.strip()]
        skipped = bool(previous) and _SKIP.match(previous[-1]) is not None
        body_start = index + 1
        # Options (":linenos:") come first, then a blank line.
        while body_start < len(lines) and lines[body_start].strip().startswith(":"):
            body_start += 1
        end = body_start
        while end < len(lines) and (
            not lines[end].strip() or _indent(lines[end]) > directive_indent
        ):
            end += 1
        body = lines[body_start:end]
        first = next(i for i, text in enumerate(body) if text.strip())
        body = body[first:]
        width = min(_indent(text) for text in body if text.strip())
        source = "\n".join(text[width:] for text in body).rstrip() + "\n"
        blocks.append(CodeBlock(body_start + first + 1, source, skipped))
    return blocks


def _disconnect_namespace_receivers(namespace: dict[str, t.Any]) -> None:
    """Disconnect the receivers the page's code connected, so they do not
    outlive the test (blinker holds them weakly, but a cycle could keep the
    namespace alive until the next garbage collection)."""
    for signal in (
        signals.email_opened,
        signals.link_clicked,
        signals.tracking_failed,
        signals.webhook_failed,
    ):
        for receiver in list(signal.receivers.values()):
            function = receiver() if isinstance(receiver, weakref.ref) else receiver
            if getattr(function, "__globals__", None) is namespace:
                signal.disconnect(function)


# The pages' keys are placeholders ("change me: ..."), which warn on purpose
# when a reader copies them.
@pytest.mark.filterwarnings("ignore::flask_mailtrack.exceptions.WeakSecretKeyWarning")
@pytest.mark.parametrize("page", TESTED_PAGES)
def test_code_blocks_run(
    page: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = DOCS / f"{page}.rst"
    blocks = code_blocks(path)
    run = [block for block in blocks if not block.skipped]
    assert run, f"{path.name} has no runnable Python block"
    # Blocks that write files (an SQLite store, an outbox) write them here.
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, t.Any] = {"__name__": f"docs_{page}"}
    try:
        for block in run:
            # Padding makes tracebacks point at the line in the .rst file.
            code = compile("\n" * (block.line - 1) + block.source, str(path), "exec")
            exec(code, namespace)
    finally:
        _disconnect_namespace_receivers(namespace)
        for value in list(namespace.values()):
            if isinstance(value, (EventStore, WebhookSender)):
                value.disconnect()


def test_skipped_blocks_are_few() -> None:
    """Skipping is for code that needs what a test cannot have (a Django
    project, a running broker); most examples must run."""
    for page in TESTED_PAGES:
        blocks = code_blocks(DOCS / f"{page}.rst")
        skipped = sum(block.skipped for block in blocks)
        assert skipped <= len(blocks) // 2, page


def _pytracking_names() -> set[str]:
    """The public names of pytracking 0.2.2: its modules' functions and
    classes, their methods, and the ``Configuration`` keywords. Read from
    the source, so that the Django module need not be imported."""
    pytracking = pytest.importorskip("pytracking")
    root = pathlib.Path(pytracking.__file__).parent
    names = set(pytracking.__all__)
    for module in ("tracking", "django", "html", "webhook"):
        tree = ast.parse((root / f"{module}.py").read_text("utf-8"))
        for node in tree.body:
            if not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                continue
            if not node.name.startswith("_"):
                names.add(node.name)
            if isinstance(node, ast.ClassDef):
                names.update(
                    item.name
                    for item in node.body
                    if isinstance(item, ast.FunctionDef)
                    and not item.name.startswith("_")
                )
    parameters = inspect.signature(pytracking.Configuration).parameters
    names.update(name for name in parameters if name != "kwargs")
    # The Django views' HTTP handler, covered by the views' rows.
    names.discard("get")
    return names


def test_migration_guide_names_every_pytracking_name() -> None:
    text = (DOCS / "migrating.rst").read_text("utf-8")
    names = _pytracking_names()
    assert {"OpenTrackingView", "notify_decoding_error", "append_slash"} <= names
    missing = [
        name
        for name in sorted(names)
        if not re.search(r"``[^`]*\b" + re.escape(name) + r"\b[^`]*``", text)
    ]
    assert missing == []


def test_code_block_extraction() -> None:
    blocks = code_blocks(DOCS / "quickstart.rst")
    assert blocks[0].source.startswith("from flask import Flask\n")
    assert any(block.skipped for block in blocks)


def _sources() -> str:
    return "\n".join(path.read_text("utf-8") for path in sorted(DOCS.glob("*.rst"))) + (
        DOCS.parent / "CHANGES.rst"
    ).read_text("utf-8")


def config_keys() -> set[str]:
    """Every ``MAILTRACK_*`` key the code defines."""
    adapter = {
        value
        for name, value in vars(ConfigKeys).items()
        if name.isupper() and isinstance(value, str)
    }
    fields = {
        "MAILTRACK_" + field.name.upper() for field in dataclasses.fields(Configuration)
    }
    return adapter | fields


def _data_entries(text: str) -> dict[str, str]:
    """``.. data:: NAME`` entries and their ``:value:`` option ("" if none)."""
    entries = {}
    for match in re.finditer(
        r"^\.\. data:: (\S+)\n((?:[ ]+:\w+:.*\n)*)", text, flags=re.MULTILINE
    ):
        value = re.search(r":value: (.*)", match.group(2))
        entries[match.group(1)] = value.group(1).strip() if value else ""
    return entries


def test_config_keys_derived_from_code() -> None:
    keys = config_keys()
    assert "MAILTRACK_SECRET_KEY" in keys
    assert "MAILTRACK_URL_PREFIX" in keys
    assert "MAILTRACK_MAX_AGE" in keys
    assert all(ConfigKeys.is_known(key) for key in keys)


def test_every_config_key_documented() -> None:
    entries = _data_entries((DOCS / "config.rst").read_text("utf-8"))
    documented = {name for name in entries if name.startswith("MAILTRACK_")}
    keys = config_keys()
    assert sorted(keys - documented) == [], "undocumented settings"
    assert sorted(documented - keys) == [], "documented settings that do not exist"


#: Keys whose default is not the Configuration field's default (an adapter
#: supplies one), with the ``:value:`` the docs give instead.
_ADAPTER_DEFAULTS = {"MAILTRACK_SECRET_KEY": "SECRET_KEY"}


def test_config_defaults_match_code() -> None:
    entries = _data_entries((DOCS / "config.rst").read_text("utf-8"))
    for field in dataclasses.fields(Configuration):
        key = "MAILTRACK_" + field.name.upper()
        expected = _ADAPTER_DEFAULTS.get(key, repr(field.default))
        assert entries[key] == expected, key


def test_adapter_defaults_match_code() -> None:
    entries = _data_entries((DOCS / "config.rst").read_text("utf-8"))
    assert entries[ConfigKeys.URL_PREFIX] == repr(DEFAULT_URL_PREFIX)
    for key in (ConfigKeys.BASE_URL, ConfigKeys.DATABASE, ConfigKeys.WEBHOOK_SECRET):
        assert entries[key] == "None", key


def test_every_public_name_documented() -> None:
    text = _sources()
    directive = r"^\s*\.\. (?:auto)?(?:class|function|data|exception|method)::"
    for name in flask_mailtrack.__all__:
        pattern = directive + r"\s+(?:flask_mailtrack\.)?" + re.escape(name) + r"\b"
        assert re.search(pattern, text, flags=re.MULTILINE), name


# The public subpackages and modules; each documents its ``__all__`` on the
# API page, or on the page named here.
PUBLIC_MODULES = {
    "flask_mailtrack.configuration": "api.rst",
    "flask_mailtrack.exceptions": "api.rst",
    "flask_mailtrack.tokens": "api.rst",
    "flask_mailtrack.rewrite": "api.rst",
    "flask_mailtrack.web": "api.rst",
    "flask_mailtrack.events": "api.rst",
    "flask_mailtrack.extension": "api.rst",
    "flask_mailtrack.django": "api.rst",
    "flask_mailtrack.outgoing": "api.rst",
    "flask_mailtrack.flask_mail": "api.rst",
    "flask_mailtrack.server": "api.rst",
    "flask_mailtrack.traffic": "machine.rst",
    "flask_mailtrack.cli": "cli.rst",
    "flask_mailtrack.signals": "signals_reference.rst",
}


def _documented_members(text: str, module: str) -> set[str] | None:
    """The members an ``automodule`` of ``module`` documents: ``None`` for all
    of ``__all__`` (a bare ``:members:``), else the names listed."""
    found = re.search(
        rf"^\.\. automodule:: {re.escape(module)}\n((?:    .*\n|\n)*)",
        text,
        flags=re.MULTILINE,
    )
    if found is None:
        return set()
    options = found[1]
    listed = re.search(r":members:(.*(?:\n        .*)*)", options)
    if listed is None:
        return set()
    names = set(re.findall(r"\w+", listed[1]))
    return names or None


@pytest.mark.parametrize(("module", "page"), sorted(PUBLIC_MODULES.items()))
def test_every_public_subpackage_name_documented(module: str, page: str) -> None:
    names = importlib.import_module(module).__all__
    text = (DOCS / page).read_text("utf-8")
    members = _documented_members(text, module)
    if members is None:
        return  # ":members:" alone documents the whole __all__
    everywhere = _sources()
    directive = r"^\s*\.\. (?:auto)?(?:class|function|data|exception|method)::\s+"
    for name in names:
        short = rf"(?:flask_mailtrack\.)?{re.escape(name)}\b"
        full = rf"{re.escape(module)}\.{re.escape(name)}\b"
        assert (
            name in members
            or re.search(directive + full, everywhere, flags=re.MULTILINE)
            or re.search(directive + short, everywhere, flags=re.MULTILINE)
        ), f"{module}.{name} is not documented"


def test_every_signal_documented() -> None:
    text = (DOCS / "signals_reference.rst").read_text("utf-8")
    names = [
        name
        for name, value in vars(signals).items()
        if type(value).__name__ == "NamedSignal"
    ]
    assert "email_opened" in names
    for name in names:
        assert re.search(rf"^\.\. data:: {name}$", text, flags=re.MULTILINE), name


def _commands(group: click.Group) -> dict[str, click.Command]:
    return dict(group.commands)


def test_every_command_and_option_documented() -> None:
    text = (DOCS / "cli.rst").read_text("utf-8")
    for prefix, group in (("mailtrack", main), ("flask mailtrack", mailtrack_group)):
        for name, command in _commands(group).items():
            assert f"``{prefix} {name}" in text or f"{prefix} {name}" in text, name
            for param in command.params:
                for option in param.opts:
                    if option.startswith("--"):
                        assert f"{option}" in text, f"{name} {option}"


@pytest.mark.parametrize("page", ["quickstart", "migrating", "deployment"])
def test_shell_commands_exist(page: str) -> None:
    """``$ mailtrack NAME`` lines name real commands."""
    text = (DOCS / f"{page}.rst").read_text("utf-8")
    for name in re.findall(r"\$ (?:flask )?mailtrack ([a-z]+)", text):
        assert name in _commands(main) or name in _commands(mailtrack_group), name
