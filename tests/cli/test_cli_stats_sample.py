"""The quickstart's sample ``mailtrack stats`` output is what the command
prints: the real command, as a subprocess, on the store the quickstart
describes (one person opened the email and clicked its link)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from flask_mailtrack import EventStore
from flask_mailtrack import TrackingResult

QUICKSTART = pathlib.Path(__file__).parents[2] / "docs" / "quickstart.rst"


def _sample() -> str:
    """The lines after ``$ mailtrack stats`` in the quickstart, dedented."""
    lines = QUICKSTART.read_text("utf-8").splitlines()
    start = lines.index("    $ mailtrack stats") + 1
    end = lines.index("", start)
    return "\n".join(line[4:] for line in lines[start:end]) + "\n"


def test_quickstart_stats_output_is_real(tmp_path: pathlib.Path) -> None:
    metadata = {"recipient": "ada@example.com"}
    # The quickstart's file name, in the current directory: the default.
    with EventStore(tmp_path / "mailtrack.sqlite3") as store:
        store.record(TrackingResult(is_open_tracking=True, metadata=metadata))
        store.record(
            TrackingResult(
                is_click_tracking=True,
                tracked_url="https://example.com/sale",
                metadata=metadata,
            )
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILTRACK_")}
    env["MAILTRACK_SECRET_KEY"] = "quickstart-sample-key-0123456789abcdef"
    env["MAILTRACK_BASE_URL"] = "http://127.0.0.1:8000"
    result = subprocess.run(
        [sys.executable, "-m", "flask_mailtrack.cli", "stats"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == _sample()
