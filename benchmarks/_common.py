"""Shared helpers for the side-by-side benchmarks against pytracking 0.2.2.

Every benchmark runs both libraries in one process on the workload in
``../shared/bench`` and prints ratios. The machine may be noisy, so each
figure is the best of several repeats, and ours and theirs are interleaved.
"""

from __future__ import annotations

import json
import pathlib
import timeit
import typing as t

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: The shared workload: ``newsletter.html`` and ``reference.json``.
BENCH_DIR = ROOT.parent / "shared" / "bench"

SECRET = "benchmark-secret-key-0123456789abcdef"


def load_reference() -> dict[str, t.Any]:
    """The reference link, metadata and base URLs."""
    with open(BENCH_DIR / "reference.json", encoding="utf-8") as f:
        return t.cast("dict[str, t.Any]", json.load(f))


def tracking_bases(reference: t.Mapping[str, t.Any]) -> dict[str, str]:
    """The base URLs of ``reference``, as keyword arguments that both
    libraries' configurations take."""
    return {
        "base_open_tracking_url": reference["base_open_tracking_url"],
        "base_click_tracking_url": reference["base_click_tracking_url"],
    }


def load_newsletter() -> str:
    """The ~100 KB benchmark newsletter."""
    return (BENCH_DIR / "newsletter.html").read_text(encoding="utf-8")


def best_seconds(
    func: t.Callable[[], object], *, number: int = 0, repeat: int = 7
) -> float:
    """The best time of one call of ``func`` over ``repeat`` runs.

    With ``number=0`` the loop count is chosen so that one run takes about
    0.2 seconds.
    """
    timer = timeit.Timer(func)
    if number <= 0:
        number, _ = timer.autorange()
        number = max(1, number)
    return min(timer.repeat(repeat=repeat, number=number)) / number


def compare(
    ours: t.Callable[[], object],
    theirs: t.Callable[[], object],
    *,
    rounds: int = 3,
) -> tuple[float, float]:
    """Seconds per call of ``ours`` and ``theirs``, interleaved ``rounds`` times,
    best of all runs for each."""
    best_ours = best_theirs = float("inf")
    for _ in range(rounds):
        best_ours = min(best_ours, best_seconds(ours))
        best_theirs = min(best_theirs, best_seconds(theirs))
    return best_ours, best_theirs


def print_table(
    title: str, header: t.Sequence[str], rows: t.Iterable[t.Sequence[object]]
) -> None:
    """Print a plain-text table."""
    rows = [[_cell(value) for value in row] for row in rows]
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def per_second(seconds: float) -> str:
    """Calls per second, rounded."""
    return f"{1 / seconds:,.0f}/s"


def micros(seconds: float) -> str:
    """Microseconds per call."""
    return f"{seconds * 1e6:.1f} us"
