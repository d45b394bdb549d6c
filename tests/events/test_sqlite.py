"""The SQLite files of the event store and the webhook outbox: private modes,
no symbolic links."""

from __future__ import annotations

import typing as t

import pytest


@pytest.mark.parametrize("kind", ["store", "outbox"])
def test_database_files_are_private(tmp_path: t.Any, kind: str) -> None:
    import os
    import stat

    from flask_mailtrack import EventStore
    from flask_mailtrack import WebhookSender

    path = tmp_path / "new" / "data.sqlite3"
    old_umask = os.umask(0o022)
    try:
        if kind == "store":
            EventStore(path).close()
        else:
            WebhookSender(
                "https://hooks.example.com/", secret=b"k" * 32, outbox_path=path
            ).close()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    for file in path.parent.iterdir():
        assert stat.S_IMODE(os.stat(file).st_mode) == 0o600, file.name


def test_database_path_that_is_a_symlink_is_refused(tmp_path: t.Any) -> None:
    from flask_mailtrack import EventStore

    target = tmp_path / "elsewhere.sqlite3"
    link = tmp_path / "events.sqlite3"
    link.symlink_to(target)
    with pytest.raises(ValueError, match="symbolic link"):
        EventStore(link)
    assert not target.exists()


def test_existing_database_keeps_its_mode(tmp_path: t.Any) -> None:
    import os
    import stat

    from flask_mailtrack import EventStore

    path = tmp_path / "events.sqlite3"
    EventStore(path).close()
    os.chmod(path, 0o640)  # the operator's choice, e.g. for a reporting group
    EventStore(path).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
