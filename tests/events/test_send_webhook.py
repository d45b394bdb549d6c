"""pytracking's send_webhook: one post, now, against a loopback receiver."""

from __future__ import annotations

import json

import pytest
from flask_mailtrack import Configuration
from flask_mailtrack import MailTrackError
from flask_mailtrack import send_webhook
from flask_mailtrack import verify_webhook
from flask_mailtrack import WebhookDeliveryError

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


# -- what pytracking's callers read from requests' response ------------------------


def test_send_webhook_response_reads_like_requests(receiver: Receiver) -> None:
    receiver.reply = '{"received": true, "note": "ça va"}'.encode()
    receiver.reply_type = "application/json; charset=utf-8"
    response = send_webhook(event(1, webhook_url=receiver.url))
    assert response.status_code == 200 and response.ok
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["content-length"] == str(len(receiver.reply))
    assert response.content == receiver.reply
    assert response.text == '{"received": true, "note": "ça va"}'
    assert response.json() == {"received": True, "note": "ça va"}
    assert response.url == receiver.url
    response.raise_for_status()


def test_send_webhook_response_text_uses_the_charset(receiver: Receiver) -> None:
    receiver.reply = "déjà reçu".encode("latin-1")
    receiver.reply_type = "text/plain; charset=ISO-8859-1"
    response = send_webhook(event(webhook_url=receiver.url))
    assert response.encoding.lower() in ("iso-8859-1", "latin-1")
    assert response.text == "déjà reçu"
    with pytest.raises(ValueError):
        response.json()
    # An unknown charset does not make text fail.
    receiver.reply_type = "text/plain; charset=x-no-such-charset"
    assert send_webhook(event(webhook_url=receiver.url)).text.startswith("d")


@pytest.mark.parametrize("status", [301, 404, 503])
def test_raise_for_status(receiver: Receiver, status: int) -> None:
    receiver.status = status
    receiver.reply = b"busy"
    response = send_webhook(event(webhook_url=receiver.url))
    # Returned, not raised, as requests does.
    assert response.status_code == status and not response.ok
    assert response.text == "busy"
    with pytest.raises(WebhookDeliveryError) as info:
        response.raise_for_status()
    assert info.value.response is response
    assert str(status) in str(info.value)


# -- one exception when the endpoint cannot be reached -----------------------------


def test_send_webhook_connection_refused(receiver: Receiver) -> None:
    url = receiver.url
    receiver.stop()
    with pytest.raises(WebhookDeliveryError) as info:
        send_webhook(event(webhook_url=url), webhook_timeout_seconds=2)
    # One documented type, which is also what requests' errors were.
    assert isinstance(info.value, OSError)
    assert isinstance(info.value, MailTrackError)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    assert info.value.response is None
    assert "127.0.0.1" in str(info.value)


def test_send_webhook_timeout(receiver: Receiver) -> None:
    receiver.hold_after = 0  # the endpoint never answers in time
    with pytest.raises(WebhookDeliveryError) as info:
        send_webhook(event(webhook_url=receiver.url), webhook_timeout_seconds=0.3)
    assert isinstance(info.value.__cause__, TimeoutError)
    assert len(receiver.requests) == 1


def test_send_webhook_unknown_host() -> None:
    with pytest.raises(WebhookDeliveryError) as info:
        send_webhook(
            event(webhook_url="http://no-such-host.invalid/hook"),
            webhook_timeout_seconds=2,
        )
    assert isinstance(info.value.__cause__, OSError)


def test_credentials_stay_out_of_the_message(receiver: Receiver) -> None:
    url = receiver.url.replace("http://", "http://user:s3cr3t@")
    receiver.stop()
    with pytest.raises(WebhookDeliveryError) as info:
        send_webhook(event(webhook_url=url), webhook_timeout_seconds=2)
    assert "s3cr3t" not in str(info.value)
