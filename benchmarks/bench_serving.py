"""Serving tier, in process: pixel requests per second of the standalone
server against :class:`~flask_mailtrack.TrackingMiddleware` alone.

In-process WSGI calls (no network, no server), each request with another of
4,000 distinct pixel tokens, cycled, as real traffic has:

- (a) ``TrackingMiddleware`` in front of an app that answers 404, no
  receivers connected: the fastest path, the reference;
- (b) ``create_app()`` with the store and webhooks configured as the server
  configures them (``MAILTRACK_DATABASE``, ``MAILTRACK_WEBHOOK_URL`` with a
  loopback receiver in another process), the hit served by Flask (the
  blueprint), as the server served it before issue 12;
- (c) the same app through its fast path (the hit answered before Flask);
- (d) ``create_app()`` with ``MAILTRACK_WORKER=external`` and the store and
  webhooks configured: the serving process only appends each event to its
  journal (target: at least 0.8 of (a)).

Each setup runs in a process of its own, so that no other setup's
receivers or background threads (a store writer, an embedded worker,
webhook delivery) run while it is timed; the setups are interleaved over
several rounds and each figure is the best. The rate is in wall time; the
CPU column is the process time per request, background threads included
(in (b) and (c) the embedded work of the store and webhooks).

Run: ``python benchmarks/bench_serving.py`` (``--profile SETUP`` prints a
cProfile of one setup's requests instead, ``SETUP`` being a, b, c or d).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pathlib
import pstats
import subprocess
import sys
import tempfile
import typing as t

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _common  # noqa: E402
from _wsgi import best_cpu_seconds  # noqa: E402
from _wsgi import cycling_caller  # noqa: E402
from _wsgi import environ_for  # noqa: E402
from _wsgi import not_found  # noqa: E402
from _wsgi import Receiver  # noqa: E402
from _wsgi import WSGIApp  # noqa: E402
from bench_wsgi import check  # noqa: E402
from flask_mailtrack import Configuration  # noqa: E402
from flask_mailtrack import Tracker  # noqa: E402
from flask_mailtrack import TrackingMiddleware  # noqa: E402
from flask_mailtrack import WebhookSender  # noqa: E402
from flask_mailtrack.configuration import ConfigKeys  # noqa: E402
from flask_mailtrack.events import generate_secret  # noqa: E402
from flask_mailtrack.server import close_app  # noqa: E402
from flask_mailtrack.server import create_app  # noqa: E402

#: Distinct pixel tokens the requests cycle through.
TOKENS = 4000
#: Rounds of the interleaved setups (one process per setup and round).
ROUNDS = 3
ROOT = "https://t.example.com"

SETUPS = {
    "a": "(a) TrackingMiddleware, no receivers",
    "b": "(b) create_app(), Flask route, sinks",
    "c": "(c) create_app(), fast path, sinks",
    "d": "(d) create_app(), fast path, sinks, MAILTRACK_WORKER=external",
}


def external_worker_supported() -> bool:
    """Whether this checkout has ``MAILTRACK_WORKER`` (issue 12)."""
    return hasattr(ConfigKeys, "WORKER")


def webhooks_supported() -> bool:
    """Whether the webhook sender can be configured beside the store: before
    issue 12, always; during it, once the sender is a sink of the worker."""
    return not external_worker_supported() or hasattr(WebhookSender, "write")


def pixel_environs() -> list[dict[str, t.Any]]:
    """The environs of :data:`TOKENS` pixel requests, one recipient each, on
    the server's routes below :data:`ROOT`."""
    metadata = _common.load_reference()["metadata"]
    tracker = Tracker(
        secret_key=_common.SECRET,
        base_open_tracking_url=f"{ROOT}/mailtrack/o/",
        base_click_tracking_url=f"{ROOT}/mailtrack/c/",
    )
    return [
        environ_for(tracker.open_url({**metadata, "customer_id": n}))
        for n in range(TOKENS)
    ]


def make_setup(
    setup: str, directory: str, webhook_url: str
) -> tuple[WSGIApp, t.Callable[[], None]]:
    """The WSGI app of ``setup``, and what closes it."""
    if setup == "a":
        middleware = TrackingMiddleware(
            not_found,
            configuration=Configuration(
                secret_key=_common.SECRET,
                base_open_tracking_url=f"{ROOT}/mailtrack/o/",
                base_click_tracking_url=f"{ROOT}/mailtrack/c/",
            ),
        )
        return middleware, lambda: None
    config = {
        ConfigKeys.SECRET_KEY: _common.SECRET,
        ConfigKeys.BASE_URL: ROOT,
        ConfigKeys.DATABASE: f"{directory}/events.sqlite3",
    }
    if webhooks_supported():
        config["MAILTRACK_WEBHOOK_URL"] = webhook_url
        config[ConfigKeys.WEBHOOK_SECRET] = generate_secret()
    if setup == "d":
        config["MAILTRACK_WORKER"] = "external"
    app = create_app(config, environ={})
    # (b): Flask's own WSGI app, behind the server's dispatcher.
    wsgi_app = app.wsgi_app.wsgi_app if setup == "b" else app  # type: ignore[attr-defined]
    return wsgi_app, lambda: close_app(app, timeout=0)


def measure(setup: str, webhook_url: str) -> dict[str, float]:
    """Seconds per request of one setup, in wall and CPU time (run in a
    process of its own)."""
    environs = pixel_environs()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as directory:
        app, close = make_setup(setup, directory, webhook_url)
        try:
            check(app, environs[0], "200")
            call = cycling_caller(app, environs)
            for _ in environs:  # every token seen once, databases created
                call()
            wall = _common.best_seconds(call, repeat=7)
            cpu = best_cpu_seconds(call, repeat=5)
        finally:
            close()
    return {"wall": wall, "cpu": cpu}


def profile(setup: str, webhook_url: str) -> None:
    """Print where one setup's requests spend their time."""
    environs = pixel_environs()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as directory:
        app, close = make_setup(setup, directory, webhook_url)
        try:
            call = cycling_caller(app, environs)
            for _ in environs:
                call()
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(5 * TOKENS):
                call()
            profiler.disable()
        finally:
            close()
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(25)


def run_child(setup: str, webhook_url: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", setup, "--webhook-url", webhook_url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return t.cast("dict[str, float]", json.loads(output.splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", choices=sorted(SETUPS), help=argparse.SUPPRESS)
    parser.add_argument("--webhook-url", help=argparse.SUPPRESS)
    parser.add_argument("--profile", choices=sorted(SETUPS))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.webhook_url)))
        return

    setups = [s for s in SETUPS if s != "d" or external_worker_supported()]
    receiver = Receiver()
    try:
        if args.profile:
            profile(args.profile, receiver.url)
            return
        best = {s: {"wall": float("inf"), "cpu": float("inf")} for s in setups}
        for _ in range(ROUNDS):
            for setup in setups:
                figures = run_child(setup, receiver.url)
                for key, value in figures.items():
                    best[setup][key] = min(best[setup][key], value)
    finally:
        receiver.stop()

    reference = best["a"]
    _common.print_table(
        f"Pixel requests in process, {TOKENS:,} distinct tokens cycled (best of"
        f" {ROUNDS} interleaved rounds, one process per setup)",
        ["setup", "rate", "per request", "vs (a)", "CPU per request", "CPU vs (a)"],
        [
            [
                SETUPS[setup],
                _common.per_second(figures["wall"]),
                _common.micros(figures["wall"]),
                f"{reference['wall'] / figures['wall']:.2f}",
                _common.micros(figures["cpu"]),
                f"{reference['cpu'] / figures['cpu']:.2f}",
            ]
            for setup, figures in best.items()
        ],
    )
    if "d" in best:
        ratio = reference["wall"] / best["d"]["wall"]
        print(f"\n(d)/(a): {ratio:.2f} (target >= 0.8)")
    else:
        print("\n(d) needs MAILTRACK_WORKER (issue 12): not in this checkout.")
    if not webhooks_supported():
        print("Webhooks left out: the WebhookSender of this checkout is no sink yet.")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"Load average while measuring: {load} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
