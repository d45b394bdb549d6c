"""Standard Webhooks signatures: secrets, signing, verifying.

Requests follow the `Standard Webhooks`_ specification: a ``POST`` with a
JSON body and three headers, ``webhook-id`` (the event id),
``webhook-timestamp`` (seconds since the epoch) and ``webhook-signature``,
``v1,`` followed by the base64 HMAC-SHA256 of ``"{id}.{timestamp}.{body}"``
under the secret. The secret is written ``whsec_<base64 key>``. Receivers
check requests with :func:`verify_webhook` or any Standard Webhooks library.

.. _Standard Webhooks: https://www.standardwebhooks.com/
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import time
import typing as t
from collections.abc import Mapping

from ..exceptions import ConfigurationError
from ..exceptions import WebhookVerificationError

SecretInput = t.Union[str, bytes]

#: Prefix of a Standard Webhooks secret.
SECRET_PREFIX = "whsec_"


def generate_secret() -> str:
    """A new random webhook secret, ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode("ascii")


def decode_secret(secret: SecretInput) -> bytes:
    """The key bytes of a secret: ``whsec_<base64>`` text, or raw bytes.

    :raise MailTrackError: text without the ``whsec_`` prefix, bad base64,
        or an empty key.
    """
    if isinstance(secret, bytes):
        key = secret
    elif isinstance(secret, str) and secret.startswith(SECRET_PREFIX):
        encoded = secret[len(SECRET_PREFIX) :]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigurationError(
                "The webhook secret is not valid base64 after 'whsec_'."
            ) from None
    else:
        raise ConfigurationError(
            "A webhook secret is 'whsec_' followed by a base64 key (use"
            " flask_mailtrack.events.generate_secret()), or the key as bytes."
        )
    if not key:
        raise ConfigurationError("The webhook secret is empty.")
    return key


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) of a request."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(
    key: bytes, message_id: str, body: bytes, *, now: float | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``."""
    timestamp = int(time.time() if now is None else now)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, message_id, timestamp, body),
    }


def verify_webhook(
    payload: bytes | str,
    headers: Mapping[str, str],
    secret: SecretInput | t.Sequence[SecretInput],
    tolerance: float = 300,
    *,
    now: float | None = None,
) -> dict[str, t.Any]:
    """Check a webhook request on the receiving side and return its event.

    ::

        @app.post("/hooks/mail")
        def mail_hook():
            event = verify_webhook(request.get_data(), request.headers, SECRET)
            ...

    Pass the raw body exactly as received, not re-serialized JSON.

    :param payload: The request body.
    :param headers: The request headers (any case).
    :param secret: The ``whsec_...`` secret, or a list of them while
        rotating.
    :param tolerance: Seconds the ``webhook-timestamp`` may differ from now,
        which bounds how long a captured request can be replayed.
    :return: The parsed JSON event.
    :raise WebhookVerificationError: missing headers, a timestamp outside the
        tolerance, no matching signature, or a body that is not a JSON object.
    """
    body = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    lowered = {key.lower(): value for key, value in headers.items()}
    message_id = lowered.get("webhook-id")
    timestamp_text = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (message_id and timestamp_text and signatures):
        raise WebhookVerificationError("Missing webhook-id, -timestamp or -signature.")
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        raise WebhookVerificationError("Invalid webhook-timestamp.") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("The webhook-timestamp is out of tolerance.")
    secrets = [secret] if isinstance(secret, (str, bytes)) else list(secret)
    expected = [
        sign(decode_secret(item), message_id, timestamp, body).encode("ascii")
        for item in secrets
    ]
    for candidate in signatures.split():
        # Compare every pair, so the time taken does not tell which matched.
        given = candidate.encode("ascii", "replace")
        if any(hmac.compare_digest(given, value) for value in expected):
            break
    else:
        raise WebhookVerificationError("No matching webhook signature.")
    try:
        event = json.loads(body)
    except ValueError:
        raise WebhookVerificationError("The webhook body is not JSON.") from None
    if not isinstance(event, dict):
        raise WebhookVerificationError("The webhook body is not a JSON object.")
    return event
