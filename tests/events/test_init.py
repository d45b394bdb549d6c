"""flask_mailtrack.events: its public names, and the 0.1 development paths
of its modules (flask_mailtrack.webhooks, .store, .spool) keeping theirs."""

from __future__ import annotations

import importlib
import re
import sys

import flask_mailtrack
import flask_mailtrack.events as events
import pytest

#: What each old path documented (docs/api.rst before the subpackages).
DOCUMENTED = {
    # Every name of the package but the store's.
    "flask_mailtrack.webhooks": sorted(
        set(events.__all__) - {"EventStore", "CSV_COLUMNS"}
    ),
    "flask_mailtrack.store": ["EventStore", "CSV_COLUMNS"],
    # Spool was internal in 0.1's development releases and is gone (the
    # journal and the worker replaced it); the format functions stay.
    "flask_mailtrack.spool": ["frame", "unframe", "read_records"],
}


def test_all_names_are_there() -> None:
    for name in events.__all__:
        assert getattr(events, name) is not None, name
    for name in ("EventStore", "WebhookSender", "send_webhook", "verify_webhook"):
        assert getattr(flask_mailtrack, name) is getattr(events, name)


@pytest.mark.parametrize("old", sorted(DOCUMENTED))
def test_old_paths_keep_their_documented_names(old: str) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=re.escape(old)):
        module = importlib.import_module(old)
    sys.modules.pop(old, None)
    for name in DOCUMENTED[old]:
        assert hasattr(module, name), f"{old}.{name}"
