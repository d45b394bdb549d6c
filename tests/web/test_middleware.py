"""TrackingMiddleware in front of a plain WSGI app, and the WSGI example."""

from __future__ import annotations

import importlib.util
import logging
import pathlib
import re
import typing as t

import pytest
from flask_mailtrack import Configuration
from flask_mailtrack import email_opened
from flask_mailtrack import link_clicked
from flask_mailtrack import record_events
from flask_mailtrack import Tracker
from flask_mailtrack import TrackingMiddleware
from flask_mailtrack import TrackingResult
from flask_mailtrack.web import TRACKING_PIXEL
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client
from werkzeug.test import EnvironBuilder

from _apps import linted

SECRET = "middleware-test-secret-key-0123456789"
HOST = "https://t.example.com"
TARGET = "https://www.example.com/landing"


class RecordingApp:
    """A WSGI app that records the environ of each request it gets."""

    def __init__(self) -> None:
        self.calls: list[dict[str, t.Any]] = []

    def __call__(self, environ: t.Any, start_response: t.Any) -> list[bytes]:
        self.calls.append(dict(environ))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"from the app"]


@pytest.fixture
def inner() -> RecordingApp:
    return RecordingApp()


@pytest.fixture
def middleware(inner: RecordingApp) -> TrackingMiddleware:
    return TrackingMiddleware(
        LintMiddleware(inner),
        secret_key=SECRET,
        base_open_tracking_url=HOST + "/mailtrack/o/",
        base_click_tracking_url=HOST + "/mailtrack/c/",
    )


@pytest.fixture
def client(middleware: TrackingMiddleware) -> Client:
    return Client(LintMiddleware(middleware))


@pytest.mark.parametrize(
    "request_path",
    [
        pytest.param("/", id="root"),
        pytest.param("/mailtrack", id="prefix-parent"),
        pytest.param("/mailtrack/o", id="base-without-slash"),
        pytest.param("/mailtrack/x/1abc", id="sibling"),
        pytest.param("/mailtrackers/o/1abc", id="longer-name"),
        pytest.param("/static/app.js?x=1", id="query"),
    ],
)
def test_other_paths_pass_through_untouched(
    client: Client, inner: RecordingApp, request_path: str
) -> None:
    with record_events() as events:
        response = client.get(request_path, headers={"X-Custom": "kept"})
    assert response.status_code == 200
    assert response.data == b"from the app"
    assert len(inner.calls) == 1
    environ = inner.calls[0]
    assert environ["HTTP_X_CUSTOM"] == "kept"
    assert not any(key.startswith("mailtrack.") for key in environ)
    assert events == []


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_paths_pass_through_for_every_method(
    client: Client, inner: RecordingApp, method: str
) -> None:
    response = client.open("/api/things", method=method, data=b"payload")
    assert response.status_code == 200
    assert inner.calls[0]["REQUEST_METHOD"] == method


def test_tracking_paths_never_reach_the_app(
    client: Client, inner: RecordingApp, middleware: TrackingMiddleware
) -> None:
    tracker = middleware.tracker
    responses = [
        client.get(tracker.open_url()[len(HOST) :]),
        client.get(tracker.click_url(TARGET)[len(HOST) :]),
        client.get("/mailtrack/c/1bad"),
        client.post("/mailtrack/o/1bad"),
    ]
    assert [r.status_code for r in responses] == [200, 302, 404, 405]
    assert inner.calls == []


def test_sender_is_the_middleware(
    client: Client, middleware: TrackingMiddleware
) -> None:
    received: list[TrackingResult] = []

    def receiver(sender: t.Any, result: TrackingResult, **kwargs: t.Any) -> None:
        received.append(result)

    # connect_via: receivers of one middleware ignore another's events.
    email_opened.connect_via(middleware)(receiver)
    other = linted(RecordingApp(), middleware.tracker)
    try:
        url = middleware.tracker.open_url({"n": 1})[len(HOST) :]
        client.get(url)
        Client(other).get(url)
    finally:
        email_opened.disconnect(receiver, sender=middleware)
    assert [result.metadata for result in received] == [{"n": 1}]


def _call(app: t.Any, environ: dict[str, t.Any]) -> str:
    """Call a WSGI app with ``environ`` itself (``run_wsgi_app`` copies it)."""
    statuses = []

    def start_response(status: str, headers: t.Any, exc_info: t.Any = None) -> t.Any:
        statuses.append(status)
        return lambda data: None

    app_iter = app(environ, start_response)
    try:
        b"".join(app_iter)
    finally:
        getattr(app_iter, "close", lambda: None)()
    return statuses[0]


def test_environ_annotations(middleware: TrackingMiddleware) -> None:
    tracker = middleware.tracker
    environ = EnvironBuilder(path=tracker.click_url(TARGET)[len(HOST) :]).get_environ()
    assert _call(middleware, environ).startswith("302")
    assert environ["mailtrack.kind"] == "click"
    assert environ["mailtrack.result"].tracked_url == TARGET
    assert environ["mailtrack.error"] is None

    environ = EnvironBuilder(path="/mailtrack/o/1bad").get_environ()
    assert _call(middleware, environ).startswith("200")
    assert environ["mailtrack.kind"] == "open"
    assert environ["mailtrack.result"] is None
    assert environ["mailtrack.error"].reason == "format"


def test_mounted_below_a_script_name(inner: RecordingApp) -> None:
    tracker = Tracker(
        secret_key=SECRET, base_open_tracking_url=HOST + "/app/mailtrack/o/"
    )
    client = Client(linted(inner, tracker))
    token = tracker.open_token()
    with record_events() as events:
        response = client.get("/mailtrack/o/" + token, base_url="http://localhost/app/")
        passed = client.get("/mailtrack/o/" + token)
    assert response.data == TRACKING_PIXEL
    assert [event.signal for event in events] == ["email-opened"]
    # Without the script name the path is not the tracking path.
    assert passed.data == b"from the app"


def test_non_ascii_paths(client: Client, inner: RecordingApp) -> None:
    assert client.get("/caf%C3%A9").data == b"from the app"
    with record_events() as events:
        response = client.get("/mailtrack/c/caf%C3%A9%FF")
    assert response.status_code == 404
    assert events[0].kwargs["reason"] == "format"


def test_configuration_arguments(inner: RecordingApp) -> None:
    configuration = Configuration(
        secret_key=SECRET, base_open_tracking_url=HOST + "/o/"
    )
    middleware = TrackingMiddleware(
        inner, configuration=configuration, anonymize_ip=True
    )
    assert middleware.tracker.configuration.anonymize_ip is True
    assert middleware.tracker.configuration.secret_key == SECRET
    # The middleware builds and keeps its own tracker of the configuration.
    same = TrackingMiddleware(inner, configuration=configuration)
    assert same.tracker.configuration is configuration
    assert "_tracker" not in vars(configuration)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        pytest.param({}, ValueError, id="no-base-url"),
        pytest.param({"secret_key": SECRET}, ValueError, id="key-without-base-url"),
        pytest.param(
            {"tracker": Tracker(secret_key=SECRET, base_open_tracking_url=HOST + "/o/"),
             "secret_key": SECRET},
            TypeError,
            id="tracker-and-configuration",
        ),
        pytest.param({"secret_kye": SECRET}, TypeError, id="typo"),
    ],
)  # fmt: skip
def test_bad_arguments(
    inner: RecordingApp, kwargs: dict[str, t.Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        TrackingMiddleware(inner, **kwargs)


def test_click_event_before_redirect(
    client: Client, middleware: TrackingMiddleware
) -> None:
    seen: list[str | None] = []

    def receiver(sender: t.Any, result: TrackingResult, **kwargs: t.Any) -> None:
        seen.append(result.tracked_url)

    link_clicked.connect(receiver)
    try:
        response = client.get(middleware.tracker.click_url(TARGET)[len(HOST) :])
    finally:
        link_clicked.disconnect(receiver)
    assert seen == [TARGET]
    assert response.headers["Location"] == TARGET


# -- examples/wsgi_app.py --------------------------------------------------------


@pytest.fixture(scope="module")
def wsgi_example() -> t.Any:
    path = pathlib.Path(__file__).resolve().parents[2] / "examples" / "wsgi_app.py"
    spec = importlib.util.spec_from_file_location("wsgi_app_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with pytest.MonkeyPatch.context() as patch:
        # A real key: the example's fallback is a placeholder, which warns.
        patch.setenv("MAILTRACK_SECRET_KEY", SECRET)
        spec.loader.exec_module(module)
    return module


def test_wsgi_example(wsgi_example: t.Any, caplog: pytest.LogCaptureFixture) -> None:
    client = Client(LintMiddleware(wsgi_example.application))
    page = client.get("/").get_data(as_text=True)
    base = wsgi_example.BASE_URL
    link = re.search(r'href="([^"]+)"', page)
    pixel = re.search(r'src="([^"]+)"', page)
    assert link is not None and pixel is not None
    with caplog.at_level(logging.INFO, logger="wsgi_app"):
        opened = client.get(pixel.group(1).replace("&amp;", "&")[len(base) :])
        clicked = client.get(link.group(1).replace("&amp;", "&")[len(base) :])
        refused = client.get("/mailtrack/c/1forged")
    assert opened.data == TRACKING_PIXEL
    assert clicked.status_code == 302
    assert clicked.headers["Location"] == base + "/landing"
    assert refused.status_code == 404
    assert client.get("/landing").status_code == 200
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("open ") for m in messages)
    assert any(m.startswith("click ") for m in messages)
    assert any(m.startswith("refused click token") for m in messages)


@pytest.mark.parametrize("script_name", ["/app", "/app/"])
def test_script_name_with_or_without_slash(
    inner: RecordingApp, script_name: str
) -> None:
    tracker = Tracker(
        secret_key=SECRET, base_open_tracking_url=HOST + "/app/mailtrack/o/"
    )
    middleware = TrackingMiddleware(inner, tracker=tracker)
    environ = EnvironBuilder(path="/mailtrack/o/" + tracker.open_token()).get_environ()
    environ["SCRIPT_NAME"] = script_name
    with record_events() as events:
        assert _call(middleware, environ).startswith("200")
    assert [event.signal for event in events] == ["email-opened"]
    assert inner.calls == []
