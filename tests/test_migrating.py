"""The migration guide's table of pytracking names matches the code.

Every public name of the installed pytracking 0.2.2 (read from its modules,
not copied by hand) is either importable from ``flask_mailtrack`` or listed
in ``docs/migrating.rst`` as *Gone*, with the reason; and the table lists
nothing else. A name said to be gone must not be importable either, so the
guide cannot fall behind the code in either direction.
"""

from __future__ import annotations

import importlib
import inspect
import pathlib
import re
import types
import typing as t

import flask_mailtrack
import pytest

GUIDE = pathlib.Path(__file__).parents[1] / "docs" / "migrating.rst"

#: pytracking's modules covered by the "Functions and classes" table.
#: (``pytracking.django`` has its own table, in the Django section.)
MODULES = ("pytracking", "pytracking.tracking", "pytracking.html", "pytracking.webhook")


def pytracking_names() -> set[str]:
    """pytracking's public names, spelt as the guide's first column spells
    them: ``name`` for the package's own names, ``module.name`` for the
    other modules' names, ``Class.method`` for the methods of its classes.
    """
    package = importlib.import_module("pytracking")
    names: set[str] = set()
    classes: list[tuple[str, type]] = []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        prefix = module_name.removeprefix("pytracking").lstrip(".")
        public = getattr(module, "__all__", None)
        for name, value in vars(module).items():
            if name.startswith("_") or isinstance(value, types.ModuleType):
                continue
            if public is not None and name not in public:
                continue
            # Names a module imports from elsewhere are not its own.
            home = getattr(value, "__module__", None)
            if public is None and home is not None and home != module_name:
                continue
            if getattr(package, name, None) is value:
                qualified = name  # re-exported by the package: its spelling
            else:
                qualified = f"{prefix}.{name}" if prefix else name
            names.add(qualified)
            if inspect.isclass(value) and not issubclass(value, tuple):
                classes.append((qualified, value))
    for qualified, cls in classes:
        for name, value in vars(cls).items():
            if not name.startswith("_") and inspect.isfunction(value):
                names.add(f"{qualified}.{name}")
    return names


def guide_rows() -> dict[str, bool]:
    """The names of the "Functions and classes" table: name -> gone?"""
    text = GUIDE.read_text("utf-8")
    section = text.split("Functions and classes\n~~~~", 1)[1]
    section = re.split(r"\n[^\n]+\n~{4,}\n", section, maxsplit=1)[0]
    table = section.split(".. list-table::", 1)[1]
    rows: dict[str, bool] = {}
    cells: list[list[str]] = []
    for line in table.splitlines():
        if line.startswith("    * - "):
            cells.append([line[8:]])
        elif line.startswith("      - ") and cells:
            cells[-1].append(line[8:])
        elif line.startswith("        ") and cells:
            cells[-1][-1] += " " + line.strip()
        elif line.strip() and not line.startswith("    :") and cells:
            break  # the text after the table
    assert cells and cells[0] == ["``pytracking``", "``flask_mailtrack``"]
    for first, second in cells[1:]:
        gone = second.startswith("Gone:")
        for name in re.findall(r"``([^`]+?)(?:\(\))?``", first):
            assert name not in rows, f"{name} is listed twice"
            rows[name] = gone
    return rows


def importable(name: str) -> bool:
    """Whether the name's counterpart is importable from flask_mailtrack:
    ``html.adapt_html`` as ``flask_mailtrack.adapt_html``, a method as an
    attribute of the class of the same name."""
    *owner, attribute = name.split(".")
    if owner and owner[0][:1].isupper():
        target: t.Any = getattr(flask_mailtrack, owner[0], None)
        return target is not None and hasattr(target, attribute)
    return hasattr(flask_mailtrack, attribute)


def test_every_pytracking_name_is_in_the_guide() -> None:
    names = pytracking_names()
    rows = guide_rows()
    assert sorted(names - rows.keys()) == [], "not in docs/migrating.rst"
    assert sorted(rows.keys() - names) == [], "not a pytracking name"


@pytest.mark.parametrize("name", sorted(pytracking_names()))
def test_guide_says_what_the_code_does(name: str) -> None:
    gone = guide_rows()[name]
    if gone:
        assert not importable(name), f"{name}: the guide says gone, the code has it"
    else:
        assert importable(name), f"{name}: the guide says kept, the code lacks it"


def test_the_names_are_read_from_pytracking() -> None:
    # The reading above finds what pytracking 0.2.2 is known to have, so a
    # change of pytracking's layout cannot empty the check silently.
    names = pytracking_names()
    for name in (
        "get_open_tracking_url_path",
        "TRACKING_PIXEL",
        "Configuration.merge_with_kwargs",
        "TrackingResult.to_json_dict",
        "tracking.get_configuration",
        "html.adapt_html",
        "webhook.send_webhook",
    ):
        assert name in names
    assert "tracking.Fernet" not in names and "html.get_configuration" not in names


def test_every_pytracking_django_name_is_in_flask_mailtrack_django() -> None:
    # pytracking.django reads django.conf.settings lazily; its names are read
    # without touching that object.
    theirs = importlib.import_module("pytracking.django")
    ours = importlib.import_module("flask_mailtrack.django")
    names = [
        name
        for name, value in list(vars(theirs).items())
        if not name.startswith("_")
        # type() only: isinstance() would read the lazy settings' __class__.
        and (issubclass(type(value), type) or type(value) is types.FunctionType)
        and value.__module__ == theirs.__name__
    ]
    assert {"TrackingView", "OpenTrackingView", "get_tracking_result"} <= set(names)
    for name in names:
        value = getattr(theirs, name)
        counterpart = getattr(ours, name, None)
        assert counterpart is not None, name
        assert name in ours.__all__, name
        if inspect.isclass(value):
            for method, function in vars(value).items():
                if inspect.isfunction(function) and not method.startswith("_"):
                    assert callable(getattr(counterpart, method, None)), method
        else:
            theirs_params = list(inspect.signature(value).parameters)
            ours_params = list(inspect.signature(counterpart).parameters)
            assert ours_params[: len(theirs_params)] == theirs_params, name
