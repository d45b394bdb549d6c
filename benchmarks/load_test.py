"""Load test with real servers on loopback.

Starts each server under gunicorn on 127.0.0.1, drives it from separate
load-generator processes (threads with keep-alive ``http.client``
connections) for a bounded time with a realistic mix, and prints requests
per second, p50/p99 latency, errors, the resident memory of the workers at
the start and the end, and what happened to the events:

- ``server-sync``: the ``mailtrack`` server (``flask_mailtrack.server``)
  with gunicorn's sync workers;
- ``server-gthread``: the same with threaded workers;
- ``flask-example``: ``examples/flask_app`` (MailTrack blueprint) with
  threaded workers.

The mix: 45% valid pixels, 25% valid clicks, 15% bad tokens (altered,
wrong kind, garbage), 15% machine traffic (scanner and proxy user agents,
Apple's privacy proxy, prefetch headers, HEAD requests) on valid tokens.
An error is a connection error, a 5xx, or an answer other than the one
expected for the request (pixel 200, redirect 302 to the signed target,
404 page for a bad click token).

For the ``mailtrack`` server, the webhook receiver (a small HTTP server in
this process) is down for the first half of the run and up for the second;
after the load stops, the script waits until the outbox is empty and then
compares the unique event ids the receiver got with the events stored in
the event database: every stored event must have been delivered.

Usage::

    python benchmarks/load_test.py                  # 20 s per server
    python benchmarks/load_test.py --seconds 5 --only server-gthread

Needs gunicorn (a test dependency). Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import http.server
import json
import multiprocessing
import os
import pathlib
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import typing as t

ROOT = pathlib.Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SECRET = "load-test-secret-key-0123456789abcdef"
WEBHOOK_SECRET = (
    "whsec_" + base64.b64encode(b"load-test-webhook-key-0123456789").decode()
)

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"
    " (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
MACHINE_AGENTS = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0"
    " (via ggpht.com GoogleImageProxy)",
    "Mozilla/5.0 (compatible; Barracuda Sentinel)",
    "Mozilla/5.0 (compatible; Mimecast-URL-Protect/1.0)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0",
)

SCENARIOS = ("server-sync", "server-gthread", "flask-example")


# -- the request mix ------------------------------------------------------------


class Planned(t.NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    #: Expected status, and the Location of a redirect.
    status: int
    location: str | None
    #: Whether the hit makes an event.
    event: bool


def plan_requests(base_url: str, prefix: str, count: int, seed: int) -> list[Planned]:
    """``count`` requests of the mix, with tokens made for ``base_url``."""
    sys.path.insert(0, str(ROOT))
    from flask_mailtrack import Tracker
    from flask_mailtrack.extension import tracking_base_urls
    from werkzeug.urls import iri_to_uri

    open_base, click_base = tracking_base_urls(base_url, prefix)
    tracker = Tracker(
        secret_key=SECRET,
        base_open_tracking_url=open_base,
        base_click_tracking_url=click_base,
    )
    root = len(base_url.rstrip("/"))
    rng = random.Random(seed)
    planned = []
    for number in range(count):
        metadata = {"recipient": f"r{number % 5000}@example.com", "campaign": "load"}
        url = f"https://www.example.com/article/{number % 300}?utm_source=newsletter"
        draw = rng.random()
        agent = {"User-Agent": CHROME, "Accept": "image/avif,image/webp,*/*"}
        if draw < 0.45:
            planned.append(
                Planned(
                    "GET", tracker.open_url(metadata)[root:], agent, 200, None, True
                )
            )
        elif draw < 0.70:
            planned.append(
                Planned(
                    "GET",
                    tracker.click_url(url, metadata)[root:],
                    agent,
                    302,
                    iri_to_uri(url),
                    True,
                )
            )
        elif draw < 0.85:
            click = rng.random() < 0.5
            token = tracker.click_token(url, metadata)
            bad = rng.choice(
                (
                    token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB"),
                    token[: len(token) // 2],
                    # The other kind's valid token.
                    tracker.open_token(metadata) if click else token,
                    "garbage" * rng.randint(1, 20),
                    "1" + "A" * 3000,
                    "1" + "A" * 5000,
                )
            )
            path = (click_base if click else open_base)[root:] + bad
            if len(bad) > 4000:
                # gunicorn refuses request lines over 4094 bytes itself.
                planned.append(Planned("GET", path, agent, 414, None, False))
            else:
                # A bad open token still gets the pixel (and no event).
                status = 404 if click else 200
                planned.append(Planned("GET", path, agent, status, None, False))
        else:
            headers = {"User-Agent": rng.choice(MACHINE_AGENTS)}
            if rng.random() < 0.3:
                headers["Sec-Purpose"] = "prefetch"
            method = "HEAD" if rng.random() < 0.3 else "GET"
            if rng.random() < 0.5:
                path = tracker.open_url(metadata)[root:]
                planned.append(Planned(method, path, headers, 200, None, True))
            else:
                path = tracker.click_url(url, metadata)[root:]
                planned.append(
                    Planned(method, path, headers, 302, iri_to_uri(url), True)
                )
    return planned


# -- the load generator (separate processes) ---------------------------------------


def _generate(
    port: int,
    planned: list[Planned],
    threads: int,
    seconds: float,
    start_at: float,
    queue: t.Any,
) -> None:
    latencies: list[float] = []
    errors: list[str] = []
    events = [0]
    lock = threading.Lock()
    deadline = start_at + seconds

    def worker(offset: int) -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=10)
        mine: list[float] = []
        mine_errors: list[str] = []
        mine_events = 0
        index = offset
        while time.time() < start_at:
            time.sleep(0.001)
        while True:
            now = time.perf_counter()
            if time.time() >= deadline:
                break
            request = planned[index % len(planned)]
            index += threads
            try:
                connection.request(
                    request.method, request.path, headers=request.headers
                )
                response = connection.getresponse()
                response.read()
                status = response.status
                location = response.getheader("Location")
            except (OSError, http.client.HTTPException) as e:
                connection.close()
                mine_errors.append(f"{type(e).__name__}: {e}")
                continue
            mine.append(time.perf_counter() - now)
            if status != request.status or (
                request.location is not None and location != request.location
            ):
                mine_errors.append(f"{request.method} {request.path[:60]}: {status}")
            elif request.event:
                mine_events += 1
        connection.close()
        with lock:
            latencies.extend(mine)
            errors.extend(mine_errors)
            events[0] += mine_events

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    queue.put((latencies, errors, events[0]))


def drive(
    port: int,
    planned: list[Planned],
    *,
    processes: int,
    threads: int,
    seconds: float,
    halfway: t.Callable[[], None] | None = None,
) -> tuple[list[float], list[str], int, float]:
    """Run the generator processes; call ``halfway`` at half time."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start_at = time.time() + 2.0  # leave time for the processes to start
    children = []
    for number in range(processes):
        share = planned[number::processes]
        child = context.Process(
            target=_generate, args=(port, share, threads, seconds, start_at, queue)
        )
        child.start()
        children.append(child)
    if halfway is not None:
        time.sleep(max(0.0, start_at + seconds / 2 - time.time()))
        halfway()
    results = [queue.get() for _ in children]
    for child in children:
        child.join()
    latencies = [x for r in results for x in r[0]]
    errors = [x for r in results for x in r[1]]
    events = sum(r[2] for r in results)
    return latencies, errors, events, seconds


# -- the webhook receiver -----------------------------------------------------------


class Receiver:
    """A loopback webhook endpoint that counts unique event ids."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ids: set[str] = set()
        self.requests = 0
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                event_id = json.loads(body)["id"]
                assert self.headers["webhook-id"] == event_id
                with receiver._lock:
                    receiver.ids.add(event_id)
                    receiver.requests += 1
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: t.Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer((HOST, self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


# -- servers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def worker_pids(master: int) -> list[int]:
    try:
        text = pathlib.Path(f"/proc/{master}/task/{master}/children").read_text()
    except OSError:
        return []
    return [int(pid) for pid in text.split()]


def rss_mib(pids: list[int]) -> list[float]:
    sizes = []
    for pid in pids:
        try:
            for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        except OSError:
            pass
    return sizes


def wait_until_up(port: int, path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=2)
            connection.request("GET", path)
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def start_gunicorn(
    scenario: str, port: int, directory: str, webhook_port: int
) -> subprocess.Popen[bytes]:
    environ = dict(os.environ)
    environ.update(
        MAILTRACK_SECRET_KEY=SECRET,
        MAILTRACK_BASE_URL=f"http://{HOST}:{port}",
        MAILTRACK_DATABASE=os.path.join(directory, "events.sqlite3"),
        MAILTRACK_WEBHOOK_URL=f"http://{HOST}:{webhook_port}/hook",
        MAILTRACK_WEBHOOK_SECRET=WEBHOOK_SECRET,
        PYTHONPATH=str(ROOT),
    )
    workers = ["-w", "2"]
    if scenario == "server-sync":
        args = [*workers, "-k", "sync", "flask_mailtrack.server:create_app()"]
    elif scenario == "server-gthread":
        args = [
            *workers,
            "-k",
            "gthread",
            "--threads",
            "8",
            "flask_mailtrack.server:create_app()",
        ]
    else:
        environ["SECRET_KEY"] = SECRET
        args = [
            *workers,
            "-k",
            "gthread",
            "--threads",
            "8",
            "--chdir",
            str(ROOT / "examples" / "flask_app"),
            "app:create_app()",
        ]
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-b",
        f"{HOST}:{port}",
        "--log-level",
        # gunicorn logs a warning for each over-long request line (414) of
        # the mix; errors still show.
        "error",
        "--graceful-timeout",
        "30",
        *args,
    ]
    return subprocess.Popen(command, env=environ, cwd=directory)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_scenario(
    scenario: str, seconds: float, processes: int, threads: int
) -> dict[str, t.Any]:
    port, webhook_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="mailtrack-load-") as directory:
        is_server = scenario.startswith("server")
        process = start_gunicorn(scenario, port, directory, webhook_port)
        try:
            wait_until_up(port, "/healthz" if is_server else "/welcome")
            base_url = f"http://{HOST}:{port}"
            planned = plan_requests(base_url, "/mailtrack", 6000, seed=7)
            # Warm every worker up before measuring its memory.
            warm = http.client.HTTPConnection(HOST, port, timeout=10)
            warm_events = 0
            for request in planned[:200]:
                warm.request(request.method, request.path, headers=request.headers)
                warm.getresponse().read()
                warm.close()  # a 414 closes the connection
                warm_events += request.event
            pids = worker_pids(process.pid)
            rss_start = rss_mib(pids)
            receiver = Receiver(webhook_port)
            latencies, errors, events, _ = drive(
                port,
                planned,
                processes=processes,
                threads=threads,
                seconds=seconds,
                halfway=receiver.start if is_server else None,
            )
            rss_end = rss_mib(worker_pids(process.pid))
            delivery: dict[str, t.Any] = {}
            if is_server:
                delivery = wait_for_delivery(
                    os.path.join(directory, "events.sqlite3"), receiver
                )
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if is_server:
            # Recount after the graceful stop: the store flushes on exit.
            delivery.update(
                stored_final=count_rows(
                    os.path.join(directory, "events.sqlite3"), "mailtrack_events"
                ),
                delivered_final=len(receiver.ids),
            )
            receiver.stop()
    requests = len(latencies) + sum(1 for e in errors if "Error" in e)
    return {
        "scenario": scenario,
        "requests": requests,
        "rps": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 0.50) * 1000 if latencies else float("nan"),
        "p99_ms": percentile(latencies, 0.99) * 1000 if latencies else float("nan"),
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "errors": len(errors),
        "error_samples": errors[:5],
        "events_made": events + warm_events,
        "warm_events": warm_events,
        "rss_start": rss_start,
        "rss_end": rss_end,
        **delivery,
    }


def count_rows(path: str, table: str) -> int:
    connection = sqlite3.connect(path, timeout=30)
    try:
        return int(connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        connection.close()


def wait_for_delivery(
    path: str, receiver: Receiver, timeout: float = 180.0
) -> dict[str, t.Any]:
    """Wait until the outbox is empty and every stored event id has reached
    the receiver; return the counts and how long that took."""
    started = time.monotonic()
    while True:
        stored = count_rows(path, "mailtrack_events")
        pending = count_rows(path, "webhook_outbox")
        connection = sqlite3.connect(path, timeout=30)
        try:
            stored_ids = {
                row[0]
                for row in connection.execute("SELECT event_id FROM mailtrack_events")
            }
            dead = int(
                connection.execute(
                    "SELECT COUNT(*) FROM webhook_dead_letter"
                ).fetchone()[0]
            )
        finally:
            connection.close()
        missing = len(stored_ids - receiver.ids)
        elapsed = time.monotonic() - started
        if (pending == 0 and missing == 0) or elapsed > timeout:
            return {
                "stored": stored,
                "delivered_unique": len(receiver.ids),
                "webhook_requests": receiver.requests,
                "missing": missing,
                "pending": pending,
                "dead_letters": dead,
                "drain_seconds": elapsed,
            }
        time.sleep(1.0)


def print_results(results: list[dict[str, t.Any]], seconds: float) -> None:
    print(
        f"\n{'scenario':<15} {'requests':>9} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'errors':>6}  worker RSS MiB start -> end"
    )
    for r in results:
        start = "/".join(f"{x:.0f}" for x in r["rss_start"])
        end = "/".join(f"{x:.0f}" for x in r["rss_end"])
        print(
            f"{r['scenario']:<15} {r['requests']:>9,} {r['rps']:>7,.0f}"
            f" {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['errors']:>6}"
            f"  {start} -> {end}"
        )
    for r in results:
        if r["error_samples"]:
            print(f"  {r['scenario']} errors, first ones: {r['error_samples']}")
    print(
        "\nWebhooks (receiver down for the first half of the load, then up):"
        "\nscenario         hits with events  stored  delivered (unique)"
        "  POSTs  missing  dead  drained after load"
    )
    for r in results:
        if "stored" not in r:
            continue
        print(
            f"{r['scenario']:<16} {r['events_made']:>16,} {r['stored_final']:>7,}"
            f" {r['delivered_final']:>19,} {r['webhook_requests']:>6,}"
            f" {r['missing']:>8} {r['dead_letters']:>5} {r['drain_seconds']:>9.1f} s"
        )
    ok = all(r["errors"] == 0 for r in results) and all(
        r["missing"] == 0
        and r["stored_final"] == r["delivered_final"] == r["events_made"]
        for r in results
        if "stored" in r
    )
    print(f"\n{seconds:.0f} s per scenario.", "Result:", "PASS" if ok else "FAIL")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--only", choices=SCENARIOS, action="append")
    args = parser.parse_args(argv)
    print(
        f"{os.cpu_count()} CPUs; gunicorn with 2 workers; load from"
        f" {args.processes} processes x {args.threads} threads (keep-alive)."
    )
    results = []
    for scenario in args.only or SCENARIOS:
        results.append(
            run_scenario(scenario, args.seconds, args.processes, args.threads)
        )
        print(json.dumps({k: v for k, v in results[-1].items()}, default=str))
    print_results(results, args.seconds)
    ok = all(r["errors"] == 0 for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
