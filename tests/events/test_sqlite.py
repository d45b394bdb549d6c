"""The SQLite files of the event store and the webhook outbox: private modes,
no symbolic links."""

from __future__ import annotations

import threading
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


def test_pools_opening_a_new_file_at_once_all_open(tmp_path: t.Any) -> None:
    # Switching a file to WAL: SQLite refuses the losers of a race at once,
    # without waiting busy_timeout. Servers and workers starting together
    # race so on a new database; about one round in twenty lost one.
    from flask_mailtrack.events._sqlite import ConnectionPool

    errors: list[BaseException] = []

    def open_pool(path: str, barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            ConnectionPool(path, "CREATE TABLE IF NOT EXISTS t (x)").close()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    for round in range(150):
        path = str(tmp_path / f"race{round}.sqlite3")
        barrier = threading.Barrier(4)
        threads = [
            threading.Thread(target=open_pool, args=(path, barrier)) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], f"round {round}"
