"""The machine-traffic rules and the verdict they give (the rules are listed
in the package's documentation, :mod:`flask_mailtrack.traffic`)."""

from __future__ import annotations

import functools
import logging
import re
import typing as t

from .._moved import warn_deprecated
from ._hit import _LegacyUserAgent
from ._hit import Hit
from ._networks import gateway_networks
from ._prefix_tree import compile_crawler_patterns

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Request

    from ..configuration import Configuration
    from ..result import TrackingResult

logger = logging.getLogger("flask_mailtrack")

PREFETCH = "prefetch"
APPLE_MPP = "apple-mpp"
IMAGE_PROXY = "image-proxy"
SCANNER = "scanner"
BOT = "bot"

#: How many distinct user agents keep their verdict cached.
USER_AGENT_CACHE_SIZE = 4096

#: Image proxies of mail providers, as they name themselves in the user agent.
IMAGE_PROXY_NAMES = ("GoogleImageProxy", "YahooMailProxy")

#: Mail security products, as they name themselves in the user agent
#: (matched case-insensitively).
SCANNER_NAMES = (
    "safelinks",
    "proofpoint",
    "urldefense",
    "mimecast",
    "barracuda",
    "messagelabs",
    "ironport",
    "trend micro",
    "trendmicro",
    "forcepoint",
    "fortiguard",
    "zscaler",
    "avanan",
    "spamtitan",
    "hornetsecurity",
    "cloudmark",
)

#: HTTP libraries, command line tools and headless browsers (matched
#: case-insensitively).
TOOL_NAMES = (
    "curl",
    "wget",
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp",
    "go-http-client",
    "okhttp",
    "headless",
    "phantomjs",
    "libwww-perl",
    "apache-httpclient",
    "java/",
    "node-fetch",
    "axios/",
    "scrapy",
    "httpie",
)

#: The request headers that tell a prefetch from a person, with the key each
#: has in the request data. Browsers and mail clients send them when they
#: load a page or an image ahead of a person asking for it (Chromium
#: ``Sec-Purpose: prefetch``, Safari and older Chromium ``Purpose:
#: prefetch``, Safari previews ``X-Purpose: preview``, Firefox ``X-Moz:
#: prefetch``).
PREFETCH_HEADERS = (
    ("Sec-Purpose", "sec_purpose"),
    ("Purpose", "purpose"),
    ("X-Purpose", "x_purpose"),
    ("X-Moz", "x_moz"),
)

_PREFETCH_NAMES = tuple(name for name, _ in PREFETCH_HEADERS)
_PREFETCH_KEYS = tuple(key for _, key in PREFETCH_HEADERS)
_PREFETCH_VALUES = ("prefetch", "preview", "prerender")

_IMAGE_PROXY = re.compile("|".join(re.escape(name) for name in IMAGE_PROXY_NAMES))
_SCANNER = re.compile(
    "|".join(re.escape(name) for name in SCANNER_NAMES), re.IGNORECASE
)
_TOOL = re.compile("|".join(re.escape(name) for name in TOOL_NAMES), re.IGNORECASE)


# -- user agents ---------------------------------------------------------------


@functools.cache
def crawler_pattern() -> re.Pattern[str] | None:
    """The compiled ``crawler-user-agents`` expression, or ``None`` when the
    package is not installed. Compiled on first use (about 0.15 s)."""
    try:
        import crawleruseragents
    except ImportError:
        return None
    patterns = [item["pattern"] for item in crawleruseragents.CRAWLER_USER_AGENTS_DATA]
    return compile_crawler_patterns(patterns)


@functools.lru_cache(maxsize=USER_AGENT_CACHE_SIZE)
def user_agent_verdict(user_agent: str | None) -> tuple[str, str] | None:
    """The ``(label, reason)`` of a user agent, or ``None`` for a browser or
    mail client. The first matching rule wins."""
    if not user_agent or not user_agent.strip():
        return BOT, "empty-user-agent"
    if _IMAGE_PROXY.search(user_agent):
        return IMAGE_PROXY, "image-proxy"
    if user_agent.strip() == "Mozilla/5.0":
        return APPLE_MPP, "apple-mpp-user-agent"
    if _SCANNER.search(user_agent):
        return SCANNER, "scanner-user-agent"
    if _TOOL.search(user_agent):
        return BOT, "tool-user-agent"
    crawlers = crawler_pattern()
    if crawlers is not None and crawlers.search(user_agent):
        return BOT, "crawler-user-agent"
    return None


# -- the verdict ---------------------------------------------------------------


class Verdict(t.NamedTuple):
    """What the rules say about one hit.

    .. versionadded:: 0.1
    """

    #: ``None`` for a person, else the label of the first rule that fired
    #: (:attr:`TrackingResult.machine <flask_mailtrack.TrackingResult.machine>`).
    machine: str | None
    #: The names of every rule that fired, in order
    #: (:attr:`~flask_mailtrack.TrackingResult.machine_reasons`).
    reasons: tuple[str, ...]


def machine_verdict(
    result: TrackingResult,
    hit: Hit,
    configuration: Configuration,
    *,
    now: float,
) -> Verdict:
    """The verdict of the rules on one hit. Nothing is changed: the caller
    puts the verdict into the result it builds.

    :param result: The result of the hit; the ``click-too-fast`` rule and
        the rules of ``machine_rules`` read it, and the prefetch headers are
        read from its request data when it holds them, else from ``hit``.
    :param hit: The request.
    :param configuration: Gives ``click_scan_seconds`` and ``machine_rules``.
    :param now: The time of the hit.
    """
    # Only short values mean a prefetch; keep the cache keys small.
    data = result.request_data
    if data is not None and _PREFETCH_KEYS[0] in data:
        # The handler copied the headers there already.
        prefetch = [(data[key] or "")[:32] for key in _PREFETCH_KEYS]
    else:
        get = hit.headers.get
        prefetch = [(get(name) or "")[:32] for name in _PREFETCH_NAMES]
    ip = hit.client_ip
    found = _request_verdict(
        hit.method, hit.user_agent, ip[:64] if ip else None, *prefetch
    )
    if (
        configuration.click_scan_seconds
        and result.is_click_tracking
        and result.issued_at is not None
        and now - result.issued_at <= configuration.click_scan_seconds
    ):
        found = (*found, (SCANNER, "click-too-fast"))
    if configuration.machine_rules:
        # Rules written for werkzeug's request read `user_agent.string`.
        rule_hit = hit._replace(user_agent=_LegacyUserAgent(hit.user_agent))
        for rule in configuration.machine_rules:
            try:
                label = rule(result, rule_hit)
            except Exception:
                logger.exception("Machine rule %r raised; it is skipped.", rule)
                continue
            if label:
                found = (*found, (str(label), getattr(rule, "__name__", repr(rule))))
    if not found:
        return _PERSON
    return Verdict(found[0][0], tuple(reason for _, reason in found))


_PERSON = Verdict(None, ())


def apply_verdict(
    result: TrackingResult,
    request: Request,
    configuration: Configuration,
    *,
    ip: str | None,
    now: float,
) -> None:
    """Set ``result.machine`` and ``result.machine_reasons`` from the rules.

    .. deprecated:: 0.1
        Use :func:`machine_verdict`, which takes a :class:`Hit` instead of a
        werkzeug request and returns the verdict. Removed in 0.2.
    """
    warn_deprecated("'apply_verdict'", "use 'flask_mailtrack.traffic.machine_verdict'")
    data = result.request_data or {}
    user_agent = data.get("user_agent") or request.headers.get("User-Agent") or ""
    hit = Hit(
        request.method,
        request.root_path + request.path,
        request.headers,
        request.remote_addr,
        ip,
        user_agent[:512],
    )
    verdict = machine_verdict(result, hit, configuration, now=now)
    result.machine = verdict.machine
    result.machine_reasons = list(verdict.reasons)


@functools.lru_cache(maxsize=USER_AGENT_CACHE_SIZE)
def _request_verdict(
    method: str,
    user_agent: str | None,
    ip: str | None,
    *prefetch_headers: str | None,
) -> tuple[tuple[str, str], ...]:
    """The ``(label, reason)`` pairs of the rules that depend only on the
    request. Mail is opened from a few proxies and clients, so the same
    requests come again and again, and their verdict is cached."""
    found: list[tuple[str, str]] = []
    if method == "HEAD":
        found.append((PREFETCH, "head-request"))
    if _is_prefetch(prefetch_headers):
        found.append((PREFETCH, "prefetch-header"))
    verdict = user_agent_verdict(user_agent)
    if verdict is not None:
        found.append(verdict)
    if gateway_networks().lookup(ip) is not None:
        found.append((SCANNER, "gateway-network"))
    return tuple(found)


def clear_caches() -> None:
    """Forget the cached verdicts (after changing the rules' data, in tests)."""
    user_agent_verdict.cache_clear()
    _request_verdict.cache_clear()


def _is_prefetch(values: t.Iterable[str | None]) -> bool:
    for value in values:
        if value and any(word in value.lower() for word in _PREFETCH_VALUES):
            return True
    return False
