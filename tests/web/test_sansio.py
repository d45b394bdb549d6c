"""The sans-IO handler (decide, Routes, client info from headers) and what the
adapters add around it (send_signals, send_robust, the lazy request)."""

from __future__ import annotations

import logging
import typing as t

import pytest
from flask_mailtrack import email_opened
from flask_mailtrack import link_clicked
from flask_mailtrack import record_events
from flask_mailtrack import Tracker
from flask_mailtrack import tracking_failed
from flask_mailtrack import TrackingMiddleware
from flask_mailtrack.signals import send_robust
from flask_mailtrack.tokens import CLICK
from flask_mailtrack.tokens import OPEN
from flask_mailtrack.traffic import Hit
from flask_mailtrack.web import client_address
from flask_mailtrack.web import client_ip
from flask_mailtrack.web import decide
from flask_mailtrack.web import handle_request
from flask_mailtrack.web import METHOD_NOT_ALLOWED_ANSWER
from flask_mailtrack.web import NOT_FOUND_ANSWER
from flask_mailtrack.web import PIXEL_ANSWER
from flask_mailtrack.web import PREFETCH_HEADERS
from flask_mailtrack.web import read_hit
from flask_mailtrack.web import request_data
from flask_mailtrack.web import request_data_of
from flask_mailtrack.web import Routes
from flask_mailtrack.web import send_signals
from flask_mailtrack.web._wsgi import WSGIHeaders
from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

# The tracker fixture (tests/conftest.py) serves /mailtrack/o/ and /mailtrack/c/.
SECRET = "sansio-test-secret-key-0123456789"
OPEN_PATH = "/mailtrack/o/"
CLICK_PATH = "/mailtrack/c/"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; rv:125.0) Gecko/20100101 Firefox/125.0"


# -- decide: no environ, no request, no signal -------------------------------------


def test_decide_from_plain_data_sends_nothing(tracker: Tracker) -> None:
    path = "/mailtrack/o/" + tracker.open_token({"user": 7})
    with record_events() as events:
        handled = decide(
            tracker, "GET", path, Headers({"User-Agent": FIREFOX}), "198.51.100.7"
        )
    assert events == []
    assert handled.answer is PIXEL_ANSWER
    assert handled.kind == OPEN and handled.error is None
    assert handled.result is not None
    assert handled.result.metadata == {"user": 7}
    assert handled.result.request_data is not None
    assert handled.result.request_data["user_agent"] == FIREFOX
    assert handled.result.request_data["user_ip"] == "198.51.100.7"
    assert handled.result.machine is None


@pytest.mark.parametrize(
    ("method", "path", "answer", "kind"),
    [
        pytest.param("GET", "/elsewhere", NOT_FOUND_ANSWER, None, id="not-tracking"),
        pytest.param(
            "POST", "/mailtrack/o/x", METHOD_NOT_ALLOWED_ANSWER, OPEN, id="post"
        ),
        pytest.param(
            "GET", "/mailtrack/c/forged", NOT_FOUND_ANSWER, CLICK, id="bad-click"
        ),
        pytest.param("GET", "/mailtrack/o/forged", PIXEL_ANSWER, OPEN, id="bad-open"),
    ],
)
def test_decide_answers_without_a_result(
    tracker: Tracker, method: str, path: str, answer: t.Any, kind: str | None
) -> None:
    with record_events() as events:
        handled = decide(tracker, method, path, {}, None)
    assert events == []
    assert handled.answer == answer
    assert handled.kind == kind
    assert handled.result is None


def test_decide_labels_machines_from_the_headers(tracker: Tracker) -> None:
    url = "https://example.com/"
    path = "/mailtrack/c/" + tracker.click_token(url)
    handled = decide(
        tracker,
        "HEAD",
        path,
        {"User-Agent": "curl/8.5.0", "Sec-Purpose": "prefetch"},
        "198.51.100.7",
    )
    assert handled.result is not None
    assert handled.result.tracked_url == url
    assert handled.result.machine == "prefetch"
    assert handled.result.machine_reasons == [
        "head-request",
        "prefetch-header",
        "tool-user-agent",
    ]
    assert handled.answer.status_code == 302


def test_decide_with_kind_and_token(tracker: Tracker) -> None:
    token = tracker.open_token()
    handled = decide(tracker, "GET", "/any/path", {}, None, kind=OPEN, token=token)
    assert handled.result is not None and handled.kind == OPEN


# -- routes ------------------------------------------------------------------------


def test_routes_are_made_once_by_their_owner(tracker: Tracker) -> None:
    routes = Routes(tracker)
    assert routes
    assert routes.match("/mailtrack/o/abc/") == (OPEN, "abc")
    assert routes.match("/mailtrack/c/abc") == (CLICK, "abc")
    assert routes.match("/other") is None
    middleware = TrackingMiddleware(lambda e, s: [], tracker=tracker)
    assert middleware.routes.match("/mailtrack/o/x") == (OPEN, "x")
    # Nothing is kept on the tracker.
    assert "_handler_routes" not in vars(tracker)


def test_routes_nested_bases_longest_first() -> None:
    tracker = Tracker(
        secret_key=SECRET,
        base_open_tracking_url="https://t.example.com/t/",
        base_click_tracking_url="https://t.example.com/t/c/",
    )
    assert Routes(tracker).match("/t/c/abc") == (CLICK, "abc")
    assert Routes(tracker).match("/t/abc") == (OPEN, "abc")


def test_routes_of_a_tracker_without_bases() -> None:
    routes = Routes(Tracker(secret_key=SECRET))
    assert not routes
    assert routes.match("/mailtrack/o/abc") is None


# -- client info from headers -------------------------------------------------------


@pytest.mark.parametrize(
    ("forwarded", "proxies", "expected"),
    [
        pytest.param(None, 0, "10.0.0.1", id="peer"),
        pytest.param("203.0.113.7", 0, "10.0.0.1", id="untrusted-header"),
        pytest.param("203.0.113.7, 198.51.100.2", 1, "198.51.100.2", id="one"),
        pytest.param("203.0.113.7:443, 198.51.100.2", 2, "203.0.113.7", id="two"),
        pytest.param("198.51.100.2", 2, "10.0.0.1", id="too-few-entries"),
    ],
)
def test_client_address(forwarded: str | None, proxies: int, expected: str) -> None:
    headers = Headers({"X-Forwarded-For": forwarded} if forwarded else {})
    assert client_address(headers, "10.0.0.1", proxies) == expected


@pytest.mark.parametrize(
    ("header", "value", "proxies", "expected"),
    [
        pytest.param("X-Real-IP", "203.0.113.7", 0, "10.0.0.1", id="real-ip-untrusted"),
        pytest.param("X-Real-IP", "203.0.113.7", 1, "203.0.113.7", id="real-ip"),
        pytest.param("x-real-ip", "203.0.113.7", 2, "203.0.113.7", id="one-address"),
        pytest.param(
            "X-Real-IP", "6.6.6.6, 203.0.113.7", 1, "203.0.113.7", id="appended"
        ),
        pytest.param("X-Real-IP", "", 1, "10.0.0.1", id="empty"),
        pytest.param(
            "CF-Connecting-IP", "[2001:db8::7]:443", 1, "2001:db8::7", id="ipv6-port"
        ),
        pytest.param(
            "Forwarded",
            'for=6.6.6.6, for="[2001:db8::7]:443";proto=https',
            1,
            "2001:db8::7",
            id="forwarded",
        ),
        pytest.param(
            "Forwarded",
            "for=203.0.113.7;proto=http, For=198.51.100.2",
            2,
            "203.0.113.7",
            id="forwarded-two",
        ),
        pytest.param("Forwarded", "for=203.0.113.7", 2, "10.0.0.1", id="too-few"),
        pytest.param("Forwarded", "proto=https", 1, "10.0.0.1", id="no-for"),
    ],
)
def test_client_address_from_proxy_header(
    header: str, value: str, proxies: int, expected: str
) -> None:
    headers = Headers({header: value})
    # The default header is ignored once another one is named.
    headers["X-Forwarded-For"] = "6.6.6.6"
    assert client_address(headers, "10.0.0.1", proxies, header) == expected


def test_read_hit_and_request_data_of(tracker: Tracker) -> None:
    headers = {
        "User-Agent": "x" * 600,
        "Accept": "image/*",
        "Purpose": "prefetch",
    }
    hit = read_hit("GET", "/mailtrack/o/t", headers, "192.0.2.9")
    assert hit == Hit(
        "GET", "/mailtrack/o/t", headers, "192.0.2.9", "192.0.2.9", "x" * 512
    )
    configuration = tracker.configuration.replace(anonymize_ip=True)
    data = request_data_of(hit, configuration, 0.25)
    assert data == {
        "user_ip": "192.0.2.0",
        "method": "GET",
        "user_agent": "x" * 512,
        "accept": "image/*",
        "sec_purpose": None,
        "purpose": "prefetch",
        "x_purpose": None,
        "x_moz": None,
        "received_at": "1970-01-01T00:00:00.250Z",
    }


def test_prefetch_headers_are_named_once() -> None:
    from flask_mailtrack import traffic

    assert PREFETCH_HEADERS is traffic.PREFETCH_HEADERS
    assert dict(PREFETCH_HEADERS)["Sec-Purpose"] == "sec_purpose"


def test_environ_based_helpers_are_deprecated(tracker: Tracker) -> None:
    environ = EnvironBuilder(
        headers={"User-Agent": FIREFOX, "X-Forwarded-For": "203.0.113.7"},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    ).get_environ()
    with pytest.warns(DeprecationWarning, match="client_address"):
        assert client_ip(environ, 1) == "203.0.113.7"
    with pytest.warns(DeprecationWarning, match="request_data_of"):
        data = request_data(
            Request(environ), tracker.configuration, 0, ip="203.0.113.7"
        )
    assert data["user_ip"] == "203.0.113.7"
    assert data["user_agent"] == FIREFOX


def test_wsgi_headers_read_like_environ_headers() -> None:
    environ = EnvironBuilder(
        headers={"User-Agent": "UA", "X-Custom": "1"},
        content_type="text/plain",
    ).get_environ()
    headers = WSGIHeaders(environ)
    assert headers.get("user-agent") == "UA"
    assert headers["X-CUSTOM"] == "1"
    assert headers.get("Content-Type") == "text/plain"
    assert headers.get("Missing") is None
    with pytest.raises(KeyError):
        headers["Missing"]
    assert "X-Custom" in set(headers)
    assert len(headers) == len(list(headers))


# -- the adapters send the signals ----------------------------------------------------


def test_send_robust_logs_and_skips_a_receiver_that_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[object] = []

    def broken(sender: object, **kwargs: t.Any) -> None:
        raise RuntimeError("receiver bug")

    def working(sender: object, **kwargs: t.Any) -> None:
        seen.append(kwargs["value"])

    email_opened.connect(broken)
    email_opened.connect(working)
    try:
        with caplog.at_level(logging.ERROR, logger="flask_mailtrack"):
            send_robust(email_opened, "sender", value=1)
    finally:
        email_opened.disconnect(broken)
        email_opened.disconnect(working)
    assert seen == [1]
    assert "email-opened" in caplog.text


@pytest.fixture
def no_receivers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide receivers other tests left connected (the suite shares signals)."""
    for signal in (email_opened, link_clicked, tracking_failed):
        monkeypatch.setattr(signal, "receivers", {})


@pytest.mark.usefixtures("no_receivers")
def test_send_signals_builds_the_request_only_for_receivers(tracker: Tracker) -> None:
    built: list[int] = []

    def make_request() -> Request:
        built.append(1)
        return Request(EnvironBuilder().get_environ())

    handled = decide(tracker, "GET", "/mailtrack/o/" + tracker.open_token(), {}, None)
    send_signals(handled, "sender", make_request)
    assert built == []
    with record_events() as events:
        send_signals(handled, "sender", make_request)
    assert built == [1]
    assert events[0].signal == "email-opened"
    assert events[0].sender == "sender"
    assert set(events[0].kwargs) == {"result", "request"}


def test_send_signals_of_a_refused_token(tracker: Tracker) -> None:
    handled = decide(tracker, "GET", "/mailtrack/c/forged", {}, None)
    request = Request(EnvironBuilder().get_environ())
    with record_events() as events:
        send_signals(handled, "sender", lambda: request)
    assert [event.signal for event in events] == ["tracking-failed"]
    assert events[0].kwargs == {
        "error": handled.error,
        "reason": "format",
        "kind": CLICK,
        "request": request,
    }


def test_send_signals_of_no_outcome(tracker: Tracker) -> None:
    with record_events() as events:
        for path in ("/elsewhere", "/mailtrack/o/"):
            send_signals(decide(tracker, "DELETE", path, {}, None), "s", Request)
    assert events == []


@pytest.mark.usefixtures("no_receivers")
def test_middleware_builds_no_request_without_receivers(
    tracker: Tracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_request(environ: t.Any) -> t.NoReturn:
        raise AssertionError("a werkzeug Request was built")

    monkeypatch.setattr("flask_mailtrack.web._middleware.Request", no_request)
    middleware = TrackingMiddleware(lambda e, s: [], tracker=tracker)
    environ = EnvironBuilder(path="/mailtrack/o/" + tracker.open_token()).get_environ()
    statuses: list[str] = []
    body = middleware(environ, lambda status, headers: statuses.append(status))
    assert statuses == ["200 OK"] and b"".join(body).startswith(b"GIF89a")
    assert environ["mailtrack.result"] is not None


def test_middleware_request_for_receivers(tracker: Tracker) -> None:
    middleware = TrackingMiddleware(lambda e, s: [], tracker=tracker)
    environ = EnvironBuilder(path="/mailtrack/c/forged").get_environ()
    got: list[t.Any] = []

    def receiver(sender: t.Any, **kwargs: t.Any) -> None:
        got.append((sender, kwargs["request"]))

    tracking_failed.connect(receiver)
    try:
        middleware(environ, lambda status, headers: None)
    finally:
        tracking_failed.disconnect(receiver)
    [(sender, request)] = got
    assert sender is middleware
    assert isinstance(request, Request) and request.environ is environ


def test_handle_request_still_sends_its_signal(tracker: Tracker) -> None:
    environ = EnvironBuilder(path="/mailtrack/o/" + tracker.open_token()).get_environ()
    request = Request(environ)
    with record_events() as events:
        handled = handle_request(tracker, request, sender="me")
    assert handled.result is not None
    assert events[0].kwargs == {"result": handled.result, "request": request}
