"""The server answers tracking hits before Flask (issue 12): the same
responses and signals as the blueprint, without a request context."""

from __future__ import annotations

import time
import typing as t

import pytest
from flask import Flask
from flask import has_app_context
from flask import has_request_context
from flask import url_for
from flask_mailtrack import email_opened
from flask_mailtrack import link_clicked
from flask_mailtrack import record_events
from flask_mailtrack import Tracker
from flask_mailtrack import tracking_failed
from flask_mailtrack.extension import get_state
from flask_mailtrack.server import get_server_state
from flask_mailtrack.server._fast_path import TrackingDispatcher
from flask_mailtrack.signals import RecordedEvent
from flask_mailtrack.tokens import CLICK
from flask_mailtrack.tokens import OPEN
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client
from werkzeug.test import TestResponse
from werkzeug.wrappers import Request

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"
    " (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
HEADERS = {"User-Agent": CHROME, "Accept": "image/avif,image/webp,*/*"}
TARGET = "https://example.com/sale?item=1"
ENCRYPTION_KEY = "server encryption key, 32 chars+"


def dispatcher(app: Flask) -> TrackingDispatcher:
    assert isinstance(app.wsgi_app, TrackingDispatcher)
    return app.wsgi_app


def link_tracker(app: Flask) -> Tracker:
    """The tracker that makes the app's links on ``http://localhost``."""
    with app.test_request_context():
        return get_state(app).link_tracker(app)


def local(url: str) -> str:
    return url.removeprefix("http://localhost")


def forged(app: Flask, kind: t.Any, **fields: t.Any) -> str:
    """A token signed with the app's key around any payload."""
    fields.setdefault("issued_at", int(time.time()))
    return get_state(app).tracker.serializer.dumps(kind, **fields)


def expired(app: Flask, kind: t.Any) -> str:
    issued = int(time.time()) - 100
    url = TARGET if kind == CLICK else None
    return forged(app, kind, url=url, issued_at=issued, expires_at=issued + 10)


class Served(t.NamedTuple):
    response: TestResponse
    #: The environ the app was called with.
    environ: dict[str, t.Any]
    events: list[RecordedEvent]
    #: Whether each receiver ran inside a Flask request context.
    in_request_context: list[bool]
    #: What each receiver saw of its ``request`` argument, when it ran (the
    #: blueprint gives ``flask.request``, unbound after the request).
    requests: list[tuple[t.Any, ...]]


def serve(wsgi_app: t.Any, path: str, method: str = "GET", **kwargs: t.Any) -> Served:
    """``wsgi_app``'s answer to ``path``, PEP 3333 checked, with the signals
    it sent."""
    environs: list[dict[str, t.Any]] = []
    contexts: list[bool] = []
    requests: list[tuple[t.Any, ...]] = []

    def noting_environ(environ: t.Any, start_response: t.Any) -> t.Any:
        environs.append(environ)
        return wsgi_app(environ, start_response)

    def note_context(sender: t.Any, request: t.Any, **extra: t.Any) -> None:
        contexts.append(has_request_context())
        requests.append(
            (
                isinstance(request, Request),
                request.method,
                request.url,
                request.remote_addr,
                request.headers.get("User-Agent"),
            )
        )

    kwargs.setdefault("headers", HEADERS)
    with (
        record_events() as events,
        email_opened.connected_to(note_context),
        link_clicked.connected_to(note_context),
        tracking_failed.connected_to(note_context),
    ):
        # werkzeug's lint counts the body a HEAD answer leaves out.
        linted = noting_environ if method == "HEAD" else LintMiddleware(noting_environ)
        response = Client(linted).open(path, method=method, **kwargs)
        response.get_data()
        response.close()
    return Served(response, environs[0], events, contexts, requests)


def both(app: Flask, path: str, **kwargs: t.Any) -> tuple[Served, Served]:
    """The same request through the app (its dispatcher), and through Flask
    alone (the blueprint), as the server answered it before."""
    fast = serve(app, path, **kwargs)
    assert fast.environ["mailtrack.kind"] in (OPEN, CLICK)
    assert fast.in_request_context in ([], [False])
    through_flask = serve(dispatcher(app).wsgi_app, path, **kwargs)
    assert "mailtrack.kind" not in through_flask.environ
    assert through_flask.in_request_context in ([], [True])
    return fast, through_flask


def assert_same(fast: Served, through_flask: Served) -> None:
    """The same status, headers and body; the same signals with the same
    arguments (apart from the event's id and time)."""
    assert fast.response.status == through_flask.response.status
    assert fast.response.headers.to_wsgi_list() == (
        through_flask.response.headers.to_wsgi_list()
    )
    assert fast.response.data == through_flask.response.data
    assert fast.requests == through_flask.requests
    assert [_comparable(event) for event in fast.events] == [
        _comparable(event) for event in through_flask.events
    ]


def _comparable(event: RecordedEvent) -> tuple[t.Any, ...]:
    kwargs = dict(event.kwargs)
    del kwargs["request"]
    result = kwargs.pop("result", None)
    if result is not None:
        data = result.to_json_dict()
        for volatile in ("id", "occurred_at", "timestamp"):
            del data[volatile]
        del data["request_data"]["received_at"]
        kwargs["result"] = data
    if "error" in kwargs:
        kwargs["error"] = (type(kwargs["error"]), kwargs["error"].reason)
    return (event.signal, event.sender, sorted(kwargs.items()))


def _valid(app: Flask, kind: t.Any) -> str:
    tracker = link_tracker(app)
    if kind == OPEN:
        return local(tracker.open_url({"recipient": "ann", "campaign": "c1"}))
    return local(tracker.click_url(TARGET, {"recipient": "ann"}))


def _bad(app: Flask, kind: t.Any) -> str:
    return _valid(app, kind)[:-3] + "xyz"


def _expired(app: Flask, kind: t.Any) -> str:
    return f"{get_state(app).url_prefix}/{'o' if kind == OPEN else 'c'}/" + expired(
        app, kind
    )


def _empty(app: Flask, kind: t.Any) -> str:
    return f"{get_state(app).url_prefix}/{'o' if kind == OPEN else 'c'}/"


def _junk(app: Flask, kind: t.Any) -> str:
    return _empty(app, kind) + "1%FF%FE%80/..%2f%0d%0a"


REQUESTS = [
    pytest.param(_valid, "GET", id="valid"),
    pytest.param(_valid, "HEAD", id="valid-head"),
    pytest.param(_valid, "POST", id="post"),
    pytest.param(_valid, "OPTIONS", id="options"),
    pytest.param(_bad, "GET", id="bad-token"),
    pytest.param(_bad, "HEAD", id="bad-token-head"),
    pytest.param(_expired, "GET", id="expired"),
    pytest.param(_empty, "GET", id="empty-token"),
    pytest.param(_junk, "GET", id="junk"),
]

SETTINGS = [
    pytest.param({}, id="default"),
    pytest.param(
        {"MAILTRACK_ENCRYPTION_KEY": ENCRYPTION_KEY, "MAILTRACK_SECRET_KEY": None},
        id="encrypted",
    ),
    pytest.param({"MAILTRACK_URL_PREFIX": "/t/"}, id="prefix"),
    pytest.param({"MAILTRACK_URL_PREFIX": ""}, id="root"),
    pytest.param({"MAILTRACK_PIXEL_ON_INVALID_TOKEN": False}, id="404-for-bad-opens"),
    pytest.param(
        {
            "MAILTRACK_TRUSTED_PROXIES": 1,
            "MAILTRACK_ANONYMIZE_IP": True,
            "MAILTRACK_BASE_URL": "https://t.example.com",
        },
        id="proxy-anonymized",
    ),
    pytest.param(
        {"MAILTRACK_TRUSTED_PROXIES": 1, "MAILTRACK_PROXY_HEADER": "X-Real-IP"},
        id="proxy-header",
    ),
]


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize(("make_path", "method"), REQUESTS)
@pytest.mark.parametrize("kind", [OPEN, CLICK])
def test_answers_as_the_blueprint(
    make_app: t.Callable[..., Flask],
    settings: dict[str, t.Any],
    make_path: t.Callable[[Flask, t.Any], str],
    method: str,
    kind: t.Any,
) -> None:
    app = make_app(**settings)
    path = make_path(app, kind).replace("https://t.example.com", "")
    fast, through_flask = both(
        app,
        path,
        method=method,
        headers={
            **HEADERS,
            "X-Forwarded-For": "203.0.113.77, 198.51.100.9",
            "X-Real-IP": "192.0.2.44",
        },
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )
    assert_same(fast, through_flask)


def test_answers_below_a_mount_point(make_app: t.Callable[..., Flask]) -> None:
    app = make_app()
    for kind in (OPEN, CLICK):
        path = _valid(app, kind)
        fast, through_flask = both(app, path, base_url="http://localhost/mount/")
        assert_same(fast, through_flask)
        ((_, _, url, _, _),) = fast.requests
        assert url.startswith("http://localhost/mount/mailtrack/")


def test_a_valid_hit(make_app: t.Callable[..., Flask]) -> None:
    app = make_app(MAILTRACK_TRUSTED_PROXIES=1, MAILTRACK_ANONYMIZE_IP=True)
    served = serve(
        app,
        _valid(app, CLICK),
        headers={**HEADERS, "X-Forwarded-For": "203.0.113.77"},
    )
    response = served.response
    assert response.status_code == 302
    assert response.headers["Location"] == TARGET
    assert response.headers["Cache-Control"] == "no-store"
    assert served.environ["mailtrack.kind"] == CLICK
    assert served.in_request_context == [False]
    (event,) = served.events
    assert event.signal == "link-clicked"
    assert event.sender is app
    assert isinstance(event.kwargs["request"], app.request_class)
    result = event.kwargs["result"]
    assert result is served.environ["mailtrack.result"]
    assert result.request_data["user_ip"] == "203.0.113.0"
    # The server's own receivers (connected for the app) got it too.
    pipeline = get_state(app).pipeline
    assert pipeline is not None
    assert pipeline.drain()
    (stored,) = get_server_state(app).store.events()
    assert stored["id"] == result.event_id


def test_a_receiver_runs_without_flask_contexts(
    make_app: t.Callable[..., Flask],
) -> None:
    app = make_app()
    other = make_app()
    seen: list[tuple[bool, bool]] = []

    def receiver(sender: t.Any, **extra: t.Any) -> None:
        seen.append((has_app_context(), has_request_context()))

    with email_opened.connected_to(receiver, sender=app):
        assert app.test_client().get(_valid(app, OPEN)).status_code == 200
        assert other.test_client().get(_valid(other, OPEN)).status_code == 200
    # Only the events of the app it was connected for.
    assert seen == [(False, False)]


def test_other_requests_go_to_flask(make_app: t.Callable[..., Flask]) -> None:
    app = make_app(demo=True)
    client = app.test_client()
    assert client.get("/healthz").data == b"ok\n"
    assert client.get("/stats.json").status_code == 200
    # Not below a tracking path: Flask's answers.
    assert client.get("/mailtrack/o").status_code == 404
    assert client.get("/mailtrack/x/abc").status_code == 404
    # Flask's URL map also matches a path with a doubled slash: the
    # blueprint answers it, with the same result.
    path = "/" + _valid(app, OPEN)
    served = serve(app, path, environ_overrides={"PATH_INFO": path})
    assert served.response.status_code == 200
    assert "mailtrack.kind" not in served.environ
    assert served.in_request_context == [True]
    assert [event.signal for event in served.events] == ["email-opened"]


def test_the_blueprint_still_builds_urls(make_app: t.Callable[..., Flask]) -> None:
    app = make_app()
    with app.test_request_context():
        assert url_for("mailtrack.open", token="abc") == "/mailtrack/o/abc"
        assert url_for("mailtrack.click", token="abc") == "/mailtrack/c/abc"


@pytest.mark.parametrize("when", ["create_app", "later"])
def test_trusted_hosts(make_app: t.Callable[..., Flask], when: str) -> None:
    trusted = ["t.example.com"]
    settings = {"MAILTRACK_BASE_URL": "https://t.example.com"}
    if when == "create_app":
        settings["TRUSTED_HOSTS"] = trusted
    app = make_app(**settings)
    if when == "later":
        # Flask reads it on each request; so does the dispatcher.
        app.config["TRUSTED_HOSTS"] = trusted
    path = _valid(app, OPEN).replace("https://t.example.com", "")
    fast = serve(app, path, base_url="http://evil.example/")
    through_flask = serve(
        dispatcher(app).wsgi_app, path, base_url="http://evil.example/"
    )
    assert_same(fast, through_flask)
    assert fast.response.status_code == 400
    assert fast.events == []
    fast, through_flask = both(app, path, base_url="http://t.example.com/")
    assert_same(fast, through_flask)
    assert fast.response.status_code == 200
