"""The framework-free part of outgoing mail: control headers, settings,
the recipient hash, the template cache, sent events, and which events
webhooks post."""

from __future__ import annotations

import json
import typing as t

import pytest
from flask_mailtrack import Configuration
from flask_mailtrack import MailTrackError
from flask_mailtrack import Tracker
from flask_mailtrack.configuration import ConfigKeys
from flask_mailtrack.events import EventRecord
from flask_mailtrack.events import generate_secret
from flask_mailtrack.events import WebhookSender
from flask_mailtrack.events._encoding import encode_event
from flask_mailtrack.events._from_settings import webhook_event_types
from flask_mailtrack.exceptions import ConfigurationError
from flask_mailtrack.exceptions import MissingSettingError
from flask_mailtrack.outgoing import hash_recipient
from flask_mailtrack.outgoing import Outgoing
from flask_mailtrack.outgoing import OutgoingSettings
from flask_mailtrack.outgoing._headers import new_message_id
from flask_mailtrack.outgoing._headers import read_controls

SIGNING_KEY = b"outgoing-test-signing-key-0123456789"


# -- control headers -------------------------------------------------------------


def test_control_headers_are_read_and_removed() -> None:
    controls = read_controls(
        {
            "x-mailtrack-metadata": '{"campaign": "spring", "tier": 2}',
            "X-MAILTRACK": "Off",
            "Reply-To": "help@example.com",
            "message-id": "<m@example.com>",
        }
    )
    assert controls.headers == {
        "Reply-To": "help@example.com",
        "message-id": "<m@example.com>",
    }
    assert controls.track is False
    assert controls.metadata == {"campaign": "spring", "tier": 2}
    assert controls.found is True
    assert controls.message_id == "<m@example.com>"


def test_no_headers() -> None:
    controls = read_controls(None)
    assert controls == ({}, True, {}, False, None)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param({"X-Mailtrack-Metadata": "{"}, "not valid JSON", id="broken"),
        pytest.param({"X-Mailtrack-Metadata": '"spring"'}, "JSON object", id="str"),
        pytest.param({"X-Mailtrack-Metadata": "null"}, "JSON object", id="null"),
        pytest.param({"X-Mailtrack": "sometimes"}, "'off'", id="switch"),
    ],
)
def test_malformed_control_headers(headers: dict[str, str], message: str) -> None:
    with pytest.raises(MailTrackError, match=message):
        read_controls(headers)


def test_new_message_id_is_on_the_sender_domain() -> None:
    assert new_message_id("Ann <ann@mail.example.com>").endswith("@mail.example.com>")
    assert new_message_id(("Ann", "ann@example.org")).endswith("@example.org>")
    made = new_message_id(None)
    assert made.startswith("<") and made.endswith(">") and "@" in made
    assert new_message_id(None) != made


# -- settings and the recipient hash ----------------------------------------------


def test_settings_defaults() -> None:
    settings = OutgoingSettings.from_mapping({})
    assert settings == OutgoingSettings()
    assert settings.recipient_value("ann@example.com") is None
    assert OutgoingSettings.from_mapping({}, enabled_by_default=True).enabled


def test_settings_from_text() -> None:
    settings = OutgoingSettings.from_mapping(
        {
            ConfigKeys.TRACK_OUTGOING: "yes",
            ConfigKeys.TRACK_TEXT: "1",
            ConfigKeys.RECIPIENT_METADATA: " Clear ",
        }
    )
    assert settings.enabled and settings.track_text
    assert settings.recipient_value(" Ann@Example.COM") == "ann@example.com"
    off = OutgoingSettings.from_mapping({ConfigKeys.RECIPIENT_METADATA: "off"})
    assert off.recipient_metadata is None


def test_hash_key_is_derived_from_the_signing_key() -> None:
    settings = OutgoingSettings.from_mapping(
        {ConfigKeys.RECIPIENT_METADATA: "hash"}, signing_keys=[b"old", SIGNING_KEY]
    )
    key = settings.recipient_hash_key
    assert key is not None and key != SIGNING_KEY
    value = settings.recipient_value("Ann@example.com")
    assert value == hash_recipient("ann@example.com", key)
    assert len(value) == 32 and "ann" not in value
    own = OutgoingSettings.from_mapping(
        {ConfigKeys.RECIPIENT_METADATA: "hash", ConfigKeys.RECIPIENT_HASH_KEY: "k" * 32}
    )
    assert own.recipient_value("ann@example.com") == hash_recipient(
        "ann@example.com", b"k" * 32
    )
    assert own.recipient_value("ann@example.com") != value


def test_bad_recipient_settings() -> None:
    with pytest.raises(ConfigurationError, match="'clear', 'hash'"):
        OutgoingSettings.from_mapping({ConfigKeys.RECIPIENT_METADATA: "plain"})
    with pytest.raises(MissingSettingError, match="RECIPIENT_HASH_KEY"):
        OutgoingSettings.from_mapping({ConfigKeys.RECIPIENT_METADATA: "hash"})
    with pytest.raises(ConfigurationError, match="TRACK_OUTGOING"):
        OutgoingSettings.from_mapping({ConfigKeys.TRACK_OUTGOING: "maybe"})


def test_the_settings_are_known_keys() -> None:
    for key in (
        ConfigKeys.TRACK_OUTGOING,
        ConfigKeys.TRACK_TEXT,
        ConfigKeys.RECIPIENT_METADATA,
        ConfigKeys.RECIPIENT_HASH_KEY,
        ConfigKeys.EMAIL_BACKEND,
        ConfigKeys.WEBHOOK_EVENTS,
    ):
        assert ConfigKeys.is_known(key)
        Configuration.from_mapping({key: "x"})  # not refused as unknown


# -- templates and events -----------------------------------------------------------


@pytest.fixture
def outgoing(configuration: Configuration) -> Outgoing:
    return Outgoing(
        configuration.replace(default_metadata={"app": "shop"}),
        OutgoingSettings(enabled=True, recipient_metadata="clear"),
    )


def test_a_body_is_compiled_once(outgoing: Outgoing, tracker: Tracker) -> None:
    html = '<a href="https://example.com/">x</a>'
    template = outgoing.template(tracker, html)
    assert outgoing.template(tracker, "".join(list(html))) is template
    # Another tracker (another base URL) compiles its own.
    other = Tracker(tracker.configuration)
    assert outgoing.template(other, html) is not template
    # Bounded: the oldest bodies are dropped.
    for n in range(40):
        outgoing.template(tracker, f'<a href="https://example.com/{n}">x</a>')
    assert outgoing.template(tracker, html) is not template
    one = outgoing.track_html(tracker, html, {"message_id": "<1@x>"})
    two = outgoing.track_html(tracker, html, {"message_id": "<2@x>"})
    assert one != two and one.count("/mailtrack/c/") == 1


def test_plan_and_sent_events(outgoing: Outgoing) -> None:
    plan = outgoing.plan(
        {"X-Mailtrack-Metadata": json.dumps({"campaign": "spring"})},
        sender="news@example.com",
        recipients=[
            "Ann <ann@example.com>",
            ("Bob", "BOB@example.com"),
            "bob@example.com",
        ],
    )
    assert plan.track and plan.changed
    message_id = plan.headers["Message-ID"]
    assert message_id.endswith("@example.com>")
    # Two recipients share the links: no recipient in them.
    assert plan.metadata == {"campaign": "spring", "message_id": message_id}
    events = outgoing.sent_events(plan, now=1_777_777_777)
    assert [event["metadata"] for event in events] == [
        {
            "app": "shop",
            "campaign": "spring",
            "message_id": message_id,
            "recipient": address,
        }
        for address in ("ann@example.com", "bob@example.com")
    ]
    assert {event["occurred_at"] for event in events} == {"2026-05-03T03:09:37Z"}
    assert all(event["timestamp"] == 1_777_777_777 for event in events)
    assert len({event["id"] for event in events}) == 2


def test_nothing_recorded_without_a_journal_or_untracked(outgoing: Outgoing) -> None:
    plan = outgoing.plan(None, sender=None, recipients=["a@example.com"])
    assert plan.metadata["recipient"] == "a@example.com"
    assert outgoing.record(plan) == 0  # no journal

    class Journal:
        def __init__(self) -> None:
            self.bodies: list[bytes] = []

        def append(self, body: bytes) -> bool:
            self.bodies.append(body)
            return True

    journal = Journal()
    outgoing.journal = journal
    assert outgoing.record(plan) == 1
    assert json.loads(journal.bodies[0])["type"] == "email.sent"
    off = outgoing.plan({"X-Mailtrack": "off"}, sender=None, recipients=["a@b.c"])
    assert not off.track and off.changed and off.headers == {}
    assert outgoing.record(off) == 0
    assert len(journal.bodies) == 1


def test_disabled_or_untrackable_messages_are_not_planned(
    configuration: Configuration,
) -> None:
    disabled = Outgoing(configuration, OutgoingSettings())
    plan = disabled.plan({"Reply-To": "a@b.c"}, sender=None, recipients=["a@b.c"])
    assert plan == ({"Reply-To": "a@b.c"}, False, False, {}, ("a@b.c",))
    enabled = Outgoing(configuration, OutgoingSettings(enabled=True))
    text_only = enabled.plan(None, sender=None, recipients=["a@b.c"], trackable=False)
    assert not text_only.track and not text_only.changed


# -- webhooks ---------------------------------------------------------------------


def _record(event_type: str, n: int) -> EventRecord:
    data: dict[str, t.Any] = {"id": f"evt_{n:032x}", "type": event_type}
    return EventRecord(data["id"], encode_event(data), data)


@pytest.mark.parametrize(
    ("event_types", "queued"),
    [
        pytest.param(None, 2, id="default"),
        pytest.param(("email.sent",), 1, id="sent-only"),
        pytest.param(("email.opened", "link.clicked", "email.sent"), 3, id="all"),
    ],
)
def test_webhooks_post_the_chosen_event_types(
    event_types: tuple[str, ...] | None, queued: int
) -> None:
    options = {} if event_types is None else {"event_types": event_types}
    sender = WebhookSender(
        "https://hooks.example.com/",
        secret=generate_secret(),
        outbox_path=":memory:",
        deliver=False,
        **options,
    )
    try:
        sender.write(
            [
                _record("email.opened", 1),
                _record("link.clicked", 2),
                _record("email.sent", 3),
            ]
        )
        assert sender.pending() == queued
    finally:
        sender.close()


def test_webhook_events_setting() -> None:
    assert webhook_event_types({}) == ("email.opened", "link.clicked")
    assert webhook_event_types(
        {ConfigKeys.WEBHOOK_EVENTS: "email.opened, email.sent"}
    ) == ("email.opened", "email.sent")
    assert webhook_event_types({ConfigKeys.WEBHOOK_EVENTS: ["email.sent"]}) == (
        "email.sent",
    )
    with pytest.raises(ConfigurationError, match="WEBHOOK_EVENTS"):
        webhook_event_types({ConfigKeys.WEBHOOK_EVENTS: "email.bounced"})
    with pytest.raises(ConfigurationError, match="event_types"):
        WebhookSender(
            secret=generate_secret(), outbox_path=":memory:", event_types=["opened"]
        )
