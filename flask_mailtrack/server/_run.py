"""``mailtrack serve``: the server on werkzeug's development server, until
Ctrl-C or SIGTERM, then a clean close (the journal sealed, the embedded
worker stopped, nothing left locked)."""

from __future__ import annotations

import os
import signal
import threading
import typing as t

from ..configuration import ConfigKeys
from ..extension import get_state
from ._app import close_app
from ._app import create_app
from ._state import get_server_state


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    demo: bool = False,
    config: t.Mapping[str, t.Any] | None = None,
    echo: t.Callable[[str], None] = print,
) -> None:
    """Run the server with werkzeug's threaded development server until
    interrupted (``mailtrack serve``), then close the events pipeline."""
    from werkzeug.serving import run_simple

    every_interface = host in ("0.0.0.0", "::", "")
    shown_host = "127.0.0.1" if every_interface else host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    root = f"http://{shown_host}:{port}"
    if demo and not every_interface and not _base_url_given(config):
        # The demo's tracking links go on the one address this server
        # answers on, not on whatever Host header a request carries.
        config = {**(config or {}), ConfigKeys.BASE_URL: root}
    app = create_app(config, demo=demo or None)
    state = get_server_state(app)
    if state.demo and state.demo_root is None and not every_interface:
        # The one address this server answers on: the demo's articles link
        # to it, whatever Host header a request carries.
        state.demo_root = root
    # create_app has logged it when the key was made up for this session.
    pipeline = get_state(app).pipeline
    if pipeline is not None:
        echo(f"Events are journaled in {pipeline.directory}.")
        if pipeline.worker is not None:
            echo(
                "A worker thread of this process writes them to"
                f" {', '.join(sink.name for sink in pipeline.sinks)}."
            )
        else:
            echo(
                f"No worker runs in this process ({ConfigKeys.WORKER}=external):"
                " run `mailtrack worker` with the same settings."
            )
    echo(f"The stats pages read {state.store.path}.")
    if state.demo:
        echo(f"Demo: open {root}/ in a browser.")
        if state.demo_root is None:
            echo(
                f"Set {ConfigKeys.BASE_URL} to the URL browsers reach this"
                " server at: the demo's links are made on it."
            )
    elif app.config.get(ConfigKeys.STATS_PASSWORD):
        echo(f"Statistics: {root}/stats (password: {ConfigKeys.STATS_PASSWORD}).")
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (systemd, docker stop) stops as Ctrl-C does, so the
        # pipeline is closed on the way out and nothing stays locked.
        signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        run_simple(host, port, app, threaded=True)
    finally:
        close_app(app)


def _base_url_given(config: t.Mapping[str, t.Any] | None) -> bool:
    return bool(
        (config or {}).get(ConfigKeys.BASE_URL) or os.environ.get(ConfigKeys.BASE_URL)
    )


def _exit_on_signal(signum: int, frame: t.Any) -> None:
    raise SystemExit(0)
