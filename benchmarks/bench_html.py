"""HTML rewriting: flask_mailtrack against pytracking 0.2.2's ``adapt_html``.

On ``../shared/bench/newsletter.html``, in one process:

- ``Tracker.track_html`` (scan + tokens, signed) against ``adapt_html``
  (lxml parse, rewrite, re-serialise; unsigned tokens) for one recipient;
- ``compile_html`` once, then ``render`` per recipient, against
  ``adapt_html`` per recipient;
- the size of the tracked newsletter (signed tokens) against pytracking's
  output (unsigned tokens) and Gmail's ~102 KB clipping limit.

Run: ``python benchmarks/bench_html.py``
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _common  # noqa: E402
import pytracking  # noqa: E402
from flask_mailtrack import Tracker  # noqa: E402
from flask_mailtrack.rewrite import HTMLTemplate
from flask_mailtrack.rewrite import track_html
from pytracking.html import adapt_html  # noqa: E402

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


def t_bytes(html: str | bytes) -> bytes:
    return html.encode("utf-8") if isinstance(html, str) else html


if __name__ == "__main__":
    main()
