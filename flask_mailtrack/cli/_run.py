"""The commands that run until stopped: ``deliver`` (the webhook outbox)
and ``serve`` (the standalone server, ``mailtrack`` only)."""

from __future__ import annotations

import signal
import threading
import time
import typing as t

import click

from ._groups import main
from ._groups import shared_command
from ._settings import CommandSettings
from ._settings import pass_settings


class _Stop(Exception):
    """Raised in the main thread by SIGINT or SIGTERM to stop ``deliver``."""


@shared_command("deliver")
@click.option(
    "--flush-timeout",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="When stopped, keep delivering the events that are due for at most"
    " this long; the rest stay in the outbox.",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between looks at the outbox for events queued by the servers.",
)
@pass_settings
def deliver_command(
    settings: CommandSettings, flush_timeout: float, poll_interval: float
) -> None:
    """Deliver the webhook outbox until stopped (Ctrl-C or SIGTERM).

    For servers that only queue events (MAILTRACK_WEBHOOK_DELIVER=false):
    this one process posts them, with the same settings (MAILTRACK_WEBHOOK_URL,
    MAILTRACK_WEBHOOK_SECRET, MAILTRACK_WEBHOOK_OUTBOX or MAILTRACK_DATABASE).
    Pressing Ctrl-C again while stopping exits at once; undelivered events
    stay in the outbox either way.
    """
    if threading.current_thread() is not threading.main_thread():
        # Only the main thread receives signals: nothing could stop it.
        raise click.ClickException("deliver must run in the main thread.")
    sender = settings.webhook_sender(deliver=True, poll_interval=poll_interval)
    click.echo(
        f"Delivering webhooks from {sender.outbox_path}"
        f" ({sender.pending()} events waiting). Stop with Ctrl-C or SIGTERM."
    )
    stopping = False

    def stop(signum: int, frame: t.Any) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise _Stop(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C again: do not wait for the flush
        # Another SIGTERM is ignored: it is often sent twice, to the process
        # and to its process group, and the flush has a deadline already.

    previous: dict[signal.Signals, t.Any] = {}
    try:
        try:
            for number in (signal.SIGINT, signal.SIGTERM):
                previous[number] = signal.signal(number, stop)
            sender.start()
            while True:
                # The delivery thread does the work; this thread only waits
                # for the signal, which interrupts the sleep.
                time.sleep(3600)
        except _Stop:
            pass
        click.echo(f"Stopping: delivering due events for at most {flush_timeout:g} s.")
        sender.flush(flush_timeout)
        left = sender.pending()
    finally:
        try:
            sender.close(timeout=0)
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
    click.echo(
        f"Stopped; {left} events left in the outbox."
        if left
        else "Stopped; the outbox is empty."
    )


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port.")
@click.option(
    "--demo",
    is_flag=True,
    help="Add a page at / with a sample tracked newsletter, its live events"
    " and stats (open to anyone who can reach the server).",
)
def serve_command(host: str, port: int, demo: bool) -> None:
    """Run a complete tracking server (development server).

    Settings come from MAILTRACK_* environment variables; events are stored
    in MAILTRACK_DATABASE (default ./mailtrack.sqlite3). In production run
    gunicorn 'flask_mailtrack.server:create_app()' instead.
    """
    # Loaded here: only this command runs the server.
    from ..server._run import serve

    serve(host, port, demo=demo, echo=click.echo)
