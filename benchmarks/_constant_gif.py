"""The floor of the real-server benchmark: a WSGI app that answers every
request with the tracking pixel and the same headers, and does nothing else."""

from __future__ import annotations

import typing as t

from flask_mailtrack.web._answers import PIXEL_ANSWER


def app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
    start_response("200 OK", list(PIXEL_ANSWER.headers))
    return [PIXEL_ANSWER.body]
