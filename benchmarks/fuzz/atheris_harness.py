"""Coverage-guided fuzzing with atheris (libFuzzer), for long runs outside CI.

The same properties as ``tests/fuzz/test_properties.py``, driven by
libFuzzer's coverage feedback instead of hypothesis' strategies:

``tokens``
    any text as a token of either kind, in every mode (signed, encrypted,
    case-insensitive, legacy plain and Fernet): only ``InvalidToken``, and
    nothing accepted that was not issued (plain pytracking tokens, forgeable
    by design, only to the legacy host).
``wsgi``
    any path, method and headers through ``TrackingMiddleware``: no 5xx, no
    redirect that the key did not sign.
``html``
    any document through the rewriter: no exception but ``MailTrackError``
    for bytes in an unknown charset, and a second rewrite changes nothing.

atheris is not a dependency of the project::

    pip install atheris
    python benchmarks/fuzz/atheris_harness.py tokens -max_total_time=600
    python benchmarks/fuzz/atheris_harness.py wsgi -runs=1000000
    python benchmarks/fuzz/atheris_harness.py html -max_len=65536 corpus_dir/

Everything after the target name goes to libFuzzer (``-help=1`` lists its
options). A crash writes ``crash-<sha1>`` with the input; replay it with
``python benchmarks/fuzz/atheris_harness.py <target> crash-<sha1>``.
"""

from __future__ import annotations

import base64
import json
import sys
import typing as t

import atheris

with atheris.instrument_imports():
    from flask_mailtrack import Configuration
    from flask_mailtrack import InvalidToken
    from flask_mailtrack import MailTrackError
    from flask_mailtrack import Tracker
    from flask_mailtrack import TrackingMiddleware
    from flask_mailtrack.rewrite import track_html

from werkzeug.test import EnvironBuilder
from werkzeug.test import run_wsgi_app

SECRET = "atheris-secret-key-0123456789abcdef"
ENCRYPTION_KEY = "atheris-encryption-key-0123456789"
FERNET_KEY = base64.urlsafe_b64encode(bytes(range(32)))
LEGACY_HOST = "legacy.example.com"
BASES = {
    "base_open_tracking_url": "https://t.example.com/mt/o/",
    "base_click_tracking_url": "https://t.example.com/mt/c/",
}
MODES: list[dict[str, t.Any]] = [
    {"secret_key": SECRET},
    {"encryption_key": ENCRYPTION_KEY},
    {"secret_key": SECRET, "case_insensitive_tokens": True},
    {"encryption_key": ENCRYPTION_KEY, "case_insensitive_tokens": True},
    {
        "secret_key": SECRET,
        "accept_legacy_tokens": True,
        "encryption_bytestring_key": FERNET_KEY,
        "legacy_redirect_hosts": [LEGACY_HOST],
    },
]
TRACKERS = [Tracker(Configuration(**BASES, **mode)) for mode in MODES]
TARGET = "https://www.example.com/a?b=c"
METADATA = {"recipient": "r@example.com"}

# What the trackers issue; an accepted token must decode to one of these.
GENUINE = {(None, json.dumps(METADATA)), (TARGET, json.dumps(METADATA))}
ISSUED = [
    token
    for tracker in TRACKERS
    for token in (tracker.open_token(METADATA), tracker.click_token(TARGET, METADATA))
]


def _decoded(result: t.Any) -> tuple[str | None, str]:
    return result.tracked_url, json.dumps(result.metadata, sort_keys=True)


def fuzz_tokens(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    tracker = TRACKERS[provider.ConsumeIntInRange(0, len(TRACKERS) - 1)]
    kind = "click" if provider.ConsumeBool() else "open"
    if provider.ConsumeBool():
        # Start from an issued token and let the rest of the input edit it.
        base = ISSUED[provider.ConsumeIntInRange(0, len(ISSUED) - 1)]
        cut = provider.ConsumeIntInRange(0, len(base))
        token = base[:cut] + provider.ConsumeUnicodeNoSurrogates(16) + base[cut + 1 :]
    else:
        token = provider.ConsumeUnicodeNoSurrogates(4096)
    try:
        result = tracker.decode(kind, token)  # type: ignore[arg-type]
    except InvalidToken:
        return
    if result.legacy and not token.startswith("gAAAAA"):
        # Plain pytracking tokens: anyone can make one; only the host list
        # and the missing webhook stand between them and harm.
        assert result.webhook_url is None
        assert kind == "open" or f"://{LEGACY_HOST}" in str(result.tracked_url)
        return
    assert _decoded(result) in GENUINE, (token, _decoded(result))


MIDDLEWARES = [
    TrackingMiddleware(lambda e, s: [s("404 Not Found", [])] and [b""], tracker=tr)
    for tr in TRACKERS
]
HEADER_NAMES = ("User-Agent", "Accept", "X-Forwarded-For", "Sec-Purpose", "Host")


def fuzz_wsgi(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    index = provider.ConsumeIntInRange(0, len(TRACKERS) - 1)
    method = ("GET", "HEAD", "POST", "OPTIONS")[provider.ConsumeIntInRange(0, 3)]
    headers = {
        name: provider.ConsumeBytes(200).decode("latin-1").replace("\n", "")
        for name in HEADER_NAMES
        if provider.ConsumeBool()
    }
    prefix = ("/mt/o/", "/mt/c/", "/mt/", "/")[provider.ConsumeIntInRange(0, 3)]
    path = prefix + provider.ConsumeBytes(4200).decode("latin-1")
    environ = EnvironBuilder(method=method).get_environ()
    environ["PATH_INFO"] = path
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    body, status, response_headers = run_wsgi_app(
        MIDDLEWARES[index], environ, buffered=True
    )
    code = int(status[:3])
    assert code < 500, (path, headers)
    if code == 302:
        location = response_headers["Location"]
        assert location.isascii() and "\r" not in location and "\n" not in location
        result = environ["mailtrack.result"]
        assert result is not None
        if not result.legacy or environ["PATH_INFO"][6:].startswith("gAAAAA"):
            assert result.tracked_url == TARGET, location
        else:
            assert f"://{LEGACY_HOST}" in location


def fuzz_html(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    tracker = TRACKERS[0]
    as_bytes = provider.ConsumeBool()
    document: str | bytes = (
        provider.ConsumeBytes(1 << 20)
        if as_bytes
        else provider.ConsumeUnicodeNoSurrogates(1 << 20)
    )
    try:
        tracked = track_html(tracker, document, METADATA)
    except MailTrackError:
        assert as_bytes  # only bytes in an undecodable charset
        return
    assert type(tracked) is type(document)
    assert track_html(tracker, tracked, METADATA) == tracked


TARGETS: dict[str, t.Callable[[bytes], None]] = {
    "tokens": fuzz_tokens,
    "wsgi": fuzz_wsgi,
    "html": fuzz_html,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(TARGETS)}}} [libFuzzer options]")
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
