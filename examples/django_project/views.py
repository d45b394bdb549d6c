"""The project's one page: a sample email with tracked links."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.http import HttpResponse
from django.utils.html import escape

from .mailtrack import tracker


def newsletter(request: HttpRequest) -> HttpResponse:
    """The email as a recipient's mail client would show it."""
    metadata = {"recipient": "reader@example.com", "campaign": "django-demo"}
    link = tracker.click_url(settings.BASE_URL + "/landing/", metadata)
    pixel = tracker.open_url(metadata)
    return HttpResponse(
        "<!doctype html><title>Sample email</title>"
        f'<p><a href="{escape(link)}">See the offer</a></p>'
        f'<img src="{escape(pixel)}" width="1" height="1" alt="">'
    )


def landing(request: HttpRequest) -> HttpResponse:
    """Where the tracked link leads."""
    return HttpResponse("<!doctype html><title>Offer</title><h1>The offer</h1>")
