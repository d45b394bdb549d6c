"""The commands that run until stopped: ``worker`` (the journal into the
sinks; ``deliver`` is its old name) and ``serve`` (the standalone server,
``mailtrack`` only)."""

from __future__ import annotations

import signal
import threading
import time
import typing as t

import click

from ..configuration import ConfigKeys
from ..events import EventStore
from ..events import RedisStreamSink
from ..events import WebhookSender
from ..events._journal_files import journal_names
from ..events._pipeline import EMBEDDED
from ..events._sinks import Sink
from ..events._worker import Worker
from ._groups import main
from ._groups import shared_command
from ._settings import CommandSettings
from ._settings import pass_settings


class _SignalStop(threading.Event):
    """The worker's stop event, set by a signal handler.

    :meth:`threading.Event.set` takes the event's lock, which the
    interrupted main thread may be holding (inside :meth:`wait`): setting
    it from the handler could deadlock. Here setting only writes a flag,
    and :meth:`wait` looks at it every few tens of milliseconds (a signal
    does not cut a sleep short in Python, PEP 475).
    """

    def __init__(self) -> None:
        super().__init__()
        self._stopped = False

    def is_set(self) -> bool:
        return self._stopped

    def set(self) -> None:
        self._stopped = True

    def clear(self) -> None:
        self._stopped = False

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stopped:
            step = _STOP_POLL
            if deadline is not None:
                step = min(step, deadline - time.monotonic())
                if step <= 0:
                    break
            time.sleep(step)
        return self._stopped


#: How often the worker's stop event is looked at, in seconds.
_STOP_POLL = 0.02


def _worker_options(f: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    """The options of ``worker`` (and of its old name, ``deliver``)."""
    options = (
        click.option(
            "--batch-size",
            type=click.IntRange(min=1),
            default=1000,
            show_default=True,
            help="Events handed to each sink at once.",
        ),
        click.option(
            "--poll-interval",
            type=click.FloatRange(min=0, min_open=True),
            default=0.05,
            show_default=True,
            metavar="SECONDS",
            help="Seconds between looks at the journal folder when it is idle.",
        ),
        click.option(
            "--flush-timeout",
            type=click.FloatRange(min=0),
            default=10.0,
            show_default=True,
            metavar="SECONDS",
            help="When stopped, keep delivering the webhooks that are due for"
            " at most this long; the rest stay in the outbox.",
        ),
    )
    for option in reversed(options):
        f = option(f)
    return f


@shared_command("worker")
@_worker_options
@pass_settings
def worker_command(
    settings: CommandSettings,
    batch_size: int,
    poll_interval: float,
    flush_timeout: float,
) -> None:
    """Feed the event store and the webhooks from the journal until stopped
    (Ctrl-C or SIGTERM).

    The servers append every event to their journal (MAILTRACK_JOURNAL,
    default MAILTRACK_DATABASE + "-events"); this process writes them to
    the store (MAILTRACK_DATABASE) and posts them to MAILTRACK_WEBHOOK_URL,
    with the servers' settings. Run one per machine, with the servers set to
    MAILTRACK_WORKER=external. On the first signal it finishes or releases
    the batch in hand and delivers the webhooks that are due for at most
    --flush-timeout seconds; Ctrl-C again exits at once. Nothing is lost
    either way: what is left waits in the journal and the outbox.
    """
    run_worker(
        settings,
        batch_size=batch_size,
        poll_interval=poll_interval,
        flush_timeout=flush_timeout,
    )


@shared_command("deliver")
@_worker_options
@pass_settings
def deliver_command(
    settings: CommandSettings,
    batch_size: int,
    poll_interval: float,
    flush_timeout: float,
) -> None:
    """Deprecated name of `worker` (kept for one release)."""
    click.echo(
        "Warning: `deliver` is deprecated and will be removed in the next"
        " release; it runs `worker`, which feeds every sink (the event store"
        " and the webhooks). Use `worker`.",
        err=True,
    )
    run_worker(
        settings,
        batch_size=batch_size,
        poll_interval=poll_interval,
        flush_timeout=flush_timeout,
    )


def run_worker(
    settings: CommandSettings,
    *,
    batch_size: int,
    poll_interval: float,
    flush_timeout: float,
) -> None:
    """Run a :class:`~flask_mailtrack.events.Worker` on the
    servers' journal folder, in this (the main) thread, until SIGINT or
    SIGTERM; then deliver due webhooks and close the sinks."""
    if threading.current_thread() is not threading.main_thread():
        # Only the main thread receives signals: nothing could stop it.
        raise click.ClickException("worker must run in the main thread.")
    directory = settings.journal_directory()
    # Read (and checked) here too: a typo would stop the servers, and a
    # worker that runs on would hide it.
    if settings.worker_mode() == EMBEDDED and settings.get_app() is not None:
        click.echo(
            f"Note: {ConfigKeys.WORKER} is embedded, so the app's processes"
            " feed the sinks too; set it to external.",
            err=True,
        )
    sinks = settings.sinks()
    try:
        worker = Worker(
            directory, sinks, batch_size=batch_size, poll_interval=poll_interval
        )
    except BaseException:
        _close_all(sinks)
        raise
    fed = ", ".join(_describe(sink) for sink in sinks)
    click.echo(
        f"Feeding {fed} from the journal in {directory}. Stop with Ctrl-C or SIGTERM."
    )
    stop = _SignalStop()

    def on_signal(signum: int, frame: t.Any) -> None:
        if not stop.is_set():
            stop.set()
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C again: do not wait
        # Another SIGTERM is ignored: it is often sent twice, to the process
        # and to its process group, and the stop has a deadline already.

    previous = {
        number: signal.signal(number, on_signal)
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    webhooks = [sink for sink in sinks if isinstance(sink, WebhookSender)]
    try:
        try:
            for sender in webhooks:
                sender.start()  # what the outbox already holds is due too
            worker.run(stop)
            click.echo(
                f"Stopping: delivering due webhooks for at most {flush_timeout:g} s."
            )
            for sender in webhooks:
                sender.flush(flush_timeout)
            left = _what_is_left(directory, webhooks)
        finally:
            # Gives back the outbox claims not delivered (due at once for
            # the next worker) and closes the store; run() has released
            # every journal file already.
            for sender in webhooks:
                sender.close(timeout=0)
            worker.close(timeout=0)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    click.echo(f"Stopped; {left}.")


def _describe(sink: Sink) -> str:
    if isinstance(sink, EventStore):
        return f"the event store {sink.path}"
    if isinstance(sink, WebhookSender):
        return f"webhooks (outbox {sink.outbox_path})"
    if isinstance(sink, RedisStreamSink):
        return f"the Redis stream {sink.stream} at {sink.url}"
    return sink.name


def _close_all(sinks: t.Iterable[Sink]) -> None:
    for sink in sinks:
        sink.close()


def _what_is_left(directory: str, webhooks: t.Sequence[WebhookSender]) -> str:
    files = len(journal_names(directory))
    left = [f"{files} journal files left" if files else "the journal is empty"]
    for sender in webhooks:
        pending = sender.pending()
        left.append(
            f"{pending} webhook events left in the outbox"
            if pending
            else "the outbox is empty"
        )
    return "; ".join(left)


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
