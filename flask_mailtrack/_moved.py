"""What moved in 0.1's development releases, kept working until 0.2.

Before the package was split into layers every module stood side by side
(``flask_mailtrack.html``, ``flask_mailtrack.handler``, ...). Importing one of
those paths still works: it gives the module that now holds the code, with a
:exc:`DeprecationWarning` naming the new path. The table below is the whole
list of moves.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import typing as t
import warnings

#: Old module path -> the module that holds its names now.
MOVED = {
    "flask_mailtrack.compat": "flask_mailtrack._pytracking",
    "flask_mailtrack.constants": "flask_mailtrack.configuration",
    "flask_mailtrack.encryption": "flask_mailtrack.tokens._encryption",
    "flask_mailtrack.signing": "flask_mailtrack.tokens._signing",
    "flask_mailtrack.payload": "flask_mailtrack.tokens._payload",
    "flask_mailtrack.legacy": "flask_mailtrack.tokens._pytracking",
    "flask_mailtrack.urls": "flask_mailtrack._urls",
    "flask_mailtrack.html": "flask_mailtrack.rewrite._html",
    "flask_mailtrack.text": "flask_mailtrack.rewrite._text",
    "flask_mailtrack.mime": "flask_mailtrack.rewrite._mime",
    "flask_mailtrack.links": "flask_mailtrack.rewrite._links",
    "flask_mailtrack.handler": "flask_mailtrack.web",
    "flask_mailtrack.clientinfo": "flask_mailtrack.web._clientinfo",
    "flask_mailtrack.middleware": "flask_mailtrack.web._middleware",
    "flask_mailtrack.pixel": "flask_mailtrack.web._pixel",
    "flask_mailtrack.machine": "flask_mailtrack.traffic",
    "flask_mailtrack.store": "flask_mailtrack.events",
    # Its Spool (internal, 0.1 development) is gone; its format functions stay.
    "flask_mailtrack.spool": "flask_mailtrack.events._journal_format",
    "flask_mailtrack.webhooks": "flask_mailtrack.events",
    "flask_mailtrack.receivers": "flask_mailtrack.events._from_settings",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers the old paths of :data:`MOVED` with the modules they moved to."""

    def find_spec(
        self,
        fullname: str,
        path: t.Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        new = MOVED[spec.name]
        warn_deprecated(
            repr(spec.name),
            f"import from {_public_home(new)!r} instead",
            stacklevel=_caller_level(),
        )
        module = importlib.import_module(new)
        # The import system now sets the module's __spec__ to the old path's;
        # exec_module puts its own back (a package's resources are found
        # through it).
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        # The module it stands for is already executed.
        spec = module.__spec__
        if spec is not None and spec.loader_state is not None:
            module.__spec__ = spec.loader_state


def warn_deprecated(what: str, instead: str, *, stacklevel: int = 2) -> None:
    """Warn that ``what`` goes away in 0.2 and say what to use ``instead``:
    the one wording of every deprecation in the package.

    :param stacklevel: As for :func:`warnings.warn`, counted from the caller
        of this function (2: the caller's caller).
    """
    warnings.warn(
        f"{what} is deprecated and will be removed in flask_mailtrack 0.2; {instead}.",
        DeprecationWarning,
        stacklevel=stacklevel + 1,
    )


def _public_home(module: str) -> str:
    # "flask_mailtrack.rewrite._html" -> "flask_mailtrack.rewrite"
    parts = module.split(".")
    while len(parts) > 1 and parts[-1].startswith("_"):
        parts.pop()
    return ".".join(parts)


def _caller_level() -> int:
    # Point the warning at the import statement, past importlib's frames.
    frame = sys._getframe(1)
    level = 1
    while frame is not None and (
        frame.f_code.co_filename.startswith("<frozen importlib")
        or frame.f_code.co_filename == __file__
    ):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def install() -> None:
    """Put the finder on :data:`sys.meta_path`, once."""
    if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
