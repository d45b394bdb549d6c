"""``flask mailtrack`` and the standalone ``mailtrack`` command."""

from __future__ import annotations

import email
import email.policy
import json
import os
import pathlib
import subprocess
import sys
import typing as t

import pytest
from click.testing import CliRunner
from click.testing import Result
from flask import Flask
from flask_mailtrack import InvalidToken
from flask_mailtrack import MailTrack
from flask_mailtrack import Tracker
from flask_mailtrack.cli import environ_configuration
from flask_mailtrack.cli import mailtrack_group
from flask_mailtrack.cli import main

SECRET = "cli test secret key-0123456789ab"
BASE_URL = "https://t.example.com"
ENV = {"MAILTRACK_SECRET_KEY": SECRET, "MAILTRACK_BASE_URL": BASE_URL}

HTML = (
    "<!DOCTYPE html>\n<html><body>\n"
    '<p><a href="https://example.com/a">A</a></p>\n'
    "</body></html>\n"
)


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, MAILTRACK_BASE_URL=BASE_URL)
    MailTrack(app)
    return app


@pytest.fixture
def tracker() -> Tracker:
    """The tracker that both groups' settings describe."""
    return Tracker(environ_configuration(ENV))


Invoke = t.Callable[..., Result]


@pytest.fixture(params=["flask", "standalone"])
def invoke(request: pytest.FixtureRequest, app: Flask) -> Invoke:
    """Runs a command through ``flask mailtrack`` (the app's settings) or
    the standalone ``mailtrack`` (the same settings from the environment)."""
    if request.param == "flask":
        runner = app.test_cli_runner()

        def invoke_flask(args: list[str], **kwargs: t.Any) -> Result:
            return runner.invoke(mailtrack_group, args, **kwargs)

        return invoke_flask

    def invoke_standalone(args: list[str], **kwargs: t.Any) -> Result:
        return CliRunner().invoke(main, args, env=ENV, **kwargs)

    return invoke_standalone


def test_both_groups_have_the_same_commands() -> None:
    assert set(mailtrack_group.commands) >= {"keygen", "decode", "track"}
    for name, command in mailtrack_group.commands.items():
        assert main.commands[name] is command


def test_entry_points_are_declared() -> None:
    setup_cfg = pathlib.Path(__file__).parents[2] / "setup.cfg"
    text = setup_cfg.read_text()
    assert "mailtrack = flask_mailtrack.cli:mailtrack_group" in text
    assert "mailtrack = flask_mailtrack.cli:main" in text


# -- keygen --------------------------------------------------------------------


def test_keygen(invoke: Invoke) -> None:
    first = invoke(["keygen"])
    second = invoke(["keygen"])
    assert first.exit_code == 0
    key = first.output.strip()
    assert len(key) >= 43
    assert key != second.output.strip()
    tracker = Tracker(secret_key=key)
    assert tracker.decode_click(tracker.click_token("https://e.com/")).tracked_url


def test_keygen_encryption(invoke: Invoke) -> None:
    pytest.importorskip("cryptography")
    result = invoke(["keygen", "--encryption"])
    assert result.exit_code == 0
    tracker = Tracker(encryption_key=result.output.strip())
    token = tracker.click_token("https://example.com/private", {"email": "a@b.c"})
    assert tracker.decode_click(token).metadata == {"email": "a@b.c"}


def test_keygen_without_app() -> None:
    # A new app has no key yet; keygen must not need it.
    result = Flask(__name__).test_cli_runner().invoke(mailtrack_group, ["keygen"])
    assert result.exit_code == 0
    assert len(result.output.strip()) >= 43


# -- decode --------------------------------------------------------------------


def test_decode_click_url(invoke: Invoke, tracker: Tracker) -> None:
    url = tracker.click_url("https://example.com/sale", {"customer": 42})
    result = invoke(["decode", url])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["kind"] == "click"
    assert payload["tracked_url"] == "https://example.com/sale"
    assert payload["metadata"] == {"customer": 42}
    assert payload["issued_at"].endswith("Z")
    assert payload["expires_at"] is None


@pytest.mark.parametrize(
    "form",
    [
        pytest.param(lambda url, token: url, id="url"),
        pytest.param(lambda url, token: token, id="bare-token"),
        pytest.param(lambda url, token: url + "?utm=1", id="query"),
    ],
)
def test_decode_open(
    invoke: Invoke, tracker: Tracker, form: t.Callable[[str, str], str]
) -> None:
    url = tracker.open_url({"customer": 1})
    token = url.rsplit("/", 1)[1]
    result = invoke(["decode", form(url, token)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["kind"] == "open"
    assert payload["metadata"] == {"customer": 1}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("garbage", id="garbage"),
        pytest.param(f"{BASE_URL}/mailtrack/c/garbage", id="url"),
        pytest.param(f"{BASE_URL}/", id="no-token"),
        pytest.param("x" * 10000, id="huge"),
    ],
)
def test_decode_invalid(invoke: Invoke, text: str) -> None:
    result = invoke(["decode", text])
    assert result.exit_code == 1
    assert "Invalid token" in result.output
    assert "Traceback" not in result.output


def test_decode_forged(invoke: Invoke) -> None:
    forger = Tracker(
        secret_key="somebody else's key-0123456789ab", base_click_tracking_url=BASE_URL
    )
    result = invoke(["decode", forger.click_url("https://evil.example/")])
    assert result.exit_code == 1
    assert "Invalid token" in result.output


def test_decode_kind_option(invoke: Invoke, tracker: Tracker) -> None:
    token = tracker.open_token()
    assert invoke(["decode", "--kind", "open", token]).exit_code == 0
    assert invoke(["decode", "--kind", "click", token]).exit_code == 1


def test_decode_any_kind_from_path(tracker: Tracker) -> None:
    token = tracker.click_token("https://example.com/")
    # The "/o/" segment names the kind: a click token there is refused.
    with pytest.raises(InvalidToken):
        tracker.decode_any(f"{BASE_URL}/mailtrack/o/{token}")
    result = tracker.decode_any(f"{BASE_URL}/mailtrack/c/{token}/")
    assert result.tracked_url == "https://example.com/"


def test_decode_any_moved_to_the_tracker(tracker: Tracker) -> None:
    import flask_mailtrack.cli

    token = tracker.open_token({"id": 1})
    with pytest.deprecated_call(match="tracker.decode_any"):
        decode_any = flask_mailtrack.cli.decode_any
    assert decode_any(tracker, token).metadata == {"id": 1}
    assert "decode_any" not in flask_mailtrack.cli.__all__
    with pytest.raises(AttributeError):
        _ = flask_mailtrack.cli.no_such_name


# -- track ---------------------------------------------------------------------


def test_track_html(invoke: Invoke, tracker: Tracker, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "email.html"
    path.write_text(HTML)
    result = invoke(["track", str(path), "--metadata", '{"campaign": "spring"}'])
    assert result.exit_code == 0, result.output
    html = result.output
    assert "https://example.com/a" not in html
    assert html.startswith("<!DOCTYPE html>")
    href = html.split('href="', 1)[1].split('"', 1)[0]
    decoded = tracker.decode_click(href)
    assert decoded.tracked_url == "https://example.com/a"
    assert decoded.metadata == {"campaign": "spring"}
    assert f"{BASE_URL}/mailtrack/o/" in html


def test_track_keeps_bytes(invoke: Invoke, tmp_path: pathlib.Path) -> None:
    html = (
        '<html><head><meta charset="iso-8859-1"></head><body>'
        '<p>Caf\xe9 <a href="https://example.com/caf\xe9">x</a></p></body></html>'
    ).encode("latin-1")
    path = tmp_path / "email.html"
    path.write_bytes(html)
    result = invoke(["track", str(path)])
    assert result.exit_code == 0, result.output
    out = result.stdout_bytes
    assert out.startswith(html[: html.index(b"<a ")])
    assert b"<p>Caf\xe9 " in out
    assert b"https://example.com/caf" not in out


def test_track_stdin(invoke: Invoke) -> None:
    result = invoke(["track", "-"], input=HTML)
    assert result.exit_code == 0, result.output
    assert f"{BASE_URL}/mailtrack/c/" in result.output


def test_track_eml(invoke: Invoke, tracker: Tracker, tmp_path: pathlib.Path) -> None:
    message = email.message.EmailMessage()
    message["Subject"] = "Spring sale"
    message["To"] = "ann@example.com"
    message.set_content("Plain text part.")
    message.add_alternative(HTML, subtype="html")
    path = tmp_path / "email.eml"
    path.write_bytes(message.as_bytes())
    result = invoke(["track", str(path)])
    assert result.exit_code == 0, result.output
    tracked = email.message_from_bytes(result.stdout_bytes, policy=email.policy.default)
    assert tracked["Subject"] == "Spring sale"
    html_part = tracked.get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()
    assert "https://example.com/a" not in html
    href = html.split('href="', 1)[1].split('"', 1)[0]
    assert tracker.decode_click(href).tracked_url == "https://example.com/a"


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param("{not json", id="invalid"),
        pytest.param("[1, 2]", id="not-an-object"),
    ],
)
def test_track_bad_metadata(
    invoke: Invoke, tmp_path: pathlib.Path, metadata: str
) -> None:
    path = tmp_path / "email.html"
    path.write_text(HTML)
    result = invoke(["track", str(path), "--metadata", metadata])
    assert result.exit_code == 2
    assert "--metadata" in result.output


def test_track_needs_a_base_url(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "email.html"
    path.write_text(HTML)
    result = CliRunner().invoke(
        main, ["track", str(path)], env={"MAILTRACK_SECRET_KEY": SECRET}
    )
    assert result.exit_code == 1
    assert "MAILTRACK_BASE_URL" in result.output

    app = Flask(__name__)
    app.config["SECRET_KEY"] = SECRET
    MailTrack(app)
    result = app.test_cli_runner().invoke(mailtrack_group, ["track", str(path)])
    assert result.exit_code == 1
    assert "MAILTRACK_BASE_URL" in result.output


# -- settings ------------------------------------------------------------------


def test_flask_app_without_extension() -> None:
    app = Flask(__name__)
    result = app.test_cli_runner().invoke(mailtrack_group, ["decode", "abc"])
    assert result.exit_code == 1
    assert "no MailTrack extension" in result.output


def test_environ_configuration() -> None:
    configuration = environ_configuration(
        {
            "MAILTRACK_SECRET_KEY": SECRET,
            "MAILTRACK_BASE_URL": "https://t.example.com/",
            "MAILTRACK_URL_PREFIX": "/track",
            "MAILTRACK_ANONYMIZE_IP": "yes",
            "MAILTRACK_TRUSTED_PROXIES": "2",
            "PATH": "/usr/bin",
        }
    )
    assert configuration.base_open_tracking_url == "https://t.example.com/track/o/"
    assert configuration.base_click_tracking_url == "https://t.example.com/track/c/"
    assert configuration.anonymize_ip is True
    assert configuration.trusted_proxies == 2


def test_standalone_invalid_setting() -> None:
    result = CliRunner().invoke(
        main,
        ["decode", "abc"],
        env={"MAILTRACK_SECRET_KEY": SECRET, "MAILTRACK_TRUSTED_PROXIES": "many"},
    )
    assert result.exit_code == 1
    assert "trusted_proxies" in result.output


@pytest.mark.parametrize(
    ("env", "said"),
    [
        pytest.param({"MAILTRACK_MAX_AGE": "an hour"}, "max_age", id="bad-value"),
        pytest.param({"MAILTRACK_DEMO": "maybe"}, "MAILTRACK_DEMO", id="bad-flag"),
        pytest.param(
            {"MAILTRACK_WEBHOOK_URL": "https://hooks.example.com/"},
            "MAILTRACK_WEBHOOK_SECRET",
            id="no-webhook-secret",
        ),
    ],
)
def test_library_errors_are_messages_not_tracebacks(
    env: dict[str, str],
    said: str,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import werkzeug.serving

    def run_simple(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server must not start with bad settings")

    monkeypatch.setattr(werkzeug.serving, "run_simple", run_simple)
    env = {**ENV, "MAILTRACK_DATABASE": str(tmp_path / "m.sqlite3"), **env}
    # (Not `worker`: with settings it can use, it runs until stopped; its
    # errors are in test_bad_settings_are_one_error_line.)
    commands = (["decode", "abc"], ["serve"])
    outputs = [CliRunner().invoke(main, args, env=env) for args in commands]
    failed = [r for r in outputs if r.exit_code == 1 and said in r.output]
    assert failed, [r.output for r in outputs]
    for result in outputs:
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_links_made_by_the_app_decode_standalone(app: Flask) -> None:
    with app.app_context():
        url = app.extensions["mailtrack"].extension.click_url("https://example.com/")
    result = CliRunner().invoke(main, ["decode", url], env=ENV)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["tracked_url"] == "https://example.com/"


def test_flask_command_line_finds_the_group(app: Flask, tracker: Tracker) -> None:
    """``flask mailtrack ...`` through Flask's own command line, which finds
    the group by its ``flask.commands`` entry point and loads the app."""
    from importlib.metadata import entry_points

    from flask.cli import FlaskGroup

    names = [entry.value for entry in entry_points(group="flask.commands")]
    if "flask_mailtrack.cli:mailtrack_group" not in names:
        pytest.skip("flask-mailtrack is not installed (pip install -e .)")
    cli = FlaskGroup(create_app=lambda: app)
    url = tracker.click_url("https://example.com/", {"a": 1})
    result = CliRunner().invoke(cli, ["mailtrack", "decode", url])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["metadata"] == {"a": 1}


# -- first-run settings, through the real command (issue 14) ------------------------


def run_mailtrack(
    args: list[str], settings: dict[str, str], tmp_path: pathlib.Path
) -> subprocess.CompletedProcess[str]:
    """``mailtrack ARGS`` as a process, with only ``settings`` among the
    ``MAILTRACK_*`` variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILTRACK_")}
    return subprocess.run(
        [sys.executable, "-m", "flask_mailtrack.cli", *args],
        env={**env, **settings},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_error_line(process: subprocess.CompletedProcess[str], said: str) -> None:
    assert process.returncode == 1, process.stderr
    assert "Traceback" not in process.stderr
    (line,) = process.stderr.splitlines()
    assert line.startswith("Error: ") and said in line, line


@pytest.mark.parametrize(
    ("args", "settings", "said"),
    [
        pytest.param(
            ["track", "page.html"],
            {"MAILTRACK_BASE_URL": "localhost:8000"},
            "MAILTRACK_BASE_URL 'localhost:8000' must be an absolute http(s) URL",
            id="track-base-url-without-scheme",
        ),
        pytest.param(
            ["track", "page.html"],
            {"MAILTRACK_BASE_URL": "https://t.example.com/app/?x=1"},
            "query string",
            id="track-base-url-with-query",
        ),
        pytest.param(
            ["decode", "abc"],
            {"MAILTRACK_BASE_CLICK_TRACKING_URL": "https://t.example.com/c#x"},
            "fragment",
            id="decode-click-base-with-fragment",
        ),
        pytest.param(
            ["stats"],
            {"MAILTRACK_DATABASE": "."},
            "Cannot use '.' as an SQLite database",
            id="stats-database-is-a-directory",
        ),
        pytest.param(
            ["export"],
            {"MAILTRACK_DATABASE": "page.html"},
            "Cannot use 'page.html' as an SQLite database",
            id="export-database-not-sqlite",
        ),
        pytest.param(
            ["worker"],
            {
                "MAILTRACK_WEBHOOK_URL": "https://hooks.example.com/in",
                "MAILTRACK_WEBHOOK_SECRET": "whsec_" + "A" * 44,
                "MAILTRACK_WEBHOOK_TIMEOUT_SECONDS": "-1",
            },
            "webhook_timeout_seconds",
            id="worker-negative-timeout",
        ),
        pytest.param(
            ["worker"],
            {
                "MAILTRACK_WEBHOOK_URL": "https://hooks.example.com/in",
                "MAILTRACK_WEBHOOK_SECRET": "whsec_" + "A" * 44,
                "MAILTRACK_WEBHOOK_REFUSE_PRIVATE": "ture",
            },
            "MAILTRACK_WEBHOOK_REFUSE_PRIVATE must be true or false",
            id="worker-boolean-typo",
        ),
        pytest.param(
            ["serve", "--port", "0"],
            {"MAILTRACK_BASE_URL": "t.example.com"},
            "MAILTRACK_BASE_URL 't.example.com' must be an absolute",
            id="serve-base-url-without-scheme",
        ),
    ],
)
def test_bad_settings_are_one_error_line(
    tmp_path: pathlib.Path, args: list[str], settings: dict[str, str], said: str
) -> None:
    (tmp_path / "page.html").write_text(HTML)
    process = run_mailtrack(
        args, {"MAILTRACK_SECRET_KEY": SECRET, **settings}, tmp_path
    )
    assert_one_error_line(process, said)


def test_warnings_are_one_line_each(tmp_path: pathlib.Path) -> None:
    (tmp_path / "page.html").write_text(HTML)
    process = run_mailtrack(
        ["track", "page.html"],
        {
            "MAILTRACK_SECRET_KEY": "changeme",
            "MAILTRACK_BASE_URL": BASE_URL + "/mailtrack",
            "MAILTRACK_ANONYMISE_IP": "1",
        },
        tmp_path,
    )
    assert process.returncode == 0, process.stderr
    assert "/mailtrack/mailtrack/c/" in process.stdout
    lines = process.stderr.splitlines()
    assert len(lines) == 3, process.stderr
    assert all(line.startswith("Warning: ") for line in lines)
    assert "MAILTRACK_ANONYMISE_IP (did you mean MAILTRACK_ANONYMIZE_IP?)" in lines[0]
    text = process.stderr
    assert f"set MAILTRACK_BASE_URL to '{BASE_URL}'" in text
    assert "well-known placeholder" in text and "changeme" not in text
