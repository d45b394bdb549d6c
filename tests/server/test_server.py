"""The standalone server: create_app, its pages, ``mailtrack serve`` and
``mailtrack stats``, gunicorn."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sys
import time
import typing as t
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
import standardwebhooks
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from flask_mailtrack import ConfigurationError
from flask_mailtrack import EventStore
from flask_mailtrack import MailTrackError
from flask_mailtrack import TrackingResult
from flask_mailtrack import WebhookSender
from flask_mailtrack.cli import environ_configuration
from flask_mailtrack.cli import mailtrack_group
from flask_mailtrack.cli import main
from flask_mailtrack.exceptions import MailTrackWarning
from flask_mailtrack.exceptions import MissingSettingError
from flask_mailtrack.extension import get_state
from flask_mailtrack.server import close_app
from flask_mailtrack.server import create_app
from flask_mailtrack.server import get_server_state
from flask_mailtrack.tracker import Tracker

from _apps import drain
from _servers import free_port
from _servers import running
from _servers import STARTUP
from _webhook_receiver import Receiver
from _webhook_receiver import SECRET as WEBHOOK_SECRET

KEY = "server-test-secret-key-0123456789"
PASSWORD = "correct horse"
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/120.0 Safari/537.36"
)


def links(html: str) -> tuple[list[str], list[str]]:
    """The click links and pixel URLs of an HTML page."""
    clicks = re.findall(r'href="([^"]*/mailtrack/c/[^"]*)"', html)
    pixels = re.findall(r'src="([^"]*/mailtrack/o/[^"]*)"', html)
    return clicks, pixels


# -- the app -------------------------------------------------------------------


def test_events_are_recorded(make_app: t.Callable[..., Flask]) -> None:
    app = make_app()
    client = app.test_client()
    with app.test_request_context():
        tracker = get_state(app).link_tracker(app)
        pixel = tracker.open_url({"recipient": "ann", "campaign": "c1"})
        click = tracker.click_url("https://example.com/x", {"recipient": "ann"})
    headers = {"User-Agent": BROWSER_UA}
    response = client.get(pixel, headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "image/gif"
    response = client.get(click, headers=headers)
    assert response.status_code == 302
    assert response.location == "https://example.com/x"
    assert client.get("/mailtrack/c/forged", headers=headers).status_code == 404
    drain(app)  # the embedded worker writes the store a few ms later
    store = get_server_state(app).store
    stats = store.stats()
    assert (stats["opens"]["total"], stats["clicks"]["total"]) == (1, 1)
    assert stats["opens"]["human"]["total"] == 1
    assert store.stats(campaign="c1")["clicks"]["total"] == 0
    (latest, _) = store.events()
    assert latest["type"] == "link.clicked"
    assert latest["request_data"]["user_agent"] == BROWSER_UA


def test_settings_come_from_the_environment(database: str) -> None:
    environ = {
        "MAILTRACK_SECRET_KEY": KEY,
        "MAILTRACK_DATABASE": database,
        "MAILTRACK_BASE_URL": "https://t.example.com",
        "MAILTRACK_TRUSTED_PROXIES": "1",
        "MAILTRACK_NOT_A_SETTING": "ignored, with a warning",
        "PATH": "/bin",
    }
    with pytest.warns(MailTrackWarning, match="MAILTRACK_NOT_A_SETTING"):
        app = create_app(environ=environ)
    try:
        # A link printed by `mailtrack track` with the same environment...
        with pytest.warns(MailTrackWarning, match="MAILTRACK_NOT_A_SETTING"):
            tracker = Tracker(environ_configuration(environ))
        click = tracker.click_url("https://example.com/", {"recipient": "bob"})
        assert click.startswith("https://t.example.com/mailtrack/c/")
        # ...is answered by the server.
        response = app.test_client().get(
            click.replace("https://t.example.com", ""),
            headers={"X-Forwarded-For": "203.0.113.9", "User-Agent": BROWSER_UA},
        )
        assert response.status_code == 302
        drain(app)
        (event,) = get_server_state(app).store.events()
        assert event["request_data"]["user_ip"] == "203.0.113.9"
        assert get_server_state(app).store.path == database
    finally:
        close_app(app)


def test_a_key_is_required_outside_demo(database: str) -> None:
    with pytest.raises(RuntimeError, match="MAILTRACK_SECRET_KEY"):
        create_app({"MAILTRACK_DATABASE": database}, environ={})
    with pytest.raises(MissingSettingError, match="MAILTRACK_SECRET_KEY"):
        create_app({"MAILTRACK_DATABASE": database}, environ={})


def test_a_misspelled_demo_setting_is_an_error(database: str) -> None:
    with pytest.raises(ConfigurationError, match="MAILTRACK_DEMO"):
        create_app({"MAILTRACK_DATABASE": database}, environ={"MAILTRACK_DEMO": "yes!"})


def test_the_environment_gives_settings_config_wins(database: str) -> None:
    environ = {
        "MAILTRACK_SECRET_KEY": KEY,
        "MAILTRACK_MAX_AGE": "60",
        "MAILTRACK_STATS_PASSWORD": "from the environment",
        "MAILTRACK_OTHER_PROGRAM": "ignored, with a warning",
    }
    with pytest.warns(MailTrackWarning, match="MAILTRACK_OTHER_PROGRAM"):
        app = create_app(
            {"MAILTRACK_DATABASE": database, "MAILTRACK_STATS_PASSWORD": PASSWORD},
            environ=environ,
        )
    try:
        assert get_state(app).configuration.max_age == 60
        assert app.config["MAILTRACK_STATS_PASSWORD"] == PASSWORD
        assert "MAILTRACK_OTHER_PROGRAM" not in app.config
    finally:
        close_app(app)


def test_demo_makes_a_key_for_the_session(database: str) -> None:
    app = create_app({"MAILTRACK_DATABASE": database}, environ={"MAILTRACK_DEMO": "1"})
    try:
        assert get_server_state(app).demo
        assert get_server_state(app).generated_secret
        page = app.test_client().get("/").get_data(as_text=True)
        assert "random key" in page
    finally:
        close_app(app)


def test_webhook_from_settings(
    make_app: t.Callable[..., Flask], database: str, tmp_path: t.Any
) -> None:
    receiver = Receiver().start()
    try:
        app = make_app(
            MAILTRACK_WEBHOOK_URL=receiver.url,
            MAILTRACK_WEBHOOK_SECRET=WEBHOOK_SECRET,
        )
        pipeline = get_state(app).pipeline
        assert pipeline is not None
        senders = [s for s in pipeline.sinks if isinstance(s, WebhookSender)]
        assert [s.outbox_path for s in senders] == [database]
        with app.test_request_context():
            pixel = get_state(app).link_tracker(app).open_url({"recipient": "cy"})
        assert app.test_client().get(pixel).status_code == 200
        receiver.wait_for(lambda: len(receiver.ids()) == 1)
        request = receiver.requests[0]
        headers = {k.lower(): v for k, v in request.headers.items()}
        event = standardwebhooks.Webhook(WEBHOOK_SECRET).verify(request.body, headers)
        assert event["metadata"] == {"recipient": "cy"}
        drain(app)
        assert get_server_state(app).store.events()[0]["id"] == event["id"]
    finally:
        receiver.stop()


def test_webhook_needs_a_secret(database: str) -> None:
    with pytest.raises(MailTrackError, match="MAILTRACK_WEBHOOK_SECRET"):
        create_app(
            {
                "MAILTRACK_SECRET_KEY": KEY,
                "MAILTRACK_DATABASE": database,
                "MAILTRACK_WEBHOOK_URL": "http://127.0.0.1:9/",
            },
            environ={},
        )


def test_outside_demo(make_app: t.Callable[..., Flask]) -> None:
    client = make_app().test_client()
    assert client.get("/healthz").get_data() == b"ok\n"
    assert client.get("/").status_code == 200
    assert client.get("/demo/email").status_code == 404
    assert client.get("/demo/landing/spring-sale").status_code == 404


STATS_URLS = ["/stats", "/stats.json", "/events.json"]


@pytest.mark.parametrize("url", STATS_URLS)
def test_stats_disabled_without_password(
    make_app: t.Callable[..., Flask], url: str
) -> None:
    assert make_app().test_client().get(url).status_code == 404


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize("url", STATS_URLS)
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="no-auth"),
        pytest.param(_basic("admin", "wrong"), 401, id="wrong-password"),
        pytest.param(_basic("admin", PASSWORD[:-1]), 401, id="prefix"),
        pytest.param({"Authorization": "Bearer x"}, 401, id="not-basic"),
        pytest.param({"Authorization": "Basic %%%"}, 401, id="garbage"),
        pytest.param(_basic("admin", PASSWORD), 200, id="right"),
        pytest.param(_basic("", PASSWORD), 200, id="any-user"),
    ],
)
def test_stats_password(
    make_app: t.Callable[..., Flask],
    url: str,
    headers: dict[str, str],
    status: int,
) -> None:
    client = make_app(MAILTRACK_STATS_PASSWORD=PASSWORD).test_client()
    response = client.get(url, headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Basic ")


@pytest.mark.parametrize("url", STATS_URLS)
def test_stats_open_in_demo(make_app: t.Callable[..., Flask], url: str) -> None:
    assert make_app(demo=True).test_client().get(url).status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("/stats.json?since=yesterday", id="bad-since"),
        pytest.param("/events.json?until=2026-13-45", id="bad-until"),
        pytest.param("/stats?since=1e999", id="huge-since"),
        pytest.param("/stats/campaign?range=2y", id="bad-range"),
        pytest.param("/events.json?limit=ten", id="bad-limit"),
        pytest.param("/stats.json?a%22b=1", id="quote-in-filter"),
        pytest.param("/events.json?a%5Cb=1", id="backslash-in-filter"),
    ],
)
def test_stats_bad_queries(make_app: t.Callable[..., Flask], url: str) -> None:
    assert make_app(demo=True).test_client().get(url).status_code == 400


def test_stats_filters_and_pages(make_app: t.Callable[..., Flask]) -> None:
    app = make_app(demo=True)
    store = get_server_state(app).store
    now = int(time.time())
    for recipient, campaign in (("a", "x"), ("b", "x"), ("c", "y")):
        store.record(
            TrackingResult(
                is_open_tracking=True,
                timestamp=now,
                metadata={"recipient": recipient, "campaign": campaign},
            )
        )
    client = app.test_client()
    assert client.get("/stats.json?campaign=x").json["opens"]["unique"] == 2
    assert client.get(f"/stats.json?since={now + 1}").json["opens"]["total"] == 0
    assert client.get("/stats.json?since=2000-01-01T00:00:00Z").json["opens"][
        "total"
    ] == (3)
    assert len(client.get("/events.json?limit=2").json["events"]) == 2
    page = client.get("/stats/campaign?campaign=x&range=30d").get_data(as_text=True)
    assert 'id="opens-unique">2<' in page
    assert "campaign=x" in page


# -- the demo ------------------------------------------------------------------


def test_demo_email_is_tracked_with_the_servers_links(
    make_app: t.Callable[..., Flask],
) -> None:
    app = make_app(demo=True, MAILTRACK_BASE_URL="http://localhost")
    client = app.test_client()
    page = client.get("/").get_data(as_text=True)
    assert '<iframe id="email"' in page
    email = client.get("/demo/email?r=r1").get_data(as_text=True)
    clicks, pixels = links(email)
    assert len(clicks) == 4
    assert len(pixels) == 1
    # The unsubscribe link is not tracked.
    assert re.search(r'href="http://localhost/#unsubscribe"', email)
    headers = {"User-Agent": BROWSER_UA}
    assert client.get(pixels[0].replace("&amp;", "&"), headers=headers).status_code
    landing = client.get(clicks[0], headers=headers, follow_redirects=True)
    assert 'id="landed"' in landing.get_data(as_text=True)
    drain(app)
    events = client.get("/events.json").json["events"]
    assert [e["type"] for e in events] == ["link.clicked", "email.opened"]
    assert events[0]["metadata"] == {"campaign": "demo", "recipient": "r1"}
    assert client.get("/demo/landing/nope").status_code == 404


def _click_targets(client: t.Any, headers: dict[str, str]) -> list[str]:
    """Where the demo email's links redirect: the email asked for with
    ``headers``, each link then followed on the real host."""
    email = client.get("/demo/email", headers=headers)
    assert email.status_code == 200
    clicks, _ = links(email.get_data(as_text=True))
    assert len(clicks) == 4
    targets = []
    for click in clicks:
        response = client.get(urlsplit(click).path, headers={"User-Agent": BROWSER_UA})
        assert response.status_code == 302
        targets.append(response.location)
    return targets


def test_demo_links_never_lead_to_the_request_host(
    make_app: t.Callable[..., Flask],
) -> None:
    # The open redirect: a forged Host got links signed to redirect to it.
    app = make_app(demo=True, MAILTRACK_BASE_URL="https://t.example.com")
    client = app.test_client()
    targets = _click_targets(client, {"Host": "evil.example"})
    assert all(
        target.startswith("https://t.example.com/demo/landing/") for target in targets
    )
    email = client.get("/demo/email", headers={"Host": "evil.example"})
    assert "evil.example" not in email.get_data(as_text=True)


def test_demo_without_a_base_url(make_app: t.Callable[..., Flask]) -> None:
    client = make_app(demo=True).test_client()
    # No trustworthy root: no links at all, and the page says what to set.
    response = client.get("/demo/email", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert b"MAILTRACK_BASE_URL" in response.data
    assert b"MAILTRACK_BASE_URL</code>" in client.get("/").data
    # With Flask's TRUSTED_HOSTS the request's host is checked: usable.
    client = make_app(demo=True, TRUSTED_HOSTS=["localhost"]).test_client()
    assert client.get("/demo/email", headers={"Host": "evil.example"}).status_code == (
        400
    )
    targets = _click_targets(client, {})
    assert all(t.startswith("http://localhost/demo/landing/") for t in targets)
    assert b"MAILTRACK_BASE_URL</code>" not in client.get("/").data


# -- the command line ------------------------------------------------------------


@pytest.fixture
def filled_database(database: str) -> str:
    with EventStore(database) as store:
        for n, machine in enumerate((None, None, "apple-mpp")):
            store.record(
                TrackingResult(
                    is_open_tracking=True,
                    timestamp=1_700_000_000 + n,
                    machine=machine,
                    metadata={"recipient": str(n), "campaign": "x" if n else "y"},
                )
            )
        store.record(
            TrackingResult(
                is_click_tracking=True,
                tracked_url="https://example.com/a",
                timestamp=1_700_000_010,
                metadata={"recipient": "1", "campaign": "x"},
            )
        )
    return database


def test_cli_stats(filled_database: str) -> None:
    runner = CliRunner()
    env = {"MAILTRACK_DATABASE": filled_database}
    result = runner.invoke(main, ["stats"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == [
        "Opens   total      3  unique      3"
        "   people 2 (2 unique), machines 1 (1 unique)",
        "Clicks  total      1  unique      1"
        "   people 1 (1 unique), machines 0 (0 unique)",
    ]
    assert "33.3%" in result.output
    assert "https://example.com/a" in result.output
    result = runner.invoke(main, ["stats", "--json", "--filter", "campaign=x"], env=env)
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["opens"]["total"] == 2
    assert stats["filters"] == {"campaign": "x"}
    result = runner.invoke(
        main, ["stats", "--json", "--since", "2023-11-14T22:13:21Z"], env=env
    )
    assert json.loads(result.output)["opens"]["total"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--filter", "campaign"], "KEY=VALUE", id="filter-no-equals"),
        pytest.param(["--filter", "=x"], "KEY=VALUE", id="filter-no-key"),
        pytest.param(["--since", "later"], "ISO 8601", id="bad-since"),
    ],
)
def test_cli_stats_bad_arguments(
    filled_database: str, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(
        main, ["stats", *args], env={"MAILTRACK_DATABASE": filled_database}
    )
    assert result.exit_code == 2
    assert message in result.output


def test_cli_stats_without_database(tmp_path: t.Any) -> None:
    missing = str(tmp_path / "missing.sqlite3")
    result = CliRunner().invoke(main, ["stats"], env={"MAILTRACK_DATABASE": missing})
    assert result.exit_code == 1
    assert "No event database" in result.output
    assert not os.path.exists(missing)


def test_flask_mailtrack_stats(filled_database: str) -> None:
    def make(database: str | None) -> Flask:
        app = Flask(__name__)
        app.config.update(SECRET_KEY=KEY, MAILTRACK_DATABASE=database)
        from flask_mailtrack import MailTrack

        MailTrack(app)
        return app

    app = make(filled_database)
    try:
        result = CliRunner().invoke(
            mailtrack_group, ["stats", "--json"], obj=ScriptInfo(create_app=lambda: app)
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["opens"]["total"] == 3
    finally:
        pipeline = get_state(app).pipeline
        assert pipeline is not None
        pipeline.close()
    app = make(None)
    result = CliRunner().invoke(
        mailtrack_group, ["stats"], obj=ScriptInfo(create_app=lambda: app)
    )
    assert result.exit_code == 1
    assert "MAILTRACK_DATABASE is not set" in result.output


def test_keygen_webhook() -> None:
    result = CliRunner().invoke(main, ["keygen", "--webhook"])
    assert result.exit_code == 0
    secret = result.output.strip()
    assert secret.startswith("whsec_")
    standardwebhooks.Webhook(secret)


def test_serve_help_mentions_gunicorn() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--demo" in result.output
    assert "gunicorn" in result.output


# -- real servers ----------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: t.Any, **kwargs: t.Any) -> None:
        return None


def fetch(
    url: str, method: str = "GET", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """A request that does not follow redirects."""
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(
        url, headers={"User-Agent": BROWSER_UA, **headers}, method=method
    )
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers), e.read()


def _track_through(root: str, environ: dict[str, str]) -> None:
    """A pixel and a click made with the same settings, through the server."""
    tracker = Tracker(environ_configuration(environ))
    pixel = tracker.open_url({"recipient": "dee"})
    click = tracker.click_url("https://example.com/landing", {"recipient": "dee"})
    assert pixel.startswith(root)
    status, headers, body = fetch(pixel)
    assert (status, headers["Content-Type"]) == (200, "image/gif")
    assert body.startswith(b"GIF89a")
    status, headers, _ = fetch(click)
    assert (status, headers["Location"]) == (302, "https://example.com/landing")
    assert fetch(f"{root}/mailtrack/c/not-a-token")[0] == 404
    for url in (pixel, click):
        status, headers, _ = fetch(url, method="OPTIONS")
        assert (status, headers["Allow"]) == (405, "GET, HEAD")


def test_mailtrack_serve_subprocess(database: str, tmp_path: t.Any) -> None:
    port = free_port()
    env = {
        "MAILTRACK_SECRET_KEY": KEY,
        "MAILTRACK_DATABASE": database,
        "MAILTRACK_BASE_URL": f"http://127.0.0.1:{port}",
    }
    script = shutil.which("mailtrack")
    command = [script] if script else [sys.executable, "-m", "flask_mailtrack.cli"]
    with running([*command, "serve", "--port", str(port)], env, port) as root:
        _track_through(root, env)
        assert fetch(f"{root}/stats")[0] == 404  # no password, no demo
    # Stopped by SIGTERM: the worker thread wrote what was journaled.
    with EventStore(database) as store:
        stats = store.stats(recipient="dee")
        assert (stats["opens"]["total"], stats["clicks"]["total"]) == (1, 1)


def test_mailtrack_serve_demo_subprocess(tmp_path: t.Any) -> None:
    port = free_port()
    env = {"MAILTRACK_DATABASE": str(tmp_path / "demo.sqlite3")}
    env.pop("MAILTRACK_SECRET_KEY", None)
    command = [sys.executable, "-m", "flask_mailtrack.cli", "serve", "--demo"]
    with running([*command, "--port", str(port)], env, port) as root:
        status, _, body = fetch(f"{root}/")
        assert status == 200
        assert b'<iframe id="email"' in body
        email = fetch(f"{root}/demo/email?r=z")[2].decode()
        clicks, pixels = links(email)
        assert fetch(pixels[0].replace("&amp;", "&"))[0] == 200
        status, headers, _ = fetch(clicks[0])
        assert status == 302
        assert headers["Location"].startswith(f"{root}/demo/landing/")

        def types() -> list[str]:
            events = json.loads(fetch(f"{root}/events.json")[2])["events"]
            return [e["type"] for e in events]

        # The server's worker thread writes them a few ms later (the demo
        # page polls the same way).
        deadline = time.monotonic() + STARTUP
        while types() != ["link.clicked", "email.opened"]:
            assert time.monotonic() < deadline, types()
            time.sleep(0.02)
        # A forged Host changes neither the tracking links (made on the
        # address the server listens on) nor the targets they were signed
        # with.
        forged = fetch(f"{root}/demo/email", Host="evil.example")[2].decode()
        for click in links(forged)[0]:
            assert click.startswith(f"{root}/mailtrack/c/")
            status, headers, _ = fetch(root + urlsplit(click).path)
            assert status == 302
            assert headers["Location"].startswith(f"{root}/demo/landing/")


@pytest.mark.skipif(not shutil.which("gunicorn"), reason="gunicorn is not installed")
def test_gunicorn(database: str) -> None:
    port = free_port()
    env = {
        "MAILTRACK_SECRET_KEY": KEY,
        "MAILTRACK_DATABASE": database,
        "MAILTRACK_BASE_URL": f"http://127.0.0.1:{port}",
        "MAILTRACK_STATS_PASSWORD": PASSWORD,
    }
    command = [
        str(shutil.which("gunicorn")),
        "--workers",
        "2",
        "--bind",
        f"127.0.0.1:{port}",
        "flask_mailtrack.server:create_app()",
    ]
    with running(command, env, port) as root:
        _track_through(root, env)
        assert fetch(f"{root}/stats.json")[0] == 401

        def counts() -> tuple[int, int]:
            status, _, body = fetch(f"{root}/stats.json", **_basic("me", PASSWORD))
            assert status == 200
            stats = json.loads(body)
            return stats["opens"]["total"], stats["clicks"]["total"]

        # The events reach the store once a worker thread has taken the
        # journal file (sealed a few ms after the hit).
        deadline = time.monotonic() + STARTUP
        while counts() != (1, 1):
            assert time.monotonic() < deadline, counts()
            time.sleep(0.02)


def test_flask_extension_connects_receivers_per_app(tmp_path: t.Any) -> None:
    from flask_mailtrack import MailTrack

    def make(database: str | None) -> Flask:
        app = Flask(__name__)
        app.config.update(SECRET_KEY=KEY, MAILTRACK_DATABASE=database)
        MailTrack(app)
        return app

    recording = make(str(tmp_path / "a.sqlite3"))
    other = make(None)
    assert get_state(other).pipeline is None
    pipeline = get_state(recording).pipeline
    assert pipeline is not None
    try:
        for app in (recording, other):
            with app.test_request_context():
                pixel = get_state(app).link_tracker(app).open_url({"app": app.name})
            assert app.test_client().get(pixel).status_code == 200
        drain(recording)
        (store,) = pipeline.sinks
        assert isinstance(store, EventStore)
        assert store.count() == 1
    finally:
        pipeline.close()


def test_connected_receivers_do_not_keep_the_app_alive(tmp_path: t.Any) -> None:
    import gc
    import weakref

    with EventStore(tmp_path / "a.sqlite3") as store:
        app = Flask(__name__)
        store.connect(app)
        reference = weakref.ref(app)
        del app
        gc.collect()
        assert reference() is None


# -- first-run settings (issue 14) ----------------------------------------------------


def test_append_slash_links_are_recorded(make_app: t.Callable[..., Flask]) -> None:
    app = make_app(
        MAILTRACK_BASE_URL="https://t.example.com", MAILTRACK_APPEND_SLASH="true"
    )
    with app.app_context():
        tracker = get_state(app).tracker
        click = tracker.click_url("https://example.com/", {"recipient": "ann"})
        pixel = tracker.open_url({"recipient": "ann"})
    client = app.test_client()
    headers = {"User-Agent": BROWSER_UA}
    clicked = client.get(click.replace("https://t.example.com", ""), headers=headers)
    assert clicked.status_code == 302
    assert clicked.headers["Location"] == "https://example.com/"
    assert (
        client.get(
            pixel.replace("https://t.example.com", ""), headers=headers
        ).status_code
        == 200
    )
    drain(app)
    events = get_server_state(app).store.events()
    assert sorted(event["type"] for event in events) == ["email.opened", "link.clicked"]


def test_misspelt_environment_variables_warn_with_the_closest(database: str) -> None:
    environ = {
        "MAILTRACK_SECRET_KEY": KEY,
        "MAILTRACK_DATABASE": database,
        "MAILTRACK_ANONYMISE_IP": "1",
        "MAILTRACK_STATS_PASWORD": "secret",
    }
    with pytest.warns(MailTrackWarning) as caught:
        app = create_app(environ=environ)
    close_app(app)
    (warning,) = caught
    assert str(warning.message) == (
        "Ignored environment variable(s) that name no flask_mailtrack setting:"
        " MAILTRACK_ANONYMISE_IP (did you mean MAILTRACK_ANONYMIZE_IP?),"
        " MAILTRACK_STATS_PASWORD (did you mean MAILTRACK_STATS_PASSWORD?)."
    )


@pytest.mark.parametrize(
    "setting",
    [
        "MAILTRACK_APPEND_SLASH",
        "MAILTRACK_ANONYMIZE_IP",
        "MAILTRACK_DEMO",
        "MAILTRACK_WEBHOOK_DELIVER",
        "MAILTRACK_WEBHOOK_REFUSE_PRIVATE",
    ],
)
def test_every_boolean_setting_refuses_other_words(database: str, setting: str) -> None:
    environ = {
        "MAILTRACK_SECRET_KEY": KEY,
        "MAILTRACK_DATABASE": database,
        "MAILTRACK_WEBHOOK_URL": "https://hooks.example.com/in",
        "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
        setting: "ture",
    }
    with pytest.raises(
        ConfigurationError,
        match=setting.removeprefix("MAILTRACK_").lower() + "|" + setting,
    ):
        create_app(environ=environ)


def test_unusable_database_is_a_configuration_error(tmp_path: t.Any) -> None:
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("not SQLite " * 100)
    for path in (str(tmp_path), str(not_a_database)):
        with pytest.raises(ConfigurationError, match="MAILTRACK_DATABASE"):
            create_app(
                {"MAILTRACK_SECRET_KEY": KEY, "MAILTRACK_DATABASE": path}, environ={}
            )


@pytest.mark.parametrize("mode", ["embedded", "external"])
def test_stats_json_reports_the_pipeline(
    make_app: t.Callable[..., Flask], mode: str
) -> None:
    app = make_app(demo=True, MAILTRACK_WORKER=mode)
    client = app.test_client()
    with app.test_request_context():
        pixel = get_state(app).link_tracker(app).open_url({"recipient": "fay"})
    assert client.get(pixel).status_code == 200
    if mode == "embedded":
        drain(app)
    pipeline = client.get("/stats.json").json["pipeline"]
    assert pipeline["mode"] == mode
    assert (pipeline["dropped"], pipeline["buffered"]) == (0, 0)
    if mode == "embedded":
        assert pipeline["worker"]["events_read"] == 1
        assert pipeline["worker"]["sinks"]["store"]["written"] == 1
    else:
        assert pipeline["worker"] is None
    assert client.get("/healthz").get_data() == b"ok\n"
