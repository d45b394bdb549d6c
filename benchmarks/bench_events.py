"""Events out: what the receivers cost the pixel, and how fast webhooks leave.

In-process WSGI calls through :class:`~flask_mailtrack.TrackingMiddleware`
on the reference link of ``../shared/bench/reference.json``, one run:

- pixel requests per second with an :class:`~flask_mailtrack.EventStore`
  and a :class:`~flask_mailtrack.WebhookSender` connected (its worker
  delivering to a loopback receiver meanwhile, in this process) against no
  receivers (target: at least 0.5 of the rate without receivers); also each
  receiver alone, and the sender with ``deliver=False`` (no delivery in this
  process, when another process delivers). In the request the sender
  pickles the event's fields and appends them to its process's journal
  (one ``os.write``); its journal thread moves them into the SQLite outbox
  every 20 ms, encoding the JSON bodies, in this process too (so in the CPU
  column). Each is given in wall time
  and in CPU time of the whole process: on a shared, loaded machine the
  wall time also counts the other processes' turns, while the CPU time
  counts exactly what this process spent, background threads included.
  The receiver runs in its own process, as a webhook endpoint would;
- the same request with pytracking 0.2.2's webhook pattern: decode, then
  its ``send_webhook`` (a synchronous ``requests.post``) in the request,
  to the same loopback receiver;
- delivery rate of the outbox to the loopback receiver (events per second,
  signed, with keep-alive), against pytracking's ``send_webhook`` called in
  a loop.

Run: ``python benchmarks/bench_events.py``
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tempfile
import time
import timeit
import typing as t
from urllib.parse import urlsplit

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _common  # noqa: E402
import pytracking  # noqa: E402
from _wsgi import caller  # noqa: E402
from _wsgi import environ_for  # noqa: E402
from _wsgi import WSGIApp  # noqa: E402
from flask_mailtrack import Configuration  # noqa: E402
from flask_mailtrack import EventStore  # noqa: E402
from flask_mailtrack import TrackingMiddleware  # noqa: E402
from flask_mailtrack import TrackingResult  # noqa: E402
from flask_mailtrack import WebhookSender  # noqa: E402
from flask_mailtrack.events import generate_secret  # noqa: E402
from flask_mailtrack.web import TRACKING_PIXEL  # noqa: E402
from pytracking.webhook import send_webhook as pytracking_send_webhook  # noqa: E402

DELIVERY_EVENTS = 2000


RECEIVER = """
import http.server, sys

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""


class Receiver:
    """A loopback webhook endpoint answering 204, in its own process (a
    webhook endpoint is another service: it must not share this process's
    CPU time)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        port = int(self.process.stdout.readline())
        self.url = f"http://127.0.0.1:{port}/hook"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()


def not_found(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
    start_response("404 Not Found", [("Content-Length", "0")])
    return []


def pytracking_app(configuration: t.Any) -> WSGIApp:
    """pytracking's documented pattern: decode the pixel, post the webhook in
    the request, return the pixel."""
    prefix = urlsplit(configuration.base_open_tracking_url).path

    def app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        path = environ["PATH_INFO"][len(prefix) :]
        result = pytracking.get_open_tracking_result(
            path,
            request_data={"user_agent": environ.get("HTTP_USER_AGENT")},
            configuration=configuration,
        )
        pytracking_send_webhook(result, configuration=configuration)
        start_response("200 OK", [("Content-Type", "image/gif")])
        return [TRACKING_PIXEL]

    return app


def delivery_rate(
    receiver: Receiver, directory: str, round_: int
) -> tuple[float, float]:
    """Seconds per event to drain an outbox of DELIVERY_EVENTS events, in
    wall time and in CPU time of this process (the receiver is another)."""
    path = f"{directory}/drain-{round_}.sqlite3"
    secret = generate_secret()
    filler = WebhookSender(receiver.url, secret=secret, outbox_path=path, deliver=False)
    now = int(time.time())
    for n in range(DELIVERY_EVENTS):
        filler.enqueue(
            TrackingResult(is_open_tracking=True, metadata={"n": n}, timestamp=now)
        )
    filler.close(timeout=0)
    sender = WebhookSender(receiver.url, secret=secret, outbox_path=path)
    started = time.perf_counter()
    started_cpu = time.process_time()
    # An event leaves the outbox when the receiver has answered 2xx. (flush
    # looks 100 times a second: often enough for the wall time, rarely
    # enough not to count in the CPU time.)
    assert sender.flush(timeout=600)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - started_cpu
    sender.close(timeout=0)
    return elapsed / DELIVERY_EVENTS, cpu / DELIVERY_EVENTS


def request_path(
    middleware: TrackingMiddleware,
    pixel: t.Callable[[], None],
    receiver: Receiver,
    directory: str,
) -> dict[str, float]:
    """Seconds per event of each part of the work, measured apart: the
    pixel with no receivers; the pixel with both receivers connected while
    their background work waits (a flush interval and a journal delay of an
    hour), which is what a request itself costs; then that deferred work,
    in CPU time: the store writing its rows, the sender moving its journal
    into the outbox."""
    store = EventStore(
        f"{directory}/deferred-events.sqlite3", flush_interval=3600, max_buffer=10**9
    )
    sender = WebhookSender(
        receiver.url,
        secret=generate_secret(),
        outbox_path=f"{directory}/deferred-outbox.sqlite3",
        deliver=False,
        spool_delay=3600,
        poll_interval=3600,
    )
    best = {"none": float("inf"), "both": float("inf")}
    store_cpu = import_cpu = 0.0
    events = queued = 0
    for _ in range(5):  # interleaved
        best["none"] = min(best["none"], _common.best_seconds(pixel, repeat=3))
        store.connect(middleware)
        sender.connect(middleware)
        try:
            best["both"] = min(best["both"], _common.best_seconds(pixel, repeat=3))
        finally:
            store.disconnect()
            sender.disconnect()
        started = time.process_time()
        events += store.flush()
        store_cpu += time.process_time() - started
        started = time.process_time()
        total = sender.pending()  # moves the journal into the outbox
        import_cpu += time.process_time() - started
        queued, imported = total, total - queued
        assert imported > 0
    sender.close(timeout=0)
    store.close()
    return {
        "none": best["none"],
        "both": best["both"],
        "store": store_cpu / events,
        "import": import_cpu / queued,
    }


def best_cpu_seconds(func: t.Callable[[], object], *, repeat: int = 3) -> float:
    """Like ``_common.best_seconds``, in CPU time of the whole process: the
    time the machine's other load takes is not counted, the work of this
    process's background threads is."""
    timer = timeit.Timer(func, timer=time.process_time)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=max(1, number))) / max(1, number)


def main() -> None:
    reference = _common.load_reference()
    bases = _common.tracking_bases(reference)
    metadata = reference["metadata"]
    receiver = Receiver()
    directory = tempfile.mkdtemp(prefix="bench-events-")

    configuration = Configuration(secret_key=_common.SECRET, **bases)
    middleware = TrackingMiddleware(not_found, configuration=configuration)
    environ = environ_for(middleware.tracker.open_url(metadata))
    pixel = caller(middleware, environ)

    store = EventStore(f"{directory}/events.sqlite3")
    sender = WebhookSender(
        receiver.url,
        secret=generate_secret(),
        outbox_path=f"{directory}/outbox.sqlite3",
    )

    for warm_up in (store, sender):  # create both databases' pages
        warm_up.connect(middleware)
    pixel()
    store.disconnect()
    sender.disconnect()
    queue_only = WebhookSender(
        receiver.url,
        secret=generate_secret(),
        outbox_path=f"{directory}/queue-only.sqlite3",
        deliver=False,
    )
    setups: list[tuple[str, tuple[t.Any, ...]]] = [
        ("no receivers", ()),
        ("EventStore + WebhookSender", (store, sender)),
        ("EventStore only", (store,)),
        ("WebhookSender only", (sender,)),
        ("EventStore + WebhookSender(deliver=False)", (store, queue_only)),
    ]
    wall = {name: float("inf") for name, _ in setups}
    cpu = dict(wall)
    for _ in range(5):  # interleaved
        for name, receivers in setups:
            # The receivers stay connected for a whole timing run.
            for r in receivers:
                r.connect(middleware)
            try:
                wall[name] = min(wall[name], _common.best_seconds(pixel, repeat=3))
                cpu[name] = min(cpu[name], best_cpu_seconds(pixel, repeat=3))
            finally:
                for r in receivers:
                    r.disconnect()
            # Let the delivery thread catch up, so that its backlog is not
            # delivered while the next setup is measured.
            while sender.pending():
                time.sleep(0.01)
            store.flush()
    queue_only.close(timeout=0)
    stored = store.count()

    theirs_config = pytracking.Configuration(webhook_url=receiver.url, **bases)
    theirs_environ = environ_for(
        pytracking.get_open_tracking_url(metadata, configuration=theirs_config)
    )
    theirs_s = _common.best_seconds(
        caller(pytracking_app(theirs_config), theirs_environ), repeat=5
    )

    none_wall, none_cpu = wall["no receivers"], cpu["no receivers"]
    rows = []
    for name, _ in setups:
        target = " (>= 0.5)" if name == "EventStore + WebhookSender" else ""
        rows.append(
            [
                name,
                _common.per_second(wall[name]),
                _common.micros(wall[name]),
                f"{none_wall / wall[name]:.2f}{target}",
                _common.micros(cpu[name]),
                f"{none_cpu / cpu[name]:.2f}",
            ]
        )
    rows.append(
        [
            "pytracking 0.2.2: send_webhook in the request",
            _common.per_second(theirs_s),
            _common.micros(theirs_s),
            f"{none_wall / theirs_s:.2f}",
            "",
            "",
        ]
    )
    _common.print_table(
        "Pixel requests through TrackingMiddleware (in process, best of repeats;"
        " CPU = process time, so it includes the receivers' background threads)",
        [
            "receivers",
            "rate",
            "per request",
            "vs none",
            "CPU per request",
            "CPU vs none",
        ],
        rows,
    )
    both_s = wall["EventStore + WebhookSender"]
    print(
        f"\nwith receivers: ours vs pytracking's synchronous webhook:"
        f" {theirs_s / both_s:.1f}x faster ({stored:,} events stored meanwhile)"
    )
    sender.close(timeout=30)
    store.close()

    # -- where the time goes ----------------------------------------------------
    parts = request_path(middleware, pixel, receiver, directory)
    drains = [delivery_rate(receiver, directory, n) for n in range(3)]
    ours_delivery = min(wall for wall, _ in drains)
    delivery_cpu = min(cpu for _, cpu in drains)
    pixel_s = parts["none"]
    request_s = parts["both"] - parts["none"]
    background_s = parts["store"] + parts["import"] + delivery_cpu
    _common.print_table(
        "Where the time of one event goes, measured apart (request rows: wall"
        " time, best of repeats; background rows: CPU time of this process)",
        ["part", "per event", "vs the pixel"],
        [
            [name, _common.micros(seconds), f"{seconds / pixel_s:.2f}"]
            for name, seconds in [
                ("the pixel, no receivers", pixel_s),
                ("in the request: both receivers (background deferred)", request_s),
                ("background: EventStore writing its row", parts["store"]),
                ("background: journal moved into the outbox", parts["import"]),
                ("background: delivery (sign, POST, delete)", delivery_cpu),
            ]
        ],
    )
    print(
        f"\nrequest path alone: {pixel_s / parts['both']:.2f} of the rate without"
        f" receivers; with every event's background work done in this process"
        f" as fast as events arrive: {pixel_s / (parts['both'] + background_s):.2f}"
        f" (the first table is higher: during a timed run the background threads"
        f" fall behind, and catch up between runs)"
    )

    # -- delivery rate ---------------------------------------------------------
    pytracking_result = pytracking.get_open_tracking_result(
        pytracking.get_open_tracking_url(metadata, configuration=theirs_config),
        configuration=theirs_config,
    )
    theirs_delivery = _common.best_seconds(
        lambda: pytracking_send_webhook(pytracking_result, configuration=theirs_config),
        repeat=3,
    )
    _common.print_table(
        f"Webhook delivery to a loopback receiver ({DELIVERY_EVENTS} events drained)",
        ["sender", "events/s", "per event"],
        [
            [
                "WebhookSender outbox (signed, keep-alive)",
                _common.per_second(ours_delivery),
                _common.micros(ours_delivery),
            ],
            [
                "pytracking send_webhook loop (unsigned, requests.post)",
                _common.per_second(theirs_delivery),
                _common.micros(theirs_delivery),
            ],
            ["ratio", f"{theirs_delivery / ours_delivery:.1f}x", ""],
        ],
    )
    receiver.stop()


if __name__ == "__main__":
    main()
