"""pytracking's function API: same names, signatures and keyword overrides."""

from __future__ import annotations

import copy
import inspect
import pickle
import re
import struct
import typing as t

import flask_mailtrack
import pytest
import pytracking
import pytracking.html
from cryptography.fernet import Fernet
from flask_mailtrack import _pytracking as compat
from flask_mailtrack import adapt_html
from flask_mailtrack import Configuration
from flask_mailtrack import ExpiredToken
from flask_mailtrack import get_click_tracking_result
from flask_mailtrack import get_click_tracking_url
from flask_mailtrack import get_click_tracking_url_path
from flask_mailtrack import get_open_tracking_pixel
from flask_mailtrack import get_open_tracking_result
from flask_mailtrack import get_open_tracking_url
from flask_mailtrack import get_open_tracking_url_path
from flask_mailtrack import InvalidToken
from flask_mailtrack import MailTrackError
from flask_mailtrack import Tracker
from flask_mailtrack.exceptions import MissingSettingError

SECRET = "test-secret-key-0123456789abcdef"
BASE = "https://trackingdomain.com/path/"


@pytest.mark.parametrize(
    "name",
    [
        "get_open_tracking_url",
        "get_click_tracking_url",
        "get_open_tracking_result",
        "get_click_tracking_result",
        "get_open_tracking_pixel",
        "get_open_tracking_url_path",
        "get_click_tracking_url_path",
        "adapt_html",
    ],
)
def test_same_signatures_as_pytracking(name: str) -> None:
    ours = inspect.signature(getattr(flask_mailtrack, name))
    theirs = inspect.signature(
        getattr(pytracking, name, None) or getattr(pytracking.html, name)
    )
    assert list(ours.parameters) == list(theirs.parameters)
    for parameter in ours.parameters.values():
        assert parameter.default == theirs.parameters[parameter.name].default


# -- pytracking's README examples, with a secret_key added -----------------------


def test_readme_open_tracking_link() -> None:
    open_tracking_url = get_open_tracking_url(
        {"customer_id": 1},
        base_open_tracking_url=BASE,
        webhook_url="http://requestb.in/123",
        include_webhook_url=True,
        secret_key=SECRET,
    )
    assert open_tracking_url.startswith(BASE)
    tracking_result = get_open_tracking_result(
        open_tracking_url,
        base_open_tracking_url=BASE,
        include_webhook_url=True,
        secret_key=SECRET,
    )
    assert tracking_result.metadata == {"customer_id": 1}
    assert tracking_result.webhook_url == "http://requestb.in/123"
    assert tracking_result.is_open_tracking


def test_readme_open_tracking_link_with_configuration() -> None:
    configuration = Configuration(
        base_open_tracking_url=BASE,
        webhook_url="http://requestb.in/123",
        include_webhook_url=False,
        secret_key=SECRET,
    )
    open_tracking_url = get_open_tracking_url(
        {"customer_id": 1}, configuration=configuration
    )
    tracking_result = get_open_tracking_result(
        open_tracking_url, configuration=configuration
    )
    assert tracking_result.metadata == {"customer_id": 1}
    assert tracking_result.webhook_url == "http://requestb.in/123"


def test_readme_click_tracking_link() -> None:
    click_tracking_url = get_click_tracking_url(
        "http://www.example.com/?query=value",
        {"customer_id": 1},
        base_click_tracking_url=BASE,
        webhook_url="http://requestb.in/123",
        include_webhook_url=True,
        secret_key=SECRET,
    )
    tracking_result = get_click_tracking_result(
        click_tracking_url,
        base_click_tracking_url=BASE,
        include_webhook_url=True,
        secret_key=SECRET,
    )
    assert tracking_result.metadata == {"customer_id": 1}
    assert tracking_result.webhook_url == "http://requestb.in/123"
    assert tracking_result.tracked_url == "http://www.example.com/?query=value"
    assert tracking_result.is_click_tracking


def test_readme_encrypting_data() -> None:
    key = Fernet.generate_key()
    click_tracking_url = get_click_tracking_url(
        "http://www.example.com/?query=value",
        {"customer_id": 1},
        base_click_tracking_url=BASE,
        webhook_url="http://requestb.in/123",
        include_webhook_url=True,
        encryption_bytestring_key=key,
    )
    assert "customer_id" not in click_tracking_url
    tracking_result = get_click_tracking_result(
        click_tracking_url,
        base_click_tracking_url=BASE,
        include_webhook_url=True,
        encryption_bytestring_key=key,
    )
    assert tracking_result.metadata == {"customer_id": 1}
    assert tracking_result.tracked_url == "http://www.example.com/?query=value"
    # pytracking's README decodes this click link with get_open_tracking_result;
    # an open token and a click token are never interchangeable here.
    with pytest.raises(InvalidToken):
        get_open_tracking_result(
            click_tracking_url,
            base_click_tracking_url=BASE,
            encryption_bytestring_key=key,
        )


def test_readme_without_a_key_explains() -> None:
    with pytest.raises(MailTrackError, match="secret_key"):
        get_open_tracking_url({"customer_id": 1}, base_open_tracking_url=BASE)


def test_request_data_and_default_metadata() -> None:
    configuration = Configuration(
        secret_key=SECRET,
        base_click_tracking_url=BASE,
        default_metadata={"list": "news", "customer_id": 0},
    )
    url = get_click_tracking_url(
        "https://example.com/", {"customer_id": 7}, configuration
    )
    result = get_click_tracking_result(url, {"user_agent": "UA"}, configuration)
    assert result.request_data == {"user_agent": "UA"}
    # Link metadata wins over default metadata, as in pytracking.
    assert result.metadata == {"list": "news", "customer_id": 7}
    embedded = configuration.replace(include_default_metadata=True)
    url = get_click_tracking_url("https://example.com/", None, embedded)
    # The defaults travel inside the token: a reader without them sees them.
    plain = Configuration(secret_key=SECRET, base_click_tracking_url=BASE)
    result = get_click_tracking_result(url, None, plain)
    assert result.metadata == {"list": "news", "customer_id": 0}


def test_to_json_dict_is_a_json_dict() -> None:
    import json

    url = get_click_tracking_url(
        "https://example.com/",
        {"a": 1},
        secret_key=SECRET,
        base_click_tracking_url=BASE,
    )
    result = get_click_tracking_result(
        url, secret_key=SECRET, base_click_tracking_url=BASE
    )
    data = result.to_json_dict()
    assert isinstance(data, dict)
    assert json.loads(json.dumps(data))["metadata"] == {"a": 1}
    assert data["tracked_url"] == "https://example.com/"


# -- the token part of a URL (get_*_tracking_url_path) --------------------------


def test_url_path_is_what_the_result_functions_decode() -> None:
    # pytracking's own test flow: make a URL, cut the path, decode the path.
    configuration = Configuration(
        secret_key=SECRET, base_open_tracking_url=BASE, base_click_tracking_url=BASE
    )
    url = get_click_tracking_url("https://example.com/", {"a": 1}, configuration)
    path = get_click_tracking_url_path(url, configuration)
    assert url == BASE + path
    result = get_click_tracking_result(path, configuration=configuration)
    assert result.tracked_url == "https://example.com/"
    url = get_open_tracking_url({"a": 1}, configuration)
    path = get_open_tracking_url_path(
        url, secret_key=SECRET, base_open_tracking_url=BASE
    )
    assert url == BASE + path
    assert get_open_tracking_result(path, configuration=configuration).metadata == {
        "a": 1
    }


def test_url_path_of_a_pytracking_url_is_pytrackings() -> None:
    url = pytracking.get_open_tracking_url({"a": 1}, base_open_tracking_url=BASE)
    theirs = pytracking.get_open_tracking_url_path(url, base_open_tracking_url=BASE)
    ours = get_open_tracking_url_path(url, base_open_tracking_url=BASE)
    assert ours == theirs


def test_url_path_leaves_out_the_slash_and_the_query() -> None:
    # pytracking kept the slash of append_slash in the path; the token is
    # what the result functions need, and they take it either way.
    configuration = Configuration(
        secret_key=SECRET,
        base_click_tracking_url="https://t.example.com/c?src=mail",
        append_slash=True,
    )
    url = get_click_tracking_url("https://example.com/", None, configuration)
    path = get_click_tracking_url_path(url, configuration)
    assert url == f"https://t.example.com/c/{path}/?src=mail"
    assert get_click_tracking_result(path, configuration=configuration)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://other.example/path/token", id="other-host"),
        pytest.param("https://trackingdomain.com/other/token", id="other-path"),
        pytest.param("trackingdomain.com/path/token", id="no-scheme"),
        pytest.param("token", id="bare-token"),
        pytest.param(BASE, id="no-token"),
        pytest.param(BASE + "?x=1", id="only-a-query"),
        pytest.param(None, id="not-text"),
    ],
)
def test_url_path_checks_the_base(url: str) -> None:
    # pytracking cut len(base) characters off whatever it was given.
    for function in (get_open_tracking_url_path, get_click_tracking_url_path):
        with pytest.raises(InvalidToken):
            function(
                url,
                secret_key=SECRET,
                base_open_tracking_url=BASE,
                base_click_tracking_url=BASE,
            )


def test_url_path_needs_the_base() -> None:
    with pytest.raises(MissingSettingError, match="base_open_tracking_url"):
        get_open_tracking_url_path(BASE + "token", secret_key=SECRET)
    with pytest.raises(MissingSettingError, match="base_click_tracking_url"):
        get_click_tracking_url_path(
            BASE + "token", secret_key=SECRET, base_open_tracking_url=BASE
        )
    with pytest.raises(TypeError, match="base_open_url"):
        get_open_tracking_url_path(BASE + "token", base_open_url=BASE)


# -- pytracking's except ValueError ------------------------------------------------


def _decoders() -> list[t.Any]:
    configuration = Configuration(
        secret_key=SECRET, base_open_tracking_url=BASE, base_click_tracking_url=BASE
    )
    tracker = Tracker(configuration)
    serializer = tracker.serializer
    entry_points: dict[str, t.Callable[[str], object]] = {
        "get_open_tracking_result": lambda token: get_open_tracking_result(
            token, configuration=configuration
        ),
        "get_click_tracking_result": lambda token: get_click_tracking_result(
            token, configuration=configuration
        ),
        "get_open_tracking_url_path": lambda token: get_open_tracking_url_path(
            "https://elsewhere.example/" + token, configuration
        ),
        "get_click_tracking_url_path": lambda token: get_click_tracking_url_path(
            "https://elsewhere.example/" + token, configuration
        ),
        "Tracker.decode_open": tracker.decode_open,
        "Tracker.decode_click": tracker.decode_click,
        "Tracker.decode": lambda token: tracker.decode("click", token),
        "Tracker.decode_any": tracker.decode_any,
        "TokenSerializer.loads": lambda token: serializer.loads("open", token),
    }
    return [pytest.param(f, id=name) for name, f in entry_points.items()]


@pytest.mark.parametrize("decode", _decoders())
@pytest.mark.parametrize(
    "token",
    [
        pytest.param("eyJ1cmwiOiAiaHR0cHM6Ly9leGFtcGxlLmNvbS8ifQ==", id="pytracking"),
        pytest.param("1AAAA", id="forged"),
        pytest.param("%%%", id="garbage"),
        pytest.param("1" + "A" * 5000, id="too-long"),
    ],
)
def test_except_value_error_catches_bad_tokens(
    decode: t.Callable[[str], object], token: str
) -> None:
    # pytracking's decoding errors (binascii.Error, UnicodeDecodeError,
    # json.JSONDecodeError) were ValueErrors, so its users caught those.
    with pytest.raises(ValueError) as info:
        decode(token)
    assert isinstance(info.value, InvalidToken)


def test_expired_token_is_a_value_error() -> None:
    tracker = Tracker(secret_key=SECRET, base_open_tracking_url=BASE, max_age=60)
    url = tracker.open_url({"a": 1})
    with pytest.raises(ValueError) as info:
        tracker.decode_open(url, now=10**10)
    assert type(info.value) is ExpiredToken
    assert issubclass(ExpiredToken, InvalidToken)
    assert issubclass(InvalidToken, ValueError)


# -- adapt_html --------------------------------------------------------------------


@pytest.mark.parametrize(
    "html",
    [
        pytest.param("<html><body><p>No links.</p></body></html>", id="no-links"),
        pytest.param(
            '<html><body><a href="mailto:a@example.com">a</a></body></html>',
            id="mailto-only",
        ),
        pytest.param(
            '<html><body><a href="#top">top</a><a>no href</a></body></html>',
            id="untracked-links",
        ),
    ],
)
def test_adapt_html_without_links_needs_no_click_base(html: str) -> None:
    output = adapt_html(html, {"a": 1}, secret_key=SECRET, base_open_tracking_url=BASE)
    # The pixel is added and nothing else changes.
    pixel = re.compile(f'<img src="{re.escape(BASE)}[^"]+"[^>]*>')
    assert len(pixel.findall(output)) == 1
    assert pixel.sub("", output) == html
    # pytracking's adapt_html tracked it too.
    theirs = pytracking.html.adapt_html(html, {"a": 1}, base_open_tracking_url=BASE)
    assert theirs.count(f'src="{BASE}') == 1


def test_adapt_html_with_a_link_needs_the_click_base() -> None:
    html = '<html><body><a href="https://example.com/">x</a></body></html>'
    with pytest.raises(MailTrackError, match="base_click_tracking_url"):
        adapt_html(html, {"a": 1}, secret_key=SECRET, base_open_tracking_url=BASE)
    # Not when links are not tracked.
    output = adapt_html(
        html, {"a": 1}, False, secret_key=SECRET, base_open_tracking_url=BASE
    )
    assert '<a href="https://example.com/">' in output


# -- the pixel -------------------------------------------------------------------


def test_open_tracking_pixel_is_a_transparent_1x1_gif() -> None:
    pixel, mime_type = get_open_tracking_pixel()
    assert mime_type == "image/gif"
    assert pixel[:6] == b"GIF89a"
    width, height, flags = struct.unpack("<HHB", pixel[6:11])
    assert (width, height) == (1, 1)
    assert flags & 0x80  # a global colour table follows
    table_size = 3 * 2 ** ((flags & 0x07) + 1)
    extension = pixel[13 + table_size :]
    # Graphic control extension with the transparency flag set.
    assert extension[:3] == b"!\xf9\x04"
    assert extension[3] & 0x01
    descriptor = extension[8:]
    assert descriptor[:1] == b","
    assert struct.unpack("<HHHH", descriptor[1:9]) == (0, 0, 1, 1)
    assert pixel.endswith(b";")
    assert len(pixel) == 43


# -- configuration handling --------------------------------------------------------

CALLS: list[tuple[str, t.Callable[..., object], tuple[object, ...]]] = [
    ("get_open_tracking_url", get_open_tracking_url, ({"a": 1},)),
    ("get_click_tracking_url", get_click_tracking_url, ("https://example.com/",)),
    ("get_open_tracking_result", get_open_tracking_result, ("token",)),
    ("get_click_tracking_result", get_click_tracking_result, ("token",)),
]


@pytest.mark.parametrize(("name", "function", "args"), CALLS, ids=[c[0] for c in CALLS])
def test_unknown_keyword_raises_type_error(
    name: str, function: t.Callable[..., object], args: tuple[object, ...]
) -> None:
    configuration = Configuration(secret_key=SECRET, base_open_tracking_url=BASE)
    with pytest.raises(TypeError, match="base_clik_tracking_url"):
        function(*args, configuration=configuration, base_clik_tracking_url=BASE)
    with pytest.raises(TypeError, match="secret_kye"):
        function(*args, secret_kye=SECRET)


def test_get_open_tracking_pixel_takes_no_arguments() -> None:
    with pytest.raises(TypeError):
        get_open_tracking_pixel(secret_key=SECRET)  # type: ignore[call-arg]


def test_cached_tracker_no_rebuild_no_deepcopy(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Configuration] = []
    original_init = Tracker.__init__

    def counting_init(self: Tracker, *args: t.Any, **kwargs: t.Any) -> None:
        original_init(self, *args, **kwargs)
        built.append(self.configuration)

    def no_deepcopy(*args: object, **kwargs: object) -> t.NoReturn:
        raise AssertionError("deepcopy called")

    monkeypatch.setattr(Tracker, "__init__", counting_init)
    monkeypatch.setattr(copy, "deepcopy", no_deepcopy)
    configuration = Configuration(
        secret_key=SECRET, base_click_tracking_url=BASE, base_open_tracking_url=BASE
    )
    for _ in range(5):
        url = get_click_tracking_url("https://example.com/", {"a": 1}, configuration)
        get_click_tracking_result(url, None, configuration)
        url = get_open_tracking_url({"a": 1}, configuration)
        get_open_tracking_result(url, None, configuration)
    assert len(built) == 1
    # Keyword overrides build one tracker per distinct set, then reuse it.
    for _ in range(5):
        url = get_click_tracking_url(
            "https://example.com/", None, configuration, max_age=60
        )
        assert get_click_tracking_result(url, None, configuration, max_age=60)
    assert len(built) == 2
    assert built[1].max_age == 60 and configuration.max_age is None
    # No configuration at all: keywords only.
    keywords = {"secret_key": SECRET, "base_click_tracking_url": BASE, "max_age": 7}
    get_click_tracking_url("https://example.com/", None, **keywords)
    count = len(built)
    for _ in range(3):
        get_click_tracking_url("https://example.com/", None, **keywords)
    assert len(built) == count


def test_override_cache_tells_configurations_apart() -> None:
    one = Configuration(secret_key=SECRET, base_click_tracking_url=BASE)
    other = Configuration(
        secret_key="another-secret-0123456-012345678", base_click_tracking_url=BASE
    )
    url = get_click_tracking_url("https://example.com/", None, one, max_age=60)
    assert get_click_tracking_result(url, None, one, max_age=60)
    with pytest.raises(InvalidToken):
        get_click_tracking_result(url, None, other, max_age=60)
    assert compat.get_tracker(one, {"max_age": 60}) is not compat.get_tracker(
        other, {"max_age": 60}
    )


def test_get_tracker_reuses_one_tracker_per_configuration() -> None:
    configuration = Configuration(secret_key=SECRET, base_click_tracking_url=BASE)
    tracker = compat.get_tracker(configuration)
    assert compat.get_tracker(configuration) is tracker
    assert compat.get_tracker(configuration, {}) is tracker
    assert compat.get_tracker(configuration, {"max_age": 60}) is not tracker
    assert compat.get_tracker() is compat.get_tracker(None, None)
    # Kept beside the configuration, not on it: it still pickles.
    assert "_tracker" not in vars(configuration)
    assert pickle.loads(pickle.dumps(configuration)) == configuration


def test_get_tracker_cache_is_bounded() -> None:
    first = Configuration(secret_key=SECRET, base_click_tracking_url=BASE)
    tracker = compat.get_tracker(first)
    for _ in range(100):
        compat.get_tracker(Configuration(secret_key=SECRET))
    assert len(compat._trackers._entries) <= 64
    # The oldest went first; asked again, it is built again.
    assert compat.get_tracker(first) is not tracker
