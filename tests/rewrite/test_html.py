from __future__ import annotations

import html
import re
import typing as t

import flask_mailtrack.tracker
import pytest
from flask_mailtrack import adapt_html
from flask_mailtrack import Configuration
from flask_mailtrack import HTMLTemplate
from flask_mailtrack import MailTrackError
from flask_mailtrack import Tracker
from flask_mailtrack.rewrite import PIXEL_ATTRIBUTES
from flask_mailtrack.rewrite import track_html
from flask_mailtrack.rewrite._links import add_query_params
from flask_mailtrack.rewrite._links import clean_url
from flask_mailtrack.rewrite._links import has_merge_tag
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

OPEN_BASE = "https://t.example.com/o/"
CLICK_BASE = "https://t.example.com/c/"
METADATA = {"customer_id": 12345, "campaign_id": "spring"}
NOW = 1_800_000_000


@pytest.fixture
def tracker() -> Tracker:
    return Tracker(
        secret_key="test-secret-key-0123456789-01234",
        base_open_tracking_url=OPEN_BASE,
        base_click_tracking_url=CLICK_BASE,
    )


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens made in one second are identical: freeze the clock."""
    monkeypatch.setattr(flask_mailtrack.tracker.time, "time", lambda: NOW)


_PLACEHOLDER = re.compile(r"@@(.*?)@@", re.DOTALL)
_TRACKED = re.compile(re.escape(CLICK_BASE) + r"[0-9A-Za-z_-]+")
_PIXEL = re.compile(
    r'<img src="'
    + re.escape(OPEN_BASE)
    + r'[0-9A-Za-z_-]+"'
    + re.escape(PIXEL_ATTRIBUTES)
)


def expand(tracker: Tracker, expected: str) -> str:
    """Replace ``@@target@@`` by the escaped tracking URL of ``target``."""
    return _PLACEHOLDER.sub(
        lambda m: html.escape(tracker.click_url(m.group(1), METADATA)), expected
    )


def targets(tracker: Tracker, output: str) -> list[str]:
    """The destinations of the tracking URLs in ``output``, in order."""
    return [
        t.cast(str, tracker.decode_click(url).tracked_url)
        for url in _TRACKED.findall(output)
    ]


def track(tracker: Tracker, source: str, **options: t.Any) -> str:
    options.setdefault("open_tracking", False)
    return t.cast(str, track_html(tracker, source, METADATA, **options))


TRACKED = [
    pytest.param(
        '<a href="https://example.com/">x</a>',
        '<a href="@@https://example.com/@@">x</a>',
        id="double-quoted",
    ),
    pytest.param(
        "<a href='https://example.com/'>x</a>",
        "<a href='@@https://example.com/@@'>x</a>",
        id="single-quoted",
    ),
    pytest.param(
        "<a href=https://example.com/>x</a>",
        '<a href="@@https://example.com/@@">x</a>',
        id="unquoted-gains-quotes",
    ),
    pytest.param(
        "<a href=https://example.com/a class=b>x</a>",
        '<a href="@@https://example.com/a@@" class=b>x</a>',
        id="unquoted-then-attribute",
    ),
    pytest.param(
        '<A HREF="https://example.com/">x</A>',
        '<A HREF="@@https://example.com/@@">x</A>',
        id="upper-case-tag-and-attribute",
    ),
    pytest.param(
        '<a href="HTTPS://EXAMPLE.COM/">x</a>',
        '<a href="@@HTTPS://EXAMPLE.COM/@@">x</a>',
        id="upper-case-scheme",
    ),
    pytest.param(
        '<a href="  https://example.com/  ">x</a>',
        '<a href="@@https://example.com/@@">x</a>',
        id="surrounding-whitespace",
    ),
    pytest.param(
        '<a href="https://example.com/?a=1&amp;b=2">x</a>',
        '<a href="@@https://example.com/?a=1&b=2@@">x</a>',
        id="entity-decoded",
    ),
    pytest.param(
        '<a href="https://example.com/?a=1&b=2&#x26;c=&lt;">x</a>',
        '<a href="@@https://example.com/?a=1&b=2&c=<@@">x</a>',
        id="raw-ampersand-and-references",
    ),
    pytest.param(
        '<a href="https://example.com/a\n  b">x</a>',
        '<a href="@@https://example.com/a  b@@">x</a>',
        id="newline-inside-href",
    ),
    pytest.param(
        '<a title="a>b" href="https://example.com/">x</a>',
        '<a title="a>b" href="@@https://example.com/@@">x</a>',
        id="gt-in-quoted-attribute",
    ),
    pytest.param(
        '<a title=\'"\' href="https://example.com/">x</a>',
        '<a title=\'"\' href="@@https://example.com/@@">x</a>',
        id="other-quote-in-value",
    ),
    pytest.param(
        '<a href="https://one.example/" href="https://two.example/">x</a>',
        '<a href="@@https://one.example/@@" href="https://two.example/">x</a>',
        id="duplicate-href-first-counts",
    ),
    pytest.param(
        '<a\nclass="c"\n  href = "https://example.com/"\n>x</a>',
        '<a\nclass="c"\n  href = "@@https://example.com/@@"\n>x</a>',
        id="spaces-around-equals",
    ),
    pytest.param(
        '<a class="c"href="https://example.com/">x</a>',
        '<a class="c"href="@@https://example.com/@@">x</a>',
        id="no-space-between-attributes",
    ),
    pytest.param(
        '<map><area shape=rect coords="0,0,1,1" href="https://e.com/" /></map>',
        '<map><area shape=rect coords="0,0,1,1" href="@@https://e.com/@@" /></map>',
        id="area",
    ),
    pytest.param(
        '<!--[if mso]><v:roundrect href="https://example.com/b" arcsize="10%">'
        "<center>Go</center></v:roundrect><![endif]-->",
        '<!--[if mso]><v:roundrect href="@@https://example.com/b@@" arcsize="10%">'
        "<center>Go</center></v:roundrect><![endif]-->",
        id="vml-in-conditional-comment",
    ),
    pytest.param(
        '<!--[if gte mso 9]>\n<v:rect HREF="https://example.com/r"></v:rect>\n'
        '<v:oval href="https://example.com/o"></v:oval>\n<![endif]-->',
        '<!--[if gte mso 9]>\n<v:rect HREF="@@https://example.com/r@@"></v:rect>\n'
        '<v:oval href="@@https://example.com/o@@"></v:oval>\n<![endif]-->',
        id="vml-rect-and-oval",
    ),
    pytest.param(
        '<V:ROUNDRECT href="https://example.com/">x</V:ROUNDRECT>',
        '<V:ROUNDRECT href="@@https://example.com/@@">x</V:ROUNDRECT>',
        id="vml-outside-comment",
    ),
    pytest.param(
        '<!--[if mso]><a href="https://example.com/mso">x</a><![endif]-->',
        '<!--[if mso]><a href="@@https://example.com/mso@@">x</a><![endif]-->',
        id="link-in-conditional-comment",
    ),
    pytest.param(
        '<!--[if !mso]><!--><a href="https://example.com/">x</a><!--<![endif]-->',
        '<!--[if !mso]><!--><a href="@@https://example.com/@@">x</a><!--<![endif]-->',
        id="downlevel-revealed",
    ),
    pytest.param(
        '<!--[if mso]><table><tr><td><![endif]--><a href="https://example.com/">x'
        "</a><!--[if mso]></td></tr></table><![endif]-->",
        '<!--[if mso]><table><tr><td><![endif]--><a href="@@https://example.com/@@">x'
        "</a><!--[if mso]></td></tr></table><![endif]-->",
        id="conditional-opened-and-closed-apart",
    ),
    pytest.param(
        '<!--><a href="https://example.com/">x</a><!--->',
        '<!--><a href="@@https://example.com/@@">x</a><!--->',
        id="empty-comments",
    ),
    pytest.param(
        '<a href="https://example.com/a%20b?q=%E2%80%99&r=caf%C3%A9s">x</a>',
        '<a href="@@https://example.com/a%20b?q=%E2%80%99&r=caf%C3%A9s@@">x</a>',
        id="percent-escapes-are-not-merge-tags",
    ),
    pytest.param(
        '<a href="https://example.com/café">Crème &amp; “brûlée” 🍮</a>',
        '<a href="@@https://example.com/café@@">Crème &amp; “brûlée” 🍮</a>',
        id="non-ascii",
    ),
    pytest.param(
        '<a href="https://example.com/" data-mailtrack="on">x</a>',
        '<a href="@@https://example.com/@@" data-mailtrack="on">x</a>',
        id="opt-out-attribute-other-value",
    ),
    pytest.param(
        '<svg><a href="https://example.com/" xlink:href="https://x.example/">'
        "x</a></svg>",
        '<svg><a href="@@https://example.com/@@" xlink:href="https://x.example/">'
        "x</a></svg>",
        id="svg-link-href-only",
    ),
    pytest.param(
        '<p>a < b</p><a href="https://example.com/">x</a>',
        '<p>a < b</p><a href="@@https://example.com/@@">x</a>',
        id="stray-less-than",
    ),
    pytest.param(
        '<a href="https://example.com/">x</a  >',
        '<a href="@@https://example.com/@@">x</a  >',
        id="end-tag-spaces",
    ),
    pytest.param(
        '<![if !mso]><a href="https://example.com/">x</a><![endif]>',
        '<![if !mso]><a href="@@https://example.com/@@">x</a><![endif]>',
        id="downlevel-revealed-without-dashes",
    ),
    pytest.param(
        '<![endif]--><a href="https://example.com/">x</a>',
        '<![endif]--><a href="@@https://example.com/@@">x</a>',
        id="stray-endif-is-a-bogus-comment",
    ),
    pytest.param(
        '<?xml version="1.0"?><a href="https://example.com/">x</a>',
        '<?xml version="1.0"?><a href="@@https://example.com/@@">x</a>',
        id="processing-instruction",
    ),
    pytest.param(
        '<img alt=a"b src="x"><a href="https://example.com/">x</a>',
        '<img alt=a"b src="x"><a href="@@https://example.com/@@">x</a>',
        id="malformed-img",
    ),
    pytest.param(
        "<a href='https://example.com/' title=a\"b>x</a>",
        "<a href='@@https://example.com/@@' title=a\"b>x</a>",
        id="quote-inside-unquoted-value",
    ),
]


@pytest.mark.parametrize(("source", "expected"), TRACKED)
def test_tracked(tracker: Tracker, frozen: None, source: str, expected: str) -> None:
    output = track(tracker, source)
    assert output == expand(tracker, expected)
    # Rewriting again changes nothing.
    assert track(tracker, output) == output


UNTOUCHED = [
    pytest.param('<a href="mailto:a@example.com">x</a>', id="mailto"),
    pytest.param('<a href="tel:+15551234567">x</a>', id="tel"),
    pytest.param('<a href="sms:+15551234567">x</a>', id="sms"),
    pytest.param('<a href="javascript:alert(1)">x</a>', id="javascript"),
    pytest.param('<a href="data:text/html,hi">x</a>', id="data"),
    pytest.param('<a href="ftp://example.com/">x</a>', id="ftp"),
    pytest.param('<a href="#top">x</a>', id="fragment"),
    pytest.param('<a href="/relative/path">x</a>', id="relative"),
    pytest.param('<a href="//example.com/x">x</a>', id="scheme-relative"),
    pytest.param('<a href="">x</a>', id="empty"),
    pytest.param("<a href>x</a>", id="no-value"),
    pytest.param('<a name="top"></a>', id="no-href"),
    pytest.param('<a href="https://">x</a>', id="no-host"),
    pytest.param('<a href="https://user@example.com/">x</a>', id="userinfo"),
    pytest.param('<a href="https://exa mple.com/">x</a>', id="space-in-host"),
    pytest.param('<!-- <a href="https://example.com/">x</a> -->', id="comment"),
    pytest.param(
        '<!--[if !mso]><a href="https://example.com/">x</a>-->',
        id="comment-not-conditional",
    ),
    pytest.param(
        "<script>var s = '<a href=\"https://example.com/\">';</script>", id="script"
    ),
    pytest.param(
        '<SCRIPT type="x">"<a href="https://example.com/">"</SCRIPT >', id="script-case"
    ),
    pytest.param('<style>/* <a href="https://example.com/"> */</style>', id="style"),
    pytest.param('<title><a href="https://example.com/"></title>', id="title"),
    pytest.param(
        '<textarea><a href="https://example.com/">x</a></textarea>', id="textarea"
    ),
    pytest.param('<![CDATA[ <a href="https://example.com/">x</a> ]]>', id="cdata"),
    pytest.param(
        '<link href="https://fonts.googleapis.com/css?family=Lato" rel="stylesheet">',
        id="link",
    ),
    pytest.param('<base href="https://example.com/">', id="base"),
    pytest.param('<svg><use href="https://example.com/#i"/></svg>', id="use"),
    pytest.param(
        '<svg><a xlink:href="https://example.com/">x</a></svg>', id="xlink-href"
    ),
    pytest.param('<div data-href="https://example.com/">x</div>', id="data-href"),
    pytest.param('<a data-href="https://example.com/">x</a>', id="a-data-href"),
    pytest.param('<p>Use href="https://example.com/" here</p>', id="text-href"),
    pytest.param('<abbr href="https://example.com/">x</abbr>', id="abbr"),
    pytest.param(
        "<div title=\"<a href='https://example.com/'>\">x</div>",
        id="inside-attribute-value",
    ),
    pytest.param('</a href="https://example.com/">', id="end-tag-attribute"),
    pytest.param('<a href="{{ unsubscribe_url }}">x</a>', id="handlebars"),
    pytest.param('<a href="{{action_url}}">x</a>', id="handlebars-no-space"),
    pytest.param('<a href="https://example.com/?u={{ id }}">x</a>', id="merge-inside"),
    pytest.param("<a href=\"{% url 'home' %}\">x</a>", id="jinja-tag"),
    pytest.param('<a href="*|UNSUB|*">x</a>', id="mailchimp"),
    pytest.param('<a href="https://example.com/*|ID|*">x</a>', id="mailchimp-inside"),
    pytest.param('<a href="%unsubscribe_url%">x</a>', id="mailgun"),
    pytest.param(
        '<a href="https://example.com/?r=%recipient.id%">x</a>', id="mailgun-inside"
    ),
    pytest.param('<a href="[unsubscribe]">x</a>', id="bracket-tag"),
    pytest.param(
        '<a href="<%asm_group_unsubscribe_raw_url%>">x</a>', id="sendgrid-asm"
    ),
    pytest.param(
        '<a href="&lt;%asm_preferences_raw_url%&gt;">x</a>', id="sendgrid-asm-escaped"
    ),
    pytest.param('<a href="https://example.com/{$user}">x</a>', id="smarty"),
    pytest.param('<a href="https://example.com/${id}">x</a>', id="dollar-brace"),
    pytest.param(
        '<a href="https://example.com/unsubscribe?u=1">x</a>', id="unsubscribe"
    ),
    pytest.param(
        '<a href="https://example.com/UnSubscribe">x</a>', id="unsubscribe-case"
    ),
    pytest.param('<a href="https://example.com/optout">x</a>', id="optout"),
    pytest.param('<a href="https://example.com/opt-out">x</a>', id="opt-out"),
    pytest.param(
        '<a href="https://example.com/" clicktracking=off>x</a>', id="sendgrid-off"
    ),
    pytest.param(
        '<a href="https://example.com/" clicktracking="OFF">x</a>',
        id="sendgrid-off-quoted",
    ),
    pytest.param('<a ses:no-track href="https://example.com/">x</a>', id="ses"),
    pytest.param(
        '<a href="https://example.com/" data-pm-no-track>x</a>', id="postmark"
    ),
    pytest.param(
        '<a href="https://example.com/" disable-tracking=true>x</a>',
        id="disable-tracking",
    ),
    pytest.param(
        '<a mc:disable-tracking href="https://example.com/">x</a>', id="mandrill"
    ),
    pytest.param('<a href="https://t.example.com/c/1abc">x</a>', id="already-tracked"),
    pytest.param("<p>Just text, no links.</p>", id="no-links"),
    pytest.param("", id="empty-document"),
]


@pytest.mark.parametrize("source", UNTOUCHED)
def test_untouched(tracker: Tracker, source: str) -> None:
    assert track(tracker, source) == source


def test_own_opt_out_attribute_removed(tracker: Tracker) -> None:
    source = (
        '<a href="https://example.com/" data-mailtrack="off">x</a>'
        "<a data-mailtrack='OFF'\n href=\"https://example.com/b\">y</a>"
    )
    assert track(tracker, source) == (
        '<a href="https://example.com/">x</a><a\n href="https://example.com/b">y</a>'
    )


def test_esp_opt_out_marker_kept_and_others_tracked(
    tracker: Tracker, frozen: None
) -> None:
    source = (
        '<a href="https://a.example/" clicktracking=off>a</a>'
        '<a href="https://b.example/">b</a>'
    )
    assert track(tracker, source) == expand(
        tracker,
        '<a href="https://a.example/" clicktracking=off>a</a>'
        '<a href="@@https://b.example/@@">b</a>',
    )


def test_untracked_url_patterns_configurable(tracker: Tracker) -> None:
    custom = Tracker(
        tracker.configuration.replace(untracked_url_patterns=["/private/"])
    )
    source = (
        '<a href="https://example.com/private/x">p</a>'
        '<a href="https://example.com/unsubscribe">u</a>'
    )
    output = track(custom, source)
    assert output.startswith('<a href="https://example.com/private/x">')
    assert targets(custom, output) == ["https://example.com/unsubscribe"]


def test_click_tracking_off(tracker: Tracker) -> None:
    source = '<html><body><a href="https://example.com/">x</a></body></html>'
    output = track_html(tracker, source, METADATA, click_tracking=False)
    assert output.startswith(source[: -len("</body></html>")] + '<img src="')
    assert "https://example.com/" in output


def test_nothing_to_do(tracker: Tracker) -> None:
    source = '<a href="https://example.com/">x</a>'
    assert (
        track_html(tracker, source, METADATA, click_tracking=False, open_tracking=False)
        == source
    )


# -- the pixel ---------------------------------------------------------------


def pixel(tracker: Tracker) -> str:
    return f'<img src="{html.escape(tracker.open_url(METADATA))}"{PIXEL_ATTRIBUTES}'


PIXELS = [
    pytest.param(
        "<html><body><p>x</p></body></html>",
        "bottom",
        "<html><body><p>x</p>@@</body></html>",
        id="bottom",
    ),
    pytest.param(
        "<html><BODY class=a><p>x</p></BODY ></html>",
        "bottom",
        "<html><BODY class=a><p>x</p>@@</BODY ></html>",
        id="bottom-upper-case",
    ),
    pytest.param(
        "<body><p>x</p></body><!-- </body> --></html>",
        "bottom",
        "<body><p>x</p>@@</body><!-- </body> --></html>",
        id="bottom-ignores-comment",
    ),
    pytest.param(
        "<body><p>x</p></body>\n</body>",
        "bottom",
        "<body><p>x</p></body>\n@@</body>",
        id="bottom-last-body",
    ),
    pytest.param(
        "<body><script>'</body>'</script></body>",
        "bottom",
        "<body><script>'</body>'</script>@@</body>",
        id="bottom-ignores-script",
    ),
    pytest.param(
        "<p>fragment</p>",
        "bottom",
        "<p>fragment</p>@@",
        id="bottom-fragment",
    ),
    pytest.param(
        "<!DOCTYPE html><html><p>x</p></html>",
        "bottom",
        "<!DOCTYPE html><html><p>x</p>@@</html>",
        id="bottom-no-body",
    ),
    pytest.param(
        '<html><body style="margin:0">\n<p>x</p></body></html>',
        "top",
        '<html><body style="margin:0">@@\n<p>x</p></body></html>',
        id="top",
    ),
    pytest.param(
        "<body><body class=b><p>x</p></body>",
        "top",
        "<body>@@<body class=b><p>x</p></body>",
        id="top-first-body",
    ),
    pytest.param(
        "<!--[if mso]><body><![endif]--><body><p>x</p></body>",
        "top",
        "<!--[if mso]><body><![endif]--><body>@@<p>x</p></body>",
        id="top-ignores-conditional",
    ),
    pytest.param("<p>fragment</p>", "top", "@@<p>fragment</p>", id="top-fragment"),
    pytest.param(
        "<!DOCTYPE html>\n<html><head><title>t</title></head><p>x</p></html>",
        "top",
        "<!DOCTYPE html>\n<html><head><title>t</title></head>@@<p>x</p></html>",
        id="top-no-body",
    ),
    pytest.param(
        "<!DOCTYPE html>\n<p>x</p>",
        "top",
        "<!DOCTYPE html>@@\n<p>x</p>",
        id="top-doctype",
    ),
    pytest.param("", "bottom", "@@", id="empty"),
    pytest.param("<p>x</p><a href=x", "bottom", "<p>x</p>@@<a href=x", id="cut-tag"),
    pytest.param(
        "<body><p>x</p><!-- </body>",
        "bottom",
        "<body><p>x</p>@@<!-- </body>",
        id="cut-comment",
    ),
    pytest.param(
        "<body><script>x</body>", "bottom", "<body>@@<script>x</body>", id="cut-script"
    ),
]


@pytest.mark.parametrize(("source", "position", "expected"), PIXELS)
def test_pixel(
    tracker: Tracker, frozen: None, source: str, position: str, expected: str
) -> None:
    output = track_html(tracker, source, METADATA, pixel_position=position)
    assert output == expected.replace("@@", pixel(tracker))
    assert track_html(tracker, output, METADATA, pixel_position=position) == output


def test_pixel_markup(tracker: Tracker) -> None:
    output = track_html(tracker, "<p>x</p>", METADATA)
    tag = output[len("<p>x</p>") :]
    assert re.fullmatch(
        r'<img src="https://t\.example\.com/o/[0-9A-Za-z_-]+" width="1" height="1"'
        r' alt="" style="display:block;border:0;[^"]*" />',
        tag,
    )
    src = tag.split('"')[1]
    assert tracker.decode_open(src).metadata == METADATA


def test_pixel_position_from_configuration(tracker: Tracker, frozen: None) -> None:
    top = Tracker(tracker.configuration.replace(pixel_position="top"))
    output = track_html(top, "<body><p>x</p></body>", METADATA)
    assert output.startswith("<body><img ")


def test_pixel_not_added_twice(tracker: Tracker) -> None:
    source = f'<body><p>x</p><img src="{tracker.open_url({"other": 1})}"></body>'
    assert track_html(tracker, source, METADATA, click_tracking=False) == source


def test_open_tracking_off(tracker: Tracker) -> None:
    output = track_html(tracker, "<body></body>", METADATA, open_tracking=False)
    assert output == "<body></body>"


# -- bytes -------------------------------------------------------------------


def test_bytes_utf8(tracker: Tracker) -> None:
    source = '<p>Crème</p><a href="https://example.com/é">x</a>'.encode()
    output = track_html(tracker, source, METADATA, open_tracking=False)
    assert isinstance(output, bytes)
    text = output.decode("utf-8")
    assert text.startswith('<p>Crème</p><a href="https://t.example.com/c/')
    assert targets(tracker, text) == ["https://example.com/é"]


@pytest.mark.parametrize(
    ("head", "charset"),
    [
        pytest.param('<meta charset="iso-8859-1">', None, id="meta-charset"),
        pytest.param(
            '<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=ISO-8859-1">',
            None,
            id="http-equiv",
        ),
        pytest.param("", "latin-1", id="given"),
        pytest.param('<meta charset="utf-8">', "latin-1", id="given-wins"),
    ],
)
def test_bytes_latin1(tracker: Tracker, head: str, charset: str | None) -> None:
    body = '<body><p>Café</p><a href="https://example.com/café">x</a></body>'
    source = (head + body).encode("latin-1")
    output = track_html(tracker, source, METADATA, charset=charset)
    assert isinstance(output, bytes)
    assert output.startswith(source[: source.index(b"https://")])
    assert b"<p>Caf\xe9</p>" in output
    text = output.decode("latin-1")
    assert targets(tracker, text) == ["https://example.com/café"]
    assert track_html(tracker, output, METADATA, charset=charset) == output


def test_bytes_undecodable_kept(tracker: Tracker) -> None:
    source = b'<p>\xff\xfe broken</p><a href="https://example.com/">x</a>'
    output = track_html(tracker, source, METADATA, open_tracking=False)
    assert output.startswith(b'<p>\xff\xfe broken</p><a href="https://t.example.com/')


def test_bytes_undecodable_url_not_tracked(tracker: Tracker) -> None:
    source = b'<a href="https://example.com/\xff">x</a><a href="https://e.com/">y</a>'
    output = track_html(tracker, source, METADATA, open_tracking=False)
    assert output.startswith(
        b'<a href="https://example.com/\xff">x</a><a href="https://t.'
    )


def test_bytes_unknown_meta_charset_falls_back(tracker: Tracker) -> None:
    source = b'<meta charset="no-such-charset"><p>\xc3\xa9</p>'
    output = track_html(tracker, source, METADATA, open_tracking=False)
    assert output == source


def test_bytes_incompatible_charset(tracker: Tracker) -> None:
    with pytest.raises(MailTrackError):
        track_html(tracker, "<p>x</p>".encode("utf-16"), METADATA, charset="utf-16")
    with pytest.raises(MailTrackError):
        track_html(tracker, b"<p>x</p>", METADATA, charset="no-such-charset")


# -- templates ---------------------------------------------------------------

DOCUMENT = (
    "<!DOCTYPE html><html><body>"
    '<a href="https://example.com/a">a</a> <a href="https://example.com/b">b</a>'
    " <a href='https://example.com/a'>a again</a>"
    '<!--[if mso]><v:roundrect href="https://example.com/c"></v:roundrect>'
    "<![endif]--></body></html>"
)


def test_render_equals_track_html(tracker: Tracker, frozen: None) -> None:
    template = HTMLTemplate(tracker, DOCUMENT, utm_params={"utm_source": "n"})
    for metadata in ({"id": 1}, {"id": 2}, None):
        assert template.render(metadata) == track_html(
            tracker, DOCUMENT, metadata, utm_params={"utm_source": "n"}
        )


def test_render_bytes_equals_track_html(tracker: Tracker, frozen: None) -> None:
    source = DOCUMENT.encode()
    template = HTMLTemplate(tracker, source, pixel_position="top")
    assert template.render({"id": 1}) == track_html(
        tracker, source, {"id": 1}, pixel_position="top"
    )


def test_render_untracked(tracker: Tracker) -> None:
    template = HTMLTemplate(tracker, DOCUMENT)
    assert template.render({"id": 1}, track=False) is DOCUMENT
    source = b'<a href="https://example.com/" data-mailtrack="off">x</a>'
    assert HTMLTemplate(tracker, source).render(track=False) is source


def test_render_per_recipient(tracker: Tracker) -> None:
    template = HTMLTemplate(tracker, DOCUMENT)
    first = t.cast(str, template.render({"id": 1}))
    second = t.cast(str, template.render({"id": 2}))
    assert first != second
    for output, expected in ((first, {"id": 1}), (second, {"id": 2})):
        urls = _TRACKED.findall(output)
        assert [tracker.decode_click(u).metadata for u in urls] == [expected] * 4


def test_render_one_token_per_distinct_url(
    tracker: Tracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = HTMLTemplate(tracker, DOCUMENT)
    assert template.urls == (
        "https://example.com/a",
        "https://example.com/b",
        "https://example.com/c",
    )
    assert template.link_count == 4
    assert template.adds_pixel
    made: list[str] = []
    click_tokens = tracker.click_tokens

    def counting(urls: t.Iterable[str], metadata: t.Any = None) -> list[str]:
        urls = list(urls)
        made.extend(urls)
        return click_tokens(urls, metadata)

    monkeypatch.setattr(tracker, "click_tokens", counting)
    output = t.cast(str, template.render({"id": 1}))
    assert made == list(template.urls)
    urls = _TRACKED.findall(output)
    assert urls[0] == urls[2] != urls[1]


def test_template_class(tracker: Tracker) -> None:
    template = HTMLTemplate(tracker, DOCUMENT, open_tracking=False)
    assert isinstance(HTMLTemplate(tracker, DOCUMENT), HTMLTemplate)
    assert not template.adds_pixel
    assert "<img" not in t.cast(str, template.render())


# -- UTM ---------------------------------------------------------------------

UTM = {"utm_source": "newsletter", "utm_medium": "email"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "https://example.com/",
            "https://example.com/?utm_source=newsletter&utm_medium=email",
            id="no-query",
        ),
        pytest.param(
            "https://example.com/?b=2&a=%2F+x",
            "https://example.com/?b=2&a=%2F+x&utm_source=newsletter&utm_medium=email",
            id="query-kept-as-is",
        ),
        pytest.param(
            "https://example.com/p?utm_source=blog#top",
            "https://example.com/p?utm_source=blog&utm_medium=email#top",
            id="existing-kept-and-fragment",
        ),
        pytest.param(
            "https://example.com/?",
            "https://example.com/?utm_source=newsletter&utm_medium=email",
            id="empty-query",
        ),
        pytest.param(
            "https://example.com/?a=1&",
            "https://example.com/?a=1&utm_source=newsletter&utm_medium=email",
            id="trailing-ampersand",
        ),
        pytest.param(
            "https://example.com/?utm_source=a&utm_medium=b",
            "https://example.com/?utm_source=a&utm_medium=b",
            id="all-present",
        ),
    ],
)
def test_add_query_params(url: str, expected: str) -> None:
    assert add_query_params(url, UTM) == expected


def test_add_query_params_encodes_new_values() -> None:
    assert (
        add_query_params("https://e.com/", {"utm_campaign": "spring sale/é"})
        == "https://e.com/?utm_campaign=spring+sale%2F%C3%A9"
    )
    assert add_query_params("https://e.com/", None) == "https://e.com/"


def test_utm_on_tracked_links_only(tracker: Tracker) -> None:
    source = (
        '<a href="https://example.com/?id=1&amp;x=2">a</a>'
        '<a href="mailto:a@example.com">m</a>'
    )
    output = track_html(tracker, source, METADATA, utm_params=UTM, open_tracking=False)
    assert targets(tracker, output) == [
        "https://example.com/?id=1&x=2&utm_source=newsletter&utm_medium=email"
    ]
    assert output.endswith('<a href="mailto:a@example.com">m</a>')


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("{{ x }}", True),
        ("https://e.com/%E2%80%99", False),
        ("https://e.com/caf%C3%A9s%20", False),
        ("https://e.com/?u=%recipient%", True),
        ("https://e.com/?u=%deadline%", True),
        ("https://e.com/?u=%AB%20", False),
        ("https://[::1]/", False),
        ("https://e.com/[unsubscribe]", True),
        ("https://e.com/?a=1%", False),
    ],
)
def test_has_merge_tag(url: str, expected: bool) -> None:
    assert has_merge_tag(url) is expected


# -- errors and the pytracking API ------------------------------------------


def test_errors(tracker: Tracker) -> None:
    with pytest.raises(TypeError):
        track_html(tracker, 123, METADATA)  # type: ignore[type-var]
    with pytest.raises(ValueError):
        track_html(tracker, "<p>", METADATA, pixel_position="middle")
    with pytest.raises(TypeError):
        track_html(tracker, '<a href="https://e.com/">x</a>', ["not", "a", "dict"])  # type: ignore[arg-type]
    no_click = Tracker(
        secret_key="test-secret-key-0123456789-01234", base_open_tracking_url=OPEN_BASE
    )
    with pytest.raises(MailTrackError):
        track_html(no_click, "<p>x</p>", METADATA)
    assert track_html(no_click, "<p>x</p>", METADATA, click_tracking=False)
    no_open = Tracker(
        secret_key="test-secret-key-0123456789-01234",
        base_click_tracking_url=CLICK_BASE,
    )
    with pytest.raises(MailTrackError):
        track_html(no_open, "<p>x</p>", METADATA)
    with pytest.raises(TypeError):
        HTMLTemplate(tracker, "<p>", no_such_option=True)


def test_adapt_html(tracker: Tracker) -> None:
    configuration = Configuration(
        secret_key="test-secret-key-0123456789-01234",
        base_open_tracking_url=OPEN_BASE,
        base_click_tracking_url=CLICK_BASE,
    )
    source = '<html><body><a href="https://example.com/">x</a></body></html>'
    output = adapt_html(source, METADATA, configuration=configuration)
    assert isinstance(output, str)
    assert targets(tracker, output) == ["https://example.com/"]
    assert '<img src="https://t.example.com/o/' in output
    assert adapt_html(source, METADATA, False, False, configuration) == source
    bytes_output = adapt_html(source.encode(), METADATA, configuration=configuration)
    assert isinstance(bytes_output, str)
    other = adapt_html(
        source,
        METADATA,
        configuration=configuration,
        base_click_tracking_url="https://other.example/c/",
    )
    assert '<a href="https://other.example/c/' in other
    with pytest.raises(TypeError):
        adapt_html(source, METADATA, configuration=configuration, no_such_key=1)


# -- adversarial input -------------------------------------------------------

ADVERSARIAL = [
    pytest.param('<a href="' * 100_000, id="unclosed-quotes"),
    pytest.param("<a href='x\" " * 80_000, id="mixed-quotes"),
    pytest.param("<a href=x " * 100_000, id="unclosed-tags"),
    pytest.param("<a " * 300_000, id="bare-tags"),
    pytest.param('<a b="" ' * 120_000, id="attributes-without-end"),
    pytest.param("<!--" * 250_000, id="unclosed-comments"),
    pytest.param("<!--[if mso]>" * 80_000, id="unclosed-conditionals"),
    pytest.param("<!--[if mso]><a href=" * 50_000 + "<![endif]-->", id="conditional"),
    pytest.param("<script>" * 120_000, id="unclosed-script"),
    pytest.param("</" * 500_000, id="end-tag-starts"),
    pytest.param("<" * 1_000_000, id="less-thans"),
    pytest.param("<!" * 500_000, id="bogus-comments"),
    pytest.param("<a\t" * 300_000 + ">", id="whitespace"),
    pytest.param(
        '<a href="https://example.com/" ' + " " * 1_000_000, id="long-whitespace"
    ),
    pytest.param("<![CDATA[" * 100_000, id="unclosed-cdata"),
    pytest.param("<p>" + "%recipient%{{" * 70_000 + "</p>", id="merge-tag-text"),
]


@pytest.mark.parametrize("source", ADVERSARIAL)
def test_adversarial_input_finishes(tracker: Tracker, source: str) -> None:
    # Not a timing assertion: a pattern that backtracked catastrophically
    # would not finish at all on a megabyte.
    assert len(source) >= 900_000
    output = t.cast(str, track_html(tracker, source, METADATA))
    assert _PIXEL.sub("", output, count=1) == source


def test_adversarial_many_links(tracker: Tracker) -> None:
    source = '<a href="https://example.com/?q=%AB%CD&amp;x={y">x</a>\n' * 20_000
    template = HTMLTemplate(tracker, source, open_tracking=False)
    assert template.link_count == 20_000
    assert len(template.urls) == 1


# -- property: whatever the markup, only tracked hrefs and the pixel change --

_PIECES = [
    "<a ",
    "<A ",
    "<area ",
    "<v:rect ",
    "href=",
    "HREF = ",
    '"',
    "'",
    "https://e.com/x",
    "HTTP://e.com/?a=1&amp;b",
    "mailto:x@e.com",
    "{{ u }}",
    ">",
    "/>",
    " ",
    "\n",
    "=",
    "<",
    "/",
    "<!--",
    "-->",
    "<!--[if mso]>",
    "<![endif]-->",
    "<!-->",
    "<script>",
    "</script>",
    "<style>",
    "</style x>",
    "<title>",
    "</title>",
    "<![CDATA[",
    "]]>",
    "<body>",
    "</body>",
    "<!DOCTYPE html>",
    "text",
    "clicktracking=off ",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=40))
def test_any_markup(pieces: list[str]) -> None:
    tracker = Tracker(
        secret_key="property-secret-key-0123-0123456",
        base_open_tracking_url=OPEN_BASE,
        base_click_tracking_url=CLICK_BASE,
    )
    source = "".join(pieces)
    output = t.cast(str, track_html(tracker, source, METADATA))
    pixels = list(_PIXEL.finditer(output))
    assert len(pixels) == 1
    pixel = pixels[0]
    rest = output[: pixel.start()] + output[pixel.end() :]
    # Outside the tracked values, the output is the input.
    parts = _TRACKED.split(rest)
    urls = _TRACKED.findall(rest)
    position = 0
    gained_quote = False
    for index, part in enumerate(parts):
        if gained_quote:
            # The value was unquoted: its closing quote is new too.
            assert part.startswith('"')
            part = part[1:]
        last = index + 1 == len(parts)
        # An unquoted value gains quotes: the opening one is new.
        gained_quote = not last and source.find(part, position) == -1
        if gained_quote:
            assert part.endswith('"')
            part = part[:-1]
        if index == 0:
            assert source.startswith(part)
            found = 0
        else:
            found = source.find(part, position) if part else position
            if part and last:
                found = len(source) - len(part)
                assert source.endswith(part)
            old = source[position:found]
            target = tracker.decode_click(html.unescape(urls[index - 1])).tracked_url
            assert target == clean_url(old)
        position = found + len(part)
    assert position == len(source)
    assert track_html(tracker, output, METADATA) == output
