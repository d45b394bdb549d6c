"""HTML rewriting: flask_mailtrack against pytracking 0.2.2's ``adapt_html``.

On ``../shared/bench/newsletter.html``, in one process:

- ``track_html`` (scan + tokens, signed) against ``adapt_html`` (lxml
  parse, rewrite, re-serialise; unsigned tokens) for one recipient;
- ``HTMLTemplate`` once, then ``render`` per recipient, against
  ``adapt_html`` per recipient;
- the size of the tracked newsletter (signed tokens) against pytracking's
  output (unsigned tokens) and Gmail's ~102 KB clipping limit.

Then ``track_html`` against ``adapt_html`` by input: the newsletter, a
link-dense digest made by ``_digest.py`` (~200 KB, ~500 distinct links),
and each of the 34 emails of ``../shared/corpus`` (geometric mean and
minimum of the speed-ups). Target: >= 3x on each.

Run: ``python benchmarks/bench_html.py``
"""

from __future__ import annotations

import math
import pathlib
import sys
import typing as t

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _common  # noqa: E402
import _digest  # noqa: E402
import pytracking  # noqa: E402
from flask_mailtrack import Tracker  # noqa: E402
from flask_mailtrack.rewrite import HTMLTemplate  # noqa: E402
from flask_mailtrack.rewrite import track_html  # noqa: E402
from pytracking.html import adapt_html  # noqa: E402

#: The 34 production emails the rewriter is tested on.
CORPUS_DIR = _common.BENCH_DIR.parent / "corpus"

#: Gmail clips a message whose HTML is larger than about 102 KB.
GMAIL_CLIP_BYTES = 102_400


def main() -> None:
    reference = _common.load_reference()
    newsletter = _common.load_newsletter()
    bases = {
        "base_open_tracking_url": reference["base_open_tracking_url"],
        "base_click_tracking_url": reference["base_click_tracking_url"],
    }
    tracker = Tracker(secret_key=_common.SECRET, **bases)
    theirs_configuration = pytracking.Configuration(**bases)
    # A new recipient on every call, as in a real send: nothing about the
    # recipient is in any cache (the URLs' compressed forms are, as they
    # would be after the first recipient of a send).
    counter = iter(range(10**9))

    def metadata() -> dict[str, object]:
        n = next(counter)
        return {
            **reference["metadata"],
            "customer_id": 12345 + n,
            "message_id": f"m{n:07d}",
        }

    template = HTMLTemplate(tracker, newsletter)

    def ours_track() -> object:
        return track_html(tracker, newsletter, metadata())

    def ours_render() -> object:
        return template.render(metadata())

    def theirs() -> object:
        return adapt_html(newsletter, metadata(), configuration=theirs_configuration)

    def ours_tokens() -> object:
        # What render cannot avoid: one click token per distinct URL and
        # the open token.
        recipient = metadata()
        return tracker.click_tokens(template.urls, recipient), tracker.open_token(
            recipient
        )

    track_s, theirs_s = _common.compare(ours_track, theirs)
    render_s, theirs_s2 = _common.compare(ours_render, theirs)
    tokens_s, theirs_s3 = _common.compare(ours_tokens, theirs)
    theirs_best = min(theirs_s, theirs_s2, theirs_s3)
    _common.print_table(
        f"HTML rewrite of newsletter.html ({len(newsletter.encode()):,} bytes,"
        f" {template.link_count} tracked links, {len(template.urls)} distinct)",
        ["operation", "flask_mailtrack", "pytracking 0.2.2", "speed-up"],
        [
            [
                "track_html vs adapt_html",
                _common.micros(track_s),
                _common.micros(theirs_best),
                f"{theirs_best / track_s:.1f}x (target >= 3x)",
            ],
            [
                "render per recipient vs adapt_html",
                _common.micros(render_s),
                _common.micros(theirs_best),
                f"{theirs_best / render_s:.1f}x (target >= 10x)",
            ],
            [
                f"  of which tokens ({len(template.urls) + 1} per recipient)",
                _common.micros(tokens_s),
                "",
                f"{tokens_s / render_s:.0%} of render",
            ],
        ],
    )

    sample = reference["metadata"]
    ours_size = len(t_bytes(track_html(tracker, newsletter, sample)))
    theirs_size = len(
        t_bytes(adapt_html(newsletter, sample, configuration=theirs_configuration))
    )
    _common.print_table(
        "Tracked newsletter size (UTF-8 bytes)",
        ["output", "bytes", "vs pytracking", "vs Gmail clip (102,400)"],
        [
            [
                "flask_mailtrack, signed tokens",
                f"{ours_size:,}",
                f"{ours_size / theirs_size:.2f}x",
                f"{ours_size / GMAIL_CLIP_BYTES:.2f}x",
            ],
            [
                "pytracking 0.2.2, unsigned tokens",
                f"{theirs_size:,}",
                "1.00x",
                f"{theirs_size / GMAIL_CLIP_BYTES:.2f}x",
            ],
            [
                "input",
                f"{len(newsletter.encode()):,}",
                "",
                f"{len(newsletter.encode()) / GMAIL_CLIP_BYTES:.2f}x",
            ],
        ],
    )

    by_input(tracker, theirs_configuration, metadata)


def by_input(
    tracker: Tracker,
    theirs_configuration: pytracking.Configuration,
    metadata: t.Callable[[], dict[str, object]],
) -> None:
    """``track_html`` against ``adapt_html`` on the newsletter, the digest
    and every corpus email."""

    def speed_up(html: str, *, rounds: int = 3) -> tuple[float, float, float]:
        def ours() -> object:
            return track_html(tracker, html, metadata())

        def theirs() -> object:
            return adapt_html(html, metadata(), configuration=theirs_configuration)

        ours_s, theirs_s = _common.compare(ours, theirs, rounds=rounds)
        return ours_s, theirs_s, theirs_s / ours_s

    rows = []
    for label, html in (
        ("newsletter.html", _common.load_newsletter()),
        ("digest (_digest.py)", _digest.digest()),
    ):
        template = HTMLTemplate(tracker, html)
        ours_s, theirs_s, ratio = speed_up(html)
        rows.append(
            [
                f"{label}: {len(html.encode()):,} bytes,"
                f" {len(template.urls)} distinct links",
                _common.micros(ours_s),
                _common.micros(theirs_s),
                f"{ratio:.2f}x",
            ]
        )
    corpus = sorted(CORPUS_DIR.rglob("*.htm*")) if CORPUS_DIR.is_dir() else []
    if corpus:
        # One round each: 34 files, and the summary is a mean over them.
        ratios = {
            path: speed_up(path.read_text(encoding="utf-8"), rounds=1)[2]
            for path in corpus
        }
        slowest = min(ratios, key=ratios.__getitem__)
        geometric_mean = math.exp(sum(map(math.log, ratios.values())) / len(ratios))
        rows.append(
            [
                f"corpus: {len(corpus)} emails, geometric mean",
                "",
                "",
                f"{geometric_mean:.2f}x",
            ]
        )
        rows.append(
            [
                f"corpus: minimum ({slowest.parent.name}/{slowest.name[:24]})",
                "",
                "",
                f"{ratios[slowest]:.2f}x",
            ]
        )
    _common.print_table(
        "track_html vs adapt_html by input (target >= 3x on each)",
        ["input", "flask_mailtrack", "pytracking 0.2.2", "speed-up"],
        rows,
    )


def t_bytes(html: str | bytes) -> bytes:
    return html.encode("utf-8") if isinstance(html, str) else html


if __name__ == "__main__":
    main()
