"""Geometry of the stats pages' bar chart of opens and clicks, drawn by the
``mailtrack/chart.svg`` template."""

from __future__ import annotations

import datetime
import typing as t

#: Chart windows of the stats pages: name → (bucket seconds, buckets).
CHART_WINDOWS: dict[str, tuple[int, int]] = {
    "1h": (60, 60),
    "24h": (3600, 24),
    "30d": (86400, 30),
}


def chart(
    timeline: t.Sequence[t.Mapping[str, int]],
    *,
    bucket_seconds: int,
    width: int = 640,
    height: int = 180,
) -> dict[str, t.Any]:
    """Geometry of the opens/clicks bar chart drawn by
    ``mailtrack/chart.svg``: two bars per bucket, scaled to the busiest."""
    top, bottom, left = 12, 24, 36
    plot_height = height - top - bottom
    plot_width = width - left - 8
    peak = max([1] + [max(b["opens"], b["clicks"]) for b in timeline])
    slot = plot_width / max(1, len(timeline))
    bar = max(1.0, slot * 0.4)
    bars = []
    for index, bucket in enumerate(timeline):
        moment = _format_bucket(bucket["start"], bucket_seconds)
        for offset, kind in ((0.1, "opens"), (0.5, "clicks")):
            value = bucket[kind]
            bar_height = plot_height * value / peak
            bars.append(
                {
                    "x": round(left + index * slot + slot * offset, 2),
                    "y": round(top + plot_height - bar_height, 2),
                    "width": round(bar, 2),
                    "height": round(bar_height, 2),
                    "kind": kind,
                    "title": f"{moment}: {value} {kind}",
                }
            )
    first = timeline[0]["start"] if timeline else None
    last = timeline[-1]["start"] if timeline else None
    return {
        "width": width,
        "height": height,
        "top": top,
        "left": left,
        "baseline": top + plot_height,
        "right": width - 8,
        "peak": peak,
        "bars": bars,
        "first": _format_bucket(first, bucket_seconds) if first is not None else "",
        "last": _format_bucket(last, bucket_seconds) if last is not None else "",
    }


def _format_bucket(start: int, bucket_seconds: int) -> str:
    moment = datetime.datetime.fromtimestamp(start, datetime.timezone.utc)
    if bucket_seconds >= 86400:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M UTC")
