"""The request handler, through TrackingMiddleware and werkzeug's LintMiddleware."""

from __future__ import annotations

import logging
import time
import typing as t
from urllib.parse import quote

import pytest
from flask_mailtrack import Configuration
from flask_mailtrack import email_opened
from flask_mailtrack import link_clicked
from flask_mailtrack import record_events
from flask_mailtrack import Tracker
from flask_mailtrack import tracking_failed
from flask_mailtrack import TrackingMiddleware
from flask_mailtrack.tokens import CLICK
from flask_mailtrack.tokens import OPEN
from flask_mailtrack.web import Answer
from flask_mailtrack.web import handle_request
from flask_mailtrack.web import HandledRequest
from flask_mailtrack.web import match
from flask_mailtrack.web import METHOD_NOT_ALLOWED_ANSWER
from flask_mailtrack.web import NOT_FOUND_ANSWER
from flask_mailtrack.web import PIXEL_ANSWER
from flask_mailtrack.web import redirect_answer
from flask_mailtrack.web import TRACKING_PIXEL
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client
from werkzeug.test import EnvironBuilder
from werkzeug.test import run_wsgi_app
from werkzeug.wrappers import Request

from _apps import fallback_app
from _apps import linted
from _apps import mt_middleware

SECRET = "handler-test-secret-key-0123456789"
HOST = "https://t.example.com"
OPEN_BASE = HOST + "/mt/o/"
CLICK_BASE = HOST + "/mt/c/"
TARGET = "https://www.example.com/products/item?id=42&utm_source=newsletter"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"
    " (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
PIXEL_CACHE_CONTROL = "no-store, no-cache, must-revalidate, max-age=0"


def make_client(tracker: Tracker) -> Client:
    return Client(linted(fallback_app, tracker))


def path(url: str) -> str:
    return url[len(HOST) :]


@pytest.fixture
def configuration() -> Configuration:
    return Configuration(
        secret_key=SECRET,
        base_open_tracking_url=OPEN_BASE,
        base_click_tracking_url=CLICK_BASE,
    )


@pytest.fixture
def tracker(configuration: Configuration) -> Tracker:
    return Tracker(configuration)


@pytest.fixture
def client(tracker: Tracker) -> Client:
    return make_client(tracker)


def forged(tracker: Tracker, kind: t.Any, **fields: t.Any) -> str:
    """A token signed with the tracker's key around any payload, bypassing
    the checks made when links are made."""
    fields.setdefault("issued_at", int(time.time()))
    return tracker.serializer.dumps(kind, **fields)


# -- happy paths ---------------------------------------------------------------


def test_pixel(client: Client, tracker: Tracker) -> None:
    url = tracker.open_url({"customer_id": 7})
    with record_events() as events:
        response = client.get(
            path(url),
            headers={"User-Agent": CHROME, "Accept": "image/avif,*/*"},
            environ_base={"REMOTE_ADDR": "192.0.2.10"},
        )
    assert response.status_code == 200
    assert response.data == TRACKING_PIXEL
    headers = response.headers
    assert headers["Content-Type"] == "image/gif"
    assert headers["Content-Length"] == str(len(TRACKING_PIXEL))
    assert headers["Cache-Control"] == PIXEL_CACHE_CONTROL
    assert headers["Pragma"] == "no-cache"
    assert headers["Expires"] == "0"
    assert [event.signal for event in events] == ["email-opened"]
    result = events[0].kwargs["result"]
    assert result.is_open_tracking and not result.is_click_tracking
    assert result.metadata == {"customer_id": 7}
    assert result.machine is None and result.machine_reasons == []
    data = result.request_data
    assert data["user_agent"] == CHROME
    assert data["user_ip"] == "192.0.2.10"
    assert data["method"] == "GET"
    assert data["accept"] == "image/avif,*/*"
    assert data["sec_purpose"] is None and data["x_moz"] is None
    assert data["received_at"].endswith("Z")
    assert isinstance(events[0].kwargs["request"], Request)


def test_click(client: Client, tracker: Tracker) -> None:
    url = tracker.click_url(TARGET, {"link": "hero"})
    with record_events() as events:
        response = client.get(path(url), headers={"User-Agent": CHROME})
    assert response.status_code == 302
    assert response.headers["Location"] == TARGET
    assert response.headers["Cache-Control"] == "no-store"
    assert [event.signal for event in events] == ["link-clicked"]
    result = events[0].kwargs["result"]
    assert result.is_click_tracking
    assert result.tracked_url == TARGET
    assert result.metadata == {"link": "hero"}


def test_click_to_iri_gets_an_ascii_location(client: Client, tracker: Tracker) -> None:
    url = tracker.click_url("https://例え.jp/パス?q=é")
    response = client.get(path(url))
    assert response.status_code == 302
    assert response.headers["Location"] == (
        "https://xn--r8jz45g.jp/%E3%83%91%E3%82%B9?q=%C3%A9"
    )


def test_append_slash_and_base_query_are_served() -> None:
    tracker = Tracker(
        secret_key=SECRET,
        base_open_tracking_url=OPEN_BASE + "?src=mail",
        base_click_tracking_url=CLICK_BASE,
        append_slash=True,
    )
    client = make_client(tracker)
    with record_events() as events:
        assert client.get(path(tracker.open_url())).status_code == 200
        assert client.get(path(tracker.click_url(TARGET))).status_code == 302
    assert [event.signal for event in events] == ["email-opened", "link-clicked"]


@pytest.mark.parametrize(
    ("kind", "status"),
    [pytest.param(OPEN, 200, id="pixel"), pytest.param(CLICK, 302, id="click")],
)
def test_head_is_answered_like_get_without_body(
    client: Client, tracker: Tracker, kind: str, status: int
) -> None:
    url = tracker.open_url() if kind == OPEN else tracker.click_url(TARGET)
    with record_events() as events:
        response = client.head(path(url), headers={"User-Agent": CHROME})
    assert response.status_code == status
    assert response.data == b""
    if kind == OPEN:
        assert response.headers["Content-Length"] == str(len(TRACKING_PIXEL))
    result = events[0].kwargs["result"]
    assert result.machine == "prefetch"
    assert result.machine_reasons == ["head-request"]


def test_machine_verdict_never_changes_the_response(
    client: Client, tracker: Tracker
) -> None:
    url = path(tracker.open_url())
    person = client.get(url, headers={"User-Agent": CHROME})
    with record_events() as events:
        bot = client.get(url, headers={"User-Agent": "curl/8.4.0"})
    assert events[0].kwargs["result"].machine == "bot"
    assert bot.status_code == person.status_code
    assert bot.data == person.data
    assert dict(bot.headers) == dict(person.headers)


# -- bad input ------------------------------------------------------------------


def _truncated(tracker: Tracker, kind: t.Any) -> str:
    return _token(tracker, kind)[:-5]


def _tampered(tracker: Tracker, kind: t.Any) -> str:
    token = _token(tracker, kind)
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


def _token(tracker: Tracker, kind: t.Any) -> str:
    if kind == OPEN:
        return tracker.open_token({"customer_id": 1})
    return tracker.click_token(TARGET, {"customer_id": 1})


def _other_kind(tracker: Tracker, kind: t.Any) -> str:
    return _token(tracker, CLICK if kind == OPEN else OPEN)


def _expired(tracker: Tracker, kind: t.Any) -> str:
    issued = int(time.time()) - 100
    url = TARGET if kind == CLICK else None
    return forged(tracker, kind, url=url, issued_at=issued, expires_at=issued + 10)


def _other_key(tracker: Tracker, kind: t.Any) -> str:
    other = Tracker(secret_key="another-secret-key-0123456789-01")
    return _token(other, kind)


BAD_TOKENS = [
    pytest.param(_truncated, ("format", "signature", "payload"), id="truncated"),
    pytest.param(_tampered, ("format", "signature", "payload"), id="tampered"),
    pytest.param(_other_kind, ("signature",), id="other-kind"),
    pytest.param(_other_key, ("signature",), id="other-key"),
    pytest.param(_expired, ("expired",), id="expired"),
    pytest.param(lambda tracker, kind: "", ("format",), id="empty"),
    pytest.param(lambda tracker, kind: "1" * 10_000, ("length",), id="huge"),
    pytest.param(
        lambda tracker, kind: "eyJ1cmwiOiAiaHR0cDovL3guY28ifQ",
        ("format",),
        id="legacy-not-enabled",
    ),
    pytest.param(lambda tracker, kind: "1%00%0d%0a%ff", ("format",), id="percent-junk"),
    pytest.param(
        lambda tracker, kind: "..%2f..%2fetc%2fpasswd", ("format",), id="dot-dot-slash"
    ),
    pytest.param(lambda tracker, kind: "1" + "%C3%A9" * 10, ("format",), id="utf-8"),
    pytest.param(lambda tracker, kind: "1%FF%FE%80", ("format",), id="not-utf-8"),
    pytest.param(lambda tracker, kind: "1abc/def", ("format",), id="inner-slash"),
]


@pytest.mark.parametrize(("make_token", "reasons"), BAD_TOKENS)
def test_bad_click_token_gets_404_and_no_click(
    client: Client, tracker: Tracker, make_token: t.Any, reasons: tuple[str, ...]
) -> None:
    token = make_token(tracker, CLICK)
    with record_events() as events:
        response = client.get("/mt/c/" + token)
    assert response.status_code == 404
    assert "Location" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    assert b"invalid or has expired" in response.data
    assert [event.signal for event in events] == ["tracking-failed"]
    kwargs = events[0].kwargs
    assert kwargs["kind"] == "click"
    assert kwargs["reason"] in reasons
    assert kwargs["error"].reason == kwargs["reason"]
    assert isinstance(kwargs["request"], Request)


@pytest.mark.parametrize(("make_token", "reasons"), BAD_TOKENS)
def test_bad_open_token_gets_the_pixel_and_no_open(
    client: Client, tracker: Tracker, make_token: t.Any, reasons: tuple[str, ...]
) -> None:
    token = make_token(tracker, OPEN)
    with record_events() as events:
        response = client.get("/mt/o/" + token)
    assert response.status_code == 200
    assert response.data == TRACKING_PIXEL
    assert response.headers["Cache-Control"] == PIXEL_CACHE_CONTROL
    assert [event.signal for event in events] == ["tracking-failed"]
    assert events[0].kwargs["kind"] == "open"
    assert events[0].kwargs["reason"] in reasons


def test_bad_open_token_gets_404_when_configured(configuration: Configuration) -> None:
    client = make_client(Tracker(configuration.replace(pixel_on_invalid_token=False)))
    with record_events() as events:
        response = client.get("/mt/o/1nottoken")
    assert response.status_code == 404
    assert [event.signal for event in events] == ["tracking-failed"]


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("javascript:alert(document.cookie)", id="javascript"),
        pytest.param("JaVaScRiPt:alert(1)", id="javascript-mixed-case"),
        pytest.param("data:text/html,<script>alert(1)</script>", id="data"),
        pytest.param("//evil.example/", id="scheme-relative"),
        pytest.param("/\\evil.example/", id="slash-backslash"),
        pytest.param("https:evil.example", id="no-slashes"),
        pytest.param("https://good.example@evil.example/", id="userinfo"),
        pytest.param("https://evil.example\rSet-Cookie: a=b", id="carriage-return"),
        pytest.param("https://evil.example/\x00", id="nul"),
        pytest.param(" https://evil.example/", id="leading-space"),
        pytest.param("/relative/path", id="relative"),
    ],
)
def test_forged_unsafe_target_never_redirects(
    client: Client, tracker: Tracker, target: str
) -> None:
    token = forged(tracker, CLICK, url=target)
    with record_events() as events:
        response = client.get("/mt/c/" + quote(token))
    assert response.status_code == 404
    assert "Location" not in response.headers
    assert [event.signal for event in events] == ["tracking-failed"]
    assert events[0].kwargs["reason"] == "target"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_get_405(client: Client, tracker: Tracker, method: str) -> None:
    with record_events() as events:
        response = client.open(path(tracker.open_url()), method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert events == []


# -- receivers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signal", "kind", "status"),
    [
        pytest.param(email_opened, OPEN, 200, id="email_opened"),
        pytest.param(link_clicked, CLICK, 302, id="link_clicked"),
        pytest.param(tracking_failed, "bad", 404, id="tracking_failed"),
    ],
)
def test_receiver_that_raises_does_not_break_the_response(
    client: Client,
    tracker: Tracker,
    caplog: pytest.LogCaptureFixture,
    signal: t.Any,
    kind: str,
    status: int,
) -> None:
    called = []

    def broken(sender: t.Any, **kwargs: t.Any) -> None:
        raise RuntimeError("receiver bug")

    def working(sender: t.Any, **kwargs: t.Any) -> None:
        called.append(kwargs)

    if kind == OPEN:
        url = path(tracker.open_url())
    elif kind == CLICK:
        url = path(tracker.click_url(TARGET))
    else:
        url = "/mt/c/1broken"
    signal.connect(broken)
    signal.connect(working)
    try:
        with caplog.at_level(logging.ERROR, logger="flask_mailtrack"):
            response = client.get(url)
    finally:
        signal.disconnect(broken)
        signal.disconnect(working)
    assert response.status_code == status
    assert len(called) == 1
    assert any("receiver bug" in (r.exc_text or "") for r in caplog.records)


def test_refused_token_is_logged(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="flask_mailtrack"):
        client.get("/mt/c/1broken")
    assert any("Refused click tracking token" in r.getMessage() for r in caplog.records)


# -- client address -------------------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "forwarded", "expected"),
    [
        pytest.param(0, "6.6.6.6", "10.0.0.1", id="spoofed-untrusted"),
        pytest.param(0, None, "10.0.0.1", id="no-header"),
        pytest.param(1, "6.6.6.6, 198.51.100.7", "198.51.100.7", id="one-proxy"),
        pytest.param(
            2, "6.6.6.6, 198.51.100.7, 10.0.0.9", "198.51.100.7", id="two-proxies"
        ),
        pytest.param(2, "198.51.100.7", "10.0.0.1", id="fewer-entries-than-proxies"),
        pytest.param(1, "", "10.0.0.1", id="empty-header"),
        pytest.param(1, "2001:db8::7", "2001:db8::7", id="ipv6"),
        pytest.param(1, "198.51.100.7:51234", "198.51.100.7", id="ipv4-port"),
        pytest.param(1, "[2001:db8::7]:443", "2001:db8::7", id="ipv6-port"),
        pytest.param(1, "[2001:db8::7]", "2001:db8::7", id="ipv6-brackets"),
        pytest.param(1, "unknown", "unknown", id="not-an-address"),
    ],
)
def test_client_ip(
    configuration: Configuration,
    trusted: int,
    forwarded: str | None,
    expected: str,
) -> None:
    tracker = Tracker(configuration.replace(trusted_proxies=trusted))
    client = make_client(tracker)
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    with record_events() as events:
        client.get(
            path(tracker.open_url()),
            headers=headers,
            environ_base={"REMOTE_ADDR": "10.0.0.1"},
        )
    assert events[0].kwargs["result"].request_data["user_ip"] == expected


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        pytest.param(0, "10.0.0.1", id="spoofed-untrusted"),
        pytest.param(1, "198.51.100.7", id="one-proxy"),
    ],
)
def test_proxy_header(
    configuration: Configuration, trusted: int, expected: str
) -> None:
    tracker = Tracker(
        configuration.replace(trusted_proxies=trusted, proxy_header="X-Real-IP")
    )
    with record_events() as events:
        make_client(tracker).get(
            path(tracker.open_url()),
            headers={"X-Real-IP": "198.51.100.7", "X-Forwarded-For": "6.6.6.6"},
            environ_base={"REMOTE_ADDR": "10.0.0.1"},
        )
    assert events[0].kwargs["result"].request_data["user_ip"] == expected


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        pytest.param("203.0.113.195", "203.0.113.0", id="ipv4"),
        pytest.param(
            "2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::", id="ipv6"
        ),
        pytest.param("::ffff:203.0.113.195", "203.0.113.0", id="ipv4-mapped"),
        pytest.param("unknown", None, id="not-an-address"),
    ],
)
def test_anonymize_ip_before_any_signal(
    configuration: Configuration, address: str, expected: str | None
) -> None:
    tracker = Tracker(configuration.replace(anonymize_ip=True, trusted_proxies=1))
    client = make_client(tracker)
    with record_events() as events:
        client.get(path(tracker.open_url()), headers={"X-Forwarded-For": address})
    result = events[0].kwargs["result"]
    assert result.request_data["user_ip"] == expected
    assert address not in repr(result.to_json_dict())


def test_anonymized_address_still_gets_the_network_verdict(
    configuration: Configuration,
) -> None:
    tracker = Tracker(configuration.replace(anonymize_ip=True))
    with record_events() as events:
        make_client(tracker).get(
            path(tracker.open_url()),
            headers={"User-Agent": CHROME},
            environ_base={"REMOTE_ADDR": "40.107.22.5"},
        )
    result = events[0].kwargs["result"]
    assert result.request_data["user_ip"] == "40.107.22.0"
    assert result.machine_reasons == ["gateway-network"]


# -- Tracker.match and Tracker.handle -------------------------------------------


@pytest.mark.parametrize(
    ("request_path", "expected"),
    [
        pytest.param("/mt/o/1abc", (OPEN, "1abc"), id="open"),
        pytest.param("/mt/c/1abc/", (CLICK, "1abc"), id="click-slash"),
        pytest.param("/mt/o/", (OPEN, ""), id="empty-token"),
        pytest.param("/mt/o", None, id="base-without-slash"),
        pytest.param("/mt/x/1abc", None, id="other-path"),
        pytest.param("/", None, id="root"),
        pytest.param("/MT/O/1abc", None, id="case-sensitive"),
    ],
)
def test_match(tracker: Tracker, request_path: str, expected: t.Any) -> None:
    assert match(tracker, request_path) == expected


def test_match_nested_bases() -> None:
    tracker = Tracker(
        secret_key=SECRET,
        base_open_tracking_url=HOST + "/t/",
        base_click_tracking_url=HOST + "/t/c/",
    )
    assert match(tracker, "/t/c/1abc") == (CLICK, "1abc")
    assert match(tracker, "/t/1abc") == (OPEN, "1abc")


def test_match_percent_encoded_base() -> None:
    tracker = Tracker(secret_key=SECRET, base_open_tracking_url=HOST + "/m%20t/o/")
    assert match(tracker, "/m t/o/1abc") == (OPEN, "1abc")


def _request(url_path: str, **kwargs: t.Any) -> Request:
    return Request(EnvironBuilder(path=url_path, **kwargs).get_environ())


def test_handle_finds_kind_and_token_from_the_path(tracker: Tracker) -> None:
    url = tracker.click_url(TARGET, {"a": 1})
    with record_events() as events:
        handled = handle_request(tracker, _request(path(url)), sender="sender")
    assert isinstance(handled, HandledRequest)
    assert handled.kind == CLICK
    assert handled.error is None
    assert handled.result is not None and handled.result.metadata == {"a": 1}
    assert handled.response.status_code == 302
    assert events[0].sender == "sender"


def test_handle_uses_the_script_root() -> None:
    tracker = Tracker(secret_key=SECRET, base_open_tracking_url=HOST + "/app/mt/o/")
    token = tracker.open_token()
    request = _request("/mt/o/" + token, base_url="http://localhost/app/")
    handled = handle_request(tracker, request, sender=None)
    assert handled.kind == OPEN and handled.result is not None


def test_handle_with_explicit_kind_and_token(tracker: Tracker) -> None:
    token = tracker.open_token({"b": 2})
    handled = handle_request(
        tracker, _request("/anything"), sender=None, kind=OPEN, token=token
    )
    assert handled.result is not None and handled.result.metadata == {"b": 2}


def test_handle_not_a_tracking_path(tracker: Tracker) -> None:
    with record_events() as events:
        handled = handle_request(tracker, _request("/elsewhere"), sender=None)
    assert handled == (NOT_FOUND_ANSWER, None, None, None)
    assert handled.response.status_code == 404
    assert events == []


def test_handle_failure_carries_the_error(tracker: Tracker) -> None:
    handled = handle_request(tracker, _request("/mt/c/1nope"), sender=None)
    assert handled.kind == CLICK
    assert handled.result is None
    assert handled.error is not None and handled.error.reason == "format"


# -- nothing gives a 5xx --------------------------------------------------------

_header_value = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=200,
)
_path_tail = st.binary(max_size=300).map(lambda data: data.decode("latin-1"))


@settings(max_examples=150, deadline=None)
@given(
    prefix=st.sampled_from(["/mt/o/", "/mt/c/", "/mt/", "/", "/mt/o/1", "/mt/c/2"]),
    tail=_path_tail,
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "BREW", "get"]),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "User-Agent",
                "Accept",
                "X-Forwarded-For",
                "Sec-Purpose",
                "Purpose",
                "X-Moz",
                "Cookie",
                "Host",
            ]
        ),
        _header_value,
    ),
    trusted=st.integers(min_value=0, max_value=3),
    anonymize=st.booleans(),
)
def test_no_input_gives_a_server_error(
    prefix: str,
    tail: str,
    method: str,
    headers: dict[str, str],
    trusted: int,
    anonymize: bool,
) -> None:
    tracker = Tracker(
        Configuration(
            secret_key=SECRET,
            base_open_tracking_url=OPEN_BASE,
            base_click_tracking_url=CLICK_BASE,
            trusted_proxies=trusted,
            anonymize_ip=anonymize,
        )
    )
    app = TrackingMiddleware(fallback_app, tracker=tracker)
    environ = EnvironBuilder(method="GET").get_environ()
    environ["REQUEST_METHOD"] = method
    environ["PATH_INFO"] = prefix + tail
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    app_iter, status, response_headers = run_wsgi_app(app, environ)
    body = b"".join(app_iter)
    code = int(status.split()[0])
    assert code < 500
    if code == 302:
        assert response_headers["Location"].startswith(("http://", "https://"))
    assert isinstance(body, bytes)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(PIXEL_ANSWER, id="pixel"),
        pytest.param(NOT_FOUND_ANSWER, id="not-found"),
        pytest.param(METHOD_NOT_ALLOWED_ANSWER, id="method-not-allowed"),
        pytest.param(redirect_answer(TARGET), id="redirect"),
        pytest.param(redirect_answer("https://bücher.example/straße?q=a b"), id="iri"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_answer_serves_what_its_werkzeug_response_serves(
    answer: Answer, method: str
) -> None:
    """The middleware serves answers directly; the Flask blueprint serves
    their werkzeug Response. Both must put the same bytes on the wire."""
    direct = Client(LintMiddleware(answer)).open("/", method=method)
    werkzeug = Client(LintMiddleware(answer.to_response())).open("/", method=method)
    assert direct.status == werkzeug.status
    assert sorted(direct.headers.items()) == sorted(werkzeug.headers.items())
    assert direct.get_data() == werkzeug.get_data()
    assert direct.status_code == answer.status_code
    assert int(direct.headers["Content-Length"]) == len(answer.body)
    assert direct.get_data() == (b"" if method == "HEAD" else answer.body)


def test_redirect_answer_location_is_ascii_and_escaped_in_the_body() -> None:
    answer = redirect_answer('https://example.com/a"<b>?x=1&y=ü')
    headers = dict(answer.headers)
    assert headers["Location"] == "https://example.com/a%22%3Cb%3E?x=1&y=%C3%BC"
    assert answer.status == "302 FOUND"
    assert b"&amp;y=" in answer.body and b"<b>" not in answer.body


# -- log lines hold no client text ---------------------------------------------


def test_logged_refusals_hold_no_client_text(caplog: pytest.LogCaptureFixture) -> None:
    _, client = mt_middleware(pixel_on_invalid_token=False)
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
