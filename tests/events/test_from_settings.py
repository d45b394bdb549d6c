"""The events pipeline built from settings (``MAILTRACK_*``)."""

from __future__ import annotations

import base64
import os
import pathlib
import typing as t

import pytest
from flask_mailtrack import Configuration
from flask_mailtrack import ConfigurationError
from flask_mailtrack import EventStore
from flask_mailtrack import WebhookSender
from flask_mailtrack.events._from_settings import campaign_key
from flask_mailtrack.events._from_settings import dimensions
from flask_mailtrack.events._from_settings import event_store
from flask_mailtrack.events._from_settings import journal_directory
from flask_mailtrack.events._from_settings import pipeline_from_settings
from flask_mailtrack.events._from_settings import worker_mode
from flask_mailtrack.exceptions import MissingSettingError

SECRET = "review-secret-key-0123456789abcdef"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
HOOK = "https://hooks.example.com/in"
PG = "postgresql://mailtrack:secret@db.internal:5432/mailtrack"


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
    from flask_mailtrack.extension import get_state
    from flask_mailtrack.server import close_app
    from flask_mailtrack.server import create_app

    config = {
        "MAILTRACK_SECRET_KEY": SECRET,
        "MAILTRACK_DATABASE": str(tmp_path / "events.sqlite3"),
        "MAILTRACK_WEBHOOK_URL": HOOK,
        "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    if value is not None:
        config["MAILTRACK_WEBHOOK_REFUSE_PRIVATE"] = value
    app = create_app(config)
    try:
        pipeline = get_state(app).pipeline
        assert pipeline is not None
        (sender,) = [s for s in pipeline.sinks if isinstance(s, WebhookSender)]
        assert sender.refuse_private_addresses is expected
    finally:
        close_app(app, 0)


@pytest.mark.parametrize(
    ("settings", "mode"),
    [
        pytest.param({}, "embedded", id="default"),
        pytest.param({"MAILTRACK_WORKER": ""}, "embedded", id="empty"),
        pytest.param({"MAILTRACK_WORKER": "external"}, "external", id="external"),
        pytest.param({"MAILTRACK_WORKER": " Embedded "}, "embedded", id="spaced"),
    ],
)
def test_worker_mode(settings: dict[str, str], mode: str) -> None:
    assert worker_mode(settings) == mode


@pytest.mark.parametrize("value", ["extern", "thread", "1"])
def test_worker_mode_refuses_other_values(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        worker_mode({"MAILTRACK_WORKER": value})
    message = str(caught.value)
    assert "MAILTRACK_WORKER" in message
    assert "embedded" in message and "external" in message


@pytest.mark.parametrize(
    ("deliver", "mode"),
    [
        pytest.param("false", "external", id="false"),
        pytest.param(False, "external", id="bool-false"),
        pytest.param("on", "embedded", id="on"),
    ],
)
def test_webhook_deliver_is_a_deprecated_alias(deliver: object, mode: str) -> None:
    with pytest.warns(DeprecationWarning, match="MAILTRACK_WORKER"):
        assert worker_mode({"MAILTRACK_WEBHOOK_DELIVER": deliver}) == mode
    with pytest.warns(DeprecationWarning, match="MAILTRACK_WORKER"):
        settings = {"MAILTRACK_WEBHOOK_DELIVER": deliver, "MAILTRACK_WORKER": mode}
        assert worker_mode(settings) == mode


def test_webhook_deliver_contradicting_the_worker_setting() -> None:
    settings = {"MAILTRACK_WEBHOOK_DELIVER": "false", "MAILTRACK_WORKER": "embedded"}
    with pytest.raises(ConfigurationError, match="MAILTRACK_WEBHOOK_DELIVER"):
        worker_mode(settings)


def test_webhook_deliver_typo_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="MAILTRACK_WEBHOOK_DELIVER"):
        worker_mode({"MAILTRACK_WEBHOOK_DELIVER": "flase"})


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        pytest.param({}, None, id="no-sink"),
        pytest.param({"MAILTRACK_DATABASE": "d.sqlite3"}, "d.sqlite3-events", id="db"),
        pytest.param(
            {"MAILTRACK_DATABASE": "d.sqlite3", "MAILTRACK_JOURNAL": "/srv/j"},
            "/srv/j",
            id="explicit",
        ),
        pytest.param(
            {
                "MAILTRACK_WEBHOOK_URL": HOOK,
                "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "MAILTRACK_WEBHOOK_OUTBOX": "o.sqlite3",
            },
            "o.sqlite3-events",
            id="outbox",
        ),
        pytest.param(
            {"MAILTRACK_DATABASE": ":memory:"}, ":memory:", id="in-memory-database"
        ),
        pytest.param(
            {"MAILTRACK_DATABASE": "sqlite:///var/d.sqlite3"},
            "var/d.sqlite3-events",
            id="sqlite-url",
        ),
        pytest.param(
            {"MAILTRACK_DATABASE": "sqlite:////srv/d.sqlite3"},
            "/srv/d.sqlite3-events",
            id="sqlite-url-absolute",
        ),
        pytest.param(
            {"MAILTRACK_DATABASE": "sqlite://"}, ":memory:", id="sqlite-url-memory"
        ),
        pytest.param(
            {"MAILTRACK_DATABASE": PG, "MAILTRACK_JOURNAL": "/srv/j"},
            "/srv/j",
            id="postgresql-explicit",
        ),
    ],
)
def test_journal_directory(settings: dict[str, str], expected: str | None) -> None:
    configuration = Configuration.from_mapping(settings)
    assert journal_directory(settings, configuration) == expected


def test_no_sink_no_pipeline() -> None:
    assert pipeline_from_settings({}, Configuration()) is None


def test_a_webhook_needs_a_secret_in_either_mode(tmp_path: pathlib.Path) -> None:
    settings = {
        "MAILTRACK_WEBHOOK_URL": HOOK,
        "MAILTRACK_DATABASE": str(tmp_path / "d.sqlite3"),
        "MAILTRACK_WORKER": "external",
    }
    with pytest.raises(MissingSettingError, match="MAILTRACK_WEBHOOK_SECRET"):
        pipeline_from_settings(settings, Configuration.from_mapping(settings))


def test_embedded_pipeline_has_the_sinks(tmp_path: pathlib.Path) -> None:
    database = str(tmp_path / "d.sqlite3")
    settings = {
        "MAILTRACK_DATABASE": database,
        "MAILTRACK_WEBHOOK_URL": HOOK,
        "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    pipeline = pipeline_from_settings(settings, Configuration.from_mapping(settings))
    assert pipeline is not None
    try:
        assert pipeline.mode == "embedded" and pipeline.worker is not None
        store, sender = pipeline.sinks
        assert isinstance(store, EventStore) and store.path == database
        assert isinstance(sender, WebhookSender) and sender.outbox_path == database
        assert pipeline.directory == database + "-events"
        assert os.stat(pipeline.directory).st_mode & 0o777 == 0o700
    finally:
        pipeline.close(0)


def test_external_pipeline_makes_no_sink(tmp_path: pathlib.Path) -> None:
    database = str(tmp_path / "d.sqlite3")
    settings = {
        "MAILTRACK_DATABASE": database,
        "MAILTRACK_WEBHOOK_URL": HOOK,
        "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MAILTRACK_WORKER": "external",
    }
    pipeline = pipeline_from_settings(settings, Configuration.from_mapping(settings))
    assert pipeline is not None
    try:
        assert pipeline.sinks == () and pipeline.worker is None
        assert pipeline.stats()["worker"] is None
        assert not os.path.exists(database)  # neither store nor outbox opened
    finally:
        pipeline.close(0)


def test_external_mode_needs_a_shared_journal() -> None:
    settings = {"MAILTRACK_DATABASE": ":memory:", "MAILTRACK_WORKER": "external"}
    with pytest.raises(ConfigurationError, match="MAILTRACK_JOURNAL"):
        pipeline_from_settings(settings, Configuration())


@pytest.mark.parametrize("url", [PG, PG.replace("postgresql:", "postgres:")])
def test_a_postgresql_database_needs_a_journal_setting(url: str) -> None:
    # No file to put the journal beside: said before anything connects.
    settings = {"MAILTRACK_DATABASE": url}
    with pytest.raises(ConfigurationError, match="MAILTRACK_JOURNAL"):
        pipeline_from_settings(settings, Configuration())


def test_a_postgresql_database_needs_a_webhook_outbox_setting() -> None:
    settings = {
        "MAILTRACK_DATABASE": PG,
        "MAILTRACK_JOURNAL": "/srv/j",
        "MAILTRACK_WEBHOOK_URL": HOOK,
        "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    configuration = Configuration.from_mapping(settings)
    with pytest.raises(ConfigurationError, match="MAILTRACK_WEBHOOK_OUTBOX"):
        journal_directory(settings, configuration, default_outbox="x.sqlite3")
    settings["MAILTRACK_WEBHOOK_OUTBOX"] = "o.sqlite3"
    assert journal_directory(settings, configuration) == "/srv/j"


def test_an_unknown_database_url_is_refused() -> None:
    settings = {"MAILTRACK_DATABASE": "mysql://db/mail"}
    with pytest.raises(ConfigurationError, match="mysql"):
        pipeline_from_settings(settings, Configuration())


def test_a_sqlite_url_is_the_store_and_the_outbox(tmp_path: pathlib.Path) -> None:
    database = str(tmp_path / "d.sqlite3")
    settings = {
        "MAILTRACK_DATABASE": "sqlite:///" + database,
        "MAILTRACK_WEBHOOK_URL": HOOK,
        "MAILTRACK_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    pipeline = pipeline_from_settings(settings, Configuration.from_mapping(settings))
    assert pipeline is not None
    try:
        store, sender = pipeline.sinks
        assert isinstance(store, EventStore) and store.path == database
        assert isinstance(sender, WebhookSender) and sender.outbox_path == database
        assert pipeline.directory == database + "-events"
    finally:
        pipeline.close(0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, ("campaign",), id="default"),
        pytest.param("campaign, list_id", ("campaign", "list_id"), id="text"),
        pytest.param(["a", "b"], ("a", "b", "campaign"), id="list"),
        # The campaign key is always rolled up.
        pytest.param("", ("campaign",), id="none"),
        pytest.param("list_id", ("list_id", "campaign"), id="campaign added"),
    ],
)
def test_dimensions_setting(
    tmp_path: pathlib.Path, value: t.Any, expected: tuple[str, ...]
) -> None:
    settings = {"MAILTRACK_DATABASE": str(tmp_path / "d.sqlite3")}
    if value is not None:
        settings["MAILTRACK_DIMENSIONS"] = value
    store = event_store(settings)
    assert store is not None
    with store:
        assert store.dimensions == expected


@pytest.mark.parametrize(
    ("dimensions", "key", "expected"),
    [
        pytest.param(None, "campaign_id", ("campaign", "campaign_id"), id="added"),
        pytest.param("a, campaign_id", "campaign_id", ("a", "campaign_id"), id="kept"),
        pytest.param("", "", ("campaign",), id="empty key is the default"),
    ],
)
def test_campaign_key_setting(
    tmp_path: pathlib.Path, dimensions: t.Any, key: str, expected: tuple[str, ...]
) -> None:
    settings = {
        "MAILTRACK_DATABASE": str(tmp_path / "d.sqlite3"),
        "MAILTRACK_CAMPAIGN_KEY": key,
    }
    if dimensions is not None:
        settings["MAILTRACK_DIMENSIONS"] = dimensions
    assert campaign_key(settings) == (key or "campaign")
    store = event_store(settings)
    assert store is not None
    with store:
        assert store.dimensions == expected


@pytest.mark.parametrize("value", [7, 'bad"name', "x" * 201, "tab\there"])
def test_campaign_key_setting_refuses(value: t.Any) -> None:
    settings = {"MAILTRACK_CAMPAIGN_KEY": value}
    with pytest.raises(ConfigurationError, match="MAILTRACK_CAMPAIGN_KEY"):
        campaign_key(settings)
    with pytest.raises(ConfigurationError, match="MAILTRACK_CAMPAIGN_KEY"):
        dimensions(settings)


@pytest.mark.parametrize("value", [7, 'bad"name'])
def test_dimensions_setting_refuses(tmp_path: pathlib.Path, value: t.Any) -> None:
    settings = {
        "MAILTRACK_DATABASE": str(tmp_path / "d.sqlite3"),
        "MAILTRACK_DIMENSIONS": value,
    }
    with pytest.raises((ConfigurationError, ValueError), match="DIMENSIONS|name"):
        event_store(settings)


def test_database_migrate_setting(tmp_path: pathlib.Path) -> None:
    settings = {
        "MAILTRACK_DATABASE": str(tmp_path / "d.sqlite3"),
        "MAILTRACK_DATABASE_MIGRATE": "false",
    }
    with pytest.raises(ConfigurationError, match="mailtrack db upgrade"):
        event_store(settings)
    settings["MAILTRACK_DATABASE_MIGRATE"] = "true"
    store = event_store(settings)
    assert store is not None
    with store:
        assert store.schema_version() == 3
