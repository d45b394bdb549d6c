"""Reading tokens made by the real pytracking 0.2.2, during a migration."""

from __future__ import annotations

import base64
import json
import typing as t
import warnings

import pytest
import pytracking
from cryptography.fernet import Fernet
from flask_mailtrack import Configuration
from flask_mailtrack import get_click_tracking_result
from flask_mailtrack import get_open_tracking_result
from flask_mailtrack import InsecureTokenWarning
from flask_mailtrack import InvalidToken
from flask_mailtrack import MailTrackError
from flask_mailtrack import Tracker

SECRET = "test-secret-key-0123456789abcdef"
OPEN_BASE = "https://t.example.com/o/"
CLICK_BASE = "https://t.example.com/c/"
URL = "https://shop.example.com/sale?id=42"
METADATA = {"customer_id": 1, "name": "Zoë"}
FERNET_KEY = Fernet.generate_key()


def _theirs(**kwargs: t.Any) -> t.Any:
    return pytracking.Configuration(
        base_open_tracking_url=OPEN_BASE,
        base_click_tracking_url=CLICK_BASE,
        **kwargs,
    )


def _ours(**kwargs: t.Any) -> Tracker:
    return Tracker(
        Configuration(
            secret_key=SECRET,
            base_open_tracking_url=OPEN_BASE,
            base_click_tracking_url=CLICK_BASE,
            **kwargs,
        )
    )


MIGRATING = _ours(accept_legacy_tokens=True, legacy_redirect_hosts=["SHOP.example.com"])
MIGRATING_FERNET = _ours(
    accept_legacy_tokens=True, encryption_bytestring_key=FERNET_KEY
)


def test_plain_open_token() -> None:
    url = pytracking.get_open_tracking_url(METADATA, configuration=_theirs())
    result = MIGRATING.decode_open(url)
    assert result.metadata == METADATA
    assert result.legacy is True
    assert result.issued_at is None
    assert result.is_open_tracking
    # The bare token, as pytracking's views passed it, works too.
    assert MIGRATING.decode_open(url[len(OPEN_BASE) :]).metadata == METADATA


def test_plain_click_token_to_an_allowed_host() -> None:
    url = pytracking.get_click_tracking_url(URL, METADATA, configuration=_theirs())
    result = MIGRATING.decode_click(url)
    assert result.tracked_url == URL
    assert result.metadata == METADATA
    assert result.legacy is True


def test_plain_click_token_to_another_host_is_refused() -> None:
    # Anyone can make a plain pytracking token: without the allow-list it
    # would be an open redirect.
    theirs = _theirs()
    for target in (
        "https://evil.example/",
        "https://shop.example.com.evil.example/",
        "https://evil.example/?https://shop.example.com/",
        "javascript:alert(1)",
    ):
        url = pytracking.get_click_tracking_url(target, None, configuration=theirs)
        with pytest.raises(InvalidToken) as info:
            MIGRATING.decode_click(url)
        assert info.value.reason in ("legacy", "target")
    no_hosts = _ours(accept_legacy_tokens=True)
    with pytest.raises(InvalidToken):
        no_hosts.decode_click(
            pytracking.get_click_tracking_url(URL, None, configuration=theirs)
        )


@pytest.mark.parametrize("fernet", [False, True])
def test_webhook_and_default_metadata(fernet: bool) -> None:
    theirs = _theirs(
        webhook_url="https://hooks.example.com/in",
        include_webhook_url=True,
        default_metadata={"list": "news"},
        include_default_metadata=True,
        encryption_bytestring_key=FERNET_KEY if fernet else None,
    )
    url = pytracking.get_click_tracking_url(URL, METADATA, configuration=theirs)
    ours = _ours(
        accept_legacy_tokens=True,
        legacy_redirect_hosts=["shop.example.com"],
        include_webhook_url=True,
        encryption_bytestring_key=FERNET_KEY if fernet else None,
    )
    result = ours.decode_click(url)
    assert result.metadata == {"list": "news", **METADATA}
    # Anyone can write a plain token, so only a Fernet token's webhook URL
    # is honoured (a forged one would make the server post anywhere).
    assert result.webhook_url == ("https://hooks.example.com/in" if fernet else None)


@pytest.mark.parametrize("target", [URL, "https://any.example/else"])
def test_fernet_click_token(target: str) -> None:
    # Fernet tokens are authenticated, so any safe target is followed.
    theirs = _theirs(encryption_bytestring_key=FERNET_KEY)
    url = pytracking.get_click_tracking_url(target, METADATA, configuration=theirs)
    result = MIGRATING_FERNET.decode_click(url)
    assert result.tracked_url == target
    assert result.metadata == METADATA
    assert result.legacy is True
    assert result.issued_at is not None


def test_fernet_open_token() -> None:
    theirs = _theirs(encryption_bytestring_key=FERNET_KEY)
    url = pytracking.get_open_tracking_url(METADATA, configuration=theirs)
    assert MIGRATING_FERNET.decode_open(url).metadata == METADATA


def test_fernet_token_with_another_key_is_refused() -> None:
    theirs = _theirs(encryption_bytestring_key=Fernet.generate_key())
    url = pytracking.get_click_tracking_url(URL, METADATA, configuration=theirs)
    with pytest.raises(InvalidToken):
        MIGRATING_FERNET.decode_click(url)
    # Without the Fernet key, a Fernet token cannot be read at all.
    with pytest.raises(InvalidToken):
        MIGRATING.decode_click(url)


def test_fernet_unsafe_target_is_refused() -> None:
    theirs = _theirs(encryption_bytestring_key=FERNET_KEY)
    url = pytracking.get_click_tracking_url(
        "javascript:alert(1)", None, configuration=theirs
    )
    with pytest.raises(InvalidToken) as info:
        MIGRATING_FERNET.decode_click(url)
    assert info.value.reason == "target"


def test_fernet_key_makes_new_tokens_encrypted() -> None:
    token = MIGRATING_FERNET.click_token(URL, METADATA)
    assert token.startswith("2")
    assert MIGRATING_FERNET.decode_click(token).metadata == METADATA


@pytest.mark.parametrize("kind", ["open", "click"])
def test_legacy_open_and_click_are_not_interchangeable(kind: str) -> None:
    theirs = _theirs(encryption_bytestring_key=FERNET_KEY)
    if kind == "open":
        url = pytracking.get_open_tracking_url(METADATA, configuration=theirs)
        with pytest.raises(InvalidToken):
            MIGRATING_FERNET.decode_click(url.replace(OPEN_BASE, CLICK_BASE))
    else:
        url = pytracking.get_click_tracking_url(URL, METADATA, configuration=theirs)
        with pytest.raises(InvalidToken):
            MIGRATING_FERNET.decode_open(url.replace(CLICK_BASE, OPEN_BASE))


def test_legacy_tokens_refused_unless_enabled() -> None:
    strict = _ours(legacy_redirect_hosts=["shop.example.com"])
    plain = pytracking.get_click_tracking_url(URL, METADATA, configuration=_theirs())
    plain_open = pytracking.get_open_tracking_url(METADATA, configuration=_theirs())
    fernet = pytracking.get_click_tracking_url(
        URL, METADATA, configuration=_theirs(encryption_bytestring_key=FERNET_KEY)
    )
    strict_fernet = _ours(encryption_bytestring_key=FERNET_KEY)
    for tracker, url in ((strict, plain), (strict_fernet, fernet)):
        with pytest.raises(InvalidToken) as info:
            tracker.decode_click(url)
        assert info.value.reason == "format"
    with pytest.raises(InvalidToken):
        strict.decode_open(plain_open)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("eyJ1cmwiOiAi", id="truncated"),
        pytest.param("eyJ1cmwiOiAiaHR0cHM6Ly9zaG9wLmV4YW1wbGUuY29tL3gifQ", id="no-pad"),
        pytest.param("WzEsIDJd", id="json-list"),
        pytest.param("eyJ1cmwiOiAxfQ==", id="url-not-text"),
        pytest.param("eyJ4IjogMX0=", id="unknown-key"),
        pytest.param("eyJtZXRhZGF0YSI6IFtdfQ==", id="metadata-list"),
        pytest.param("__8=", id="not-utf8"),
        pytest.param("W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb" * 60, id="deep-json"),
        pytest.param("gAAAAABnot-a-real-fernet-token==", id="fake-fernet"),
        pytest.param("eyJ1cmwiOiAiaHR0cHM6Ly9zaG9wLmV4YW1wbGUuY29tLyJ9 ", id="space"),
    ],
)
def test_malformed_legacy_tokens(token: str) -> None:
    for tracker in (MIGRATING, MIGRATING_FERNET):
        for kind in ("open", "click"):
            with pytest.raises(InvalidToken):
                tracker.decode(kind, token)  # type: ignore[arg-type]


def test_compat_functions_read_legacy_tokens() -> None:
    configuration = MIGRATING.configuration
    url = pytracking.get_click_tracking_url(URL, METADATA, configuration=_theirs())
    assert get_click_tracking_result(url, configuration=configuration).legacy
    open_url = pytracking.get_open_tracking_url(METADATA, configuration=_theirs())
    result = get_open_tracking_result(
        open_url, request_data={"user_agent": "x"}, configuration=configuration
    )
    assert result.request_data == {"user_agent": "x"}


# -- making unsigned pytracking tokens (insecure, opt-in) ------------------------


def test_insecure_unsigned_tokens_warn_and_round_trip() -> None:
    with pytest.warns(InsecureTokenWarning):
        configuration = Configuration(
            base_open_tracking_url=OPEN_BASE,
            base_click_tracking_url=CLICK_BASE,
            insecure_unsigned_tokens=True,
            legacy_redirect_hosts=["shop.example.com"],
        )
    tracker = Tracker(configuration)
    url = tracker.click_url(URL, METADATA)
    # A pytracking server still reads it...
    theirs = pytracking.get_click_tracking_result(url, configuration=_theirs())
    assert theirs.tracked_url == URL and theirs.metadata == METADATA
    # ... and so do we.
    result = tracker.decode_click(url)
    assert result.tracked_url == URL and result.metadata == METADATA
    open_url = tracker.open_url(METADATA)
    assert tracker.decode_open(open_url).metadata == METADATA
    assert pytracking.get_open_tracking_result(open_url, configuration=_theirs())
    # A host that would not be followed back gets no link.
    with pytest.raises(MailTrackError, match="legacy_redirect_hosts"):
        tracker.click_url("https://other.example/")


def test_no_warning_without_the_option() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Configuration(secret_key=SECRET, accept_legacy_tokens=True)


# -- hardening (adversarial review): deep JSON, webhook URLs, base64, hosts ----


def plain_token(data: t.Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode("ascii")


def legacy_tracker(
    hosts: t.Sequence[str] = ("www.example.com",), **extra: t.Any
) -> Tracker:
    return Tracker(
        secret_key=SECRET,
        base_open_tracking_url=OPEN_BASE,
        base_click_tracking_url=CLICK_BASE,
        accept_legacy_tokens=True,
        legacy_redirect_hosts=hosts,
        **extra,
    )


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[" * 3000, id="arrays"),
        pytest.param(b'{"a":' * 1000, id="objects"),
        pytest.param(b'{"metadata":' + b"[" * 2900 + b"]" * 2900 + b"}", id="inside"),
    ],
)
def test_legacy_deep_json_is_an_invalid_token(raw: bytes) -> None:
    token = base64.urlsafe_b64encode(raw).decode("ascii")
    with pytest.raises(InvalidToken):
        legacy_tracker().decode_open(token)


@pytest.mark.parametrize("kind", ["open", "click"])
def test_plain_legacy_token_cannot_choose_the_webhook(kind: str) -> None:
    tracker = legacy_tracker(
        include_webhook_url=True, webhook_url="https://hooks.example.com/in"
    )
    data: dict[str, t.Any] = {
        "metadata": {"a": 1},
        "webhook": "http://169.254.169.254/latest/meta-data/",
    }
    if kind == "click":
        data["url"] = "https://www.example.com/x"
    result = tracker.decode(kind, plain_token(data))  # type: ignore[arg-type]
    assert result.webhook_url is None


def test_fernet_legacy_token_keeps_its_webhook() -> None:
    fernet = pytest.importorskip("cryptography.fernet")
    key = fernet.Fernet.generate_key()
    tracker = legacy_tracker(include_webhook_url=True, encryption_bytestring_key=key)
    token = (
        fernet.Fernet(key)
        .encrypt(json.dumps({"webhook": "https://hooks.example.com/a"}).encode())
        .decode()
    )
    assert tracker.decode_open(token).webhook_url == "https://hooks.example.com/a"


def _non_canonical(token: str) -> str:
    """``token`` with unused bits set in the character before the padding."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    stripped = token.rstrip("=")
    unused = 4 if len(token) - len(stripped) == 2 else 2
    last = alphabet.index(stripped[-1])
    assert last % (1 << unused) == 0  # canonical: the unused bits are zero
    changed = alphabet[last + 1]
    return stripped[:-1] + changed + token[len(stripped) :]


@pytest.mark.parametrize("padding", [1, 2])
def test_legacy_fernet_token_in_non_canonical_base64_is_refused(padding: int) -> None:
    fernet = pytest.importorskip("cryptography.fernet")
    key = fernet.Fernet.generate_key()
    tracker = legacy_tracker(encryption_bytestring_key=key)
    for size in range(40):
        token = fernet.Fernet(key).encrypt(b'{"metadata": {"n": "%s"}}' % (b"x" * size))
        text = token.decode()
        if len(text) - len(text.rstrip("=")) == padding:
            break
    tracker.decode_open(text)
    with pytest.raises(InvalidToken):
        tracker.decode_open(_non_canonical(text))


@pytest.mark.parametrize("padding", [1, 2])
def test_legacy_plain_token_in_non_canonical_base64_is_refused(padding: int) -> None:
    tracker = legacy_tracker()
    for size in range(3):
        text = plain_token({"metadata": {"n": "x" * size}})
        if len(text) - len(text.rstrip("=")) == padding:
            break
    tracker.decode_open(text)
    with pytest.raises(InvalidToken):
        tracker.decode_open(_non_canonical(text))


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://legacy.example.com.evil.example/", id="suffix"),
        pytest.param("https://evil.example/legacy.example.com", id="path"),
        pytest.param("https://legacy.example.com@evil.example/", id="userinfo"),
        pytest.param("https://evil.example\\@legacy.example.com/", id="backslash"),
        pytest.param("https://legacy.example.com./", id="trailing-dot"),
        pytest.param("//legacy.example.com/", id="scheme-relative"),
        pytest.param("javascript://legacy.example.com/%0aalert(1)", id="javascript"),
        pytest.param("https://legacy.example.com%2eevil.example/", id="escaped-dot"),
    ],
)
def test_plain_legacy_click_token_never_leaves_the_allowed_hosts(url: str) -> None:
    tracker = legacy_tracker(["legacy.example.com"])
    token = plain_token({"url": url})
    with pytest.raises(InvalidToken):
        tracker.decode_click(token)


def test_plain_legacy_click_token_to_an_allowed_host() -> None:
    tracker = legacy_tracker(["legacy.example.com"])
    result = tracker.decode_click(plain_token({"url": "https://LEGACY.example.com/"}))
    assert result.tracked_url == "https://LEGACY.example.com/"


# -- making pytracking's Fernet tokens (insecure_unsigned_tokens + its key) ------


def _fernet_tracker() -> Tracker:
    with pytest.warns(InsecureTokenWarning, match="Fernet"):
        configuration = Configuration(
            base_open_tracking_url=OPEN_BASE,
            base_click_tracking_url=CLICK_BASE,
            insecure_unsigned_tokens=True,
            encryption_bytestring_key=FERNET_KEY,
        )
    return Tracker(configuration)


def test_insecure_tokens_with_a_fernet_key_are_pytracking_fernet_tokens() -> None:
    tracker = _fernet_tracker()
    theirs = _theirs(encryption_bytestring_key=FERNET_KEY)
    # A host outside legacy_redirect_hosts is fine: Fernet tokens are
    # authenticated, so they are followed wherever they point.
    click_url = tracker.click_url(URL, METADATA)
    open_url = tracker.open_url(METADATA)
    for url in (click_url, open_url):
        token = url.rpartition("/")[2]
        assert token.startswith("gAAAAA")
        # The metadata is hidden, as the key was meant to hide it.
        raw = base64.urlsafe_b64decode(token)
        for secret in ("customer_id", "shop.example.com", "sale?id=42"):
            assert secret.encode() not in raw and secret not in url
    # pytracking 0.2.2 holding the key reads them...
    result = pytracking.get_click_tracking_result(
        click_url,
        base_click_tracking_url=CLICK_BASE,
        encryption_bytestring_key=FERNET_KEY,
    )
    assert result.tracked_url == URL and result.metadata == METADATA
    result = pytracking.get_open_tracking_result(
        open_url, configuration=theirs, encryption_bytestring_key=FERNET_KEY
    )
    assert result.metadata == METADATA and result.is_open_tracking
    # ... and so does flask_mailtrack, in this mode and in legacy mode.
    for reader in (tracker, MIGRATING_FERNET):
        assert reader.decode_click(click_url).tracked_url == URL
        assert reader.decode_open(open_url).metadata == METADATA
        with pytest.raises(InvalidToken):
            reader.decode_open(click_url)
    # Without the key, pytracking cannot read them.
    with pytest.raises(Exception):  # noqa: B017 - whatever pytracking raises
        pytracking.get_open_tracking_result(open_url, configuration=_theirs())


def test_pytracking_fernet_tokens_read_by_flask_mailtrack() -> None:
    theirs = _theirs(encryption_bytestring_key=FERNET_KEY)
    click_url = pytracking.get_click_tracking_url(URL, METADATA, configuration=theirs)
    open_url = pytracking.get_open_tracking_url(METADATA, configuration=theirs)
    for reader in (MIGRATING_FERNET, _fernet_tracker()):
        result = reader.decode_click(click_url)
        assert result.tracked_url == URL and result.metadata == METADATA
        assert result.legacy
        assert reader.decode_open(open_url).metadata == METADATA


def test_insecure_tokens_with_a_bad_fernet_key_are_refused() -> None:
    with pytest.warns(InsecureTokenWarning):
        configuration = Configuration(
            base_open_tracking_url=OPEN_BASE,
            insecure_unsigned_tokens=True,
            encryption_bytestring_key="not a fernet key at all, but long",
        )
    with pytest.raises(MailTrackError, match="Fernet"):
        Tracker(configuration)
