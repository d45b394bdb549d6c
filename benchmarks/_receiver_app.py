"""A webhook endpoint for the real-server benchmark, in its own process
(``gunicorn -k gthread -w 1 --threads 8 _receiver_app:app``): answers 204 to
every POST and counts the distinct ``webhook-id`` values it got; ``GET``
answers the count as JSON. One process, so one count."""

from __future__ import annotations

import json
import threading
import typing as t

_ids: set[str] = set()
_lock = threading.Lock()
_posts = 0


def app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
    global _posts
    if environ["REQUEST_METHOD"] == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"].read(length)
        with _lock:
            _ids.add(environ.get("HTTP_WEBHOOK_ID", ""))
            _posts += 1
        start_response("204 No Content", [("Content-Length", "0")])
        return []
    with _lock:
        body = json.dumps({"distinct": len(_ids), "posts": _posts}).encode()
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
