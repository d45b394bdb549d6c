"""The real server: the ``mailtrack`` server under gunicorn, loaded by wrk.

Two gunicorn sync workers on 127.0.0.1 serve pixel requests for 4,000
distinct tokens, cycled by wrk (two threads, on the same machine):

1. **The floor:** a WSGI app that answers the same GIF with the same
   headers and does nothing else (``_constant_gif.py``).
2. **The server, external worker:** ``create_app()`` with the event store
   and webhooks configured and ``MAILTRACK_WORKER=external``: a request
   decodes its token, sends the signals and appends the event to the
   process's journal, nothing more. No worker runs during this window.
   Target: at least 0.8 of the floor.
3. **The same with the worker running:** ``mailtrack worker`` beside it,
   feeding the SQLite store and posting every event to a webhook receiver
   in its own process (``_receiver_app.py`` under gunicorn). On a small
   machine the worker competes with the server and wrk for CPU, so this is
   for the record. After the load stops the script waits until the store and
   the receiver have every event, and prints the backlog left when the load
   stopped and how fast the worker cleared it; from that rate it estimates
   how many cores the worker needs to keep up with the intake of row 2.

Each row runs twice, interleaved with the floor.

Needs ``wrk`` (Debian/Ubuntu: ``apt-get install wrk``; macOS: ``brew install
wrk``) and gunicorn (a test dependency)::

    python benchmarks/bench_server.py                # 10 s per run
    python benchmarks/bench_server.py --seconds 20
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import pathlib
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _gunicorn import free_port  # noqa: E402
from _gunicorn import get  # noqa: E402
from _gunicorn import gunicorn  # noqa: E402

SECRET = "benchmark-secret-key-0123456789abcdef"
WEBHOOK_SECRET = (
    "whsec_" + base64.b64encode(b"benchmark-webhook-key-0123456789").decode()
)
TOKENS = 4000

_LUA = """
local paths = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  i = math.random(#paths)
end
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def wrk(
    port: int, seconds: float, paths: pathlib.Path, script: pathlib.Path
) -> dict[str, float]:
    """Requests/s and totals of one wrk run."""
    output = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds:g}s", "-s", str(script)]
        + [f"http://127.0.0.1:{port}", "--", str(paths)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    assert rate and total, output
    return {
        "rate": float(rate.group(1)),
        "requests": int(total.group(1)),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def make_paths(folder: pathlib.Path) -> pathlib.Path:
    from flask_mailtrack import Configuration
    from flask_mailtrack import Tracker

    tracker = Tracker(
        Configuration(
            secret_key=SECRET,
            base_open_tracking_url="http://bench.invalid/mailtrack/o/",
        )
    )
    prefix = "http://bench.invalid"
    lines = [
        tracker.open_url({"recipient": f"r{n}@example.com", "campaign": "bench"})[
            len(prefix) :
        ]
        for n in range(TOKENS)
    ]
    path = folder / "paths.txt"
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def stored(database: pathlib.Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=30)) as db:
            return int(
                db.execute("SELECT COUNT(*) FROM mailtrack_events").fetchone()[0]
            )
    except sqlite3.OperationalError:  # no table yet
        return 0


def delivered(receiver_port: int) -> int:
    return int(json.loads(get(receiver_port, "/count")[1])["distinct"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk).")
    print(
        f"{os.cpu_count()} cores; gunicorn: 2 sync workers; wrk -t2 -c16;"
        f" {TOKENS} tokens"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        paths = make_paths(folder)
        script = folder / "paths.lua"
        script.write_text(_LUA, encoding="ascii")
        sync = ["-w", "2", "-k", "sync"]

        def server_env(
            name: str, receiver_port: int
        ) -> tuple[dict[str, str], pathlib.Path]:
            database = folder / name / "events.sqlite3"
            database.parent.mkdir(mode=0o700)
            return {
                "MAILTRACK_SECRET_KEY": SECRET,
                "MAILTRACK_DATABASE": str(database),
                "MAILTRACK_WEBHOOK_URL": f"http://127.0.0.1:{receiver_port}/hook",
                "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "MAILTRACK_WORKER": "external",
            }, database

        floor_rates: list[float] = []
        server_rates: list[float] = []
        print("\n-- no worker running")
        for run in (1, 2):
            with gunicorn("_constant_gif:app", {}, ready="/", extra=sync) as port:
                result = wrk(port, args.seconds, paths, script)
            floor_rates.append(result["rate"])
            print(f"floor (constant GIF)      run {run}: {result['rate']:>9,.0f} req/s")
            # The receiver's port is never used here: no worker runs.
            env, database = server_env(f"external{run}", free_port())
            with gunicorn(
                "flask_mailtrack.server:create_app()", env, ready="/healthz", extra=sync
            ) as port:
                result = wrk(port, args.seconds, paths, script)
            server_rates.append(result["rate"])
            print(
                f"create_app(), external    run {run}: {result['rate']:>9,.0f} req/s"
                f"  ({result['non_2xx']} non-2xx; store rows: {stored(database)})"
            )
        floor = max(floor_rates)
        print(
            f"ratio server/floor (best of each): {max(server_rates) / floor:.2f}"
            "  (target >= 0.8)"
        )

        print("\n-- with `mailtrack worker` and a webhook receiver in its own process")
        for run in (1, 2):
            with gunicorn(
                "_receiver_app:app",
                {},
                ready="/count",
                extra=["-w", "1", "-k", "gthread", "--threads", "8"],
            ) as receiver_port:
                env, database = server_env(f"worker{run}", receiver_port)
                worker = subprocess.Popen(
                    [sys.executable, "-m", "flask_mailtrack.cli", "worker"],
                    env={**os.environ, **env},
                    stdout=subprocess.DEVNULL,
                )
                try:
                    with gunicorn(
                        "flask_mailtrack.server:create_app()",
                        env,
                        ready="/healthz",
                        extra=sync,
                    ) as port:
                        result = wrk(port, args.seconds, paths, script)
                        answered = int(result["requests"])
                        in_store, at_receiver = (
                            stored(database),
                            delivered(receiver_port),
                        )
                        stopped = time.monotonic()
                        deadline = stopped + 300
                        while time.monotonic() < deadline and (
                            stored(database) < answered
                            or delivered(receiver_port) < answered
                        ):
                            time.sleep(0.2)
                        drained = time.monotonic() - stopped
                        final_store = stored(database)
                        final_receiver = delivered(receiver_port)
                finally:
                    worker.terminate()
                    worker.wait(30)
            backlog_store = answered - in_store
            backlog_hooks = answered - at_receiver
            print(
                f"create_app() + worker     run {run}: {result['rate']:>9,.0f} req/s"
                f"  ratio {result['rate'] / floor:.2f}; {answered:,} answered"
            )
            print(
                f"   when the load stopped: store {in_store:,} (backlog"
                f" {backlog_store:,}), receiver {at_receiver:,} (backlog"
                f" {backlog_hooks:,})"
            )
            rate_in = answered / args.seconds
            print(
                f"   drained in {drained:.1f} s: store {final_store:,}, receiver"
                f" {final_receiver:,} distinct ids"
            )
            backlog = max(backlog_store, backlog_hooks)
            if backlog > 0 and drained > 0:
                # After the load the worker has about one core to itself (the
                # receiver takes some of the other): its drain rate is roughly
                # what one core of worker does.
                print(
                    f"   worker alone cleared {backlog / drained:,.0f} events/s;"
                    f" intake {rate_in:,.0f}/s needs about"
                    f" {rate_in / (backlog / drained):.1f} core(s) of worker"
                )


if __name__ == "__main__":
    main()
