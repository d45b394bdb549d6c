"""flask_mailtrack.django, pytracking's Django views: in the example project
(examples/django_project, views wired in its urls.py) through Django's test
client and RequestFactory, and under gunicorn."""

from __future__ import annotations

import http.client
import logging
import os
import pathlib
import re
import shutil
import subprocess
import sys
import typing as t

import pytest
from flask_mailtrack import Configuration
from flask_mailtrack import InvalidToken
from flask_mailtrack import MailTrackError
from flask_mailtrack import record_events
from flask_mailtrack import Tracker
from flask_mailtrack.exceptions import UnknownSettingError
from flask_mailtrack.web import TRACKING_PIXEL

from _django import BASE
from _django import example_project
from _django import EXAMPLES
from _servers import free_port
from _servers import running

pytest.importorskip("django")

METADATA = {"recipient": "reader@example.com", "campaign": "django-demo"}
TARGET = BASE + "/landing/"
OLD_KEY = "an-older-django-secret-key-0123456789"
NEW_KEY = "the-newest-django-secret-key-0123456789"


@pytest.fixture(scope="module", autouse=True)
def project() -> t.Iterator[None]:
    with example_project():
        yield


@pytest.fixture
def client() -> t.Any:
    from django.test import Client

    return Client()


@pytest.fixture
def factory() -> t.Any:
    from django.test import RequestFactory

    return RequestFactory()


def views() -> t.Any:
    from django_project import mailtrack

    return mailtrack


def settings_tracker() -> Tracker:
    """A tracker of the settings as they are now (after overrides)."""
    from flask_mailtrack.django import get_configuration_from_settings

    return Tracker(get_configuration_from_settings())


def local(url: str) -> str:
    assert url.startswith(BASE)
    return url[len(BASE) :]


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def pytracking_settings(**changes: t.Any) -> t.Any:
    """override_settings of PYTRACKING_CONFIGURATION with ``changes``."""
    from django.conf import settings
    from django.test import override_settings

    return override_settings(
        PYTRACKING_CONFIGURATION={**settings.PYTRACKING_CONFIGURATION, **changes}
    )


# -- the example project, through Django's test client --------------------------


def test_links_of_the_page_are_served_by_the_views(
    client: t.Any, caplog: pytest.LogCaptureFixture
) -> None:
    page = client.get("/").content.decode()
    link = re.search(r'href="([^"]+)"', page)
    pixel = re.search(r'src="([^"]+)"', page)
    assert link is not None and pixel is not None

    with (
        caplog.at_level(logging.INFO, logger="django_project"),
        record_events() as events,
    ):
        opened = client.get(local(pixel.group(1).replace("&amp;", "&")))
        clicked = client.get(local(link.group(1).replace("&amp;", "&")))

    assert opened.status_code == 200
    assert opened.content == TRACKING_PIXEL
    assert opened["Content-Type"] == "image/gif"
    assert "no-store" in opened["Cache-Control"]
    assert clicked.status_code == 302
    assert clicked["Location"] == TARGET
    assert clicked["Cache-Control"] == "no-store"
    assert [event.signal for event in events] == ["email-opened", "link-clicked"]
    assert events[0].sender is views().OpenView
    assert events[1].sender is views().ClickView
    assert events[0].kwargs["result"].metadata == METADATA
    assert events[0].kwargs["request"].path == local(pixel.group(1))
    # The hooks of the project's views ran.
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("open {'recipient'") for m in messages)
    assert f"click {METADATA} -> {TARGET}" in messages
    assert client.get("/landing/").status_code == 200


@pytest.mark.parametrize("kind", ["o", "c"])
def test_bad_token_is_a_404_and_calls_the_hook(
    client: t.Any, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="django_project"),
        record_events() as events,
    ):
        response = client.get(f"/mailtrack/{kind}/1forged")
    assert response.status_code == 404
    assert not response.has_header("Location")
    assert response.content != TRACKING_PIXEL
    assert [event.signal for event in events] == ["tracking-failed"]
    name = "open" if kind == "o" else "click"
    assert f"refused {name} token: format" in [r.getMessage() for r in caplog.records]


def test_pixel_on_invalid_token_when_the_settings_ask(client: t.Any) -> None:
    with pytracking_settings(pixel_on_invalid_token=True), record_events() as events:
        response = client.get("/mailtrack/o/1forged")
    assert response.status_code == 200
    assert response.content == TRACKING_PIXEL
    assert [event.signal for event in events] == ["tracking-failed"]


def test_head_gets_the_headers_without_a_body(client: t.Any) -> None:
    pixel = settings_tracker().open_url(METADATA)
    with record_events() as events:
        response = client.head(local(pixel))
    assert response.status_code == 200
    assert response.content == b""
    assert response["Content-Type"] == "image/gif"
    assert response["Content-Length"] == str(len(TRACKING_PIXEL))
    # A HEAD is labelled, never refused.
    assert events[0].kwargs["result"].machine is not None


@pytest.mark.parametrize("method", ["post", "options", "put", "delete"])
def test_other_methods_get_a_405(client: t.Any, method: str) -> None:
    link = settings_tracker().click_url(TARGET, METADATA)
    with record_events() as events:
        response = getattr(client, method)(local(link))
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert not response.has_header("Location")
    assert events == []


def test_append_slash_links(client: t.Any) -> None:
    with pytracking_settings(append_slash=True):
        link = settings_tracker().click_url(TARGET, METADATA)
        assert link.endswith("/")
        response = client.get(local(link))
    assert (response.status_code, response["Location"]) == (302, TARGET)


# -- signing with Django's SECRET_KEY --------------------------------------------


def test_links_are_signed_with_django_s_secret_key() -> None:
    from django.conf import settings
    from flask_mailtrack.django import get_configuration_from_settings

    configuration = get_configuration_from_settings()
    assert configuration.secret_key == [settings.SECRET_KEY]
    # Built once while the settings stay the same.
    assert get_configuration_from_settings() is configuration


def test_secret_key_fallbacks_rotate(client: t.Any) -> None:
    from django.test import override_settings

    with override_settings(SECRET_KEY=OLD_KEY, SECRET_KEY_FALLBACKS=[]):
        old_link = settings_tracker().click_url(TARGET, METADATA)
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]):
        new_tracker = settings_tracker()
        assert new_tracker.configuration.secret_key == [OLD_KEY, NEW_KEY]
        new_link = new_tracker.click_url(TARGET, METADATA)
        assert client.get(local(old_link))["Location"] == TARGET
        assert client.get(local(new_link))["Location"] == TARGET
        # The newest key signs: a server that has only it reads the link.
        assert Tracker(secret_key=NEW_KEY).decode_click(token_of(new_link))
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[]):
        assert client.get(local(old_link)).status_code == 404


def test_secret_key_of_the_settings_dict_wins(client: t.Any) -> None:
    own_key = "the-tracking-key-of-the-dict-0123456789"
    with pytracking_settings(secret_key=own_key):
        link = settings_tracker().click_url(TARGET, METADATA)
        assert client.get(local(link)).status_code == 302
    assert Tracker(secret_key=own_key).decode_click(token_of(link))
    assert client.get(local(link)).status_code == 404


def test_without_any_key_nothing_is_signed_or_honoured(factory: t.Any) -> None:
    from django.http import Http404
    from django.test import override_settings
    from flask_mailtrack.django import ClickTrackingView
    from flask_mailtrack.django import get_configuration_from_settings

    token = token_of(settings_tracker().click_url(TARGET, METADATA))
    # (Django's debug 404 page itself refuses an empty SECRET_KEY, so the
    # view is called directly.)
    with override_settings(SECRET_KEY=""):
        configuration = get_configuration_from_settings()
        assert configuration.secret_key is None
        with pytest.raises(MailTrackError, match="secret key"):
            Tracker(configuration).open_url()
        with pytest.raises(Http404):
            ClickTrackingView.as_view()(factory.get("/"), path=token)


def test_settings_name_and_unknown_keys() -> None:
    from django.test import override_settings
    from flask_mailtrack.django import get_configuration_from_settings

    with override_settings(MY_TRACKING={"max_age": 60}):
        assert get_configuration_from_settings("MY_TRACKING").max_age == 60
    with override_settings(MY_TRACKING={"max_agee": 60}):
        with pytest.raises(UnknownSettingError, match="max_agee"):
            get_configuration_from_settings("MY_TRACKING")


# -- the views' hooks and functions, through RequestFactory ---------------------


def test_a_hook_that_raises_does_not_cost_the_redirect(
    factory: t.Any, caplog: pytest.LogCaptureFixture
) -> None:
    from flask_mailtrack.django import ClickTrackingView

    class Broken(ClickTrackingView):
        def notify_tracking_event(self, tracking_result: t.Any) -> None:
            raise RuntimeError("the hook is broken")

    token = token_of(settings_tracker().click_url(TARGET, METADATA))
    with caplog.at_level(logging.ERROR, logger="flask_mailtrack"):
        response = Broken.as_view()(factory.get("/c/" + token), path=token)
    assert (response.status_code, response["Location"]) == (302, TARGET)
    assert "the tracking response was sent anyway" in caplog.text
    assert "the hook is broken" in caplog.text


def test_hooks_get_pytracking_s_arguments(factory: t.Any) -> None:
    from django.http import Http404
    from flask_mailtrack.django import OpenTrackingView

    seen: list[t.Any] = []

    class Recording(OpenTrackingView):
        def notify_tracking_event(self, tracking_result: t.Any) -> None:
            seen.append(tracking_result)

        def notify_decoding_error(self, exception: t.Any, request: t.Any) -> None:
            seen.append((exception, request))

    token = token_of(settings_tracker().open_url(METADATA))
    request = factory.get("/o/" + token, HTTP_USER_AGENT="Firefox")
    assert Recording.as_view()(request, path=token).status_code == 200
    assert seen[0].is_open_tracking
    assert seen[0].metadata == METADATA
    assert seen[0].request_data["user_agent"] == "Firefox"

    bad = factory.get("/o/" + token + "bbb")
    with pytest.raises(Http404):
        Recording.as_view()(bad, path=token + "bbb")
    exception, request = seen[1]
    assert isinstance(exception, InvalidToken)
    assert request is bad


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({}, "192.0.2.1", id="spoofed-headers-ignored"),
        pytest.param({"trusted_proxies": 1}, "198.51.100.2", id="x-forwarded-for"),
        pytest.param(
            {"trusted_proxies": 1, "proxy_header": "X-Real-IP"},
            "203.0.113.7",
            id="x-real-ip",
        ),
        pytest.param(
            {"trusted_proxies": 1, "proxy_header": "X-Real-IP", "anonymize_ip": True},
            "203.0.113.0",
            id="anonymised",
        ),
    ],
)
def test_client_address(
    factory: t.Any, changes: dict[str, t.Any], expected: str
) -> None:
    from flask_mailtrack.django import get_request_data
    from flask_mailtrack.django import OpenTrackingView

    headers = {
        "HTTP_X_REAL_IP": "203.0.113.7",
        "HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.2",
        "REMOTE_ADDR": "192.0.2.1",
    }
    with pytracking_settings(**changes):
        token = token_of(settings_tracker().open_url(METADATA))
        with record_events() as events:
            OpenTrackingView.as_view()(
                factory.get("/o/" + token, **headers), path=token
            )
        configuration = settings_tracker().configuration
        data = get_request_data(factory.get("/", **headers), configuration)
    assert events[0].kwargs["result"].request_data["user_ip"] == expected
    assert data["user_ip"] == expected


def test_get_request_data_without_a_configuration_reads_the_peer(
    factory: t.Any,
) -> None:
    from flask_mailtrack.django import get_request_data

    request = factory.get("/", HTTP_X_REAL_IP="203.0.113.7", HTTP_USER_AGENT="Firefox")
    data = get_request_data(request)
    assert (data["user_agent"], data["user_ip"]) == ("Firefox", "127.0.0.1")
    assert data["method"] == "GET"


def test_get_tracking_result(factory: t.Any) -> None:
    from flask_mailtrack.django import get_configuration_from_settings
    from flask_mailtrack.django import get_tracking_result

    configuration = get_configuration_from_settings()
    tracker = settings_tracker()
    open_token = token_of(tracker.open_url(METADATA))
    click_token = token_of(tracker.click_url(TARGET, METADATA))
    request = factory.get("/", HTTP_USER_AGENT="Firefox")

    with record_events() as events:
        opened = get_tracking_result(request, open_token, True, configuration)
        clicked = get_tracking_result(request, "/" + click_token, False, configuration)
    assert events == []  # a function: no signal
    assert opened.is_open_tracking and opened.metadata == METADATA
    assert opened.request_data is not None
    assert opened.request_data["user_agent"] == "Firefox"
    assert clicked.tracked_url == TARGET

    with pytest.raises(InvalidToken):
        get_tracking_result(request, open_token, False, configuration)
    with pytest.raises(InvalidToken):
        get_tracking_result(request, click_token + "x", False, configuration)
    # Keyword overrides, as the pytracking functions take them.
    with pytest.raises(InvalidToken):
        get_tracking_result(
            request,
            click_token,
            False,
            configuration,
            secret_key="another-test-secret-key-0123456789abcdef",
        )
    with pytest.raises(MailTrackError, match="POST"):
        get_tracking_result(factory.post("/"), click_token, False, configuration)


def test_importing_flask_mailtrack_does_not_load_django() -> None:
    code = (
        "import sys, flask_mailtrack, flask_mailtrack.web, flask_mailtrack.cli\n"
        "from flask_mailtrack import *\n"
        "assert 'django' not in sys.modules, 'django loaded'\n"
        "import flask_mailtrack.django\n"
        "assert 'django' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_configuration_of_your_own(factory: t.Any) -> None:
    from flask_mailtrack.django import ClickTrackingView

    configuration = Configuration(
        secret_key="a-key-of-this-view-only-0123456789",
        base_click_tracking_url="https://t.example.com/c/",
    )

    class OwnView(ClickTrackingView):
        def get_configuration(self) -> Configuration:
            return configuration

    token = token_of(Tracker(configuration).click_url(TARGET, METADATA))
    response = OwnView.as_view()(factory.get("/c/" + token), path=token)
    assert response["Location"] == TARGET


# -- under gunicorn --------------------------------------------------------------


def _request(
    port: int, path: str, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, headers={"User-Agent": "Mozilla/5.0 test"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.mark.skipif(not shutil.which("gunicorn"), reason="gunicorn is not installed")
def test_views_under_gunicorn() -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    root = pathlib.Path(__file__).resolve().parent.parent
    env = {
        "PYTHONPATH": os.pathsep.join(
            [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "MAILTRACK_BASE_URL": base,
        "DJANGO_SETTINGS_MODULE": "django_project.settings",
        "DJANGO_DEBUG": "0",
    }
    command = [
        str(shutil.which("gunicorn")),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--chdir",
        str(EXAMPLES),
        "django_project.wsgi:application",
    ]
    output: list[str] = []
    with running(command, env, port, ready_path="/landing/", output=output):
        status, _, page = _request(port, "/")
        assert status == 200
        link = re.search(r'href="([^"]+)"', page.decode())
        pixel = re.search(r'src="([^"]+)"', page.decode())
        assert link is not None and pixel is not None
        link_path = link.group(1).replace("&amp;", "&")[len(base) :]
        pixel_path = pixel.group(1).replace("&amp;", "&")[len(base) :]

        status, headers, body = _request(port, pixel_path)
        assert (status, headers["Content-Type"], body) == (
            200,
            "image/gif",
            TRACKING_PIXEL,
        )
        status, headers, body = _request(port, pixel_path, "HEAD")
        assert (status, body) == (200, b"")
        assert headers["Content-Length"] == str(len(TRACKING_PIXEL))

        status, headers, _ = _request(port, link_path)
        assert (status, headers["Location"]) == (302, base + "/landing/")

        status, headers, _ = _request(port, "/mailtrack/c/1forged")
        assert status == 404
        assert "Location" not in headers
        assert _request(port, link_path, "POST")[0] == 405
    log = output[0]
    # The project's hooks ran in the workers.
    assert "open {'recipient': 'reader@example.com'" in log
    assert f"-> {base}/landing/" in log
    assert "refused click token: format" in log
