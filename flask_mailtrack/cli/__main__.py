"""``python -m flask_mailtrack.cli``: the ``mailtrack`` command."""

from . import main

main()
