"""Tracking outgoing mail: what ``MAILTRACK_TRACK_OUTGOING`` adds to a send.

The benchmark newsletter (``../shared/bench/newsletter.html``, with a text
part) goes to 1,000 recipients, one message each, through Flask-Mailman's
SMTP backend on one connection to a local ``aiosmtpd`` server (its own
process, as a mail server is; its ``Sink`` handler accepts and drops each
message). Untracked and tracked sends alternate, two runs each; the tracked
app journals one ``email.sent`` event per message (``MAILTRACK_WORKER=
external``, so no worker thread competes with the send).

Printed: the total of each run, the overhead of tracking (tracked over
untracked, best run of each; target <= 10%), and the tracking cost alone
per message (tracking the 1,000 messages and journaling their events
without sending them).

Run: ``python benchmarks/bench_outgoing.py [--messages 1000]``
"""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import socket
import subprocess
import sys
import tempfile
import time
import typing as t

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _common  # noqa: E402
from flask import Flask  # noqa: E402
from flask_mailman import EmailMultiAlternatives  # noqa: E402
from flask_mailman import Mail  # noqa: E402
from flask_mailtrack import MailTrack  # noqa: E402
from flask_mailtrack.extension import get_state  # noqa: E402
from flask_mailtrack.outgoing import prepare_message  # noqa: E402

TEXT = "Our spring newsletter: https://example.com/spring\n"
METADATA = '{"campaign": "spring-2026"}'


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def smtp_server() -> t.Iterator[int]:
    """``aiosmtpd`` in its own process on a free loopback port."""
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-c",
            "aiosmtpd.handlers.Sink",
            "-l",
            f"127.0.0.1:{port}",
        ]
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("aiosmtpd did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def make_app(port: int, directory: str, *, tracked: bool) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=_common.SECRET,
        MAIL_BACKEND="smtp",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=port,
        MAIL_DEFAULT_SENDER="news@example.com",
        MAILTRACK_BASE_URL="https://t.example.com",
        MAILTRACK_TRACK_OUTGOING=tracked,
        MAILTRACK_DATABASE=str(pathlib.Path(directory) / "mailtrack.sqlite3"),
        MAILTRACK_WORKER="external",
    )
    Mail(app)
    MailTrack(app)
    return app


def messages(count: int, html: str) -> list[t.Any]:
    result = []
    for n in range(count):
        message = EmailMultiAlternatives(
            "Spring newsletter",
            TEXT,
            to=[f"reader{n}@example.com"],
            headers={"X-Mailtrack-Metadata": METADATA},
        )
        message.attach_alternative(html, "text/html")
        result.append(message)
    return result


def send_all(app: Flask, count: int, html: str) -> float:
    """Seconds to send ``count`` messages on one connection."""
    with app.app_context():
        batch = messages(count, html)
        connection = app.extensions["mailman"].get_connection()
        start = time.perf_counter()
        sent = connection.send_messages(batch)
        elapsed = time.perf_counter() - start
    if sent != count:
        raise RuntimeError(f"sent {sent} of {count}")
    return elapsed


def tracking_cost(app: Flask, count: int, html: str) -> float:
    """Seconds per message to track it and journal its event, without
    sending it."""
    state = get_state(app)
    outgoing = state.outgoing
    assert outgoing is not None
    with app.app_context():
        batch = messages(count, html)
        start = time.perf_counter()
        for message in batch:
            _, plan = prepare_message(outgoing, state.sending_tracker, message)
            outgoing.record(plan)
        elapsed = time.perf_counter() - start
    return elapsed / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=1000)
    count = parser.parse_args().messages
    html = _common.load_newsletter()
    with (
        tempfile.TemporaryDirectory() as plain_dir,
        tempfile.TemporaryDirectory() as tracked_dir,
        smtp_server() as port,
    ):  # noqa: E501
        plain = make_app(port, plain_dir, tracked=False)
        tracked = make_app(port, tracked_dir, tracked=True)
        send_all(plain, 20, html)  # warm up: connection, imports, template
        send_all(tracked, 20, html)
        runs: dict[str, list[float]] = {"untracked": [], "tracked": []}
        for _ in range(2):
            runs["untracked"].append(send_all(plain, count, html))
            runs["tracked"].append(send_all(tracked, count, html))
        per_message = min(tracking_cost(tracked, count, html) for _ in range(3))
        for app in (plain, tracked):
            pipeline = get_state(app).pipeline
            if pipeline is not None:
                pipeline.close()
    untracked, tracked_best = min(runs["untracked"]), min(runs["tracked"])
    _common.print_table(
        f"Newsletter ({len(html.encode()) // 1024} KB HTML + text) to {count:,}"
        " recipients, Flask-Mailman SMTP backend, one connection, aiosmtpd",
        ["send", "run 1", "run 2", "per message"],
        [
            [
                name,
                f"{times[0]:.2f} s",
                f"{times[1]:.2f} s",
                _common.micros(min(times) / count),
            ]
            for name, times in runs.items()
        ],
    )
    overhead = tracked_best / untracked - 1
    print(
        f"\nTracking overhead: {overhead:+.1%} of the send time (target <= +10%)"
        f"\nTracking alone (track + journal one email.sent), per message:"
        f" {_common.micros(per_message)}"
        f" ({per_message * count:.3f} s for {count:,} messages)"
    )


if __name__ == "__main__":
    main()
