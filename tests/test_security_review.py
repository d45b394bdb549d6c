"""Regression tests of the findings of the adversarial review (issue 7;
``docs/security.rst``, "Review findings"). One test (or table) per finding.
"""

from __future__ import annotations

import base64
import json
import typing as t

import pytest
from flask_mailtrack import InvalidToken
from flask_mailtrack import Tracker
from flask_mailtrack.rewrite import track_html
from flask_mailtrack.rewrite import track_text

SECRET = "review-secret-key-0123456789abcdef"
OPEN_BASE = "https://t.example.com/mt/o/"
CLICK_BASE = "https://t.example.com/mt/c/"


def plain_token(data: t.Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode("ascii")


def legacy_tracker(
    hosts: t.Sequence[str] = ("www.example.com",), **extra: t.Any
) -> Tracker:
    return Tracker(
        secret_key=SECRET,
        base_open_tracking_url=OPEN_BASE,
        base_click_tracking_url=CLICK_BASE,
        accept_legacy_tokens=True,
        legacy_redirect_hosts=hosts,
        **extra,
    )


# -- finding: deeply nested JSON in a plain pytracking token ----------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[" * 3000, id="arrays"),
        pytest.param(b'{"a":' * 1000, id="objects"),
        pytest.param(b'{"metadata":' + b"[" * 2900 + b"]" * 2900 + b"}", id="inside"),
    ],
)
def test_legacy_deep_json_is_an_invalid_token(raw: bytes) -> None:
    token = base64.urlsafe_b64encode(raw).decode("ascii")
    with pytest.raises(InvalidToken):
        legacy_tracker().decode_open(token)


# -- finding: a plain pytracking token chose the webhook URL (SSRF) --------------


@pytest.mark.parametrize("kind", ["open", "click"])
def test_plain_legacy_token_cannot_choose_the_webhook(kind: str) -> None:
    tracker = legacy_tracker(
        include_webhook_url=True, webhook_url="https://hooks.example.com/in"
    )
    data: dict[str, t.Any] = {
        "metadata": {"a": 1},
        "webhook": "http://169.254.169.254/latest/meta-data/",
    }
    if kind == "click":
        data["url"] = "https://www.example.com/x"
    result = tracker.decode(kind, plain_token(data))  # type: ignore[arg-type]
    assert result.webhook_url is None


def test_fernet_legacy_token_keeps_its_webhook() -> None:
    fernet = pytest.importorskip("cryptography.fernet")
    key = fernet.Fernet.generate_key()
    tracker = legacy_tracker(include_webhook_url=True, encryption_bytestring_key=key)
    token = (
        fernet.Fernet(key)
        .encrypt(json.dumps({"webhook": "https://hooks.example.com/a"}).encode())
        .decode()
    )
    assert tracker.decode_open(token).webhook_url == "https://hooks.example.com/a"


# -- finding: pytracking tokens in a non-canonical base64 were accepted -----------


def _non_canonical(token: str) -> str:
    """``token`` with unused bits set in the character before the padding."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    stripped = token.rstrip("=")
    unused = 4 if len(token) - len(stripped) == 2 else 2
    last = alphabet.index(stripped[-1])
    assert last % (1 << unused) == 0  # canonical: the unused bits are zero
    changed = alphabet[last + 1]
    return stripped[:-1] + changed + token[len(stripped) :]


@pytest.mark.parametrize("padding", [1, 2])
def test_legacy_fernet_token_in_non_canonical_base64_is_refused(padding: int) -> None:
    fernet = pytest.importorskip("cryptography.fernet")
    key = fernet.Fernet.generate_key()
    tracker = legacy_tracker(encryption_bytestring_key=key)
    for size in range(40):
        token = fernet.Fernet(key).encrypt(b'{"metadata": {"n": "%s"}}' % (b"x" * size))
        text = token.decode()
        if len(text) - len(text.rstrip("=")) == padding:
            break
    tracker.decode_open(text)
    with pytest.raises(InvalidToken):
        tracker.decode_open(_non_canonical(text))


@pytest.mark.parametrize("padding", [1, 2])
def test_legacy_plain_token_in_non_canonical_base64_is_refused(padding: int) -> None:
    tracker = legacy_tracker()
    for size in range(3):
        text = plain_token({"metadata": {"n": "x" * size}})
        if len(text) - len(text.rstrip("=")) == padding:
            break
    tracker.decode_open(text)
    with pytest.raises(InvalidToken):
        tracker.decode_open(_non_canonical(text))


# -- finding: SQLite files were created with the umask, and symlinks followed -----


@pytest.mark.parametrize("kind", ["store", "outbox"])
def test_database_files_are_private(tmp_path: t.Any, kind: str) -> None:
    import os
    import stat

    from flask_mailtrack import EventStore
    from flask_mailtrack import WebhookSender

    path = tmp_path / "new" / "data.sqlite3"
    old_umask = os.umask(0o022)
    try:
        if kind == "store":
            EventStore(path).close()
        else:
            WebhookSender(
                "https://hooks.example.com/", secret=b"k" * 32, outbox_path=path
            ).close()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    for file in path.parent.iterdir():
        assert stat.S_IMODE(os.stat(file).st_mode) == 0o600, file.name


def test_database_path_that_is_a_symlink_is_refused(tmp_path: t.Any) -> None:
    from flask_mailtrack import EventStore

    target = tmp_path / "elsewhere.sqlite3"
    link = tmp_path / "events.sqlite3"
    link.symlink_to(target)
    with pytest.raises(ValueError, match="symbolic link"):
        EventStore(link)
    assert not target.exists()


def test_existing_database_keeps_its_mode(tmp_path: t.Any) -> None:
    import os
    import stat

    from flask_mailtrack import EventStore

    path = tmp_path / "events.sqlite3"
    EventStore(path).close()
    os.chmod(path, 0o640)  # the operator's choice, e.g. for a reporting group
    EventStore(path).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


# -- finding: token webhook URLs could reach internal addresses (opt-in guard) ----


class _Hook:
    """A loopback endpoint that counts POSTs."""

    def __init__(self) -> None:
        import http.server
        import threading

        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                hits.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: t.Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> t.Iterator[_Hook]:
    server = _Hook()
    yield server
    server.close()


def _event(webhook_url: str | None = None) -> t.Any:
    import time

    from flask_mailtrack import TrackingResult

    return TrackingResult(
        is_open_tracking=True, timestamp=int(time.time()), webhook_url=webhook_url
    )


def _wait(condition: t.Callable[[], bool]) -> None:
    import time

    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("127.0.0.1", id="loopback"),
        pytest.param("localhost", id="loopback-name"),
        pytest.param("[::1]", id="loopback-v6"),
        pytest.param("169.254.169.254", id="metadata-service"),
        pytest.param("10.1.2.3", id="private"),
        pytest.param("[::ffff:127.0.0.1]", id="v4-mapped"),
        pytest.param("0.0.0.0", id="unspecified"),
    ],
)
def test_private_token_webhook_url_is_refused(
    hook: _Hook, tmp_path: t.Any, host: str
) -> None:
    from flask_mailtrack import WebhookSender

    port = hook.url.rsplit(":", 1)[1]
    sender = WebhookSender(
        hook.url + "/configured",
        secret=b"k" * 32,
        outbox_path=tmp_path / "outbox.sqlite3",
        refuse_private_addresses=True,
        timeout=1,
    )
    try:
        assert sender.enqueue(_event(f"http://{host}:{port}/from-token"))
        _wait(lambda: bool(sender.dead_letters()))
        (letter,) = sender.dead_letters()
        assert letter["reason"] == "refused"
        assert "no public address" in letter["last_error"]
        # The sender's own URL, though on loopback, is still served.
        assert sender.enqueue(_event())
        _wait(lambda: hook.hits == ["/configured"])
    finally:
        sender.close()
    assert hook.hits == ["/configured"]


def test_private_token_webhook_url_is_allowed_by_default(
    hook: _Hook, tmp_path: t.Any
) -> None:
    from flask_mailtrack import WebhookSender

    sender = WebhookSender(
        None, secret=b"k" * 32, outbox_path=tmp_path / "outbox.sqlite3", timeout=1
    )
    try:
        assert sender.enqueue(_event(hook.url + "/from-token"))
        _wait(lambda: hook.hits == ["/from-token"])
    finally:
        sender.close()


def test_public_address_check() -> None:
    from flask_mailtrack.events._transport import public_address
    from flask_mailtrack.events._transport import RefusedAddress

    assert public_address("93.184.215.14", 443) == ("93.184.215.14", 443)
    for host in ("127.0.0.1", "::1", "192.168.1.1", "100.64.0.1", "224.0.0.1"):
        with pytest.raises(RefusedAddress):
            public_address(host, 80)


# -- finding: an invalid Host header made link-making views fail with a 500 ------


def _flask_app(**config: t.Any) -> t.Any:
    from flask import Flask
    from flask_mailtrack import MailTrack

    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, **config)
    mailtrack = MailTrack(app)

    @app.get("/link")
    def link() -> str:
        return mailtrack.click_url("https://www.example.com/", {"a": 1})

    return app


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("[::1", id="bad-ipv6"),
        pytest.param("a b", id="space"),
        pytest.param("bad_host!", id="punctuation"),
        pytest.param("evil.example/x?", id="path"),
        pytest.param("ex\u00e9.com", id="non-ascii"),
    ],
)
def test_invalid_host_header_is_a_400(host: str) -> None:
    client = _flask_app().test_client()
    assert client.get("/link", headers={"Host": host}).status_code == 400


def test_links_on_the_request_host_are_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _flask_app()
    client = app.test_client()
    with caplog.at_level("WARNING"):
        for host in ("a.example", "b.example"):
            response = client.get("/link", headers={"Host": host})
            assert response.get_data(as_text=True).startswith(f"http://{host}/")
    assert len([r for r in caplog.records if "Host header" in r.message]) == 1


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"MAILTRACK_BASE_URL": "https://t.example.com"}, id="base-url"),
        pytest.param({"TRUSTED_HOSTS": ["a.example"]}, id="trusted-hosts"),
    ],
)
def test_no_host_warning_when_configured(
    caplog: pytest.LogCaptureFixture, config: dict[str, t.Any]
) -> None:
    client = _flask_app(**config).test_client()
    with caplog.at_level("WARNING"):
        assert client.get("/link", headers={"Host": "a.example"}).status_code == 200
    assert not [r for r in caplog.records if "Host header" in r.message]


# -- finding: the Flask example kept every event in memory -------------------------


def test_flask_example_keeps_a_bounded_event_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util
    import pathlib
    import sys

    pytest.importorskip("flask_mailman")
    pytest.importorskip("aiosmtpd")
    path = pathlib.Path(__file__).parents[1] / "examples" / "flask_app" / "app.py"
    spec = importlib.util.spec_from_file_location("flask_app_review", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    monkeypatch.setenv("SECRET_KEY", SECRET)  # the example's fallback warns
    spec.loader.exec_module(module)
    app = module.create_app({"TESTING": True})
    client = app.test_client()
    for number in range(1100):
        client.get(f"/mailtrack/c/bad{number}")
    events = client.get("/events").get_json()
    assert len(events) == 1000
    assert events[-1] == {"type": "invalid click", "reason": "format"}


# -- checked, no change needed: each defence below is pinned by a test -------------


def _middleware(**extra: t.Any) -> t.Any:
    from flask_mailtrack import TrackingMiddleware
    from werkzeug.test import Client

    def fallback(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b""]

    tracker = Tracker(
        secret_key=SECRET,
        base_open_tracking_url=OPEN_BASE,
        base_click_tracking_url=CLICK_BASE,
        **extra,
    )
    return tracker, Client(TrackingMiddleware(fallback, tracker=tracker))


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("https://例え.jp/パス?q=値", id="iri"),
        pytest.param("https://x.example/a b", id="space"),
        pytest.param('https://x.example/"><script>alert(1)</script>', id="markup"),
        pytest.param("https://x.example/%0d%0aSet-Cookie:%20a=b", id="escaped-crlf"),
        pytest.param("https://x.example/\u00e9\u00ff", id="latin-1"),
    ],
)
def test_location_header_is_ascii_without_line_breaks(target: str) -> None:
    tracker, client = _middleware()
    response = client.get(tracker.click_url(target)[len("https://t.example.com") :])
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.isascii()
    assert not any(c in location for c in "\r\n\x00 ")
    assert "Set-Cookie" not in response.headers
    assert "<script>" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("https://x.example/\r\nSet-Cookie: a=b", id="crlf"),
        pytest.param("https://x.example/\u2028", id="line-separator"),
        pytest.param("https://x.example/\x85", id="next-line"),
    ],
)
def test_click_targets_with_line_breaks_are_refused(target: str) -> None:
    from flask_mailtrack import MailTrackError

    tracker, _ = _middleware()
    with pytest.raises(MailTrackError):
        tracker.click_url(target)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="plain"),
        pytest.param({"If-None-Match": "*"}, id="if-none-match"),
        pytest.param(
            {"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}, id="if-modified"
        ),
        pytest.param({"Range": "bytes=0-1"}, id="range"),
        pytest.param({"Accept-Encoding": "gzip"}, id="gzip"),
    ],
)
def test_pixel_is_never_cached_or_varied(headers: dict[str, str]) -> None:
    from flask_mailtrack.web import TRACKING_PIXEL

    tracker, client = _middleware()
    for path in (tracker.open_url()[len("https://t.example.com") :], "/mt/o/bad"):
        response = client.get(path, headers=headers)
        assert response.status_code == 200
        assert response.get_data() == TRACKING_PIXEL
        assert "no-store" in response.headers["Cache-Control"]
        for name in ("ETag", "Last-Modified", "Vary", "Set-Cookie", "Content-Range"):
            assert name not in response.headers


def test_logged_refusals_hold_no_client_text(caplog: pytest.LogCaptureFixture) -> None:
    _, client = _middleware(pixel_on_invalid_token=False)
    agent = "evil\r\nFAKE LOG LINE"
    with caplog.at_level("DEBUG", logger="flask_mailtrack"):
        # A server hands header values on as they came (gunicorn refuses bare
        # CR/LF, others may not); the test client would refuse to send them.
        overrides = {"HTTP_USER_AGENT": agent}
        client.get("/mt/c/1abc%0d%0aFAKE", environ_overrides=overrides)
        client.get("/mt/c/" + "A" * 5000, environ_overrides=overrides)
    assert caplog.records
    for record in caplog.records:
        text = record.getMessage()
        assert "\n" not in text and "\r" not in text and "FAKE" not in text


def test_deflate_bomb_in_an_authentic_token_is_refused() -> None:
    import struct
    import time
    import zlib

    from flask_mailtrack.tokens import MAX_BODY_SIZE
    from flask_mailtrack.tokens._payload import ZDICT

    tracker, _ = _middleware()
    compressor = zlib.compressobj(9, zlib.DEFLATED, -10, 9, 0, ZDICT)
    bomb = compressor.compress(b"{" + b" " * (50 * MAX_BODY_SIZE)) + compressor.flush()
    # Flags 0x20: the metadata section is deflated.
    raw = struct.pack(">BI", 0x20, int(time.time())) + bomb
    token = tracker.serializer._seal("open", raw)
    assert len(token) < tracker.serializer.max_length
    with pytest.raises(InvalidToken):
        tracker.decode_open(token)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://legacy.example.com.evil.example/", id="suffix"),
        pytest.param("https://evil.example/legacy.example.com", id="path"),
        pytest.param("https://legacy.example.com@evil.example/", id="userinfo"),
        pytest.param("https://evil.example\\@legacy.example.com/", id="backslash"),
        pytest.param("https://legacy.example.com./", id="trailing-dot"),
        pytest.param("//legacy.example.com/", id="scheme-relative"),
        pytest.param("javascript://legacy.example.com/%0aalert(1)", id="javascript"),
        pytest.param("https://legacy.example.com%2eevil.example/", id="escaped-dot"),
    ],
)
def test_plain_legacy_click_token_never_leaves_the_allowed_hosts(url: str) -> None:
    tracker = legacy_tracker(["legacy.example.com"])
    token = plain_token({"url": url})
    with pytest.raises(InvalidToken):
        tracker.decode_click(token)


def test_plain_legacy_click_token_to_an_allowed_host() -> None:
    tracker = legacy_tracker(["legacy.example.com"])
    result = tracker.decode_click(plain_token({"url": "https://LEGACY.example.com/"}))
    assert result.tracked_url == "https://LEGACY.example.com/"


MEGABYTE = 1_000_000

#: Inputs of 1 MB built to make a backtracking regular expression or a
#: quadratic scan take forever. They must simply complete; their speed is
#: not asserted (the machine is noisy), but each takes seconds at most.
WORST_HTML = [
    pytest.param("<" * MEGABYTE, id="lt"),
    pytest.param("<a " * (MEGABYTE // 3), id="open-tags"),
    pytest.param("<a href=" * (MEGABYTE // 8), id="open-hrefs"),
    pytest.param('<a href="' + "x" * MEGABYTE, id="unclosed-value"),
    pytest.param("<a " + "b " * (MEGABYTE // 2), id="attributes"),
    pytest.param("<a" + " " * MEGABYTE + "href", id="whitespace"),
    pytest.param("<!--[if mso]>" * (MEGABYTE // 13), id="conditionals"),
    pytest.param("<v:" * (MEGABYTE // 3), id="vml"),
    pytest.param("<a href=https://x.example/ " * (MEGABYTE // 26), id="unquoted"),
    pytest.param(b"<meta charset" * (MEGABYTE // 13), id="meta-charset"),
]


@pytest.mark.parametrize("document", WORST_HTML)
def test_rewriter_worst_case_inputs_complete(document: str | bytes) -> None:
    tracker, _ = _middleware()
    tracked = track_html(tracker, document)
    assert len(tracked) >= len(document)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("http://" + "a" * MEGABYTE, id="long-url"),
        pytest.param("http://a " * (MEGABYTE // 9), id="many-urls"),
        pytest.param("http://a/" + "(" * MEGABYTE, id="brackets"),
        pytest.param("http://a/" + "." * MEGABYTE, id="trailing"),
    ],
)
def test_text_rewriter_worst_case_inputs_complete(text: str) -> None:
    tracker, _ = _middleware()
    tracked = track_text(tracker, text)
    assert tracked.startswith("https://t.example.com/mt/c/")


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://" + "a" * MEGABYTE + "\x00", id="host"),
        pytest.param("https://a.example/" + "a" * MEGABYTE + "\x00", id="path"),
        pytest.param("https://[" + ":" * MEGABYTE, id="ipv6"),
        pytest.param("https://a" + ":1" * (MEGABYTE // 2), id="ports"),
    ],
)
def test_url_check_worst_case_inputs_complete(url: str) -> None:
    from flask_mailtrack import is_safe_target

    assert not is_safe_target(url)


def test_stats_basic_auth_compares_the_password(tmp_path: t.Any) -> None:
    from flask_mailtrack.server import create_app

    app = create_app(
        {
            "MAILTRACK_SECRET_KEY": SECRET,
            "MAILTRACK_DATABASE": str(tmp_path / "events.sqlite3"),
            "MAILTRACK_STATS_PASSWORD": "pässwörd",
        }
    )
    client = app.test_client()

    def get(user: str, password: str) -> int:
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers = {"Authorization": "Basic " + credentials}
        return client.get("/stats.json", headers=headers).status_code

    assert get("anyone", "pässwörd") == 200
    for wrong in ("", "pässwörd ", "pässwör", "PÄSSWÖRD", "x" * 10000):
        assert get("anyone", wrong) == 401
    assert client.get("/stats.json").status_code == 401


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, False, id="unset"),
        pytest.param("1", True, id="env-1"),
        pytest.param("off", False, id="env-off"),
        pytest.param(True, True, id="bool"),
    ],
)
def test_refuse_private_addresses_setting(
    tmp_path: t.Any, value: t.Any, expected: bool
) -> None:
    from flask_mailtrack import WebhookSender
    from flask_mailtrack.events._from_settings import find_receiver
    from flask_mailtrack.extension import get_state
    from flask_mailtrack.server import close_app
    from flask_mailtrack.server import create_app

    config = {
        "MAILTRACK_SECRET_KEY": SECRET,
        "MAILTRACK_DATABASE": str(tmp_path / "events.sqlite3"),
        "MAILTRACK_WEBHOOK_URL": "https://hooks.example.com/in",
        "MAILTRACK_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"k" * 32).decode(),
    }
    if value is not None:
        config["MAILTRACK_WEBHOOK_REFUSE_PRIVATE"] = value
    app = create_app(config)
    try:
        sender = find_receiver(get_state(app).receivers, WebhookSender)
        assert sender is not None
        assert sender.refuse_private_addresses is expected
    finally:
        close_app(app, 0)
