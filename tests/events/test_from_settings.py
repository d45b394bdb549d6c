"""Receivers built from settings (``MAILTRACK_*``)."""

from __future__ import annotations

import base64
import typing as t

import pytest

SECRET = "review-secret-key-0123456789abcdef"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, False, id="unset"),
        pytest.param("1", True, id="env-1"),
        pytest.param("off", False, id="env-off"),
        pytest.param(True, True, id="bool"),
    ],
)
def test_refuse_private_addresses_setting(
    tmp_path: t.Any, value: t.Any, expected: bool
) -> None:
    from flask_mailtrack import WebhookSender
    from flask_mailtrack.events._from_settings import find_receiver
    from flask_mailtrack.extension import get_state
    from flask_mailtrack.server import close_app
    from flask_mailtrack.server import create_app

    config = {
        "MAILTRACK_SECRET_KEY": SECRET,
        "MAILTRACK_DATABASE": str(tmp_path / "events.sqlite3"),
        "MAILTRACK_WEBHOOK_URL": "https://hooks.example.com/in",
        "MAILTRACK_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"k" * 32).decode(),
    }
    if value is not None:
        config["MAILTRACK_WEBHOOK_REFUSE_PRIVATE"] = value
    app = create_app(config)
    try:
        sender = find_receiver(get_state(app).receivers, WebhookSender)
        assert sender is not None
        assert sender.refuse_private_addresses is expected
    finally:
        close_app(app, 0)
