"""Property-based fuzzing of everything that takes outside input.

Bounded for CI (a few hundred examples per property, tens of seconds in
all). ``TEST_MAILTRACK_FUZZ_EXAMPLES=20000 pytest tests/fuzz`` runs longer; the
atheris harness in ``benchmarks/fuzz/`` runs for as long as you let it.

Properties:

- token decoding, in every mode (signed, encrypted, case-insensitive,
  legacy plain and Fernet): only :exc:`InvalidToken` escapes, and a changed
  token is never accepted with a payload we did not issue;
- the WSGI handler (:class:`TrackingMiddleware` inside werkzeug's
  :class:`~werkzeug.middleware.lint.LintMiddleware`): any path, query,
  method and headers give no 5xx, and a redirect only to the target of a
  token signed with our key;
- the HTML rewriter on random and mutated corpus documents: no exception,
  the output parses (standard library :class:`~html.parser.HTMLParser`) to
  the same structure as the input except tracked ``href`` values, which
  decode back to the original URLs, and the one pixel; a second rewrite
  changes nothing;
- :meth:`Configuration.from_mapping` on random text mappings raises only
  :exc:`TypeError`, :exc:`ValueError` or :exc:`MailTrackError`.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import sys
import typing as t
import warnings
from html.parser import HTMLParser

import pytest
from flask_mailtrack import Configuration
from flask_mailtrack import InvalidToken
from flask_mailtrack import MailTrackError
from flask_mailtrack import Tracker
from flask_mailtrack.exceptions import InsecureTokenWarning
from flask_mailtrack.exceptions import WeakSecretKeyWarning
from flask_mailtrack.rewrite import track_html
from flask_mailtrack.rewrite._links import clean_url
from flask_mailtrack.tokens import CLICK
from flask_mailtrack.tokens import OPEN
from flask_mailtrack.web import match
from hypothesis import assume
from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
from werkzeug.middleware.lint import WSGIWarning
from werkzeug.test import EnvironBuilder
from werkzeug.test import run_wsgi_app
from werkzeug.urls import iri_to_uri

from _apps import fallback_app
from _apps import linted

pytest.importorskip("cryptography")
from cryptography.fernet import Fernet  # noqa: E402

# The token modes, unsigned pytracking tokens and the base64 alphabet are
# those of benchmarks/mutation_campaign.py, which alters tokens at random
# where these properties let hypothesis alter them.
BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from mutation_campaign import B64_ALPHABET as _B64  # noqa: E402
from mutation_campaign import plain_token as legacy_plain  # noqa: E402
from mutation_campaign import token_modes  # noqa: E402

EXAMPLES = int(os.environ.get("TEST_MAILTRACK_FUZZ_EXAMPLES", "300"))

#: Settings of every property: bounded, no deadline (the machine is noisy;
#: speed is measured in benchmarks/, not asserted here).
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

SECRET = "fuzz-secret-key-0123456789abcdef"
OTHER_SECRET = "another-secret-key-0123456789abcd"
ENCRYPTION_KEY = "fuzz-encryption-key-0123456789ab"
FERNET_KEY = Fernet.generate_key()
HOST = "https://t.example.com"
OPEN_BASE = HOST + "/mt/o/"
CLICK_BASE = HOST + "/mt/c/"
LEGACY_HOST = "legacy.example.com"
TARGETS = (
    "https://www.example.com/products/item?id=42&utm_source=newsletter",
    f"https://{LEGACY_HOST}/a/b?c=d",
    "http://example.org/",
    "https://例え.jp/パス?q=値",
)
METADATA = {"recipient": "r@example.com", "campaign": 7, "tags": ["a", "b"]}

_BASES = {"base_open_tracking_url": OPEN_BASE, "base_click_tracking_url": CLICK_BASE}

MODES = token_modes(SECRET, ENCRYPTION_KEY, FERNET_KEY, LEGACY_HOST)


def make_tracker(mode: str, **extra: t.Any) -> Tracker:
    return Tracker(Configuration(**_BASES, **MODES[mode], **extra))


def legacy_fernet(data: dict[str, t.Any]) -> str:
    return Fernet(FERNET_KEY).encrypt(json.dumps(data).encode()).decode("ascii")


def issued_tokens(tracker: Tracker, mode: str) -> list[tuple[str, str]]:
    """``(kind, token)`` pairs that ``tracker`` accepts."""
    tokens = [(OPEN, tracker.open_token(METADATA)), (OPEN, tracker.open_token())]
    tokens += [(CLICK, tracker.click_token(url, METADATA)) for url in TARGETS]
    if mode == "legacy":
        tokens += [
            (OPEN, legacy_fernet({"metadata": METADATA})),
            (CLICK, legacy_fernet({"url": TARGETS[0], "metadata": METADATA})),
            (OPEN, legacy_plain({"metadata": METADATA})),
            (CLICK, legacy_plain({"url": TARGETS[1], "metadata": {}})),
        ]
    return tokens


TRACKERS = {mode: make_tracker(mode) for mode in MODES}
ISSUED = {mode: issued_tokens(TRACKERS[mode], mode) for mode in MODES}
# What each accepted token may decode to: (kind, target, metadata) that we
# issued. A mutated token decoding to anything else is a forgery.
GENUINE = {
    mode: {
        (kind, r.tracked_url, json.dumps(r.metadata, sort_keys=True))
        for kind, token in ISSUED[mode]
        for r in [TRACKERS[mode].decode(kind, token)]
    }
    for mode in MODES
}


@st.composite
def mutated_token(draw: st.DrawFn, mode: str) -> tuple[str, str]:
    """An issued token with a few random edits."""
    kind, token = draw(st.sampled_from(ISSUED[mode]))
    chars = list(token)
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(("flip", "drop", "insert", "case", "cut")))
        if not chars:
            break
        index = draw(st.integers(0, len(chars) - 1))
        if operation == "flip":
            chars[index] = draw(st.sampled_from(_B64 + "=+/. \n%"))
        elif operation == "drop":
            del chars[index]
        elif operation == "insert":
            chars.insert(index, draw(st.characters()))
        elif operation == "case":
            chars[index] = chars[index].swapcase()
        else:
            del chars[index:]
    return kind, "".join(chars)


def any_token(mode: str) -> st.SearchStrategy[tuple[str, str]]:
    kinds = st.sampled_from((OPEN, CLICK))
    return st.one_of(
        mutated_token(mode),
        st.tuples(kinds, st.text(max_size=200)),
        st.tuples(kinds, st.text(alphabet=_B64, max_size=300)),
        st.tuples(
            kinds,
            st.builds(
                lambda marker, data: marker + base64.urlsafe_b64encode(data).decode(),
                st.sampled_from(("1", "2", "3", "4", "")),
                st.binary(max_size=300),
            ),
        ),
        st.tuples(
            kinds,
            st.builds(
                legacy_plain,
                st.dictionaries(
                    st.sampled_from(("url", "metadata", "webhook", "x")),
                    st.one_of(st.text(max_size=40), st.integers(), st.none()),
                ),
            ),
        ),
    )


@pytest.mark.parametrize("mode", list(MODES))
def test_token_decoding_raises_only_invalid_token(mode: str) -> None:
    tracker = TRACKERS[mode]

    @fuzz
    @given(any_token(mode))
    def check(case: tuple[str, str]) -> None:
        kind, token = case
        try:
            result = tracker.decode(kind, token)  # type: ignore[arg-type]
        except InvalidToken:
            return
        found = (kind, result.tracked_url, json.dumps(result.metadata, sort_keys=True))
        if result.legacy and mode == "legacy" and token[:6] != "gAAAAA":
            # Unsigned pytracking tokens are forgeable by design; they may
            # only redirect to the legacy hosts and never carry a webhook.
            assert kind == OPEN or LEGACY_HOST in (result.tracked_url or "")
            assert result.webhook_url is None
            return
        assert found in GENUINE[mode], (token, found)

    check()


def test_legacy_deeply_nested_json_is_invalid_token() -> None:
    # json raises RecursionError (not ValueError) on deep nesting.
    tracker = TRACKERS["legacy"]
    token = base64.urlsafe_b64encode(b"[" * 3000).decode()
    with pytest.raises(InvalidToken):
        tracker.decode_open(token)


# -- the WSGI handler -------------------------------------------------------------


_HEADER_NAMES = st.sampled_from(
    (
        "User-Agent",
        "Accept",
        "X-Forwarded-For",
        "Sec-Purpose",
        "Purpose",
        "X-Moz",
        "Host",
        "Cookie",
        "Range",
        "If-None-Match",
        "If-Modified-Since",
        "Accept-Encoding",
        "X-Custom",
    )
)
# Header values as a server hands them over: latin-1 text without CR/LF.
_HEADER_VALUES = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=600
)


@st.composite
def request_path(draw: st.DrawFn, mode: str) -> str:
    prefix = draw(st.sampled_from(("/mt/o/", "/mt/c/", "/mt/", "/", "/mt/c//")))
    choice = draw(st.integers(0, 3))
    if choice == 0:
        _, token = draw(st.sampled_from(ISSUED[mode]))
    elif choice == 1:
        _, token = draw(mutated_token(mode))
    else:
        token = draw(st.text(max_size=120))
    tail = draw(st.sampled_from(("", "/", "//x", "/../c/", "%2F")))
    return prefix + token + tail


@pytest.mark.parametrize("mode", list(MODES))
def test_handler_never_fails_and_redirects_only_to_signed_targets(mode: str) -> None:
    # pixel_on_invalid_token off as well, to reach the 404 paths.
    tracker = make_tracker(mode, pixel_on_invalid_token=mode != "signed")
    app = linted(fallback_app, tracker)
    verifier = make_tracker(mode)

    @fuzz
    @given(
        request_path(mode),
        st.sampled_from(("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE")),
        st.text(max_size=40),
        st.dictionaries(_HEADER_NAMES, _HEADER_VALUES, max_size=6),
    )
    def check(path: str, method: str, query: str, headers: dict[str, str]) -> None:
        environ = EnvironBuilder(method=method, headers=headers).get_environ()
        # The path and query as a server passes them on: raw bytes of the
        # request line, decoded as latin-1 (PEP 3333).
        environ["PATH_INFO"] = path.encode("utf-8", "surrogatepass").decode("latin-1")
        environ["QUERY_STRING"] = query.encode("utf-8", "surrogatepass").decode(
            "latin-1"
        )
        with warnings.catch_warnings():
            if method == "HEAD":
                # LintMiddleware does not know that a HEAD response keeps
                # the Content-Length of the GET response without its body.
                warnings.filterwarnings(
                    "ignore", "Content-Length and the number", WSGIWarning
                )
            body, status, response_headers = run_wsgi_app(app, environ, buffered=True)
        assert isinstance(b"".join(body), bytes)
        code = int(status.split()[0])
        assert code < 500, (path, method, headers)
        if 300 <= code < 400:
            assert code == 302
            location = response_headers["Location"]
            assert location.isascii() and "\r" not in location and "\n" not in location
            # The token in the path must verify with our key (or be a
            # pytracking token that may redirect to the legacy host only).
            found = match(verifier, path)
            assert found is not None and found[0] == CLICK
            result = verifier.decode_click(found[1])
            assert iri_to_uri(t.cast(str, result.tracked_url)) == location
            if result.legacy and not found[1].startswith("gAAAAA"):
                assert LEGACY_HOST in location

    check()


# -- the HTML rewriter --------------------------------------------------------------

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
CORPUS_FILES = sorted(CORPUS.rglob("*.htm*")) if CORPUS.is_dir() else []
CORPUS_TEXTS = [p.read_text("utf-8", "replace") for p in CORPUS_FILES]


class _Events(HTMLParser):
    """The markup events a browser-like parser sees, comments expanded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[tuple[t.Any, ...]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(("start", tag, tuple(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(("start", tag, tuple(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.events.append(("end", tag))

    def handle_data(self, data: str) -> None:
        if self.events and self.events[-1][0] == "data":
            self.events[-1] = ("data", self.events[-1][1] + data)
        else:
            self.events.append(("data", data))

    def handle_comment(self, data: str) -> None:
        self.events.append(("comment", data))

    def handle_decl(self, decl: str) -> None:
        self.events.append(("decl", decl))

    def handle_pi(self, data: str) -> None:
        self.events.append(("pi", data))

    def unknown_decl(self, data: str) -> None:
        self.events.append(("unknown", data))


def parse(document: str) -> list[tuple[t.Any, ...]]:
    parser = _Events()
    parser.feed(document)
    parser.close()
    return parser.events


def _without_pixel(events: list[tuple[t.Any, ...]]) -> list[tuple[t.Any, ...]]:
    kept: list[tuple[t.Any, ...]] = []
    for event in events:
        if (
            event[0] == "start"
            and event[1] == "img"
            and dict(event[2]).get("src", "").startswith(OPEN_BASE)
        ):
            continue
        if kept and event[0] == "data" and kept[-1][0] == "data":
            kept[-1] = ("data", kept[-1][1] + event[1])
        else:
            kept.append(event)
    return kept


def assert_same_structure(tracker: Tracker, before: str, after: str) -> int:
    """Compare the two documents event by event; return how many ``href``
    values were tracked."""
    old = _without_pixel(parse(before))
    new = _without_pixel(parse(after))
    assert len(old) == len(new)
    tracked = 0
    for a, b in zip(old, new):
        if a == b:
            continue
        if a[0] == "comment" and b[0] == "comment":
            # Outlook's conditional comments hold markup that is tracked too.
            assert len(parse(a[1])) == len(parse(b[1])), (a, b)
            tracked += assert_same_structure(tracker, a[1], b[1])
            continue
        assert a[0] == b[0] == "start" and a[1] == b[1], (a, b)
        assert len(a[2]) == len(b[2]), (a, b)
        for (name, value), (new_name, new_value) in zip(a[2], b[2]):
            assert name == new_name
            if value == new_value:
                continue
            assert name == "href" and new_value is not None, (a, b)
            assert new_value.startswith(CLICK_BASE), (a, b)
            result = tracker.decode_click(new_value)
            assert result.tracked_url == clean_url(value or "", entities=False)
            tracked += 1
    return tracked


_MARKUP_BITS = (
    "<",
    ">",
    '"',
    "'",
    "=",
    "/",
    "<a href=",
    "<a href='https://x.example/?a=1&amp;b=2'>",
    '<a href="https://y.example/p">',
    "</a>",
    "<!--",
    "-->",
    "<!--[if mso]>",
    "<![endif]-->",
    '<v:roundrect href="https://z.example/">',
    "<body>",
    "</body>",
    "<style>",
    "</style>",
    "<script>",
    "<![CDATA[",
    "]]>",
    "&amp;",
    "&#",
    "{{ url }}",
    "*|UNSUB|*",
    "\x00",
    "\ufeff",
    " ",
    "\n",
)


@st.composite
def mutated_document(draw: st.DrawFn) -> str:
    if CORPUS_TEXTS and draw(st.booleans()):
        text = draw(st.sampled_from(CORPUS_TEXTS))
    else:
        text = "".join(draw(st.lists(st.sampled_from(_MARKUP_BITS), max_size=60)))
    for _ in range(draw(st.integers(0, 6))):
        index = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:index] + draw(st.sampled_from(_MARKUP_BITS)) + text[index:]
        else:
            text = text[:index] + text[index + draw(st.integers(1, 40)) :]
    return text


REWRITER = make_tracker("signed")

#: Rewriting a corpus document and parsing it twice costs more than a token.
fuzz_documents = settings(fuzz, max_examples=max(10, EXAMPLES // 3))


@fuzz_documents
@given(st.one_of(mutated_document(), st.text(max_size=400)))
def test_rewriter_keeps_structure_and_is_idempotent(document: str) -> None:
    # Lone surrogates cannot be encoded in an email; the rewriter refuses
    # them with MailTrackError (checked below), not as part of the property.
    try:
        document.encode("utf-8")
    except UnicodeEncodeError:
        assume(False)
    tracked = track_html(REWRITER, document, METADATA)
    assert isinstance(tracked, str)
    assert track_html(REWRITER, tracked, METADATA) == tracked
    try:
        events = parse(document)
    except AssertionError:
        # The standard library's parser gives up on some marked sections
        # ("<![DATA[") that browsers read as bogus comments: no oracle.
        return
    if any(event[0] == "unknown" for event in events):
        # It also reads "<![endif]-->" up to the next "]>", where HTML5 (and
        # the rewriter) end the bogus comment at the first ">": it is no
        # oracle for these documents either.
        return
    assert_same_structure(REWRITER, document, tracked)


@fuzz_documents
@given(mutated_document())
def test_rewriter_bytes_input(document: str) -> None:
    data = document.encode("utf-8", "surrogatepass")
    try:
        tracked = track_html(REWRITER, data, METADATA)
    except MailTrackError:
        return
    assert isinstance(tracked, bytes)
    assert track_html(REWRITER, tracked, METADATA) == tracked


# -- Configuration.from_mapping -----------------------------------------------------

_KEYS = st.one_of(
    st.sampled_from(
        [
            "MAILTRACK_" + name.upper()
            for name in Configuration.__dataclass_fields__  # type: ignore[attr-defined]
        ]
        + ["MAILTRACK_BASE_URL", "MAILTRACK_NOPE", "OTHER"]
    ),
    st.text(max_size=20).map(lambda s: "MAILTRACK_" + s),
)
_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(("1", "0", "true", "off", "-1", "1e999", "nan", "[]", "{}")),
    st.sampled_from(('["a","b"]', '{"a":1}', "[[[[", "a,b,c", "https://x/", "")),
)


@fuzz
@given(st.dictionaries(_KEYS, _VALUES, max_size=8))
def test_from_mapping_raises_only_library_errors(mapping: dict[str, str]) -> None:
    with warnings.catch_warnings():
        # MAILTRACK_INSECURE_UNSIGNED_TOKENS=1 warns, as it should.
        warnings.simplefilter("ignore", InsecureTokenWarning)
        # So do random short keys.
        warnings.simplefilter("ignore", WeakSecretKeyWarning)
        try:
            configuration = Configuration.from_mapping(mapping)
        except (TypeError, ValueError, MailTrackError):
            return
        # A configuration that was accepted also builds its tracker.
        try:
            Tracker(configuration)
        except (TypeError, ValueError, MailTrackError):
            pass
