"""Smoke test of examples/flask_app: send a tracked email through a real
local SMTP server, open it, click a link, see the events."""

from __future__ import annotations

import importlib.util
import pathlib
import socket
import sys
import types
import typing as t
from urllib.parse import urlsplit

import pytest

EXAMPLE = pathlib.Path(__file__).parents[1] / "examples" / "flask_app" / "app.py"


def _load_example(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("flask_app_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Flask finds the templates folder from the module of the app's name.
    monkeypatch.setitem(sys.modules, spec.name, module)
    # A real key: the example's fallback is a placeholder, which warns.
    monkeypatch.setenv("SECRET_KEY", "flask-example-test-secret-key-0123456789")
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    # aiosmtpd's Controller checks readiness by connecting to its port, so it
    # needs a real port number rather than 0.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return t.cast(int, sock.getsockname()[1])


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    pytest.importorskip("flask_mailman")
    pytest.importorskip("aiosmtpd")
    return _load_example(monkeypatch)


def test_flask_example(example: types.ModuleType) -> None:
    inbox = example.Inbox()
    port = _free_port()
    smtp = example.start_smtp_server(inbox, port=port)
    try:
        app = example.create_app({"MAIL_PORT": port, "TESTING": True}, inbox=inbox)
        client = app.test_client()
        response = client.post("/send", data={"recipient": "ann@example.com"})
        assert response.status_code == 302
    finally:
        smtp.stop()

    (message,) = inbox.messages
    assert message["To"] == "ann@example.com"
    html = message.get_body(("html",)).get_content()
    assert "http://localhost/mailtrack/o/" in html
    assert "https://palletsprojects.com/" not in html
    # Unsubscribe links are never tracked.
    assert 'id="unsubscribe" href="http://localhost/welcome?unsubscribe=1"' in html

    # The inbox page serves the email as a mail client shows it.
    page = client.get("/inbox/0").get_data(as_text=True)
    assert page == html
    assert "ann@example.com" in client.get("/").get_data(as_text=True)

    pixel = html.split('<img src="', 1)[1].split('"', 1)[0]
    link = html.split('<a id="welcome" href="', 1)[1].split('"', 1)[0]
    assert client.get(urlsplit(pixel).path).mimetype == "image/gif"
    landed = client.get(urlsplit(link).path, follow_redirects=True)
    assert landed.request.path == "/welcome"
    assert b'id="landed"' in landed.data

    events = client.get("/events").get_json()
    assert events == [
        {
            "type": "open",
            "recipient": "ann@example.com",
            "url": None,
            "machine": None,
        },
        {
            "type": "click",
            "recipient": "ann@example.com",
            "url": "http://localhost/welcome",
            "machine": None,
        },
    ]
    assert "ann@example.com" in client.get("/").get_data(as_text=True)


def test_flask_example_bad_link(example: types.ModuleType) -> None:
    app = example.create_app({"TESTING": True})
    client = app.test_client()
    assert client.get("/mailtrack/c/forged").status_code == 404
    assert client.get("/events").get_json() == [
        {"type": "invalid click", "reason": "format"}
    ]


# -- the example's event list is bounded ---------------------------------------


def test_flask_example_keeps_a_bounded_event_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util
    import pathlib
    import sys

    pytest.importorskip("flask_mailman")
    pytest.importorskip("aiosmtpd")
    path = pathlib.Path(__file__).parents[1] / "examples" / "flask_app" / "app.py"
    spec = importlib.util.spec_from_file_location("flask_app_review", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    app = module.create_app(
        {"TESTING": True, "SECRET_KEY": "example-test-secret-key-0123456789abcdef"}
    )
    client = app.test_client()
    for number in range(1100):
        client.get(f"/mailtrack/c/bad{number}")
    events = client.get("/events").get_json()
    assert len(events) == 1000
    assert events[-1] == {"type": "invalid click", "reason": "format"}
