"""A PostgreSQL and a Redis server of one test's own, for the tests that stop
and start them (the shared servers of :mod:`_services` must stay up).

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

from _fleet import wait
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


class OwnRedis:
    """A redis-server on a free loopback port that keeps its data across a
    restart (append-only file, synced on every write)."""

    def __init__(self, folder: pathlib.Path) -> None:
        program = shutil.which("redis-server")
        if program is None:
            unavailable("an own Redis server needs redis-server")
        self.program = program
        self.folder = folder
        self.folder.mkdir(exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.folder / "redis.log", "ab")  # noqa: SIM115 (kept by Popen)
        with log:
            self.process = subprocess.Popen(
                [self.program, "--port", str(self.port), "--bind", "127.0.0.1"]
                + ["--dir", str(self.folder), "--save", ""]
                + ["--appendonly", "yes", "--appendfsync", "always"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        import redis

        client = redis.Redis.from_url(self.url)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        try:
            wait(up, "redis-server", 30)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM: Redis finishes its append-only file and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
