"""The Django example project wrapped by TrackingMiddleware (the other way
to serve tracking in Django: no URL patterns), through werkzeug's test
client and LintMiddleware. The project's own views are tested in
test_django_views.py."""

from __future__ import annotations

import re
import typing as t

import pytest
from flask_mailtrack import record_events
from flask_mailtrack import TrackingMiddleware
from flask_mailtrack.web import TRACKING_PIXEL
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client

from _django import BASE
from _django import example_project


@pytest.fixture(scope="module")
def application() -> t.Iterator[TrackingMiddleware]:
    with example_project():
        from django.core.wsgi import get_wsgi_application
        from django_project.mailtrack import tracker

        yield TrackingMiddleware(get_wsgi_application(), tracker=tracker)


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
