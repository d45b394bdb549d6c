"""pytracking's send_webhook: one post, now, against a loopback receiver."""

from __future__ import annotations

import json

import pytest
from flask_mailtrack import Configuration
from flask_mailtrack import MailTrackError
from flask_mailtrack import send_webhook
from flask_mailtrack import verify_webhook

from _webhook_receiver import event
from _webhook_receiver import Receiver
from _webhook_receiver import SECRET


def test_send_webhook_posts_once(receiver: Receiver) -> None:
    result = event(3, webhook_url=receiver.url)
    response = send_webhook(result)
    assert response.status_code == 200
    assert response.ok
    (request,) = receiver.requests
    body = json.loads(request.body)
    # pytracking's body keys are all there.
    for key in ("is_open_tracking", "is_click_tracking", "metadata", "timestamp"):
        assert body[key] == getattr(result, key)
    assert "webhook-signature" not in {k.lower() for k in request.headers}


def test_send_webhook_signed_and_from_configuration(receiver: Receiver) -> None:
    receiver.status = 503
    configuration = Configuration(webhook_url="http://127.0.0.1:1/never")
    result = event(4)
    response = send_webhook(
        result, configuration, secret=SECRET, webhook_url=receiver.url
    )
    assert response.status_code == 503
    assert not response.ok
    (request,) = receiver.requests
    assert (
        verify_webhook(request.body, request.headers, SECRET)["id"] == result.event_id
    )


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(None, id="none"),
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("gopher://127.0.0.1/", id="gopher"),
    ],
)
def test_send_webhook_refuses(url: str | None) -> None:
    with pytest.raises(MailTrackError):
        send_webhook(event(webhook_url=url))


def test_send_webhook_unknown_keyword() -> None:
    with pytest.raises(TypeError):
        send_webhook(event(webhook_url="http://127.0.0.1:1/"), webhook_timout=1)


def test_send_webhook_connection_refused(receiver: Receiver) -> None:
    url = receiver.url
    receiver.stop()
    with pytest.raises(OSError):
        send_webhook(event(webhook_url=url), webhook_timeout_seconds=2)
