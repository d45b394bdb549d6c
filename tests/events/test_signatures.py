"""Standard Webhooks signatures: secrets, sign, verify_webhook."""

from __future__ import annotations

import base64

import pytest
import standardwebhooks
from flask_mailtrack import MailTrackError
from flask_mailtrack import verify_webhook
from flask_mailtrack.events import decode_secret
from flask_mailtrack.events import generate_secret
from flask_mailtrack.events import sign
from flask_mailtrack.events import WebhookVerificationError

from _webhook_receiver import KEY
from _webhook_receiver import SECRET


def _headers(body: bytes, *, now: float, key: bytes = KEY) -> dict[str, str]:
    timestamp = int(now)
    return {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, "evt_1", timestamp, body),
    }


BODY = b'{"id":"evt_1","type":"email.opened"}'


@pytest.mark.parametrize(
    ("body", "change"),
    [
        pytest.param(BODY + b" ", None, id="body-changed"),
        pytest.param(BODY, {"webhook-id": "evt_2"}, id="id-changed"),
        pytest.param(BODY, {"webhook-timestamp": "1000000001"}, id="ts-changed"),
        pytest.param(BODY, {"webhook-timestamp": "soon"}, id="ts-not-a-number"),
        pytest.param(BODY, {"webhook-signature": "v1,AAAA"}, id="bad-signature"),
        pytest.param(BODY, {"webhook-signature": "v2,xyz"}, id="other-version"),
        pytest.param(BODY, {"webhook-signature": ""}, id="empty-signature"),
        pytest.param(BODY, {"webhook-id": ""}, id="no-id"),
        pytest.param(b"[1]", {}, id="not-an-object"),
        pytest.param(b"\xff{", {}, id="not-json"),
    ],
)
def test_verify_webhook_refuses(body: bytes, change: dict[str, str] | None) -> None:
    """``change=None``: the body differs from the signed one; else the body is
    signed and the headers are changed."""
    now = 1_000_000_000
    headers = _headers(BODY if change is None else body, now=now)
    headers.update(change or {})
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, headers, SECRET, now=now)


@pytest.mark.parametrize(
    "skew",
    [pytest.param(-301, id="too-old"), pytest.param(301, id="too-new")],
)
def test_verify_webhook_timestamp_tolerance(skew: int) -> None:
    now = 1_000_000_000
    headers = _headers(BODY, now=now + skew)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(BODY, headers, SECRET, now=now)
    assert (
        verify_webhook(BODY, headers, SECRET, tolerance=400, now=now)["id"] == "evt_1"
    )


def test_verify_webhook_rotation_and_case_insensitive_headers() -> None:
    now = 1_000_000_000
    old_key, new_key = b"old-key-old-key", KEY
    headers = _headers(BODY, now=now, key=old_key)
    upper = {k.upper(): v for k, v in headers.items()}
    new_secret = "whsec_" + base64.b64encode(new_key).decode()
    old_secret = "whsec_" + base64.b64encode(old_key).decode()
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY, upper, new_secret, now=now)
    assert verify_webhook(BODY, upper, [new_secret, old_secret], now=now)
    # Several signatures in one header (a sender rotating keys): one is enough.
    both = dict(headers)
    both["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    assert verify_webhook(BODY, both, old_secret, now=now)


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param("0123456789", id="no-prefix"),
        pytest.param("whsec_", id="empty"),
        pytest.param("whsec_***", id="not-base64"),
        pytest.param(b"", id="empty-bytes"),
    ],
)
def test_bad_secrets(secret: str | bytes) -> None:
    with pytest.raises(MailTrackError):
        decode_secret(secret)


def test_generated_secret_round_trips() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(decode_secret(secret)) == 32
    standardwebhooks.Webhook(secret)  # the reference package accepts it
