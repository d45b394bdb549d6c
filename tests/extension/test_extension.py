"""The Flask extension: routes, settings, per-app state, Jinja helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import typing as t
from email.message import EmailMessage
from urllib.parse import quote

import pytest
from flask import Flask
from flask import render_template_string
from flask.testing import FlaskClient
from flask_mailtrack import _secret_keys
from flask_mailtrack import Configuration
from flask_mailtrack import ConfigurationError
from flask_mailtrack import InvalidToken
from flask_mailtrack import MailTrack
from flask_mailtrack import MailTrackError
from flask_mailtrack import record_events
from flask_mailtrack import Tracker
from flask_mailtrack.exceptions import MailTrackWarning
from flask_mailtrack.exceptions import MissingSettingError
from flask_mailtrack.exceptions import UnknownSettingError
from flask_mailtrack.exceptions import WeakSecretKeyWarning
from flask_mailtrack.web import TRACKING_PIXEL
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

SECRET = "test secret key, long enough-012"


def make_app(config: dict[str, t.Any] | None = None, **kwargs: t.Any) -> Flask:
    """An app factory: a Flask app with a MailTrack registered on it.
    ``kwargs`` go to :class:`MailTrack`."""
    app = Flask(__name__)
    app.config.update(TESTING=True, SECRET_KEY=SECRET)
    app.config.update(config or {})
    MailTrack(app, **kwargs)

    @app.route("/landing")
    def landing() -> str:
        return "landed"

    return app


@pytest.fixture
def app() -> Flask:
    return make_app()


@pytest.fixture
def mailtrack(app: Flask) -> MailTrack:
    return t.cast(MailTrack, app.extensions["mailtrack"].extension)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def links(app: Flask) -> Tracker:
    """The tracker making links for ``app`` on the test client's host."""
    with app.test_request_context():
        return t.cast(Tracker, app.extensions["mailtrack"].extension.tracker)


def path_of(url: str) -> str:
    assert url.startswith("http://localhost/")
    return url[len("http://localhost") :]


# -- routes --------------------------------------------------------------------


def test_pixel(app: Flask, client: FlaskClient) -> None:
    url = links(app).open_url({"customer": 42})
    with record_events() as events:
        response = client.get(
            path_of(url), headers={"User-Agent": "Mozilla/5.0 (Windows NT 10.0) x"}
        )
    assert response.status_code == 200
    assert response.data == TRACKING_PIXEL
    assert response.mimetype == "image/gif"
    assert "no-store" in response.headers["Cache-Control"]
    assert [event.signal for event in events] == ["email-opened"]
    (event,) = events
    assert event.sender is app
    assert event.kwargs["result"].metadata == {"customer": 42}
    assert event.kwargs["result"].is_open_tracking


def test_click_redirects_and_signals(app: Flask, client: FlaskClient) -> None:
    url = links(app).click_url("https://example.com/sale?a=1", {"customer": 42})
    assert url.startswith("http://localhost/mailtrack/c/")
    with record_events() as events:
        response = client.get(path_of(url))
    assert response.status_code == 302
    assert response.headers["Location"] == "https://example.com/sale?a=1"
    assert [event.signal for event in events] == ["link-clicked"]
    assert events[0].sender is app
    assert events[0].kwargs["result"].tracked_url == "https://example.com/sale?a=1"


def test_click_follows_to_a_local_route(app: Flask, client: FlaskClient) -> None:
    url = links(app).click_url("http://localhost/landing")
    response = client.get(path_of(url), follow_redirects=True)
    assert response.data == b"landed"
    assert response.request.path == "/landing"


def test_head_pixel(app: Flask, client: FlaskClient) -> None:
    url = links(app).open_url()
    with record_events() as events:
        response = client.head(path_of(url))
    assert response.status_code == 200
    assert response.data == b""
    assert events[0].kwargs["result"].machine is not None


@pytest.mark.parametrize(
    "method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"]
)
@pytest.mark.parametrize("kind", ["open", "click"])
def test_other_methods_get_405(
    app: Flask, client: FlaskClient, method: str, kind: str
) -> None:
    # As the middleware and the standalone server answer: Flask's automatic
    # OPTIONS answered 200 and listed OPTIONS in Allow.
    tracker = links(app)
    url = (
        tracker.open_url()
        if kind == "open"
        else tracker.click_url("https://example.com/")
    )
    with record_events() as events:
        response = client.open(path_of(url), method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert "Location" not in response.headers
    assert events == []


_ALLOW_IN_A_NEW_PROCESS = """
from flask import Flask
from flask_mailtrack import MailTrack
app = Flask("allow")
app.config["SECRET_KEY"] = "allow-test-secret-key-0123456789abcdef"
MailTrack(app)
client = app.test_client()
print(client.open("/mailtrack/c/x", method="PUT").headers["Allow"])
"""


def test_allow_header_does_not_depend_on_hashing() -> None:
    # Flask's own 405 lists the methods of a set: their order changed with
    # PYTHONHASHSEED, from one server process to the next.
    for seed in ("1", "2", "3", "4"):
        allow = subprocess.run(
            [sys.executable, "-c", _ALLOW_IN_A_NEW_PROCESS],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert allow == "GET, HEAD", seed


def _tamper(token: str) -> str:
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


BAD_TOKENS = [
    pytest.param("garbage", id="garbage"),
    pytest.param("1" + "A" * 20, id="short"),
    pytest.param("x" * 20000, id="huge"),
    pytest.param("..%2f..%2fetc%2fpasswd", id="dot-dot"),
    pytest.param("%ff%fe%00", id="non-utf8"),
    pytest.param("a/b/c", id="slashes"),
    pytest.param("", id="empty"),
    pytest.param("%2F%2Fevil.example", id="leading-slashes"),
    pytest.param("a%0D%0ALocation:%20x", id="crlf"),
]


@pytest.mark.parametrize("token", BAD_TOKENS)
@pytest.mark.parametrize(
    ("kind", "status"),
    [pytest.param("o", 200, id="open"), pytest.param("c", 404, id="click")],
)
def test_bad_tokens(client: FlaskClient, token: str, kind: str, status: int) -> None:
    with record_events() as events:
        response = client.get(f"/mailtrack/{kind}/{token}")
    assert response.status_code == status
    assert "Location" not in response.headers
    assert [event.signal for event in events] == ["tracking-failed"]


def test_bad_open_token_404_when_configured(client: FlaskClient) -> None:
    app = make_app({"MAILTRACK_PIXEL_ON_INVALID_TOKEN": False})
    with record_events() as events:
        response = app.test_client().get("/mailtrack/o/garbage")
    assert response.status_code == 404
    assert events[0].signal == "tracking-failed"
    assert events[0].sender is app


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_tamper, id="tampered"),
        pytest.param(lambda token: token[:-3], id="truncated"),
    ],
)
def test_altered_click_token(
    app: Flask, client: FlaskClient, change: t.Callable[[str], str]
) -> None:
    token = links(app).click_token("https://example.com/")
    with record_events() as events:
        response = client.get(f"/mailtrack/c/{change(token)}")
    assert response.status_code == 404
    assert [event.signal for event in events] == ["tracking-failed"]


def test_open_token_is_not_a_click_token(app: Flask, client: FlaskClient) -> None:
    token = links(app).open_token({"a": 1})
    with record_events() as events:
        response = client.get(f"/mailtrack/c/{token}")
    assert response.status_code == 404
    assert [event.signal for event in events] == ["tracking-failed"]


# -- per-app state -------------------------------------------------------------


def test_two_apps_with_different_secrets_never_cross() -> None:
    extension = MailTrack()
    first = Flask("first")
    first.config["SECRET_KEY"] = "first app secret key-0123456789a"
    second = Flask("second")
    second.config["SECRET_KEY"] = "second app secret key-0123456789"
    extension.init_app(first)
    extension.init_app(second)

    first_url = links(first).click_url("https://example.com/first")
    second_url = links(second).click_url("https://example.com/second")

    with record_events() as events:
        assert second.test_client().get(path_of(first_url)).status_code == 404
        assert first.test_client().get(path_of(second_url)).status_code == 404
        assert first.test_client().get(path_of(first_url)).status_code == 302
        assert second.test_client().get(path_of(second_url)).status_code == 302
    assert [(e.signal, e.sender) for e in events] == [
        ("tracking-failed", second),
        ("tracking-failed", first),
        ("link-clicked", first),
        ("link-clicked", second),
    ]


def test_double_init_app_is_refused(app: Flask, mailtrack: MailTrack) -> None:
    with pytest.raises(RuntimeError, match="already been registered"):
        mailtrack.init_app(app)
    with pytest.raises(RuntimeError, match="already been registered"):
        MailTrack(app)


def test_other_instance_is_refused(app: Flask) -> None:
    other = MailTrack()
    with app.app_context(), pytest.raises(RuntimeError, match="not registered"):
        other.configuration  # noqa: B018


def test_outside_app_context(mailtrack: MailTrack) -> None:
    with pytest.raises(RuntimeError, match="application context"):
        mailtrack.open_url()
    with pytest.raises(RuntimeError, match="application context"):
        mailtrack.tracker  # noqa: B018


def test_no_key_is_refused() -> None:
    app = Flask(__name__)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        MailTrack(app)
    assert "mailtrack" not in app.extensions


def test_unknown_keyword_is_refused() -> None:
    with pytest.raises(TypeError, match="anonymise_ip"):
        MailTrack(anonymise_ip=True)


def test_base_urls_in_configuration_are_refused() -> None:
    configuration = Configuration(
        secret_key=SECRET, base_open_tracking_url="https://t.example.com/o/"
    )
    with pytest.raises(ValueError, match="MAILTRACK_BASE_URL"):
        MailTrack(Flask(__name__), configuration=configuration)


# -- settings ------------------------------------------------------------------


def test_config_defaults(app: Flask) -> None:
    config = app.config
    assert config["MAILTRACK_URL_PREFIX"] == "/mailtrack"
    assert config["MAILTRACK_BASE_URL"] is None
    assert config["MAILTRACK_SECRET_KEY"] is None
    assert config["MAILTRACK_ENCRYPTION_KEY"] is None
    assert config["MAILTRACK_DEFAULT_METADATA"] is None
    assert config["MAILTRACK_TRUSTED_PROXIES"] == 0
    assert config["MAILTRACK_PROXY_HEADER"] == "X-Forwarded-For"
    assert config["MAILTRACK_ANONYMIZE_IP"] is False
    assert config["MAILTRACK_PIXEL_ON_INVALID_TOKEN"] is True
    assert config["MAILTRACK_MACHINE_RULES"] == ()
    assert config["MAILTRACK_WEBHOOK_URL"] is None
    assert config["MAILTRACK_DATABASE"] is None


def test_config_keys_are_read() -> None:
    app = make_app(
        {
            "MAILTRACK_URL_PREFIX": "/t/",
            "MAILTRACK_DEFAULT_METADATA": {"list": "news"},
            "MAILTRACK_ANONYMIZE_IP": "true",  # text, as from the environment
            "MAILTRACK_MAX_AGE": 3600,
        }
    )
    url = links(app).open_url({"customer": 1})
    assert url.startswith("http://localhost/t/o/")
    with record_events() as events:
        response = app.test_client().get(
            path_of(url), environ_base={"REMOTE_ADDR": "203.0.113.77"}
        )
    assert response.status_code == 200
    result = events[0].kwargs["result"]
    assert result.metadata == {"list": "news", "customer": 1}
    assert result.request_data["user_ip"] == "203.0.113.0"
    assert result.expires_at == result.issued_at + 3600


def test_unknown_config_key_is_refused() -> None:
    with pytest.raises(TypeError, match="MAILTRACK_ANONYMISE_IP"):
        make_app({"MAILTRACK_ANONYMISE_IP": True})


@pytest.mark.parametrize(
    ("build", "error"),
    [
        pytest.param(lambda: MailTrack(Flask(__name__)), MissingSettingError, id="key"),
        pytest.param(
            lambda: MailTrack(anonymise_ip=True), UnknownSettingError, id="kw"
        ),
        pytest.param(
            lambda: make_app({"MAILTRACK_ANONYMISE_IP": True}),
            UnknownSettingError,
            id="config-key",
        ),
        pytest.param(
            lambda: make_app({"MAILTRACK_MAX_AGE": "an hour"}),
            ConfigurationError,
            id="config-value",
        ),
        pytest.param(
            lambda: MailTrack(
                Flask(__name__),
                configuration=Configuration(
                    secret_key=SECRET, base_click_tracking_url="https://t.example/c/"
                ),
            ),
            ConfigurationError,
            id="base-urls",
        ),
    ],
)
def test_setting_errors_are_configuration_errors(
    build: t.Callable[[], object], error: type[ConfigurationError]
) -> None:
    with pytest.raises(error) as info:
        build()
    assert isinstance(info.value, ConfigurationError)
    assert isinstance(info.value, MailTrackError)


def test_links_without_a_base_url_need_a_setting() -> None:
    app = make_app({})
    mailtrack = app.extensions["mailtrack"].extension
    with app.app_context(), pytest.raises(MissingSettingError, match="BASE_URL"):
        mailtrack.open_url()


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        pytest.param(0, "192.0.2.1", id="untrusted"),
        pytest.param(1, "198.51.100.9", id="one-proxy"),
    ],
)
def test_trusted_proxies(trusted: int, expected: str) -> None:
    app = make_app({"MAILTRACK_TRUSTED_PROXIES": trusted})
    url = links(app).open_url()
    with record_events() as events:
        app.test_client().get(
            path_of(url),
            headers={"X-Forwarded-For": "198.51.100.9"},
            environ_base={"REMOTE_ADDR": "192.0.2.1"},
        )
    assert events[0].kwargs["result"].request_data["user_ip"] == expected


def test_proxy_header() -> None:
    app = make_app(
        {"MAILTRACK_TRUSTED_PROXIES": 1, "MAILTRACK_PROXY_HEADER": "X-Real-IP"}
    )
    url = links(app).open_url()
    with record_events() as events:
        app.test_client().get(
            path_of(url),
            headers={"X-Real-IP": "198.51.100.9", "X-Forwarded-For": "6.6.6.6"},
            environ_base={"REMOTE_ADDR": "192.0.2.1"},
        )
    assert events[0].kwargs["result"].request_data["user_ip"] == "198.51.100.9"


def test_arguments_win_over_config() -> None:
    app = make_app(
        {"MAILTRACK_URL_PREFIX": "/from-config", "MAILTRACK_MAX_AGE": 10},
        url_prefix="/from-argument",
        max_age=20,
    )
    tracker = links(app)
    assert tracker.open_url().startswith("http://localhost/from-argument/o/")
    assert tracker.configuration.max_age == 20


def test_configuration_argument_replaces_config_keys() -> None:
    configuration = Configuration(
        secret_key="configuration secret-0123456789a", max_age=30
    )
    app = make_app({"MAILTRACK_MAX_AGE": 10}, configuration=configuration)
    tracker = links(app)
    assert tracker.configuration.max_age == 30
    assert tracker.configuration.secret_key == "configuration secret-0123456789a"


@pytest.mark.parametrize(
    ("prefix", "path"),
    [
        pytest.param("/t", "/t/o/", id="plain"),
        pytest.param("t/", "/t/o/", id="slashes"),
        pytest.param("/a/b", "/a/b/o/", id="nested"),
        pytest.param("", "/o/", id="empty"),
        pytest.param("/", "/o/", id="root"),
    ],
)
def test_url_prefix(prefix: str, path: str) -> None:
    app = make_app({"MAILTRACK_URL_PREFIX": prefix})
    url = links(app).open_url()
    assert path_of(url).startswith(path)
    with record_events() as events:
        assert app.test_client().get(path_of(url)).status_code == 200
    assert events[0].signal == "email-opened"


# -- keys ----------------------------------------------------------------------


def test_secret_key_fallbacks_verify_old_links() -> None:
    old_app = make_app({"SECRET_KEY": "the old secret key-0123456789abc"})
    old_url = links(old_app).click_url("https://example.com/old")

    app = make_app(
        {
            "SECRET_KEY": "the new secret key-0123456789abc",
            "SECRET_KEY_FALLBACKS": ["the old secret key-0123456789abc"],
        }
    )
    new_url = links(app).click_url("https://example.com/new")
    client = app.test_client()
    assert client.get(path_of(old_url)).headers["Location"] == "https://example.com/old"
    assert client.get(path_of(new_url)).headers["Location"] == "https://example.com/new"

    # The newest key signs: the old app cannot read new links.
    assert old_app.test_client().get(path_of(new_url)).status_code == 404
    new_only = make_app({"SECRET_KEY": "the new secret key-0123456789abc"})
    assert new_only.test_client().get(path_of(new_url)).status_code == 302


def test_mailtrack_secret_key_wins_over_secret_key() -> None:
    app = make_app({"MAILTRACK_SECRET_KEY": "a dedicated tracking key-0123456"})
    url = links(app).click_url("https://example.com/")
    assert Tracker(secret_key="a dedicated tracking key-0123456").decode_click(
        url.rsplit("/", 1)[1]
    ).tracked_url == ("https://example.com/")
    with pytest.raises(InvalidToken):
        Tracker(secret_key=SECRET).decode_click(url.rsplit("/", 1)[1])


def test_encryption_key() -> None:
    pytest.importorskip("cryptography")
    key = "an encryption key of 32 chars.."
    app = make_app({"MAILTRACK_ENCRYPTION_KEY": key})
    url = links(app).click_url("https://example.com/secret-path", {"email": "a@b.c"})
    assert "secret-path" not in url
    response = app.test_client().get(path_of(url))
    assert response.headers["Location"] == "https://example.com/secret-path"


# -- base URLs -----------------------------------------------------------------


def test_base_url_outside_request() -> None:
    app = make_app({"MAILTRACK_BASE_URL": "https://t.example.com/"})
    mailtrack = app.extensions["mailtrack"].extension
    with app.app_context():
        url = mailtrack.click_url("https://example.com/", {"a": 1})
        pixel = mailtrack.open_url()
    assert url.startswith("https://t.example.com/mailtrack/c/")
    assert pixel.startswith("https://t.example.com/mailtrack/o/")
    # Served by the app, whatever host the request came to.
    response = app.test_client().get(url[len("https://t.example.com") :])
    assert response.headers["Location"] == "https://example.com/"


def test_no_base_url_outside_request(mailtrack: MailTrack, app: Flask) -> None:
    with app.app_context(), pytest.raises(RuntimeError, match="MAILTRACK_BASE_URL"):
        mailtrack.open_url()


def test_server_name_outside_request() -> None:
    app = make_app(
        {
            "SERVER_NAME": "mail.example.org",
            "PREFERRED_URL_SCHEME": "https",
            "APPLICATION_ROOT": "/app",
        }
    )
    with app.app_context():
        url = app.extensions["mailtrack"].extension.open_url()
    assert url.startswith("https://mail.example.org/app/mailtrack/o/")


def test_request_host_and_script_root(mailtrack: MailTrack, app: Flask) -> None:
    with app.test_request_context(base_url="https://shop.example.com/app/"):
        url = mailtrack.click_url("https://example.com/")
    assert url.startswith("https://shop.example.com/app/mailtrack/c/")


def test_host_trackers_are_bounded(mailtrack: MailTrack, app: Flask) -> None:
    state = app.extensions["mailtrack"]
    for number in range(100):
        with app.test_request_context(base_url=f"http://host{number}.example/"):
            mailtrack.open_url()
    assert len(state._host_trackers) <= 16


# -- Jinja helpers -------------------------------------------------------------


def test_jinja_pixel_and_urls(app: Flask) -> None:
    template = (
        '<a href="{{ mailtrack_click_url("https://example.com/?a=1&b=2", meta) }}">'
        "x</a>{{ mailtrack_pixel(meta) }}|{{ mailtrack_open_url(meta) }}"
    )
    with app.test_request_context():
        html = render_template_string(template, meta={"customer": 7})
    tracker = links(app)
    href = html.split('href="', 1)[1].split('"', 1)[0]
    assert tracker.decode_click(href).tracked_url == "https://example.com/?a=1&b=2"
    assert '<img src="http://localhost/mailtrack/o/' in html
    assert 'width="1" height="1" alt=""' in html
    src = html.split('src="', 1)[1].split('"', 1)[0]
    assert tracker.decode_open(src).metadata == {"customer": 7}
    open_url = html.rsplit("|", 1)[1]
    assert tracker.decode_open(open_url).metadata == {"customer": 7}


def test_jinja_filter_tracks_links(app: Flask) -> None:
    template = (
        "{% filter mailtrack({'customer': 7}) %}"
        '<p><a href="https://example.com/a">A</a> {{ name }}</p>'
        "{% endfilter %}"
    )
    with app.test_request_context():
        html = render_template_string(template, name="<Ann>")
    assert "https://example.com/a" not in html
    assert "&lt;Ann&gt;" in html
    href = html.split('href="', 1)[1].split('"', 1)[0]
    assert links(app).decode_click(href).metadata == {"customer": 7}


@pytest.mark.parametrize(
    ("block", "arguments", "has_pixel"),
    [
        pytest.param('<a href="https://e.com/">x</a>', "meta", False, id="snippet"),
        pytest.param(
            '<html><body><a href="https://e.com/">x</a></body></html>',
            "meta",
            True,
            id="whole-email",
        ),
        pytest.param(
            '<a href="https://e.com/">x</a>', "meta, pixel=True", True, id="forced"
        ),
        pytest.param(
            '<body><a href="https://e.com/">x</a></body>',
            "meta, pixel=False",
            False,
            id="refused",
        ),
    ],
)
def test_jinja_filter_pixel(
    app: Flask, block: str, arguments: str, has_pixel: bool
) -> None:
    template = f"{{% filter mailtrack({arguments}) %}}{block}{{% endfilter %}}"
    with app.test_request_context():
        html = render_template_string(template, meta={"customer": 7})
    assert ("http://localhost/mailtrack/o/" in html) is has_pixel
    assert "http://localhost/mailtrack/c/" in html


def test_jinja_filter_keeps_one_pixel(app: Flask) -> None:
    template = (
        "{% filter mailtrack(meta) %}<html><body>"
        '<a href="https://e.com/">x</a>{{ mailtrack_pixel(meta) }}'
        "</body></html>{% endfilter %}"
    )
    with app.test_request_context():
        html = render_template_string(template, meta={"customer": 7})
    assert html.count("/mailtrack/o/") == 1


HTML = '<html><body><a href="https://example.com/a">A</a></body></html>'


def test_track_html(mailtrack: MailTrack, app: Flask) -> None:
    with app.test_request_context(base_url="https://shop.example.com"):
        html = mailtrack.track_html(HTML, {"customer": 7})
        data = mailtrack.track_html(HTML.encode(), {"customer": 7})
    assert isinstance(data, bytes)
    for tracked in (html, data.decode()):
        assert "https://example.com/a" not in tracked
        assert "https://shop.example.com/mailtrack/o/" in tracked
        href = tracked.split('href="', 1)[1].split('"', 1)[0]
        token = href.rsplit("/", 1)[1]
        assert links(app).decode_click(token).metadata == {"customer": 7}


def test_compile_html_renders_without_a_request() -> None:
    app = make_app()
    mailtrack = app.extensions["mailtrack"].extension
    with app.test_request_context(base_url="https://shop.example.com"):
        template = mailtrack.compile_html(HTML)
    html = template.render({"customer": 1})
    assert isinstance(html, str)
    href = html.split('href="', 1)[1].split('"', 1)[0]
    assert href.startswith("https://shop.example.com/mailtrack/c/")
    response = app.test_client().get(href[len("https://shop.example.com") :])
    assert response.headers["Location"] == "https://example.com/a"


def test_track_message() -> None:
    app = make_app({"MAILTRACK_BASE_URL": "https://t.example.com"})
    mailtrack = app.extensions["mailtrack"].extension
    message = EmailMessage()
    message["Subject"] = "Hello"
    message.set_content("Text")
    message.add_alternative(HTML, subtype="html")
    with app.app_context():
        tracked = mailtrack.track_message(message, {"customer": 2})
    part = tracked.get_body(("html",))
    assert part is not None
    html = part.get_content()
    assert "https://t.example.com/mailtrack/c/" in html
    assert "https://example.com/a" in message.get_body(("html",)).get_content()


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(["o", "c"]),
    token=st.text(max_size=300),
    user_agent=st.text(
        alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=100
    ),
)
def test_any_path_never_fails(kind: str, token: str, user_agent: str) -> None:
    app = _HYPOTHESIS_APP
    with record_events() as events:
        response = app.test_client().get(
            f"/mailtrack/{kind}/{quote(token, safe='')}",
            headers={"User-Agent": user_agent},
        )
    assert response.status_code in (200, 404)
    assert "Location" not in response.headers
    assert [event.signal for event in events] == ["tracking-failed"]


_HYPOTHESIS_APP = make_app()


# -- first-run settings (issue 14) ----------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "said"),
    [
        # Today's dead links: ".../app/<token>?x=1/mailtrack/c/" and "/<token>".
        pytest.param("https://t.example.com/app/?x=1", "query string", id="query"),
        pytest.param("https://t.example.com/#frag", "fragment", id="fragment"),
        pytest.param("localhost:8000", "absolute http", id="no-scheme"),
    ],
)
def test_base_url_that_makes_dead_links_is_refused(base_url: str, said: str) -> None:
    with pytest.raises(ConfigurationError, match=said) as caught:
        make_app({"MAILTRACK_BASE_URL": base_url})
    assert "MAILTRACK_BASE_URL" in str(caught.value)
    with pytest.raises(ConfigurationError, match=said):
        make_app(base_url=base_url)


@pytest.mark.parametrize(
    "base_url", ["https://t.example.com/mailtrack", "https://t.example.com/mailtrack/"]
)
def test_base_url_ending_in_the_prefix_warns_with_the_fix(base_url: str) -> None:
    with pytest.warns(
        MailTrackWarning, match="set MAILTRACK_BASE_URL to 'https://t.example.com'"
    ):
        app = make_app({"MAILTRACK_BASE_URL": base_url})
    with app.app_context():
        # Still made as configured: right when the app is mounted there.
        assert (
            links(app)
            .click_url("https://example.com/")
            .startswith("https://t.example.com/mailtrack/mailtrack/c/")
        )


def test_base_url_with_another_prefix_does_not_warn() -> None:
    make_app(
        {
            "MAILTRACK_BASE_URL": "https://t.example.com/mailtrack",
            "MAILTRACK_URL_PREFIX": "/t",
        }
    )
    make_app({"MAILTRACK_BASE_URL": "https://t.example.com/app"})


def test_append_slash_links_are_served() -> None:
    app = make_app(
        {
            "MAILTRACK_BASE_URL": "https://t.example.com",
            "MAILTRACK_APPEND_SLASH": "true",
        }
    )
    with app.app_context():
        click = links(app).click_url("https://example.com/sale", {"n": 1})
        pixel = links(app).open_url({"n": 1})
    assert click.endswith("/") and pixel.endswith("/")
    client = app.test_client()
    with record_events() as events:
        clicked = client.get(click.replace("https://t.example.com", ""))
        opened = client.get(pixel.replace("https://t.example.com", ""))
    assert clicked.status_code == 302
    assert clicked.headers["Location"] == "https://example.com/sale"
    assert opened.status_code == 200 and opened.data == TRACKING_PIXEL
    assert [event.signal for event in events] == ["link-clicked", "email-opened"]
    results = [event.kwargs["result"] for event in events]
    assert [result.metadata for result in results] == [{"n": 1}, {"n": 1}]


@pytest.mark.parametrize(
    ("key", "said"),
    [
        pytest.param("dev", "well-known placeholder", id="dev"),
        pytest.param("changeme", "well-known placeholder", id="changeme"),
        pytest.param("a short flask key", "shorter than 32 bytes", id="short"),
    ],
)
def test_weak_flask_secret_key_warns(
    key: str, said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_secret_keys, "_warned_weak_keys", set())
    with pytest.warns(WeakSecretKeyWarning, match=said) as caught:
        make_app({"SECRET_KEY": key})
    # Once, however many copies of the configuration the extension makes.
    assert len([w for w in caught if w.category is WeakSecretKeyWarning]) == 1
    assert key not in str(caught[0].message)


def test_weak_fallback_key_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_secret_keys, "_warned_weak_keys", set())
    with pytest.warns(WeakSecretKeyWarning, match="placeholder"):
        make_app({"SECRET_KEY_FALLBACKS": ["secret"]})


def test_boolean_arguments_as_text_are_read_as_text_settings() -> None:
    app = make_app(anonymize_ip="no")
    assert app.extensions["mailtrack"].configuration.anonymize_ip is False
    with pytest.raises(ConfigurationError, match="append_slash"):
        make_app({"MAILTRACK_APPEND_SLASH": "ture"})
