"""Configuration: pytracking's keywords, strict keywords, mappings."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
import typing as t
import warnings

import pytest
from flask_mailtrack import _secret_keys
from flask_mailtrack import Configuration
from flask_mailtrack import ConfigurationError
from flask_mailtrack import InsecureTokenWarning
from flask_mailtrack import MailTrackError
from flask_mailtrack import Tracker
from flask_mailtrack.configuration import environ_settings
from flask_mailtrack.configuration import parse_bool
from flask_mailtrack.exceptions import MailTrackWarning
from flask_mailtrack.exceptions import MissingSettingError
from flask_mailtrack.exceptions import UnknownSettingError
from flask_mailtrack.exceptions import WeakSecretKeyWarning

SECRET = "configuration-test-secret-key-0123456789"
OLD = "the-old-configuration-test-key-0123456789"
NEW = b"the-new-configuration-test-key-0123456789"

PYTRACKING_KEYWORDS = (
    "webhook_url",
    "webhook_timeout_seconds",
    "include_webhook_url",
    "base_open_tracking_url",
    "base_click_tracking_url",
    "default_metadata",
    "include_default_metadata",
    "encryption_bytestring_key",
    "encoding",
    "append_slash",
)


def test_pytracking_keywords_come_first_in_order() -> None:
    names = [field.name for field in dataclasses.fields(Configuration)]
    assert tuple(names[: len(PYTRACKING_KEYWORDS)]) == PYTRACKING_KEYWORDS


def test_is_immutable() -> None:
    configuration = Configuration(secret_key=SECRET)
    with pytest.raises(dataclasses.FrozenInstanceError):
        configuration.secret_key = "other"  # type: ignore[misc]
    changed = configuration.replace(max_age=60)
    assert changed.max_age == 60 and configuration.max_age is None


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: Configuration(secret_kye="x"), id="Configuration"),
        pytest.param(lambda: Configuration().replace(secret_kye="x"), id="replace"),
        pytest.param(lambda: Tracker(secret_kye="x"), id="Tracker"),
        pytest.param(lambda: Tracker(Configuration(), secret_kye="x"), id="Tracker+"),
    ],
)
def test_unknown_keyword_raises_type_error_naming_it(build: object) -> None:
    with pytest.raises(TypeError, match="secret_kye"):
        build()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pixel_position": "middle"}, "pixel_position"),
        ({"max_age": 0}, "max_age"),
        ({"trusted_proxies": -1}, "trusted_proxies"),
        ({"max_token_length": 10}, "max_token_length"),
        ({"proxy_header": "X-Real-IP: 1.2.3.4"}, "proxy_header"),
        ({"proxy_header": "X Real IP"}, "proxy_header"),
        ({"proxy_header": 7}, "proxy_header"),
    ],
)
def test_invalid_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Configuration(**kwargs)  # type: ignore[arg-type]


def test_key_lists() -> None:
    configuration = Configuration(secret_key=[OLD, NEW])
    assert configuration.secret_keys == [OLD.encode(), NEW]
    assert Configuration(secret_key=SECRET).secret_keys == [SECRET.encode()]
    assert Configuration().secret_keys == []
    with pytest.raises(MailTrackError):
        _ = Configuration(secret_key=[""]).secret_keys
    encrypted = Configuration(
        encryption_key=["a" * 16, "b" * 32], encryption_bytestring_key=b"f" * 44
    )
    assert encrypted.encryption_keys == [b"f" * 44, b"a" * 16, b"b" * 32]


def test_tracker_for_configuration_is_deprecated_and_cached_beside_it() -> None:
    configuration = Configuration(secret_key=SECRET)
    with pytest.deprecated_call():
        tracker = Tracker.for_configuration(configuration)
    with pytest.deprecated_call():
        assert Tracker.for_configuration(configuration) is tracker
    # Nothing is written onto the frozen configuration, and equal
    # configurations stay equal.
    assert "_tracker" not in vars(configuration)
    assert configuration == Configuration(secret_key=SECRET)


def test_copy_and_pickle() -> None:
    configuration = Configuration(
        secret_key=SECRET, base_click_tracking_url="https://t.example.com/c/"
    )
    tracker = Tracker(configuration)
    tracker.click_url("https://example.com/")
    for clone in (
        copy.copy(configuration),
        copy.deepcopy(configuration),
        pickle.loads(pickle.dumps(configuration)),
    ):
        assert clone == configuration
        assert vars(clone) == vars(configuration)
        url = Tracker(clone).click_url("https://example.com/")
        assert tracker.decode_click(url).tracked_url


# -- from_mapping ----------------------------------------------------------------


def test_from_mapping_converts_environment_text() -> None:
    environ = {
        "MAILTRACK_SECRET_KEY": SECRET,
        "MAILTRACK_BASE_CLICK_TRACKING_URL": "https://t.example.com/c/",
        "MAILTRACK_INCLUDE_WEBHOOK_URL": "yes",
        "MAILTRACK_APPEND_SLASH": "0",
        "MAILTRACK_CASE_INSENSITIVE_TOKENS": "TRUE",
        "MAILTRACK_ANONYMIZE_IP": "off",
        "MAILTRACK_MAX_AGE": " 3600 ",
        "MAILTRACK_MAX_TOKEN_LENGTH": "2048",
        "MAILTRACK_TRUSTED_PROXIES": "2",
        "MAILTRACK_PROXY_HEADER": "X-Real-IP",
        "MAILTRACK_WEBHOOK_TIMEOUT_SECONDS": "2.5",
        "MAILTRACK_CLICK_SCAN_SECONDS": "3",
        "MAILTRACK_LEGACY_REDIRECT_HOSTS": "a.example.com, B.example.com ,",
        "MAILTRACK_UNTRACKED_URL_PATTERNS": json.dumps(["unsubscribe", "a,b"]),
        "MAILTRACK_DEFAULT_METADATA": '{"list": "news", "n": 1}',
        "MAILTRACK_ENCRYPTION_KEY": json.dumps(["e" * 16, "f" * 16]),
        "MAILTRACK_BASE_URL": "https://t.example.com",  # an adapter key
        "OTHER_SETTING": "ignored",
    }
    configuration = Configuration.from_mapping(environ)
    assert configuration.secret_key == SECRET
    assert configuration.include_webhook_url is True
    assert configuration.append_slash is False
    assert configuration.case_insensitive_tokens is True
    assert configuration.anonymize_ip is False
    assert configuration.max_age == 3600
    assert configuration.max_token_length == 2048
    assert configuration.trusted_proxies == 2
    assert configuration.proxy_header == "X-Real-IP"
    assert Configuration.from_mapping({"MAILTRACK_PROXY_HEADER": ""}).proxy_header == (
        "X-Forwarded-For"
    )
    assert configuration.webhook_timeout_seconds == 2.5
    assert configuration.click_scan_seconds == 3.0
    assert configuration.legacy_redirect_hosts == {"a.example.com", "b.example.com"}
    assert configuration.untracked_url_patterns == ("unsubscribe", "a,b")
    assert configuration.default_metadata == {"list": "news", "n": 1}
    assert configuration.encryption_keys == [b"e" * 16, b"f" * 16]
    tracker = Tracker(configuration)
    url = tracker.click_url("https://example.com/")
    assert tracker.decode_click(url).metadata == {"list": "news", "n": 1}


def test_from_mapping_keeps_typed_values_and_overrides() -> None:
    mapping = {
        "MAILTRACK_MAX_AGE": 60,
        "MAILTRACK_APPEND_SLASH": True,
        "MAILTRACK_DEFAULT_METADATA": {"a": 1},
        "MAILTRACK_SECRET_KEY": [OLD, SECRET],
    }
    configuration = Configuration.from_mapping(mapping, max_age=120)
    assert configuration.max_age == 120
    assert configuration.append_slash is True
    assert configuration.default_metadata == {"a": 1}
    assert configuration.secret_keys == [OLD.encode(), SECRET.encode()]
    assert Configuration.from_mapping({"MAILTRACK_MAX_AGE": "none"}).max_age is None


def test_from_mapping_other_prefix() -> None:
    configuration = Configuration.from_mapping(
        {"TRACK_MAX_AGE": "5", "MAILTRACK_MAX_AGE": "9"}, prefix="TRACK_"
    )
    assert configuration.max_age == 5


@pytest.mark.parametrize(
    "key",
    ["MAILTRACK_SECRET_KYE", "MAILTRACK_MAXAGE", "MAILTRACK_BASE_URLS"],
)
def test_from_mapping_unknown_key(key: str) -> None:
    with pytest.raises(TypeError, match=key):
        Configuration.from_mapping({key: "x"})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("MAILTRACK_APPEND_SLASH", "maybe"),
        ("MAILTRACK_MAX_AGE", "an hour"),
        ("MAILTRACK_WEBHOOK_TIMEOUT_SECONDS", "soon"),
        ("MAILTRACK_DEFAULT_METADATA", "[1, 2]"),
        ("MAILTRACK_DEFAULT_METADATA", "{not json"),
        ("MAILTRACK_LEGACY_REDIRECT_HOSTS", "[broken"),
    ],
)
def test_from_mapping_bad_values(key: str, value: str) -> None:
    with pytest.raises(ValueError, match=key[len("MAILTRACK_") :].lower()):
        Configuration.from_mapping({key: value})


def test_insecure_unsigned_tokens_warns() -> None:
    with pytest.warns(InsecureTokenWarning, match="forge"):
        Configuration(insecure_unsigned_tokens=True)


# -- one error tree ------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: Configuration(secret_kye="x"), id="Configuration"),
        pytest.param(lambda: Configuration().replace(secret_kye="x"), id="replace"),
        pytest.param(lambda: Tracker(secret_kye="x"), id="Tracker"),
        pytest.param(
            lambda: Configuration.from_mapping({"MAILTRACK_SECRET_KYE": "x"}),
            id="from_mapping",
        ),
    ],
)
def test_unknown_settings_are_configuration_errors(build: object) -> None:
    with pytest.raises(UnknownSettingError, match="Did you mean") as info:
        build()  # type: ignore[operator]
    assert isinstance(info.value, ConfigurationError)
    assert isinstance(info.value, MailTrackError)
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: Configuration(pixel_position="middle"), id="value"),
        pytest.param(lambda: Configuration(secret_key=[""]).secret_keys, id="key"),
        pytest.param(
            lambda: Configuration(encryption_key="short").encryption_keys,
            id="encryption-key",
        ),
        pytest.param(
            lambda: Configuration.from_mapping({"MAILTRACK_MAX_AGE": "an hour"}),
            id="text",
        ),
        pytest.param(
            lambda: Configuration.from_mapping({"MAILTRACK_ANONYMIZE_IP": "maybe"}),
            id="bool-text",
        ),
    ],
)
def test_bad_values_are_configuration_errors(build: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        build()  # type: ignore[operator]
    assert isinstance(info.value, MailTrackError)
    assert isinstance(info.value, ValueError)


def test_missing_setting_error_is_also_a_runtime_error() -> None:
    assert issubclass(MissingSettingError, ConfigurationError)
    assert issubclass(MissingSettingError, RuntimeError)


def test_a_copy_is_not_checked_again() -> None:
    configuration = Configuration(secret_key=SECRET, max_age=5)
    assert copy.copy(configuration) == configuration
    assert pickle.loads(pickle.dumps(configuration)) == configuration


# -- text settings -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "default", "expected"),
    [
        pytest.param(None, True, True, id="unset"),
        pytest.param("", True, True, id="empty"),
        pytest.param("  ", False, False, id="blank"),
        pytest.param(" YES ", False, True, id="yes"),
        pytest.param("On", False, True, id="on"),
        pytest.param("1", False, True, id="1"),
        pytest.param("true", False, True, id="true"),
        pytest.param("off", True, False, id="off"),
        pytest.param("No", True, False, id="no"),
        pytest.param("0", True, False, id="0"),
        pytest.param("FALSE", True, False, id="false"),
        pytest.param(True, False, True, id="bool"),
        pytest.param(0, True, False, id="int"),
    ],
)
def test_parse_bool(value: object, default: bool, expected: bool) -> None:
    assert parse_bool(value, name="X", default=default) is expected


@pytest.mark.parametrize("value", ["maybe", "2", "flase", "enabled"])
def test_parse_bool_refuses_other_text(value: str) -> None:
    with pytest.raises(ConfigurationError, match="MAILTRACK_X must be true or false"):
        parse_bool(value, name="MAILTRACK_X")


def test_environ_settings_keeps_known_keys() -> None:
    environ = {
        "MAILTRACK_SECRET_KEY": "k",
        "MAILTRACK_DEMO": "1",
        "PATH": "/bin",
        "XMAILTRACK_MAX_AGE": "5",
    }
    assert environ_settings(environ) == {
        "MAILTRACK_SECRET_KEY": "k",
        "MAILTRACK_DEMO": "1",
    }


def test_environ_settings_default_is_os_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAILTRACK_MAX_AGE", "60")
    assert environ_settings()["MAILTRACK_MAX_AGE"] == "60"


# -- first-run settings (issue 14) ----------------------------------------------------


@pytest.fixture
def fresh_key_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the keys already warned about in this process."""
    monkeypatch.setattr(_secret_keys, "_warned_weak_keys", set())


@pytest.mark.usefixtures("fresh_key_warnings")
@pytest.mark.parametrize(
    ("key", "said"),
    [
        pytest.param("dev", "well-known placeholder", id="dev"),
        pytest.param("secret", "well-known placeholder", id="secret"),
        pytest.param("Change-Me", "well-known placeholder", id="changeme"),
        pytest.param(b"changeit", "well-known placeholder", id="changeit-bytes"),
        pytest.param(
            "please change me to a long random value", "placeholder", id="long-changeme"
        ),
        pytest.param(
            "django-insecure-" + "q" * 8 + "0123456789abcdefghijklmnop",
            "placeholder",
            id="django-insecure",
        ),
        pytest.param("a" * 31, "shorter than 32 bytes", id="31-bytes"),
        pytest.param("ab" * 40, "fewer than 5 different", id="repeated"),
        pytest.param(["old", SECRET], "shorter than 32", id="old-key-in-a-list"),
    ],
)
def test_weak_secret_key_warns(key: t.Any, said: str) -> None:
    with pytest.warns(WeakSecretKeyWarning, match=said) as caught:
        Configuration(secret_key=key)
    assert "mailtrack keygen" in str(caught[0].message)
    # A weak key is still a key: links work, with the warning.
    assert Configuration(secret_key=key).secret_keys


@pytest.mark.usefixtures("fresh_key_warnings")
def test_weak_secret_key_warns_once_per_key() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        configuration = Configuration(secret_key="dev")
        configuration.replace(max_age=5).replace(anonymize_ip=True)
        Configuration.from_mapping({"MAILTRACK_SECRET_KEY": "dev"})
        Configuration(secret_key="secret")
    assert [w.category for w in caught] == [WeakSecretKeyWarning] * 2


def test_strong_secret_keys_do_not_warn() -> None:
    # Run under filterwarnings=error: a warning would fail the test.
    Configuration(secret_key=SECRET)
    Configuration(secret_key=[OLD, NEW])
    Configuration(secret_key=b"\x00\x01\x02\x03\x04" * 7)
    Configuration(encryption_key="short-but-16-byte")  # not a secret_key


def test_environ_settings_warns_about_unknown_variables() -> None:
    environ = {
        "MAILTRACK_SECRET_KEY": SECRET,
        "MAILTRACK_ANONYMISE_IP": "1",
        "MAILTRACK_WEBHOOK_REFUSE_PRIVAT": "1",
        "MAILTRACK_ZZZZ": "x",
        "PATH": "/bin",
    }
    with pytest.warns(MailTrackWarning) as caught:
        assert environ_settings(environ) == {"MAILTRACK_SECRET_KEY": SECRET}
    (warning,) = caught
    message = str(warning.message)
    assert "MAILTRACK_ANONYMISE_IP (did you mean MAILTRACK_ANONYMIZE_IP?)" in message
    assert (
        "MAILTRACK_WEBHOOK_REFUSE_PRIVAT (did you mean"
        " MAILTRACK_WEBHOOK_REFUSE_PRIVATE?)" in message
    )
    # No guess when nothing is close.
    assert message.endswith("MAILTRACK_ZZZZ.")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("false", False), ("no", False), ("TRUE", True), ("1", True)],
)
def test_boolean_parameters_given_as_text(value: str, expected: bool) -> None:
    configuration = Configuration(anonymize_ip=value, append_slash=value)
    assert configuration.anonymize_ip is expected
    assert configuration.append_slash is expected


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: Configuration(anonymize_ip="flase"), id="bool-text"),
        pytest.param(lambda: Configuration(webhook_timeout_seconds=0), id="timeout-0"),
        pytest.param(
            lambda: Configuration(webhook_timeout_seconds=float("inf")),
            id="timeout-inf",
        ),
        pytest.param(
            lambda: Configuration.from_mapping({"MAILTRACK_CLICK_SCAN_SECONDS": "nan"}),
            id="nan",
        ),
        pytest.param(
            lambda: (
                Configuration.from_mapping(
                    {"MAILTRACK_SECRET_KEY": "[1, 2]"}
                ).secret_keys
            ),
            id="key-list-of-numbers",
        ),
    ],
)
def test_unusable_values_are_configuration_errors(make: t.Callable[[], object]) -> None:
    with pytest.raises(ConfigurationError):
        make()
