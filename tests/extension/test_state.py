"""The extension's per-app state: the base URL links are made on, from the
settings or from the request's Host header."""

from __future__ import annotations

import typing as t

import pytest

SECRET = "review-secret-key-0123456789abcdef"


def _flask_app(**config: t.Any) -> t.Any:
    from flask import Flask
    from flask_mailtrack import MailTrack

    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, **config)
    mailtrack = MailTrack(app)

    @app.get("/link")
    def link() -> str:
        return mailtrack.click_url("https://www.example.com/", {"a": 1})

    return app


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("[::1", id="bad-ipv6"),
        pytest.param("a b", id="space"),
        pytest.param("bad_host!", id="punctuation"),
        pytest.param("evil.example/x?", id="path"),
        pytest.param("ex\u00e9.com", id="non-ascii"),
    ],
)
def test_invalid_host_header_is_a_400(host: str) -> None:
    client = _flask_app().test_client()
    assert client.get("/link", headers={"Host": host}).status_code == 400


def test_links_on_the_request_host_are_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _flask_app()
    client = app.test_client()
    with caplog.at_level("WARNING"):
        for host in ("a.example", "b.example"):
            response = client.get("/link", headers={"Host": host})
            assert response.get_data(as_text=True).startswith(f"http://{host}/")
    assert len([r for r in caplog.records if "Host header" in r.message]) == 1


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"MAILTRACK_BASE_URL": "https://t.example.com"}, id="base-url"),
        pytest.param({"TRUSTED_HOSTS": ["a.example"]}, id="trusted-hosts"),
    ],
)
def test_no_host_warning_when_configured(
    caplog: pytest.LogCaptureFixture, config: dict[str, t.Any]
) -> None:
    client = _flask_app(**config).test_client()
    with caplog.at_level("WARNING"):
        assert client.get("/link", headers={"Host": "a.example"}).status_code == 200
    assert not [r for r in caplog.records if "Host header" in r.message]
