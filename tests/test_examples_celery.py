"""examples/celery_send.py: a newsletter rendered per recipient in Celery
tasks, run eagerly (no broker, no worker)."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import types
from email.message import EmailMessage

import pytest
from flask_mailtrack import Configuration
from flask_mailtrack import Tracker

EXAMPLE = pathlib.Path(__file__).parents[1] / "examples" / "celery_send.py"

NEWSLETTER = (
    "<!doctype html><html><body>"
    '<p><a href="https://example.com/sale">Sale</a></p>'
    '<p><a href="https://example.com/unsubscribe">Unsubscribe</a></p>'
    "</body></html>"
)


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    pytest.importorskip("celery")
    monkeypatch.setenv("MAILTRACK_SECRET_KEY", "celery-example-test-key-01234567")
    monkeypatch.setenv("MAILTRACK_BASE_URL", "https://t.example.com")
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    spec = importlib.util.spec_from_file_location("celery_send", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    module.celery_app.conf.task_always_eager = True
    return module


def test_newsletter_sent_per_recipient(
    example: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[EmailMessage] = []
    monkeypatch.setattr(example, "deliver", sent.append)
    monkeypatch.setattr(example, "CHUNK_SIZE", 2)
    recipients = ["ada@example.com", "bob@example.com", "cy@example.com"]

    chunks = example.send_newsletter.delay("spring", NEWSLETTER, recipients).get()

    assert chunks == 2
    assert [message["To"] for message in sent] == recipients
    # Scanned once, rendered three times.
    assert example._template.cache_info().misses == 1
    reader = Tracker(
        Configuration(
            secret_key="celery-example-test-key-01234567",
            base_open_tracking_url="https://t.example.com/mailtrack/o/",
            base_click_tracking_url="https://t.example.com/mailtrack/c/",
        )
    )
    for message, recipient in zip(sent, recipients):
        html = message.get_body(("html",)).get_content()
        assert 'href="https://example.com/unsubscribe"' in html
        link = html.split('href="', 1)[1].split('"', 1)[0]
        result = reader.decode_click(link)
        assert result.metadata == {"campaign": "spring", "email": recipient}
        assert result.tracked_url == (
            "https://example.com/sale?utm_source=newsletter&utm_medium=email"
        )
        pixel = html.split('<img src="', 1)[1].split('"', 1)[0]
        assert reader.decode_open(pixel).metadata["email"] == recipient
        text = message.get_body(("plain",)).get_content()
        text_link = text.split(": ", 1)[1].strip()
        assert reader.decode_click(text_link).tracked_url == "https://example.com/sale"


def test_import_needs_no_broker(example: types.ModuleType) -> None:
    assert example.celery_app.conf.broker_url == "memory://"
