"""A PostgreSQL server of one test's own, for the tests that stop and start
it (the shared server of :mod:`_services` must stay up); Redis has
:mod:`_redis_server`.

Both come from the Debian packages that ``.ci/run`` installs; PostgreSQL runs
as the ``postgres`` user, so the tests that use it need root (as CI has).
"""

from __future__ import annotations

import glob
import os
import pathlib
import shutil
import subprocess
import tempfile

from _servers import free_port
from _services import unavailable


def _postgres_bin() -> pathlib.Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found or os.geteuid() != 0 or shutil.which("runuser") is None:
        unavailable("an own PostgreSQL server needs Debian's postgresql and root")
    return pathlib.Path(found[-1]).parent


class OwnPostgres:
    """A throwaway PostgreSQL server on a free loopback port."""

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.port = free_port()
        # Not under pytest's tmp_path: its folders are 0700, closed to postgres.
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="mailtrack-pg-"))
        self.folder.chmod(0o755)
        self.data = self.folder / "data"
        self.sockets = self.folder / "run"
        for folder in (self.data, self.sockets):
            folder.mkdir()
            shutil.chown(folder, "postgres", "postgres")
        self._as_postgres(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, program: str, *args: str) -> None:
        command = ["runuser", "-u", "postgres", "--", str(self.bin / program), *args]
        subprocess.run(command, check=True, capture_output=True)

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sockets}"
            " -c fsync=off -c full_page_writes=off"
        )
        self._as_postgres(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.data / "log"),
            "-w",
            "-o",
            options,
            "start",
        )

    def stop(self) -> None:
        """A fast shutdown: open connections are cut, as when a database
        server restarts under its clients."""
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._as_postgres(
                "pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"
            )
        shutil.rmtree(self.folder, ignore_errors=True)
