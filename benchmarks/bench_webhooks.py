"""Webhook delivery rate: events per second from a full outbox to a loopback
receiver in another process.

An outbox is filled with N events (signed on the way out, kept-alive
connections); a :class:`~flask_mailtrack.WebhookSender` then delivers it,
and the time until the outbox is empty is measured, in wall time and in CPU
time of this process (the receiver is another process). Target: at least
2,000 events/s.

The receiver is gunicorn (``gthread`` workers, keep-alive) serving a WSGI
app that reads the body and answers ``204``: it must not be the bottleneck,
so it does nothing else (signatures are verified in the tests, not here).
``--receiver threading`` uses ``http.server.ThreadingHTTPServer`` in a
subprocess instead.

Run: ``python benchmarks/bench_webhooks.py [--events 5000] [--rounds 2]``.
Run against another checkout (the 0.1 sender, which has ``enqueue`` and no
``write``) with ``PYTHONPATH=/path/to/checkout``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import sys
import tempfile
import time
import typing as t

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _gunicorn import gunicorn  # noqa: E402
from _wsgi import Receiver  # noqa: E402
from flask_mailtrack import TrackingResult  # noqa: E402
from flask_mailtrack import WebhookSender  # noqa: E402
from flask_mailtrack.events import generate_secret  # noqa: E402


def receiver(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
    """The webhook endpoint: read the body, accept it."""
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("204 No Content", [])
    return []


@contextlib.contextmanager
def running_receiver(kind: str, workers: int) -> t.Iterator[str]:
    if kind != "gunicorn":
        threading_receiver = Receiver()
        try:
            yield threading_receiver.url
        finally:
            threading_receiver.stop()
        return
    options = ["--worker-class", "gthread", "--workers", str(workers)]
    options += ["--threads", "16", "--keep-alive", "30"]
    with gunicorn("bench_webhooks:receiver", extra=options) as port:
        yield f"http://127.0.0.1:{port}/hook"


def _fill(sender: WebhookSender, count: int) -> None:
    now = int(time.time())
    results = [
        TrackingResult(is_open_tracking=True, metadata={"n": n}, timestamp=now)
        for n in range(count)
    ]
    if not hasattr(sender, "write"):  # the 0.1 sender, for comparison
        for result in results:
            sender.enqueue(result)  # type: ignore[attr-defined]
        sender.pending()  # moves its journal into the outbox
        return
    from flask_mailtrack.events._encoding import encode_event
    from flask_mailtrack.events._sinks import EventRecord

    records = []
    for result in results:
        body = encode_event(result.to_json_dict())
        records.append(EventRecord(result.event_id, body, json.loads(body)))
    for start in range(0, count, 1000):
        sender.write(records[start : start + 1000])


def delivery_rate(
    url: str, directory: str, count: int, round_: int, options: dict[str, t.Any]
) -> dict[str, float]:
    path = os.path.join(directory, f"outbox-{round_}.sqlite3")
    secret = generate_secret()
    filler = WebhookSender(url, secret=secret, outbox_path=path, deliver=False)
    _fill(filler, count)
    assert filler.pending() == count
    filler.close(timeout=0)
    sender = WebhookSender(url, secret=secret, outbox_path=path, **options)
    try:
        started = time.perf_counter()
        started_cpu = time.process_time()
        # An event leaves the outbox once the receiver has answered 2xx.
        assert sender.flush(timeout=600)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - started_cpu
        assert sender.pending() == 0
    finally:
        sender.close(timeout=0)
    return {"events/s": count / elapsed, "cpu µs/event": cpu / count * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--receiver", choices=["gunicorn", "threading"], default="gunicorn"
    )
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers")
    parser.add_argument("--concurrency", type=int, help="requests in flight")
    options = parser.parse_args()
    sender_options = {}
    if options.concurrency is not None:
        sender_options["concurrency"] = options.concurrency
    print(f"cores: {os.cpu_count()}, receiver: {options.receiver}", flush=True)
    with tempfile.TemporaryDirectory() as directory:
        with running_receiver(options.receiver, options.workers) as url:
            for round_ in range(options.rounds):
                figures = delivery_rate(
                    url, directory, options.events, round_, sender_options
                )
                print(
                    f"round {round_ + 1}: {options.events} events,"
                    f" {figures['events/s']:,.0f} delivered/s,"
                    f" {figures['cpu µs/event']:.0f} µs CPU per event (sender)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
