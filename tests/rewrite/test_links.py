"""The link policy's fast paths decide exactly as the patterns they stand
in front of, and a scan asks the policy once per distinct ``href`` value."""

from __future__ import annotations

import re

import pytest
from flask_mailtrack import is_safe_target
from flask_mailtrack import Tracker
from flask_mailtrack.rewrite import has_merge_tag
from flask_mailtrack.rewrite import HTMLTemplate
from flask_mailtrack.rewrite import LinkPolicy
from flask_mailtrack.rewrite._links import _HTTP_SCHEME
from flask_mailtrack.rewrite._links import _MERGE_MARKERS
from flask_mailtrack.rewrite._scanner import Scanner

OPEN_BASE = "https://t.example.com/o/"
CLICK_BASE = "https://t.example.com/c/"


def policy_for(*patterns: str) -> LinkPolicy:
    tracker = Tracker(
        secret_key="links-test-secret-key-0123456789abcdef",
        base_open_tracking_url=OPEN_BASE,
        base_click_tracking_url=CLICK_BASE,
        untracked_url_patterns=patterns,
    )
    return LinkPolicy(tracker)


URLS = [
    "https://example.com/unsubscribe",
    "https://example.com/UnSubscribe?x=1",
    "https://example.com/Opt-Out",
    "https://example.com/sale",
    "https://example.com/über/unsubscribe",
    "https://example.com/über/sale",
    "https://example.com/ÄBMELDEN",
    "https://example.com/äbmelden",
    "https://example.com/k",
    "https://example.com/\u212a",  # KELVIN SIGN, "k" to a case-insensitive regex
]


@pytest.mark.parametrize(
    "patterns",
    [
        ("unsubscribe", "optout", "opt-out"),
        ("UNSUBSCRIBE",),
        ("äbmelden",),  # not ASCII: the regular expression decides
        ("K",),
        ("\u212a",),
    ],
    ids=repr,
)
def test_untracked_patterns_as_the_case_insensitive_pattern(
    patterns: tuple[str, ...],
) -> None:
    policy = policy_for(*patterns)
    pattern = re.compile("|".join(map(re.escape, patterns)), re.IGNORECASE)
    for url in URLS:
        expected = None if pattern.search(url) else url
        assert policy.target(url) == expected, url


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/",
        "http://example.com/",
        "HTTPS://example.com/",
        "Http://example.com/",
        "hTtPs://example.com/",
        "httpſ://example.com/",  # LATIN SMALL LETTER LONG S, "s" to the regex
        "ftp://example.com/",
        "https:/example.com/",
        "//example.com/",
    ],
)
def test_scheme_check_as_the_pattern(url: str) -> None:
    expected = _HTTP_SCHEME.match(url) is not None and is_safe_target(url)
    assert (policy_for().target(url) is not None) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://e.com/{{x}}",
        "https://e.com/{%x%}",
        "https://e.com/{$x}",
        "https://e.com/${x}",
        "https://e.com/*|X|*",
        "https://e.com/|*x",
        "https://e.com/<%x%>",
        "https://e.com/x%>",
        "https://e.com/[unsubscribe]",
        "https://e.com/%recipient.name%",
        "https://e.com/%E2%80%99",
        "https://e.com/{x}[1]$5*2|3<4%",
        "https://e.com/plain?a=1&b=2",
    ],
)
def test_merge_tag_prefilter_as_the_pattern(url: str) -> None:
    # The prefilter only ever skips URLs the pattern finds nothing in.
    if _MERGE_MARKERS.search(url) is None:
        assert not has_merge_tag(url)
    else:
        assert has_merge_tag(url) == has_merge_tag(url + " ")


class CountingPolicy(LinkPolicy):
    __slots__ = ("asked",)

    def target(self, value: str, *, entities: bool = True) -> str | None:
        self.asked.append(value)
        return super().target(value, entities=entities)


def test_a_scan_decides_each_href_value_once() -> None:
    tracker = Tracker(
        secret_key="links-test-secret-key-0123456789abcdef",
        base_open_tracking_url=OPEN_BASE,
        base_click_tracking_url=CLICK_BASE,
    )
    policy = CountingPolicy(tracker)
    policy.asked = []
    html = (
        '<a href="https://example.com/a">1</a>'
        '<a href="https://example.com/b">2</a>'
        "<!--[if mso]>"
        '<v:roundrect href="https://example.com/a"></v:roundrect>'
        "<![endif]-->"
        '<a href="https://example.com/a" class=x>3</a>'
        '<a title="odd" href="mailto:x@example.com" title=twice>4</a>'
        '<a href="mailto:x@example.com">5</a>'
    )
    scanner = Scanner(html, policy, track_links=True, open_prefix=None)
    scanner.scan(0, len(html), top=True)
    assert policy.asked == [
        "https://example.com/a",
        "https://example.com/b",
        "mailto:x@example.com",
    ]
    assert [edit[2] for edit in scanner.edits] == [
        "https://example.com/a",
        "https://example.com/b",
        "https://example.com/a",
        "https://example.com/a",
    ]
    template = HTMLTemplate(tracker, html, open_tracking=False)
    assert template.urls == ("https://example.com/a", "https://example.com/b")
    assert template.link_count == 4
