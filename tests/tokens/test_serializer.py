"""Tokens: round trips, tamper detection, strict decoding, rotation, expiry."""

from __future__ import annotations

import string
import time
import typing as t

import pytest
from flask_mailtrack import Configuration
from flask_mailtrack import ExpiredToken
from flask_mailtrack import InvalidToken
from flask_mailtrack import MailTrackError
from flask_mailtrack import Tracker
from flask_mailtrack.tokens import CLICK
from flask_mailtrack.tokens import MAX_BODY_SIZE
from flask_mailtrack.tokens import OPEN
from flask_mailtrack.tokens import Payload
from flask_mailtrack.tokens._payload import _encode_rest
from flask_mailtrack.tokens._payload import _pack
from flask_mailtrack.tokens._payload import unpack
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

SECRET = "test-secret-key-0123456789abcdef"
ENCRYPTION_KEY = "test-encryption-key-0123456789ab"
OPEN_BASE = "https://t.example.com/mailtrack/o/"
CLICK_BASE = "https://t.example.com/mailtrack/c/"
URL = "https://www.example.com/products/item?id=42&utm_source=newsletter"
METADATA = {"customer_id": 12345, "campaign_id": "spring-sale-2026"}


def _tracker(**kwargs: t.Any) -> Tracker:
    return Tracker(
        Configuration(
            base_open_tracking_url=OPEN_BASE,
            base_click_tracking_url=CLICK_BASE,
            **kwargs,
        )
    )


#: One tracker per token format.
MODES = {
    "signed": _tracker(secret_key=SECRET),
    "encrypted": _tracker(encryption_key=ENCRYPTION_KEY),
    "signed-ci": _tracker(secret_key=SECRET, case_insensitive_tokens=True),
    "encrypted-ci": _tracker(
        encryption_key=ENCRYPTION_KEY, case_insensitive_tokens=True
    ),
}
MARKERS = {"signed": "1", "encrypted": "2", "signed-ci": "3", "encrypted-ci": "4"}
modes = pytest.mark.parametrize("mode", list(MODES))

# -- strategies -----------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
metadata_strategy = st.dictionaries(st.text(), json_values, max_size=6)

_host_label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,14}[a-z0-9])?", fullmatch=True)
_hosts = st.lists(_host_label, min_size=1, max_size=4).map(".".join) | st.sampled_from(
    ["bücher.de", "例え.jp", "[::1]", "[2001:db8::7]", "127.0.0.1"]
)
_url_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=60
)
safe_urls = st.builds(
    lambda scheme, host, port, path, query: (
        f"{scheme}://{host}{port}/{path}{query}".rstrip()
    ),
    st.sampled_from(["http", "https", "HTTPS", "Http"]),
    _hosts,
    st.sampled_from(["", ":8080", ":1"]),
    _url_text,
    st.one_of(st.just(""), _url_text.map(lambda q: "?" + q)),
)


# -- round trips ----------------------------------------------------------------


@modes
@settings(max_examples=60, deadline=None)
@given(url=safe_urls, metadata=metadata_strategy)
def test_click_round_trip(mode: str, url: str, metadata: dict[str, t.Any]) -> None:
    tracker = MODES[mode]
    tracked = tracker.click_url(url, metadata)
    assert tracked.startswith(CLICK_BASE + MARKERS[mode])
    result = tracker.decode_click(tracked)
    assert result.tracked_url == url
    assert result.metadata == metadata
    assert result.is_click_tracking and not result.is_open_tracking
    # The bare token decodes the same.
    assert tracker.decode_click(tracked[len(CLICK_BASE) :]).tracked_url == url


@modes
@settings(max_examples=40, deadline=None)
@given(metadata=metadata_strategy)
def test_open_round_trip(mode: str, metadata: dict[str, t.Any]) -> None:
    tracker = MODES[mode]
    result = tracker.decode_open(tracker.open_url(metadata))
    assert result.metadata == metadata
    assert result.tracked_url is None
    assert result.is_open_tracking and not result.is_click_tracking


@settings(max_examples=100, deadline=None)
@given(url=safe_urls)
def test_generated_urls_are_safe_targets(url: str) -> None:
    from flask_mailtrack import is_safe_target

    assert is_safe_target(url)


@modes
def test_round_trip_carries_times_and_webhook(mode: str) -> None:
    base = MODES[mode].configuration
    tracker = Tracker(
        base.replace(
            webhook_url="https://hooks.example.com/in",
            include_webhook_url=True,
            max_age=3600,
        )
    )
    before = int(time.time())
    result = tracker.decode_click(tracker.click_url(URL, METADATA))
    assert result.webhook_url == "https://hooks.example.com/in"
    assert result.issued_at is not None and before <= result.issued_at <= time.time()
    assert result.expires_at == result.issued_at + 3600
    assert result.legacy is False


def test_case_insensitive_tokens_survive_case_changes() -> None:
    for mode in ("signed-ci", "encrypted-ci"):
        tracker = MODES[mode]
        token = tracker.click_token(URL, METADATA)
        assert token == token.lower()
        for variant in (token.upper(), token.swapcase(), token.title()):
            assert tracker.decode_click(variant).tracked_url == URL


def test_non_dict_mapping_metadata() -> None:
    import types

    tracker = MODES["signed"]
    proxy = types.MappingProxyType({"a": 1})
    assert tracker.decode_open(tracker.open_url(proxy)).metadata == {"a": 1}
    with pytest.raises(TypeError):
        tracker.open_url(["not", "a", "mapping"])  # type: ignore[arg-type]


# -- tampering ------------------------------------------------------------------

_B64 = string.ascii_letters + string.digits + "-_"
_B32 = string.ascii_lowercase + "234567"


def _substitutes(mode: str, char: str) -> list[str]:
    if mode.endswith("-ci"):
        candidates = ["a", "q", "z", "2", "7", "1", "A"]
        # In the case-insensitive alphabet a case change is the same token.
        return [c for c in candidates if c.lower() != char.lower()]
    candidates = ["A", "Q", "g", "w", "z", "0", "9", "-", "_", char.swapcase()]
    return [c for c in dict.fromkeys(candidates) if c != char]


@modes
@pytest.mark.parametrize("kind", [OPEN, CLICK])
def test_every_single_character_change_is_rejected(mode: str, kind: str) -> None:
    tracker = MODES[mode]
    token = tracker.click_token(URL, METADATA) if kind == CLICK else None
    token = token or tracker.open_token(METADATA)
    decode = tracker.decode_click if kind == CLICK else tracker.decode_open
    decode(token)
    tried = 0
    for index, char in enumerate(token):
        for substitute in _substitutes(mode, char):
            changed = token[:index] + substitute + token[index + 1 :]
            with pytest.raises(InvalidToken):
                decode(changed)
            tried += 1
        # Deleting or doubling a character is refused too.
        with pytest.raises(InvalidToken):
            decode(token[:index] + token[index + 1 :])
        with pytest.raises(InvalidToken):
            decode(token[:index] + char + token[index:])
    assert tried >= 5 * len(token)


@modes
def test_every_truncation_is_rejected(mode: str) -> None:
    tracker = MODES[mode]
    token = tracker.click_token(URL, METADATA)
    for end in range(len(token)):
        with pytest.raises(InvalidToken):
            tracker.decode_click(token[:end])
        with pytest.raises(InvalidToken):
            tracker.decode_click(token[end + 1 :])


def _valid_token() -> str:
    return MODES["signed"].click_token(URL, METADATA)


MALFORMED = [
    pytest.param("", id="empty"),
    pytest.param("1", id="marker-only"),
    pytest.param("1" + "é" * 40, id="non-ascii"),
    pytest.param("1" + "\u0661" * 40, id="unicode-digits"),
    pytest.param("\u0661abc", id="unicode-marker"),
    pytest.param(_valid_token() + "=", id="padded-1"),
    pytest.param(_valid_token() + "==", id="padded-2"),
    pytest.param(_valid_token() + " ", id="space-appended"),
    pytest.param(_valid_token() + "\n", id="newline-appended"),
    pytest.param(_valid_token() + "\t", id="tab-appended"),
    pytest.param(_valid_token() + "\r\n", id="crlf-appended"),
    pytest.param(" " + _valid_token(), id="space-prepended"),
    pytest.param(_valid_token()[:20] + "\u200b" + _valid_token()[20:], id="zero-width"),
    pytest.param(_valid_token()[:20] + "+/" + _valid_token()[22:], id="std-base64"),
    pytest.param(_valid_token()[:20] + "%2F" + _valid_token()[23:], id="percent"),
    pytest.param("1" + "A" * (1024 * 1024), id="huge-1mb"),
    pytest.param("x" * (1024 * 1024), id="huge-garbage"),
    pytest.param("9" + _valid_token()[1:], id="unknown-marker"),
    pytest.param("eyJ1cmwiOiAiaHR0cHM6Ly9ldmlsLmV4YW1wbGUvIn0=", id="pytracking"),
    pytest.param("gAAAAABgarbage", id="fernet-like"),
    pytest.param("1" + "A" * 22, id="tag-sized"),
    pytest.param("\x00" * 30, id="nul"),
    pytest.param("\ud800abc", id="lone-surrogate"),
]


@pytest.mark.parametrize("token", MALFORMED)
@modes
def test_malformed_tokens_raise_invalid_token_only(mode: str, token: str) -> None:
    tracker = MODES[mode]
    for kind in (OPEN, CLICK):
        with pytest.raises(InvalidToken) as info:
            tracker.decode(kind, token)  # type: ignore[arg-type]
        assert type(info.value) in (InvalidToken, ExpiredToken)
        with pytest.raises(InvalidToken):
            tracker.serializer.loads(kind, token)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [None, b"1abc", 42, ["1abc"]])
def test_non_text_tokens(value: t.Any) -> None:
    tracker = MODES["signed"]
    with pytest.raises(InvalidToken):
        tracker.decode_click(value)
    with pytest.raises(InvalidToken):
        tracker.serializer.loads(CLICK, value)


@settings(max_examples=300, deadline=None)
@given(
    token=st.text(max_size=300)
    | st.from_regex(r"[1-4][A-Za-z0-9_=-]{0,300}", fullmatch=True)
)
def test_arbitrary_text_raises_invalid_token_only(token: str) -> None:
    for tracker in MODES.values():
        for kind in (OPEN, CLICK):
            with pytest.raises(InvalidToken):
                tracker.decode(kind, token)  # type: ignore[arg-type]


def test_length_cap_is_checked_before_decoding() -> None:
    import os

    tracker = _tracker(secret_key=SECRET, max_token_length=200)
    long_url = URL + "&x=" + os.urandom(150).hex()
    # A link that could not be read back is not made...
    with pytest.raises(MailTrackError, match="max_token_length"):
        tracker.click_url(long_url, METADATA)
    # ... and a longer token is refused before it is decoded.
    token = MODES["signed"].click_token(long_url, METADATA)
    with pytest.raises(InvalidToken) as info:
        tracker.serializer.loads(CLICK, token)
    assert info.value.reason == "length"


# -- open/click separation -----------------------------------------------------


@modes
def test_open_and_click_tokens_are_not_interchangeable(mode: str) -> None:
    tracker = MODES[mode]
    open_token = tracker.open_token(METADATA)
    click_token = tracker.click_token(URL, METADATA)
    with pytest.raises(InvalidToken):
        tracker.decode_click(open_token)
    with pytest.raises(InvalidToken):
        tracker.decode_open(click_token)


def test_formats_are_not_interchangeable() -> None:
    signed = MODES["signed"].click_token(URL, METADATA)
    encrypted = MODES["encrypted"].click_token(URL, METADATA)
    with pytest.raises(InvalidToken, match="not accepted"):
        MODES["encrypted"].decode_click(signed)
    with pytest.raises(InvalidToken, match="not accepted"):
        MODES["signed"].decode_click(encrypted)


def test_both_keys_make_encrypted_tokens_and_read_both() -> None:
    both = _tracker(secret_key=SECRET, encryption_key=ENCRYPTION_KEY)
    assert both.click_token(URL).startswith("2")
    assert both.decode_click(MODES["signed"].click_url(URL)).tracked_url == URL
    assert both.decode_click(MODES["signed-ci"].click_url(URL)).tracked_url == URL


def test_encrypted_tokens_hide_their_content() -> None:
    token = MODES["encrypted"].click_token(URL, {"email": "alice@example.com"})
    assert "alice" not in token and "example" not in token
    # A new nonce each time: the same payload never gives the same token.
    assert token != MODES["encrypted"].click_token(URL, {"email": "alice@example.com"})


# -- keys -----------------------------------------------------------------------


def test_no_key_configured() -> None:
    tracker = _tracker()
    with pytest.raises(MailTrackError, match="secret_key"):
        tracker.click_url(URL)
    with pytest.raises(MailTrackError, match="secret_key"):
        tracker.open_url()
    with pytest.raises(InvalidToken):
        tracker.decode_click(MODES["signed"].click_url(URL))


@pytest.mark.parametrize("option", ["secret_key", "encryption_key"])
def test_key_rotation(option: str) -> None:
    old_key = "old-key-0123456789abcdef-0123456789"
    new_key = "new-key-0123456789abcdef-0123456789"
    before = _tracker(**{option: old_key})
    rotated = _tracker(**{option: [old_key, new_key]})
    only_new = _tracker(**{option: [new_key]})
    old_token = before.click_token(URL, METADATA)

    # A token made with the older key still verifies after the rotation...
    assert rotated.decode_click(old_token).metadata == METADATA
    # ... the newest key makes new tokens...
    new_token = rotated.click_token(URL, METADATA)
    assert only_new.decode_click(new_token).metadata == METADATA
    with pytest.raises(InvalidToken):
        before.decode_click(new_token)
    # ... and removing a key invalidates its tokens.
    with pytest.raises(InvalidToken):
        only_new.decode_click(old_token)


def test_rotation_keeps_open_and_click_apart() -> None:
    rotated = _tracker(
        secret_key=[
            "old-key-0123456789-0123456789abc",
            "new-key-0123456789-0123456789abc",
        ]
    )
    old = _tracker(secret_key="old-key-0123456789-0123456789abc")
    with pytest.raises(InvalidToken):
        rotated.decode_click(old.open_token())


def test_encryption_keys_must_be_long_enough() -> None:
    with pytest.raises(MailTrackError, match="at least 16"):
        _tracker(encryption_key="short")


# -- expiry ---------------------------------------------------------------------


@modes
def test_expiry(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tracker = Tracker(MODES[mode].configuration.replace(max_age=60))
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.5)
    token = tracker.click_token(URL, METADATA)
    monkeypatch.undo()

    result = tracker.decode_click(token, now=1_800_000_059)
    assert result.expires_at == 1_800_000_060
    assert result.timestamp == 1_800_000_059
    with pytest.raises(ExpiredToken) as info:
        tracker.decode_click(token, now=1_800_000_060)
    assert isinstance(info.value, InvalidToken)
    assert info.value.reason == "expired"
    assert info.value.expires_at == 1_800_000_060
    assert info.value.payload.url == URL
    # Without max_age a token never expires.
    assert MODES[mode].decode_click(MODES[mode].click_token(URL), now=2**32).tracked_url


# -- payload --------------------------------------------------------------------


def _forge(tracker: Tracker, kind: str, raw: bytes) -> str:
    """A token whose signature is valid, for any bytes."""
    return tracker.serializer._seal(kind, raw)  # type: ignore[arg-type]


def pack_fields(
    url: str | None,
    metadata: t.Mapping[str, t.Any] | None,
    issued_at: int | None,
    expires_at: int | None = None,
    webhook_url: str | None = None,
) -> bytes:
    """The payload layout of these fields, as the serializer packs them."""
    return _pack(url, _encode_rest(metadata, webhook_url), issued_at, expires_at)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00\x00\x00", id="short"),
        pytest.param(b"\x10\x00\x00\x00\x01{}", id="unknown-flag"),
        pytest.param(b"\x02\x00\x00\x00\x01", id="expiry-missing"),
        pytest.param(b"\x00\x00\x00\x00\x01[1,2]", id="metadata-list"),
        pytest.param(b"\x00\x00\x00\x00\x01{} ", id="metadata-trailing"),
        pytest.param(b"\x00\x00\x00\x00\x01{", id="metadata-broken"),
        pytest.param(b"\x00\x00\x00\x00\x01" + b"[" * 2500, id="metadata-deep"),
        pytest.param(b"\x00\x00\x00\x00\x01\xff\xfe", id="not-utf8"),
        pytest.param(b"\x00\x00\x00\x00\x01a\nb", id="extra-field"),
        pytest.param(b"\x01\x00\x00\x00\x01not deflate", id="bad-deflate"),
        pytest.param(b"\x08\x00\x00\x00\x01https://x.example/", id="url-no-field"),
    ],
)
def test_forged_malformed_payloads(raw: bytes) -> None:
    tracker = MODES["signed"]
    for kind in (OPEN, CLICK):
        with pytest.raises(InvalidToken):
            tracker.decode(kind, _forge(tracker, kind, raw))  # type: ignore[arg-type]


def test_deflate_trailing_data_and_bombs_are_refused() -> None:
    import zlib

    from flask_mailtrack.tokens._payload import ZDICT

    def deflate(data: bytes) -> bytes:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -10, 2, 0, ZDICT)
        return compressor.compress(data) + compressor.flush()

    tracker = MODES["signed"]
    # Flags 0x20: the section after the URL (here, the metadata) is deflated.
    good = b"\x20\x00\x00\x00\x01" + deflate(b'{"a":1}')
    assert tracker.decode_open(_forge(tracker, OPEN, good)).metadata == {"a": 1}
    with pytest.raises(InvalidToken):
        tracker.decode_open(_forge(tracker, OPEN, good + b"\x00"))
    with pytest.raises(InvalidToken):
        tracker.decode_open(_forge(tracker, OPEN, good[:-1]))
    bomb = b'{"a":"' + b"a" * (MAX_BODY_SIZE * 4) + b'"}'
    with pytest.raises(InvalidToken):
        tracker.decode_open(
            _forge(tracker, OPEN, b"\x20\x00\x00\x00\x01" + deflate(bomb))
        )


def test_pack_refuses_what_it_cannot_encode() -> None:
    circular: dict[str, t.Any] = {}
    circular["self"] = circular
    for metadata in (
        {"nan": float("nan")},
        {"inf": float("inf")},
        {"x": object()},
        {(1, 2): "tuple key"},
        circular,
        {"s": "\ud800"},
    ):
        with pytest.raises(MailTrackError):
            pack_fields(None, metadata, 1)
    with pytest.raises(MailTrackError):
        pack_fields("https://a.example/\n", None, 1)
    with pytest.raises(MailTrackError):
        pack_fields(None, None, 1, webhook_url="https://a.example/\nx")
    for issued_at, expires_at in ((-1, None), (2**32, None), (1, 2**32), (None, None)):
        with pytest.raises(MailTrackError):
            pack_fields(None, None, issued_at, expires_at)  # type: ignore[arg-type]
    with pytest.raises(MailTrackError, match="JSON"):
        MODES["signed"].click_url(URL, {"x": object()})


@settings(max_examples=100, deadline=None)
@given(
    url=st.none() | safe_urls,
    metadata=metadata_strategy,
    issued_at=st.integers(0, 2**32 - 1),
    expires_at=st.none() | st.integers(0, 2**32 - 1),
    webhook=st.none() | safe_urls,
)
def test_pack_unpack_round_trip(
    url: str | None,
    metadata: dict[str, t.Any],
    issued_at: int,
    expires_at: int | None,
    webhook: str | None,
) -> None:
    payload = Payload(url, metadata, issued_at, expires_at, webhook)
    assert unpack(pack_fields(url, metadata, issued_at, expires_at, webhook)) == payload


def test_compression_only_when_shorter() -> None:
    # Flags: 0x10 the URL section is deflated, 0x20 the metadata section.
    short = pack_fields(None, {"a": 1}, 1)
    assert short[0] & 0x30 == 0 and short.endswith(b'{"a":1}')
    long = pack_fields(URL, METADATA, 1)
    assert long[0] & 0x30 == 0x30
    assert len(long) < len(URL) + 40
    # Sections shorter than 8 bytes are stored as they are, after their length.
    tiny_url = pack_fields("a.io/x", METADATA, 1)
    assert tiny_url[0] & 0x30 == 0x20
    assert tiny_url[5:12] == bytes((6,)) + b"a.io/x"


def test_sections_are_compressed_once_and_reused() -> None:
    from flask_mailtrack.tokens import _payload as payload

    payload._section.cache_clear()
    pack_fields(URL, METADATA, 1)
    pack_fields(URL, {"other": "recipient"}, 2)
    info = payload._section.cache_info()
    assert (info.hits, info.misses) == (1, 3)


@pytest.mark.parametrize("mode", ["signed", "encrypted", "signed-ci"])
def test_click_tokens_match_click_token(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = MODES[mode]
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.0)
    urls = [URL, "https://example.org/b", URL]
    tokens = tracker.click_tokens(urls, METADATA)
    assert len(tokens) == 3
    for url, token in zip(urls, tokens):
        result = tracker.decode_click(token)
        assert (result.tracked_url, result.metadata) == (url, METADATA)
        assert result.issued_at == 1_800_000_000
    if mode != "encrypted":  # AES-GCM nonces differ per token
        assert tokens == [tracker.click_token(url, METADATA) for url in urls]


def test_click_tokens_refuse_an_unsafe_url() -> None:
    with pytest.raises(MailTrackError):
        MODES["signed"].click_tokens([URL, "javascript:alert(1)"], METADATA)


def test_dumps_is_the_one_way_to_make_a_token() -> None:
    serializer = MODES["signed"].serializer
    one = serializer.dumps(CLICK, URL, METADATA, issued_at=1, expires_at=9)
    many = serializer.dumps(CLICK, [URL, URL], METADATA, issued_at=1, expires_at=9)
    assert many == [one, one]
    assert serializer.dumps(CLICK, (URL,), METADATA, issued_at=1, expires_at=9) == [one]
    assert serializer.dumps(CLICK, [], METADATA, issued_at=1) == []
    payload = serializer.loads(CLICK, one, now=2)
    assert (payload.url, payload.metadata, payload.issued_at) == (URL, METADATA, 1)
    # The issue time defaults to now.
    assert serializer.loads(OPEN, serializer.dumps(OPEN)).issued_at == pytest.approx(
        time.time(), abs=2
    )
    for wrong in (Payload(URL), iter([URL]), b"https://example.com/"):
        with pytest.raises(TypeError):
            serializer.dumps(CLICK, wrong)  # type: ignore[call-overload]


def test_dumps_without_a_key() -> None:
    serializer = _tracker().serializer
    assert not serializer.can_encode
    with pytest.raises(MailTrackError, match="No secret key"):
        serializer.dumps(OPEN)
