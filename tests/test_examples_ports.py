"""The examples run as their headers say, on the ports they are given (an
option or an environment variable), so they can run next to ``mailtrack
serve --demo`` and each other: each one as a subprocess on free ports."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import typing as t
import urllib.error
import urllib.parse
import urllib.request

import pytest

import _servers
from _servers import free_port

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
STARTUP = 60.0  # seconds an example may take to answer
KEY = "examples-test-secret-key-0123456789abcdef"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: t.Any, **kwargs: t.Any) -> None:
        return None


def fetch(url: str, data: bytes | None = None) -> tuple[int, dict[str, str], str]:
    """A request that does not follow redirects."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, data=data, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers), e.read().decode()


def running(
    command: list[str], env: dict[str, str], port: int, cwd: pathlib.Path
) -> t.ContextManager[str]:
    """Run an example until its page answers on ``port``; stop it after."""
    return _servers.running(
        command,
        {"SECRET_KEY": KEY, "MAILTRACK_SECRET_KEY": KEY, **env},
        port,
        ready_path="/",
        cwd=cwd,
        own_settings_only=True,
    )


def _given(
    command: list[str], given_by: str, **ports: int
) -> tuple[list[str], dict[str, str]]:
    """``command`` and its environment with ``ports`` (``port=8001``,
    ``smtp_port=8026``) given as options or as ``EXAMPLE_*`` variables."""
    if given_by == "options":
        for name, port in ports.items():
            command = [*command, "--" + name.replace("_", "-"), str(port)]
        return command, {}
    return command, {f"EXAMPLE_{name.upper()}": str(p) for name, p in ports.items()}


def _href(page: str, pattern: str = r'href="([^"]+)"') -> str:
    match = re.search(pattern, page)
    assert match is not None, page
    return match.group(1).replace("&amp;", "&")


@pytest.mark.parametrize("given_by", ["options", "environment"])
def test_flask_example_ports(given_by: str) -> None:
    pytest.importorskip("flask_mailman")
    pytest.importorskip("aiosmtpd")
    port, smtp_port = free_port(), free_port()
    command, env = _given(
        [sys.executable, str(EXAMPLES / "flask_app" / "app.py")],
        given_by,
        port=port,
        smtp_port=smtp_port,
    )
    with running(command, env, port, EXAMPLES) as root:
        # The newsletter goes through the SMTP server on smtp_port...
        status, _, _ = fetch(root + "/send", data=b"recipient=ann%40example.com")
        assert status == 302
        status, _, email = fetch(root + "/inbox/0")
        assert status == 200
        # ...with links on the app's port, which lead back to it.
        link = _href(email, r'<a id="welcome" href="([^"]+)"')
        assert link.startswith(f"{root}/mailtrack/c/")
        status, headers, _ = fetch(link)
        assert (status, headers["Location"]) == (302, f"{root}/welcome")


@pytest.mark.parametrize("given_by", ["options", "environment"])
def test_wsgi_example_port(given_by: str) -> None:
    port = free_port()
    command, env = _given(
        [sys.executable, str(EXAMPLES / "wsgi_app.py")], given_by, port=port
    )
    with running(command, env, port, EXAMPLES) as root:
        link = _href(fetch(root + "/")[2])
        assert link.startswith(f"{root}/mailtrack/c/")
        status, headers, _ = fetch(link)
        assert (status, headers["Location"]) == (302, f"{root}/landing")


@pytest.mark.parametrize("given_by", ["options", "environment"])
def test_django_example_port(given_by: str) -> None:
    pytest.importorskip("django")
    port = free_port()
    command, env = _given(
        [sys.executable, "-m", "django_project.manage", "runserver", "--noreload"],
        given_by,
        port=port,
    )
    with running(command, env, port, EXAMPLES) as root:
        page = fetch(root + "/")[2]
        assert _href(page).startswith(f"{root}/mailtrack/c/")
        assert _href(page, r'src="([^"]+)"').startswith(f"{root}/mailtrack/o/")


def test_django_port_option_must_be_a_number() -> None:
    pytest.importorskip("django")
    result = subprocess.run(
        [sys.executable, "-m", "django_project.manage", "runserver", "--port=x"],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "not a port number" in result.stderr
