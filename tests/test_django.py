"""The Django example project, wrapped by TrackingMiddleware, through
werkzeug's test client and LintMiddleware."""

from __future__ import annotations

import os
import pathlib
import re
import sys
import typing as t

import pytest
from flask_mailtrack import record_events
from flask_mailtrack import TrackingMiddleware
from flask_mailtrack.web import TRACKING_PIXEL
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client

django = pytest.importorskip("django")

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
BASE = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def application() -> t.Iterator[TrackingMiddleware]:
    from django.conf import settings

    if settings.configured and settings.ROOT_URLCONF != "django_project.urls":
        pytest.skip("Django is already configured for another project here.")
    sys.path.insert(0, str(EXAMPLES))
    previous = os.environ.get("DJANGO_SETTINGS_MODULE")
    os.environ["DJANGO_SETTINGS_MODULE"] = "django_project.settings"
    patch = pytest.MonkeyPatch()
    # A real key: the example's fallback is a placeholder, which warns.
    patch.setenv("MAILTRACK_SECRET_KEY", "django-example-test-secret-key-0123456789")
    try:
        from django_project.wsgi import application

        yield application
    finally:
        patch.undo()
        sys.path.remove(str(EXAMPLES))
        if previous is None:
            os.environ.pop("DJANGO_SETTINGS_MODULE", None)
        else:
            os.environ["DJANGO_SETTINGS_MODULE"] = previous


@pytest.fixture
def client(application: TrackingMiddleware) -> Client:
    return Client(LintMiddleware(application))


def _links(client: Client) -> tuple[str, str]:
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    link = re.search(r'href="([^"]+)"', page)
    pixel = re.search(r'src="([^"]+)"', page)
    assert link is not None and pixel is not None
    return link.group(1).replace("&amp;", "&"), pixel.group(1).replace("&amp;", "&")


def test_django_pages_pass_through(client: Client) -> None:
    link, pixel = _links(client)
    assert link.startswith(BASE + "/mailtrack/c/")
    assert pixel.startswith(BASE + "/mailtrack/o/")
    response = client.get("/landing/")
    assert response.status_code == 200
    assert b"The offer" in response.data


def test_django_404_is_django_s(client: Client) -> None:
    response = client.get("/not-a-page/")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")
    assert b"invalid or has expired" not in response.data


def test_open_through_django(client: Client, application: TrackingMiddleware) -> None:
    _, pixel = _links(client)
    with record_events() as events:
        response = client.get(pixel[len(BASE) :])
    assert response.status_code == 200
    assert response.data == TRACKING_PIXEL
    assert response.headers["Content-Type"] == "image/gif"
    assert [event.signal for event in events] == ["email-opened"]
    assert events[0].sender is application
    assert events[0].kwargs["result"].metadata == {
        "recipient": "reader@example.com",
        "campaign": "django-demo",
    }


def test_click_through_django(client: Client) -> None:
    link, _ = _links(client)
    with record_events() as events:
        response = client.get(link[len(BASE) :])
    assert response.status_code == 302
    assert response.headers["Location"] == BASE + "/landing/"
    assert [event.signal for event in events] == ["link-clicked"]
    followed = client.get("/landing/")
    assert followed.status_code == 200


def test_bad_click_through_django(client: Client) -> None:
    with record_events() as events:
        response = client.get("/mailtrack/c/1forged")
    assert response.status_code == 404
    assert "Location" not in response.headers
    assert [event.signal for event in events] == ["tracking-failed"]
