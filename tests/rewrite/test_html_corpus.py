"""The rewriter on 34 production email templates (``../shared/corpus``).

For each file, the output is compared with the input token by token: every
difference must be either an ``href`` value replaced by a tracking URL that
decodes back to that value's URL, or the one inserted pixel. The tracked
links are also checked against an independent reading of the file by the
standard library's :class:`html.parser.HTMLParser`.
"""

from __future__ import annotations

import html
import os
import pathlib
import re
import typing as t
from html.parser import HTMLParser

import pytest
from flask_mailtrack import Tracker
from flask_mailtrack.rewrite import HTMLTemplate
from flask_mailtrack.rewrite import PIXEL_ATTRIBUTES
from flask_mailtrack.rewrite import track_html
from flask_mailtrack.rewrite._links import clean_url
from flask_mailtrack.rewrite._links import has_merge_tag
from flask_mailtrack.rewrite._links import LinkPolicy

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus"
CORPUS_FILES = sorted(CORPUS.rglob("*.htm*")) if CORPUS.is_dir() else []
NEWSLETTER = CORPUS.parent / "bench" / "newsletter.html"
FILES = CORPUS_FILES + ([NEWSLETTER] if NEWSLETTER.is_file() else [])

pytestmark = pytest.mark.skipif(
    not CORPUS_FILES, reason="../shared/corpus is not available"
)


def name(path: pathlib.Path) -> str:
    return pathlib.Path(os.path.relpath(path, CORPUS)).as_posix()


OPEN_BASE = "https://t.example.com/o/"
CLICK_BASE = "https://t.example.com/c/"
METADATA = {"recipient": 42, "campaign": "corpus"}

#: (tracked href attributes, of which VML elements) per file. Also checked
#: against HTMLParser below; pinned here so that a change in both is seen.
EXPECTED = {
    "Cerberus/cerberus-fluid.html": (1, 0),
    "Cerberus/cerberus-hybrid.html": (3, 0),
    "Email-Boilerplate/email.html": (1, 0),
    "antwort/three-cols-images__build.html": (1, 0),
    "colorlib-email-templates/14__index.html": (0, 0),
    "colorlib-email-templates/19__index.html": (0, 0),
    "colorlib-email-templates/1__index.html": (0, 0),
    "colorlib-email-templates/24__index.html": (0, 0),
    "email-blueprints/modular-template-patterns__modular-template-patterns.html": (
        0,
        0,
    ),
    "email-blueprints/responsive-templates__base_boxed_2column_query.html": (3, 0),
    "email-blueprints/templates__fancy-2-1-3-leftsidebar.html": (7, 0),
    "email-blueprints/templates__simple-basic.html": (1, 0),
    "konsav-email-templates/explorational.html": (15, 0),
    "konsav-email-templates/general.html": (9, 0),
    "postmark-templates/"
    "templates-inlined__basic-full__comment-notification__content.html": (1, 0),
    "postmark-templates/templates-inlined__basic-full__welcome__content.html": (1, 0),
    "postmark-templates/templates-inlined__basic__receipt__content.html": (2, 0),
    "postmark-templates/templates-inlined__plain__password-reset__content.html": (
        1,
        0,
    ),
    "responsive-html-email-template/email-inlined.html": (3, 0),
    "sendgrid-email-templates/dynamic-templates__newsletter__news_feed.html": (0, 0),
    "sendgrid-email-templates/"
    "dynamic-templates__transactional-actions__call_to_action.html": (0, 0),
    "sendgrid-email-templates/paste-templates__receipt.html": (3, 0),
    "sendgrid-email-templates/"
    "use-cases__sendgrid-design-editor__paste-password-reset.html": (1, 0),
    "sendwithus-templates/templates__goldstar__welcome.html": (1, 0),
    "sendwithus-templates/templates__mantra__rating.html": (0, 0),
    "sendwithus-templates/templates__narrative__survey.html": (0, 0),
    "sendwithus-templates/templates__neopolitan__progress.html": (0, 0),
    "sendwithus-templates/templates__oxygen__ping.html": (0, 0),
    "sendwithus-templates/templates__skyline__survey.html": (0, 0),
    "sendwithus-templates/templates__zen-flat__survey.html": (0, 0),
    "talon/tests__fixtures__html_replies__ms_outlook_2003.html": (0, 0),
    "talon/tests__fixtures__html_replies__windows_mail.html": (0, 0),
    "transactional-email-templates/templates__inlined__action.html": (2, 0),
    "transactional-email-templates/templates__inlined__billing.html": (1, 0),
    # The benchmark newsletter: VML buttons with real URLs, an image map.
    "../bench/newsletter.html": (148, 7),
}

_OPT_OUTS = {
    "clicktracking": "off",
    "ses:no-track": None,
    "data-pm-no-track": None,
    "disable-tracking": "true",
    "mc:disable-tracking": None,
    "data-mailtrack": "off",
}
_DOWNLEVEL_HIDDEN = re.compile(
    r"\[if[^\]>]*\]>(.*)<!\[endif\][\t\n\f\r ]*\Z", re.DOTALL | re.IGNORECASE
)


class LinkReader(HTMLParser):
    """The hrefs a browser (and Outlook) would see, read by the standard
    library: ``(element name, href)`` in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("a", "area") and not tag.startswith("v:"):
            return
        href = None
        for name, value in attrs:
            expected = _OPT_OUTS.get(name, "")
            if expected != "" and (
                expected is None or (value or "").strip().lower() == expected
            ):
                return
            if name == "href" and href is None:
                href = value
        if href is not None:
            self.links.append((tag, href))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_comment(self, data: str) -> None:
        match = _DOWNLEVEL_HIDDEN.match(data)
        if match:
            inner = LinkReader()
            inner.feed(match.group(1))
            inner.close()
            self.links.extend(inner.links)


@pytest.fixture(scope="module")
def tracker() -> Tracker:
    return Tracker(
        secret_key="corpus-secret-key-0123456789-012",
        base_open_tracking_url=OPEN_BASE,
        base_click_tracking_url=CLICK_BASE,
    )


_HREF_BEFORE = re.compile(r"href[\t\n\f\r ]*=[\t\n\f\r ]*[\"']?\Z", re.IGNORECASE)
_TRACKING_URL = re.compile(re.escape(CLICK_BASE) + r"[0-9A-Za-z_-]+")
_PIXEL = re.compile(
    r'<img src="'
    + re.escape(OPEN_BASE)
    + r'[0-9A-Za-z_-]+"'
    + re.escape(PIXEL_ATTRIBUTES)
)
_UNQUOTED_END = re.compile(r"[\t\n\f\r >]")


def differences(before: str, after: str) -> list[tuple[str, str, str]]:
    """Align ``after`` with ``before`` in one pass, assuming the only
    differences are tracking URLs in ``after`` standing where ``before`` had
    an attribute value; return ``(old value, tracking URL, the 40 characters
    before it)`` for each. Any other difference fails the assertion."""
    spans = []
    source = 0
    output = 0
    for match in _TRACKING_URL.finditer(after):
        same = after[output : match.start()]
        if before.startswith(same, source):
            source += len(same)
            quote = same[-1:]
            if quote in ("'", '"'):
                end = before.index(quote, source)
            else:
                end = _UNQUOTED_END.search(before, source).end() - 1  # type: ignore[union-attr]
        else:
            # An unquoted value gains double quotes.
            assert same.endswith('"') and before.startswith(same[:-1], source), same[
                -80:
            ]
            source += len(same) - 1
            end = _UNQUOTED_END.search(before, source).end() - 1  # type: ignore[union-attr]
            assert after.startswith('"', match.end())
            output = match.end() + 1
            spans.append(
                (
                    before[source:end],
                    match.group(),
                    after[max(0, match.start() - 40) : match.start()],
                )
            )
            source = end
            continue
        spans.append(
            (
                before[source:end],
                match.group(),
                after[max(0, match.start() - 40) : match.start()],
            )
        )
        source = end
        output = match.end()
    assert before[source:] == after[output:]
    return spans


def read(path: pathlib.Path) -> str:
    return path.read_text(encoding="utf-8")


def test_corpus_is_complete() -> None:
    assert len(CORPUS_FILES) == 34
    assert {name(p) for p in FILES} == set(EXPECTED)


@pytest.mark.parametrize("path", FILES, ids=[name(p) for p in FILES])
def test_only_tracked_hrefs_and_pixel_change(
    tracker: Tracker, path: pathlib.Path
) -> None:
    source = read(path)
    output = t.cast(str, track_html(tracker, source, METADATA))
    policy = LinkPolicy(tracker)

    # One pixel, right before the last </body>; take it out.
    (pixel,) = _PIXEL.finditer(output)
    assert re.match(r"</body[\t\n\f\r />]", output[pixel.end() :], re.IGNORECASE)
    assert not re.search(r"</body", output[pixel.end() + 5 :], re.IGNORECASE)
    output = output[: pixel.start()] + output[pixel.end() :]

    # Every other difference is a tracked href value.
    tracked: list[str] = []
    for old, new, before in differences(source, output):
        assert _TRACKING_URL.fullmatch(new), (old, new)
        assert _HREF_BEFORE.search(before), (old, new, before)
        target = tracker.decode_click(html.unescape(new)).tracked_url
        assert target == clean_url(old)
        assert policy.target(old) == target
        assert not has_merge_tag(old)
        tracked.append(t.cast(str, target))

    # The links HTMLParser finds, filtered by the same URL rules, are the
    # links that were tracked, in the same order.
    reader = LinkReader()
    reader.feed(source)
    reader.close()
    expected = [policy.target(href, entities=False) for _, href in reader.links]
    assert tracked == [url for url in expected if url is not None]

    vml = sum(
        1
        for tag, href in reader.links
        if tag.startswith("v:") and policy.target(href, entities=False)
    )
    assert (len(tracked), vml) == EXPECTED[name(path)]

    # Merge tags are all still there.
    for marker in ("{{", "{%", "*|", "[unsubscribe]", "<%", "%recipient"):
        assert output.count(marker) == source.count(marker)


@pytest.mark.parametrize("path", FILES, ids=[name(p) for p in FILES])
def test_second_pass_changes_nothing(tracker: Tracker, path: pathlib.Path) -> None:
    data = path.read_bytes()
    once = t.cast(bytes, track_html(tracker, data, METADATA))
    assert isinstance(once, bytes)
    assert track_html(tracker, once, {"other": "metadata"}) == once
    template = HTMLTemplate(tracker, once)
    assert template.link_count == 0 and not template.adds_pixel


@pytest.mark.parametrize("position", ["top", "bottom"])
@pytest.mark.parametrize("path", FILES, ids=[name(p) for p in FILES])
def test_bytes_and_options(tracker: Tracker, path: pathlib.Path, position: str) -> None:
    data = path.read_bytes()
    template = HTMLTemplate(
        tracker, data, pixel_position=position, utm_params={"utm_medium": "email"}
    )
    output = t.cast(bytes, template.render(METADATA))
    assert output.count(OPEN_BASE.encode()) == 1
    for url in _TRACKING_URL.findall(output.decode("utf-8")):
        target = t.cast(str, tracker.decode_click(url).tracked_url)
        assert "utm_medium=" in target
    assert template.render(METADATA, track=False) is data


def test_corpus_has_vml_and_merge_tags() -> None:
    # The corpus exercises what it is here for. Its VML buttons all point
    # at a bare "http://" (no host), which is left alone; the newsletter's
    # VML buttons are tracked.
    assert sum(links for links, _ in EXPECTED.values()) > 200
    assert EXPECTED["../bench/newsletter.html"][1] > 0
    joined = "".join(read(p) for p in CORPUS_FILES)
    assert "{{" in joined and "*|" in joined and "[if mso]" in joined.lower()
    reader = LinkReader()
    reader.feed(joined)
    assert any(tag.startswith("v:") for tag, _ in reader.links)
