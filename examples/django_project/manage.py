"""Django's command line for the example project, run from the
``examples`` directory::

    pip install -e '.[examples]'       # from the project root
    cd examples
    python -m django_project.manage runserver --port 8000 --noreload

``--port`` (or the environment variable ``EXAMPLE_PORT``; default 8000)
is the port ``runserver`` listens on, and the one the tracking links are
made on unless ``MAILTRACK_BASE_URL`` is set: another port lets the project
run next to ``mailtrack serve --demo``, which also listens on 8000.
"""

from __future__ import annotations

import os
import sys


def take_port(argv: list[str]) -> str:
    """The value of ``--port N`` or ``--port=N``, removed from ``argv``
    (Django's ``runserver`` does not know the option); else
    ``EXAMPLE_PORT``, else 8000."""
    port = os.environ.get("EXAMPLE_PORT", "8000")
    for index, arg in enumerate(argv):
        if arg == "--port" and index + 1 < len(argv):
            port = argv[index + 1]
            del argv[index : index + 2]
            break
        if arg.startswith("--port="):
            port = arg.partition("=")[2]
            del argv[index]
            break
    if not port.isdigit():
        sys.exit(f"--port: not a port number: {port!r}")
    return port


if __name__ == "__main__":
    argv = list(sys.argv)
    port = take_port(argv)
    # Read by settings.py, imported below.
    os.environ.setdefault("MAILTRACK_BASE_URL", f"http://127.0.0.1:{port}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_project.settings")
    from django.core.management import execute_from_command_line
    from django.core.management.commands import runserver

    runserver.Command.default_port = port
    execute_from_command_line(argv)
