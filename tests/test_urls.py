"""Safe click targets (at encode and at decode) and tracking URL joins."""

from __future__ import annotations

import pytest
from flask_mailtrack import Configuration
from flask_mailtrack import ConfigurationError
from flask_mailtrack import InvalidToken
from flask_mailtrack import is_safe_target
from flask_mailtrack import MailTrackError
from flask_mailtrack import Tracker
from flask_mailtrack._urls import split_base_url
from flask_mailtrack._urls import strip_token
from flask_mailtrack._urls import TokenURL
from flask_mailtrack.tokens import CLICK
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from _apps import mt_middleware

SECRET = "test-secret-key-0123456789abcdef"

UNSAFE = [
    pytest.param("javascript:alert(1)", id="javascript"),
    pytest.param("JAVASCRIPT:alert(1)", id="javascript-upper"),
    pytest.param(" javascript:alert(1)", id="javascript-leading-space"),
    pytest.param("java\tscript:alert(1)", id="javascript-tab"),
    pytest.param("data:text/html,<script>alert(1)</script>", id="data"),
    pytest.param("vbscript:msgbox(1)", id="vbscript"),
    pytest.param("ftp://example.com/file", id="ftp"),
    pytest.param("mailto:a@example.com", id="mailto"),
    pytest.param("//evil.example/", id="scheme-relative"),
    pytest.param("/\\evil.example/", id="slash-backslash"),
    pytest.param("\\\\evil.example/", id="backslashes"),
    pytest.param("/path/only", id="relative-path"),
    pytest.param("https:evil.example", id="no-slashes"),
    pytest.param("https:/evil.example", id="one-slash"),
    pytest.param("https:///evil.example", id="three-slashes"),
    pytest.param("https://", id="no-host"),
    pytest.param("https://:443/", id="port-no-host"),
    pytest.param("https://user@evil.example/", id="userinfo"),
    pytest.param("https://user:pw@evil.example/", id="userinfo-password"),
    pytest.param("https://good.example@evil.example/", id="userinfo-host"),
    pytest.param("https://evil.example\\@good.example/", id="backslash-at"),
    # Browsers read "\" after the host as "/", Python's urlsplit as part of
    # the host: the two would disagree, so it is refused.
    pytest.param("https://good.example\\path", id="backslash-after-host"),
    pytest.param("https://evil.example%2F@good.example/", id="percent-slash-at"),
    pytest.param("https://evil%2eexample/", id="percent-host"),
    pytest.param("https://good.example%40evil.example/", id="percent-at"),
    pytest.param("https://exa mple.com/", id="space-in-host"),
    pytest.param("https://example.com/\r\nSet-Cookie: x=1", id="crlf"),
    pytest.param("https://example.com/\n", id="lf"),
    pytest.param("https://example.com/\r", id="cr"),
    pytest.param("https://example.com/\x00", id="nul"),
    pytest.param("https://exa\x00mple.com/", id="nul-in-host"),
    pytest.param("https://example.com/a\tb", id="tab-in-path"),
    pytest.param("https://exam\tple.com/", id="tab-in-host"),
    pytest.param("https://example.com/\x7f", id="del"),
    pytest.param("https://example.com/\x85", id="c1-next-line"),
    pytest.param("https://example.com/\u2028", id="line-separator"),
    pytest.param("https://example.com/\u2029x", id="paragraph-separator"),
    pytest.param("https://example.com/ ", id="trailing-space"),
    pytest.param("https://example.com ", id="trailing-space-host"),
    pytest.param("https://example.com/\u3000", id="trailing-ideographic-space"),
    pytest.param(" https://example.com/", id="leading-space"),
    pytest.param("\thttps://example.com/", id="leading-tab"),
    pytest.param("https://example.com:99999999/", id="port-too-long"),
    pytest.param("https://example.com:/", id="empty-port"),
    pytest.param("https://example.com:80a/", id="port-letters"),
    pytest.param("https://[::1/", id="broken-ipv6"),
    pytest.param("https://[::1]x/", id="ipv6-trailing"),
    pytest.param("https://a<b.example/", id="forbidden-host-char"),
    pytest.param("http s://example.com/", id="space-in-scheme"),
    pytest.param("", id="empty"),
]

SAFE = [
    pytest.param("https://example.com", id="no-path"),
    pytest.param("https://example.com/", id="root"),
    pytest.param("http://example.com/a/b?c=d&e=f#g", id="http-query-fragment"),
    pytest.param("HTTPS://EXAMPLE.COM/PATH", id="uppercase"),
    pytest.param("HtTp://example.com/", id="mixed-case-scheme"),
    pytest.param("https://example.com:8443/x", id="port"),
    pytest.param("https://[2001:db8::1]/x", id="ipv6"),
    pytest.param("https://[::1]:8080/", id="ipv6-port"),
    pytest.param("https://127.0.0.1/", id="ipv4"),
    pytest.param("https://bücher.de/straße", id="idn"),
    pytest.param("https://xn--bcher-kva.de/", id="punycode"),
    pytest.param("https://example.com?x=1", id="query-after-host"),
    pytest.param("https://example.com#top", id="fragment-after-host"),
    pytest.param("https://example.com/a%20b?q=%2F", id="percent-in-path"),
    pytest.param("https://example.com/a b", id="inner-space"),
    pytest.param("https://example.com/path\\sub", id="backslash-in-path"),
    pytest.param("https://example.com/?next=https://other.example/", id="url-in-query"),
    pytest.param("https://example.com/@user", id="at-in-path"),
    pytest.param("https://example.com/é?ü=ß#ø", id="unicode-path"),
]


@pytest.fixture
def tracker() -> Tracker:
    return Tracker(
        Configuration(
            secret_key=SECRET,
            base_click_tracking_url="https://t.example.com/c/",
            base_open_tracking_url="https://t.example.com/o/",
        )
    )


def _forge_click(tracker: Tracker, url: str) -> str:
    """A validly signed click token whose target skipped the encode check."""
    # The serializer makes any token it is asked for: the Tracker checks
    # click targets, and decoding checks them again.
    return tracker.serializer.dumps(CLICK, url, {"id": 1})


@pytest.mark.parametrize("url", UNSAFE)
def test_unsafe_target_refused_at_encode(tracker: Tracker, url: str) -> None:
    assert not is_safe_target(url)
    with pytest.raises(MailTrackError, match="Refusing"):
        tracker.click_url(url)
    with pytest.raises(MailTrackError, match="Refusing"):
        tracker.click_token(url)


@pytest.mark.parametrize("url", UNSAFE)
def test_unsafe_target_refused_at_decode(tracker: Tracker, url: str) -> None:
    if "\n" in url:
        # dumps() refuses it; forged by hand, the newline splits the fields.
        with pytest.raises(MailTrackError):
            _forge_click(tracker, url)
        raw = b"\x08\x00\x00\x00\x01" + url.encode() + b"\n"
        with pytest.raises(InvalidToken):
            tracker.decode_click(tracker.serializer._seal(CLICK, raw))
        return
    token = _forge_click(tracker, url)
    with pytest.raises(InvalidToken) as info:
        tracker.decode_click(token)
    assert info.value.reason == "target"


@pytest.mark.parametrize("url", SAFE)
def test_safe_targets(tracker: Tracker, url: str) -> None:
    assert is_safe_target(url)
    assert tracker.decode_click(tracker.click_url(url)).tracked_url == url
    assert tracker.decode_click(_forge_click(tracker, url)).tracked_url == url


@pytest.mark.parametrize("value", [None, 42, b"https://example.com/", ["x"]])
def test_non_text_targets(tracker: Tracker, value: object) -> None:
    assert not is_safe_target(value)
    with pytest.raises(MailTrackError):
        tracker.click_url(value)  # type: ignore[arg-type]


def test_pathological_targets() -> None:
    # Inputs that would make a backtracking pattern take forever.
    for url in (
        "https://" + "a" * 100_000 + " ",
        "https://a/" + " " * 100_000 + "x\n",
        "https://" + "a:" * 50_000,
        "https://a/" + " " * 100_000,
    ):
        assert not is_safe_target(url)


# -- joining base URLs and tokens -----------------------------------------------


@pytest.mark.parametrize(
    ("base", "append_slash", "expected"),
    [
        pytest.param(
            "https://t.example.com/c/", False, "https://t.example.com/c/TOKEN"
        ),
        pytest.param("https://t.example.com/c", False, "https://t.example.com/c/TOKEN"),
        pytest.param("https://t.example.com", False, "https://t.example.com/TOKEN"),
        pytest.param("https://t.example.com/", False, "https://t.example.com/TOKEN"),
        pytest.param(
            "https://t.example.com/a/b", False, "https://t.example.com/a/b/TOKEN"
        ),
        pytest.param(
            "https://t.example.com/c?src=mail",
            False,
            "https://t.example.com/c/TOKEN?src=mail",
        ),
        pytest.param(
            "https://t.example.com/c/?a=1&b=2",
            True,
            "https://t.example.com/c/TOKEN/?a=1&b=2",
        ),
        pytest.param(
            "https://t.example.com/c/", True, "https://t.example.com/c/TOKEN/"
        ),
        pytest.param("http://localhost:5000/c", True, "http://localhost:5000/c/TOKEN/"),
    ],
)
def test_token_url_join(base: str, append_slash: bool, expected: str) -> None:
    token_url = TokenURL(base, append_slash=append_slash)
    assert token_url.join("TOKEN") == expected
    assert token_url.owns(expected)
    assert token_url.split(expected) == "TOKEN"
    assert token_url.split(expected + "#fragment") == "TOKEN"


@pytest.mark.parametrize("base", ["/c/", "ftp://t.example.com/", "t.example.com/c", ""])
def test_token_url_needs_absolute_http_base(base: str) -> None:
    with pytest.raises(ValueError, match="absolute"):
        TokenURL(base)


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("abc", "abc"),
        ("/abc", "abc"),
        ("abc/", "abc"),
        ("/abc/?x=1", "abc"),
        ("abc#f?g", "abc"),
        ("abc?x#y", "abc"),
    ],
)
def test_strip_token(text: str, token: str) -> None:
    assert strip_token(text) == token


@pytest.mark.parametrize("append_slash", [False, True])
@pytest.mark.parametrize(
    "base", ["https://t.example.com/c", "https://t.example.com/c/?src=mail"]
)
def test_full_url_round_trip(base: str, append_slash: bool) -> None:
    tracker = Tracker(
        Configuration(
            secret_key=SECRET,
            base_click_tracking_url=base,
            base_open_tracking_url=base.replace("/c", "/o"),
            append_slash=append_slash,
        )
    )
    url = tracker.click_url("https://example.com/", {"a": 1})
    assert url.startswith("https://t.example.com/c/1")
    assert ("/?" in url or url.endswith("/")) == append_slash
    assert tracker.decode_click(url).metadata == {"a": 1}
    token = tracker.click_token("https://example.com/")
    for variant in (token, "/" + token, token + "/", "/" + token + "/?x=1"):
        assert tracker.decode_click(variant).tracked_url == "https://example.com/"
    opened = tracker.open_url({"b": 2})
    assert tracker.decode_open(opened).metadata == {"b": 2}


def test_url_on_another_base_is_refused(tracker: Tracker) -> None:
    url = tracker.click_url("https://example.com/")
    token = url.rsplit("/", 1)[1]
    for other in (
        "https://evil.example/c/" + token,
        "https://t.example.com/o/" + token,
        "http://t.example.com/c/" + token,
        "https://t.example.com.evil.example/c/" + token,
    ):
        with pytest.raises(InvalidToken):
            tracker.decode_click(other)
    # The open base is checked for open URLs.
    open_url = tracker.open_url()
    with pytest.raises(InvalidToken):
        tracker.decode_open(open_url.replace("/o/", "/c/"))


def test_missing_base_url() -> None:
    tracker = Tracker(Configuration(secret_key=SECRET))
    with pytest.raises(MailTrackError, match="base_click_tracking_url"):
        tracker.click_url("https://example.com/")
    with pytest.raises(MailTrackError, match="base_open_tracking_url"):
        tracker.open_url()
    # Bare tokens work without base URLs; full URLs cannot be checked.
    token = tracker.click_token("https://example.com/")
    assert tracker.decode_click(token).tracked_url == "https://example.com/"
    with pytest.raises(InvalidToken):
        tracker.decode_click("https://t.example.com/c/" + token)


_URL_LIKE = st.from_regex(
    r"(?i)(https?|ftp|javascript)?:?/{0,3}[a-z0-9.\[\]:@%\\ \t\x00\x7f-]{0,12}"
    r"(:[0-9]{0,6})?([/?#][\x00-\x7f]{0,12})?",
    fullmatch=True,
)


@settings(max_examples=500, deadline=None)
@given(url=_URL_LIKE | st.text(st.characters(max_codepoint=127), max_size=40))
def test_ascii_fast_path_agrees_with_the_full_pattern(url: str) -> None:
    from flask_mailtrack._urls import _SAFE_TARGET

    assert is_safe_target(url) == (_SAFE_TARGET.fullmatch(url) is not None)


# -- line breaks and worst-case inputs -----------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("https://x.example/\r\nSet-Cookie: a=b", id="crlf"),
        pytest.param("https://x.example/\u2028", id="line-separator"),
        pytest.param("https://x.example/\x85", id="next-line"),
    ],
)
def test_click_targets_with_line_breaks_are_refused(target: str) -> None:
    from flask_mailtrack import MailTrackError

    tracker, _ = mt_middleware()
    with pytest.raises(MailTrackError):
        tracker.click_url(target)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://" + "a" * 1_000_000 + "\x00", id="host"),
        pytest.param("https://a.example/" + "a" * 1_000_000 + "\x00", id="path"),
        pytest.param("https://[" + ":" * 1_000_000, id="ipv6"),
        pytest.param("https://a" + ":1" * (1_000_000 // 2), id="ports"),
    ],
)
def test_url_check_worst_case_inputs_complete(url: str) -> None:
    from flask_mailtrack import is_safe_target

    assert not is_safe_target(url)


# -- base URLs that would make dead links (issue 14) --------------------------------


@pytest.mark.parametrize(
    ("base", "said"),
    [
        pytest.param("https://t.example.com/c#frag", "fragment", id="fragment"),
        pytest.param("https://t.example.com/c/#", "fragment", id="empty-fragment"),
        pytest.param("localhost:8000/c/", "absolute", id="no-scheme"),
        pytest.param("https://[::1/c/", "absolute", id="bad-ipv6"),
        pytest.param("https://:443/c/", "absolute", id="no-host"),
    ],
)
def test_token_url_refuses_unusable_bases(base: str, said: str) -> None:
    with pytest.raises(ConfigurationError, match=said) as caught:
        TokenURL(base, setting="base_click_tracking_url")
    assert "base_click_tracking_url" in str(caught.value)
    # Also what the Tracker raises, naming the setting.
    with pytest.raises(ConfigurationError, match="base_open_tracking_url"):
        Tracker(secret_key=SECRET, base_open_tracking_url=base)


def test_token_url_keeps_a_query_but_a_root_base_refuses_one() -> None:
    # A query on a tracking base comes after the token, and links work...
    assert TokenURL("https://t.example.com/c?src=m").join("T") == (
        "https://t.example.com/c/T?src=m"
    )
    # ...but paths appended to a root base would land in its query.
    with pytest.raises(ConfigurationError, match="query"):
        split_base_url(
            "https://t.example.com/app/?x=1", "MAILTRACK_BASE_URL", query=False
        )
