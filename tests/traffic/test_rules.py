"""Machine-traffic verdicts: each rule with a realistic request."""

from __future__ import annotations

import ipaddress
import logging
import re
import time
import typing as t

import crawleruseragents
import pytest
from flask_mailtrack import record_events
from flask_mailtrack import Tracker
from flask_mailtrack import TrackingResult
from flask_mailtrack import traffic as machine
from flask_mailtrack.tokens import CLICK
from flask_mailtrack.web import handle_request
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

SECRET = "machine-test-secret-key-0123456789"
OPEN_BASE = "https://t.example.com/o/"
CLICK_BASE = "https://t.example.com/c/"

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"
    " (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)


def hit(
    tracker: Tracker,
    *,
    kind: str = "open",
    method: str = "GET",
    headers: dict[str, str] | None = None,
    remote_addr: str = "198.51.100.23",
    token: str | None = None,
) -> TrackingResult:
    """The result of one request to ``tracker``."""
    if token is None:
        token = (
            tracker.open_token()
            if kind == "open"
            else tracker.click_token("https://example.com/")
        )
    base = "/o/" if kind == "open" else "/c/"
    environ = EnvironBuilder(
        path=base + token,
        method=method,
        headers=headers if headers is not None else {"User-Agent": CHROME},
        environ_base={"REMOTE_ADDR": remote_addr},
    ).get_environ()
    handled = handle_request(tracker, Request(environ), sender=None)
    assert handled.result is not None, handled.error
    return handled.result


@pytest.fixture
def tracker() -> Tracker:
    return Tracker(
        secret_key=SECRET,
        base_open_tracking_url=OPEN_BASE,
        base_click_tracking_url=CLICK_BASE,
    )


PEOPLE = [
    pytest.param(CHROME, id="chrome-windows"),
    pytest.param(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) Mobile/15E148",
        id="apple-mail-ios-without-mpp",
    ),
    pytest.param(
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)",
        id="outlook-desktop",
    ),
    pytest.param(
        "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.5.0",
        id="thunderbird",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like"
        " Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
        id="chrome-android",
    ),
    pytest.param(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101"
        " Firefox/121.0",
        id="firefox",
    ),
    pytest.param(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"
        " (KHTML, like Gecko)",
        id="apple-mail-macos",
    ),
]


@pytest.mark.parametrize("user_agent", PEOPLE)
def test_people_are_not_labelled(tracker: Tracker, user_agent: str) -> None:
    result = hit(tracker, headers={"User-Agent": user_agent, "Accept": "image/*"})
    assert result.machine is None
    assert result.machine_reasons == []


@pytest.mark.parametrize(
    ("user_agent", "label", "reason"),
    [
        pytest.param(
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0"
            " (via ggpht.com GoogleImageProxy)",
            "image-proxy",
            "image-proxy",
            id="gmail-image-proxy",
        ),
        pytest.param(
            "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
            "image-proxy",
            "image-proxy",
            id="yahoo-mail-proxy",
        ),
        pytest.param("Mozilla/5.0", "apple-mpp", "apple-mpp-user-agent", id="mpp"),
        pytest.param("", "bot", "empty-user-agent", id="empty"),
        pytest.param("   ", "bot", "empty-user-agent", id="blank"),
        pytest.param("curl/8.4.0", "bot", "tool-user-agent", id="curl"),
        pytest.param("Wget/1.21.4", "bot", "tool-user-agent", id="wget"),
        pytest.param("python-requests/2.31.0", "bot", "tool-user-agent", id="requests"),
        pytest.param("Go-http-client/1.1", "bot", "tool-user-agent", id="go"),
        pytest.param("okhttp/4.12.0", "bot", "tool-user-agent", id="okhttp"),
        pytest.param(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
            " HeadlessChrome/120.0.0.0 Safari/537.36",
            "bot",
            "tool-user-agent",
            id="headless-chrome",
        ),
        pytest.param(
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "bot",
            "crawler-user-agent",
            id="googlebot",
        ),
        pytest.param(
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "bot",
            "crawler-user-agent",
            id="bingbot",
        ),
        pytest.param(
            "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
            "bot",
            "crawler-user-agent",
            id="ahrefs-regex-pattern",
        ),
        pytest.param(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML,"
            " like Gecko) Chrome/120.0.0.0 Safari/537.36 SafeLinks",
            "scanner",
            "scanner-user-agent",
            id="safelinks",
        ),
        pytest.param(
            "Mozilla/5.0 (compatible; Proofpoint URL Defense)",
            "scanner",
            "scanner-user-agent",
            id="proofpoint",
        ),
        pytest.param(
            "Mimecast-URL-Protect/1.0", "scanner", "scanner-user-agent", id="mimecast"
        ),
        pytest.param(
            "Barracuda Sentinel (EE)", "scanner", "scanner-user-agent", id="barracuda"
        ),
    ],
)
def test_user_agent_rules(
    tracker: Tracker, user_agent: str, label: str, reason: str
) -> None:
    result = hit(tracker, headers={"User-Agent": user_agent})
    assert result.machine == label
    assert result.machine_reasons == [reason]


def test_missing_user_agent_header(tracker: Tracker) -> None:
    result = hit(tracker, headers={})
    assert (result.machine, result.machine_reasons) == ("bot", ["empty-user-agent"])


@pytest.mark.parametrize(
    ("header", "value"),
    [
        pytest.param("Sec-Purpose", "prefetch", id="sec-purpose"),
        pytest.param("Sec-Purpose", "prefetch;prerender", id="sec-purpose-prerender"),
        pytest.param("Purpose", "prefetch", id="purpose"),
        pytest.param("X-Purpose", "preview", id="x-purpose"),
        pytest.param("X-Moz", "prefetch", id="x-moz"),
    ],
)
def test_prefetch_headers(tracker: Tracker, header: str, value: str) -> None:
    result = hit(tracker, headers={"User-Agent": CHROME, header: value})
    assert result.machine == "prefetch"
    assert result.machine_reasons == ["prefetch-header"]
    key = header.lower().replace("-", "_")
    assert result.request_data is not None
    assert result.request_data[key] == value


def test_head_request_with_a_tool_user_agent_lists_both(tracker: Tracker) -> None:
    result = hit(tracker, method="HEAD", headers={"User-Agent": "curl/8.4.0"})
    assert result.machine == "prefetch"
    assert result.machine_reasons == ["head-request", "tool-user-agent"]


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("40.107.22.5", id="microsoft-eop-v4"),
        pytest.param("52.101.0.9", id="microsoft-eop-v4-second-range"),
        pytest.param("104.47.127.255", id="microsoft-eop-last-address"),
        pytest.param("2a01:111:f403:c200::1", id="microsoft-eop-v6"),
        pytest.param("::ffff:40.92.1.1", id="microsoft-eop-v4-mapped"),
        pytest.param("148.163.150.12", id="proofpoint-essentials"),
    ],
)
def test_gateway_networks(tracker: Tracker, address: str) -> None:
    result = hit(tracker, remote_addr=address)
    assert result.machine == "scanner"
    assert result.machine_reasons == ["gateway-network"]


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("104.47.128.0", id="just-after-eop"),
        pytest.param("40.91.255.255", id="just-before-eop"),
        pytest.param("8.8.8.8", id="elsewhere"),
        pytest.param("2001:db8::1", id="documentation-v6"),
    ],
)
def test_other_networks(tracker: Tracker, address: str) -> None:
    assert hit(tracker, remote_addr=address).machine is None


def test_click_too_fast() -> None:
    tracker = Tracker(
        secret_key=SECRET, base_click_tracking_url=CLICK_BASE, click_scan_seconds=30
    )
    fresh = hit(tracker, kind="click")
    assert fresh.machine == "scanner"
    assert fresh.machine_reasons == ["click-too-fast"]
    issued = int(time.time()) - 600
    old_token = tracker.serializer.dumps(
        CLICK, "https://example.com/", issued_at=issued
    )
    assert hit(tracker, kind="click", token=old_token).machine is None


def test_click_too_fast_is_off_by_default(tracker: Tracker) -> None:
    assert hit(tracker, kind="click").machine is None


def test_click_too_fast_ignores_opens() -> None:
    tracker = Tracker(
        secret_key=SECRET, base_open_tracking_url=OPEN_BASE, click_scan_seconds=30
    )
    assert hit(tracker).machine is None


def office_network(result: TrackingResult, request: Request) -> str | None:
    ip = (result.request_data or {}).get("user_ip")
    return "internal" if ip and ip.startswith("10.") else None


def broken_rule(result: TrackingResult, request: Request) -> str | None:
    raise ValueError("rule bug")


def test_user_rules() -> None:
    tracker = Tracker(
        secret_key=SECRET,
        base_open_tracking_url=OPEN_BASE,
        machine_rules=[office_network],
    )
    assert hit(tracker, remote_addr="10.1.2.3").machine == "internal"
    assert hit(tracker, remote_addr="10.1.2.3").machine_reasons == ["office_network"]
    assert hit(tracker).machine is None
    both = hit(tracker, remote_addr="10.1.2.3", headers={"User-Agent": "curl/8"})
    assert both.machine == "bot"
    assert both.machine_reasons == ["tool-user-agent", "office_network"]


def test_user_rule_that_raises_is_logged_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = Tracker(
        secret_key=SECRET,
        base_open_tracking_url=OPEN_BASE,
        machine_rules=[broken_rule, office_network],
    )
    with caplog.at_level(logging.ERROR, logger="flask_mailtrack"):
        with record_events() as events:
            result = hit(tracker, remote_addr="10.9.9.9")
    assert result.machine == "internal"
    assert any("broken_rule" in r.getMessage() for r in caplog.records)
    assert events[0].signal == "email-opened"


# -- the crawler expression -------------------------------------------------------

PATTERNS = [item["pattern"] for item in crawleruseragents.CRAWLER_USER_AGENTS_DATA]
PLAIN = re.compile("|".join(PATTERNS))


def test_compiled_crawler_patterns_match_every_published_instance() -> None:
    compiled = machine.crawler_pattern()
    assert compiled is not None
    instances = [
        instance
        for item in crawleruseragents.CRAWLER_USER_AGENTS_DATA
        for instance in item.get("instances", ())
    ]
    assert len(instances) > 1000
    missed = [ua for ua in instances if compiled.search(ua) is None]
    assert missed == []


@pytest.mark.parametrize("user_agent", [p.values[0] for p in PEOPLE])
def test_compiled_crawler_patterns_agree_on_people(user_agent: str) -> None:
    compiled = machine.crawler_pattern()
    assert compiled is not None
    assert bool(compiled.search(user_agent)) == bool(PLAIN.search(user_agent))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [p[:12] for p in PATTERNS[:200]]
            + ["Mozilla/5.0 ", "(compatible; ", "bot", "Bot/", "^", " ", "curl"]
        ),
        max_size=6,
    ).map("".join)
)
def test_compiled_crawler_patterns_agree_with_the_plain_join(text: str) -> None:
    compiled = machine.crawler_pattern()
    assert compiled is not None
    assert bool(compiled.search(text)) == bool(PLAIN.search(text))


@pytest.mark.parametrize(
    ("patterns", "text", "matches"),
    [
        pytest.param(["abc", "abd"], "xxabdxx", True, id="shared-prefix"),
        pytest.param(["abc", "ab"], "xab", True, id="prefix-of-another"),
        pytest.param(["^curl"], "xcurl", False, id="anchored-elsewhere"),
        pytest.param(["^curl"], "curl/8", True, id="anchored-start"),
        pytest.param(["a\\.b"], "axb", False, id="escaped-dot"),
        pytest.param(["a\\.b"], "a.b", True, id="escaped-dot-literal"),
        pytest.param(["[wW]get"], "Wget", True, id="character-class"),
        pytest.param(["x\\d"], "x1", True, id="digit-class-kept-as-regex"),
        pytest.param([], "anything", False, id="empty"),
        pytest.param(["Ahrefs(Bot|SiteAudit)"], "AhrefsSiteAudit/6", True, id="group"),
        pytest.param(["Ahrefs(Bot|SiteAudit)"], "Ahrefs/6", False, id="group-miss"),
        pytest.param(["bots?x"], "botx", True, id="quantifier-after-literal"),
        pytest.param(["bots?x"], "botsx", True, id="quantifier-used"),
        pytest.param(["a-b([^-]|$)"], "xa-b", True, id="tail-end"),
        pytest.param(["a-b([^-]|$)"], "a-b-", False, id="tail-refuses"),
        pytest.param(["Auto|News Feed"], "a News Feed", True, id="top-level-or"),
        pytest.param(["(^| )sentry\\/"], "sentry/1", True, id="start-or-start"),
        pytest.param(["(^| )sentry\\/"], "x sentry/1", True, id="start-or-space"),
        pytest.param(["(^| )sentry\\/"], "xsentry/1", False, id="start-or-miss"),
        pytest.param(["^a|b"], "xb", True, id="anchored-with-or"),
        pytest.param(["X[\\s\\S]*Y"], "X and Y", True, id="any-characters"),
    ],
)
def test_compile_crawler_patterns(
    patterns: list[str], text: str, matches: bool
) -> None:
    compiled = machine.compile_crawler_patterns(patterns)
    assert bool(compiled.search(text)) is matches


def test_without_crawler_package(
    tracker: Tracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("flask_mailtrack.traffic._rules.crawler_pattern", lambda: None)
    machine.clear_caches()
    try:
        googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1)"
        assert hit(tracker, headers={"User-Agent": googlebot}).machine is None
        assert hit(tracker, headers={"User-Agent": "curl/8"}).machine == "bot"
    finally:
        machine.clear_caches()


# -- network sets and the data file -----------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        pytest.param("10.0.0.0", "a", id="first"),
        pytest.param("10.0.255.255", "a", id="last-of-first"),
        pytest.param("10.1.0.0", "a", id="adjacent-merged"),
        pytest.param("10.1.255.255", "a", id="end-of-merged"),
        pytest.param("10.2.0.0", None, id="after"),
        pytest.param("9.255.255.255", None, id="before"),
        pytest.param("10.0.3.7", "a", id="nested-inside-larger"),
        pytest.param("192.168.1.1", "c", id="single"),
        pytest.param("192.168.1.2", None, id="next-to-single"),
        pytest.param("fd00::1", "v6", id="ipv6"),
        pytest.param("fe00::1", None, id="ipv6-outside"),
        pytest.param("not an ip", None, id="text"),
        pytest.param("10.0.0", None, id="short"),
        pytest.param("", None, id="empty"),
    ],
)
def test_network_set(address: str, expected: str | None) -> None:
    networks = machine.NetworkSet(
        [
            ("10.0.0.0/16", "a"),
            ("10.0.3.0/24", "b"),
            ("10.1.0.0/16", "a"),
            ("192.168.1.1/32", "c"),
            ("fd00::/8", "v6"),
        ]
    )
    assert networks.lookup(address) == expected


def test_data_file_documents_every_provider() -> None:
    data = machine.load_gateway_networks()
    assert data["updated"] and data["refresh"]
    assert {p["name"] for p in data["providers"]} >= {"microsoft-eop"}
    for provider in data["providers"]:
        assert provider["source"] and provider["compiled"]
        for network in provider["networks"]:
            ipaddress.ip_network(network)  # strict: no host bits set
    assert len(machine.gateway_networks()) > 0


def test_user_agent_verdict_is_cached() -> None:
    machine.user_agent_verdict.cache_clear()
    machine.user_agent_verdict("curl/8")
    machine.user_agent_verdict("curl/8")
    assert machine.user_agent_verdict.cache_info().hits == 1


def test_long_user_agents_are_cut_before_caching(tracker: Tracker) -> None:
    result = hit(tracker, headers={"User-Agent": CHROME + "x" * 5000})
    assert result.request_data is not None
    assert len(result.request_data["user_agent"]) == 512


# -- the verdict and the rule signature ----------------------------------------------


def _hit(**fields: t.Any) -> machine.Hit:
    values: dict[str, t.Any] = {
        "method": "GET",
        "path": "/o/token",
        "headers": {"User-Agent": CHROME},
        "remote_addr": "198.51.100.23",
        "client_ip": "198.51.100.23",
        "user_agent": CHROME,
    }
    values.update(fields)
    return machine.Hit(**values)


def test_machine_verdict_returns_and_changes_nothing(tracker: Tracker) -> None:
    result = TrackingResult(is_open_tracking=True)
    verdict = machine.machine_verdict(
        result,
        _hit(method="HEAD", user_agent="curl/8"),
        tracker.configuration,
        now=time.time(),
    )
    assert verdict == machine.Verdict("prefetch", ("head-request", "tool-user-agent"))
    assert result.machine is None and result.machine_reasons == []
    person = machine.machine_verdict(
        result, _hit(), tracker.configuration, now=time.time()
    )
    assert person == machine.Verdict(None, ())


def test_prefetch_headers_read_from_the_hit_without_request_data(
    tracker: Tracker,
) -> None:
    hit = _hit(headers={"X-Moz": "prefetch"})
    verdict = machine.machine_verdict(
        TrackingResult(), hit, tracker.configuration, now=time.time()
    )
    assert verdict.reasons == ("prefetch-header",)


def test_rules_get_a_hit() -> None:
    seen: list[machine.Hit] = []

    def spy(result: TrackingResult, hit: machine.Hit) -> None:
        seen.append(hit)

    tracker = Tracker(
        secret_key=SECRET, base_open_tracking_url=OPEN_BASE, machine_rules=[spy]
    )
    hit(tracker, headers={"User-Agent": CHROME, "X-Team": "blue"})
    [got] = seen
    assert got.method == "GET"
    assert got.path.startswith("/o/")
    assert got.headers.get("x-team") == "blue"
    assert got.remote_addr == got.client_ip == "198.51.100.23"
    assert got.user_agent == CHROME


def werkzeug_style_rule(result: TrackingResult, request: t.Any) -> str | None:
    """A rule written for ``rule(result, request)`` with a werkzeug request."""
    if (
        request.method == "GET"
        and request.headers.get("X-Scanner") == "yes"
        and request.remote_addr == "198.51.100.23"
        and request.user_agent.string.startswith("Mozilla")
    ):
        return "scanner"
    return None


def test_rules_written_for_the_werkzeug_request_keep_working() -> None:
    tracker = Tracker(
        secret_key=SECRET,
        base_open_tracking_url=OPEN_BASE,
        machine_rules=[werkzeug_style_rule],
    )
    with pytest.warns(DeprecationWarning, match="user_agent"):
        result = hit(tracker, headers={"User-Agent": CHROME, "X-Scanner": "yes"})
    assert result.machine == "scanner"
    assert result.machine_reasons == ["werkzeug_style_rule"]


def test_apply_verdict_is_deprecated(tracker: Tracker) -> None:
    result = TrackingResult(is_open_tracking=True)
    request = Request(
        EnvironBuilder(path="/o/x", headers={"User-Agent": "curl/8"}).get_environ()
    )
    with pytest.warns(DeprecationWarning, match="machine_verdict"):
        machine.apply_verdict(
            result, request, tracker.configuration, ip=None, now=time.time()
        )
    assert result.machine == "bot"
    assert result.machine_reasons == ["tool-user-agent"]
