"""Machine-traffic verdicts: which tracking hits were not a person.

Many opens and clicks are made by software: mail clients that prefetch
images, privacy proxies, security gateways that follow every link of every
incoming email. They are labelled, never refused: the response is the same
for everyone (a scanner that got a different answer would learn to hide), and
:attr:`TrackingResult.machine <flask_mailtrack.TrackingResult.machine>` and
:attr:`~flask_mailtrack.TrackingResult.machine_reasons` let statistics
separate them.

``machine`` is ``None`` for a person, or the label of the first rule that
fired, in the order below; ``machine_reasons`` lists the names of every rule
that fired. The labels:

``prefetch``
    Loaded ahead of a person asking for it.
``apple-mpp``
    Apple Mail Privacy Protection, which loads every image of every email
    on delivery, whether or not the recipient reads it.
``image-proxy``
    A mail provider's image proxy (Gmail, Yahoo). These fetch the pixel when
    the recipient opens the email, so they *are* real opens; the label says
    the address and user agent are the proxy's, not the reader's.
``scanner``
    A security gateway or link scanner checking the email.
``bot``
    A crawler, a command line tool or a script.

The rules, each with its source:

``head-request`` (``prefetch``)
    A ``HEAD`` request fetches no image and follows no link: link checkers
    and scanners send them (RFC 9110, section 9.3.2).
``prefetch-header`` (``prefetch``)
    ``Sec-Purpose: prefetch`` (Fetch Metadata, sent by Chromium),
    ``Purpose: prefetch`` (Safari, older Chromium), ``X-Purpose: preview``
    (Safari link previews) and ``X-Moz: prefetch`` (Firefox), documented at
    https://developer.mozilla.org/docs/Web/HTTP/Headers/Sec-Purpose.
``empty-user-agent`` (``bot``)
    Every browser and mail client sends a ``User-Agent``; scripts often do
    not.
``image-proxy`` (``image-proxy``)
    ``GoogleImageProxy`` (Gmail, "via ggpht.com GoogleImageProxy",
    https://support.google.com/mail/answer/145919) and ``YahooMailProxy``
    (https://help.yahoo.com/kb/SLN28749.html) in the user agent.
``apple-mpp-user-agent`` (``apple-mpp``)
    The bare user agent ``Mozilla/5.0``, which Apple's Mail Privacy
    Protection proxy sends and no real browser does (observed and published
    by email service providers since iOS 15, e.g. SparkPost and Litmus).
    Apple publishes no address ranges for this proxy; its iCloud Private
    Relay egress list is used by Safari for people browsing, so matching it
    would mislabel real clicks, and it is not used.
``scanner-user-agent`` (``scanner``)
    The name of a mail security product in the user agent: Microsoft
    Defender Safe Links, Proofpoint URL Defense, Mimecast, Barracuda and
    others (:data:`SCANNER_NAMES`), as their vendors document them.
``tool-user-agent`` (``bot``)
    HTTP libraries and headless browsers (:data:`TOOL_NAMES`): curl, wget,
    python-requests, Go-http-client, okhttp, HeadlessChrome, ...
``crawler-user-agent`` (``bot``)
    The patterns of the ``crawler-user-agents`` project
    (https://github.com/monperrus/crawler-user-agents, released monthly on
    PyPI), when that package is installed (``pip install
    flask-mailtrack[machine]``). Its ~1,500 patterns are compiled once into
    one regular expression in which the literal beginnings of the patterns
    form a prefix tree: dozens of times faster than joining them with ``|``
    (some 20 us instead of 500 us or more for a browser's user agent). The
    compilation takes about 0.15 s on first use; call :func:`crawler_pattern`
    at start-up to pay it before the first request. Verdicts are then cached,
    so a user agent seen before costs a dictionary lookup.
``gateway-network`` (``scanner``)
    A client address in the published ranges of mail security gateways,
    shipped in ``flask_mailtrack/data/gateway_networks.json`` with the source
    and date of each list (see that file's ``refresh`` text for how to update
    it). Matched by binary search over merged ranges.
``click-too-fast`` (``scanner``)
    A click at most ``click_scan_seconds`` after the link was made: gateways
    follow links on delivery, people read later. Off by default (``0``).

Then the callables of ``Configuration(machine_rules=...)`` run, in order:
each is called as ``rule(result, request)`` and returns a label or ``None``;
the reason recorded is the callable's ``__name__``. A rule that raises is
logged and skipped.

Requests repeat (every Gmail open carries the same user agent, from a few
proxy addresses), so the verdict of the rules that depend only on the request
is cached (:data:`USER_AGENT_CACHE_SIZE` entries; :func:`clear_caches`
empties it).
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import json
import logging
import re
import socket
import typing as t

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

_PREFETCH_VALUES = ("prefetch", "preview", "prerender")

_IMAGE_PROXY = re.compile("|".join(re.escape(name) for name in IMAGE_PROXY_NAMES))
_SCANNER = re.compile(
    "|".join(re.escape(name) for name in SCANNER_NAMES), re.IGNORECASE
)
_TOOL = re.compile("|".join(re.escape(name) for name in TOOL_NAMES), re.IGNORECASE)


# -- user agents ---------------------------------------------------------------


_META = frozenset(".^$*+?{}[]|()\\")


_QUANTIFIERS = frozenset("*+?{")

# A pattern that expands to more literal prefixes than this stays a regular
# expression: the tree would grow faster than it saves.
_MAX_EXPANSIONS = 16


def _literal(pattern: str) -> str | None:
    """The text a regular expression matches, if it matches only one text."""
    chars = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            following = pattern[index + 1 : index + 2]
            if not following or following.isalnum():
                return None  # \d, \s, ...: a class, not a character
            chars.append(following)
            index += 2
            continue
        if char in _META:
            return None
        chars.append(char)
        index += 1
    return "".join(chars)


def _split_alternatives(pattern: str) -> list[str]:
    """``pattern`` split at its top-level ``|``."""
    parts = []
    depth = 0
    start = 0
    index = 0
    in_class = False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(pattern[start:index])
            start = index + 1
        index += 1
    parts.append(pattern[start:])
    return parts


def _expand(pattern: str) -> list[tuple[str, str]] | None:
    """``(literal, tail)`` pairs such that a text contains a match of
    ``pattern`` exactly when it contains one of the literals followed by a
    match of its tail (a regular expression, often empty). ``None`` when
    ``pattern`` does not start with a literal part.

    Small classes (``[wW]get``) and groups of literals (``Ahrefs(Bot|Site)``)
    are expanded into several literals; the expansion stops at the first
    construct that is neither.
    """
    pairs: list[tuple[str, str]] = []
    for alternative in _split_alternatives(pattern):
        prefixes = [""]
        index = 0
        size = len(alternative)
        while index < size:
            char = alternative[index]
            if char == "\\":
                following = alternative[index + 1 : index + 2]
                end = index + 2
                options = [following]
                if not following or following.isalnum():
                    break
            elif char == "[":
                end = alternative.find("]", index + 1) + 1
                body = alternative[index + 1 : end - 1]
                if not end or not body or not set(body).isdisjoint(_META | {"-"}):
                    break
                options = list(body)
            elif char == "(":
                end = alternative.find(")", index + 1) + 1
                body = alternative[index + 1 : end - 1]
                body = body[2:] if body.startswith("?:") else body
                literals = [_literal(option) for option in body.split("|")]
                if not end or not all(literals):
                    break
                options = t.cast("list[str]", literals)
            elif char in _META:
                break
            else:
                end = index + 1
                options = [char]
            if alternative[end : end + 1] in _QUANTIFIERS and end < size:
                break
            prefixes = [prefix + option for prefix in prefixes for option in options]
            if len(prefixes) > _MAX_EXPANSIONS:
                return None
            index = end
        tail = alternative[index:]
        if not all(prefixes) or re.search(r"\\[0-9]", tail):
            return None
        pairs.extend((prefix, tail) for prefix in prefixes)
    return pairs if len(pairs) <= _MAX_EXPANSIONS else None


def _prefix_tree_pattern(entries: t.Iterable[tuple[str, str]]) -> str:
    """One regular expression matching any of the ``(literal, tail)``
    ``entries``, as a prefix tree.

    ``re`` tries the branches of ``a|b|c`` one after the other at every
    position of the text; a tree tries only the branches that share the
    characters already read. Below a literal without a tail nothing more is
    needed: a search only needs the shorter one to match.
    """
    root: dict[str, t.Any] = {}
    for word, tail in entries:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node.setdefault("", set()).add(tail)

    def pattern(node: dict[str, t.Any]) -> str:
        tails: set[str] = node.get("", set())
        if "" in tails:
            return ""
        branches = [f"(?:{tail})" for tail in sorted(tails)]
        branches += [
            re.escape(char) + pattern(node[char]) for char in sorted(node) if char
        ]
        if len(branches) == 1:
            return branches[0]
        return "(?:" + "|".join(branches) + ")"

    return pattern(root)


# A pattern starting with "(^|x)": matched at the start or after x.
_START_OR = re.compile(r"\((?:\?:)?\^\|([^()|\\\[]+)\)(.*)")


def compile_crawler_patterns(patterns: t.Sequence[str]) -> re.Pattern[str]:
    """Compile the patterns of ``crawler-user-agents`` into one expression.

    Patterns that start with literal text (nearly all) go into one prefix
    tree, those anchored with ``^`` into another, and the few others are added
    as they are. The result matches the texts the plain ``|``-join of
    ``patterns`` matches.
    """
    floating: list[tuple[str, str]] = []
    anchored: list[tuple[str, str]] = []
    others: list[str] = []
    for pattern in patterns:
        start_or = _START_OR.fullmatch(pattern)
        if start_or is not None:
            # "(^| )name": "name" at the start, or " name" anywhere.
            pattern = f"^{start_or[2]}|{start_or[1]}{start_or[2]}"
            first, second = _split_alternatives(pattern)
            anchored_part = _expand(first[1:])
            floating_part = _expand(second)
            if anchored_part is not None and floating_part is not None:
                anchored.extend(anchored_part)
                floating.extend(floating_part)
                continue
        expanded = _expand(pattern)
        if expanded is not None:
            floating.extend(expanded)
            continue
        if pattern.startswith("^"):
            expanded = _expand(pattern[1:])
            if expanded is not None and "|" not in pattern:
                anchored.extend(expanded)
                continue
        others.append(f"(?:{pattern})")
    parts = []
    if floating:
        parts.append(_prefix_tree_pattern(floating))
    if anchored:
        parts.append("^" + _prefix_tree_pattern(anchored))
    parts.extend(others)
    return re.compile("|".join(parts) or "(?!)")


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


# -- networks ------------------------------------------------------------------


class NetworkSet:
    """A set of IP networks answering "which one holds this address" in
    ``O(log n)``: the networks are merged into disjoint ranges of integers,
    sorted, and searched with :mod:`bisect`.

    :param networks: ``(network, name)`` pairs, such as
        ``("40.92.0.0/15", "microsoft-eop")``.
    """

    def __init__(self, networks: t.Iterable[tuple[str, str]]) -> None:
        ranges: dict[int, list[tuple[int, int, str]]] = {4: [], 6: []}
        for text, name in networks:
            network = ipaddress.ip_network(text, strict=False)
            first = int(network.network_address)
            last = int(network.broadcast_address)
            ranges[network.version].append((first, last, name))
        self._starts: dict[int, list[int]] = {}
        self._ranges: dict[int, list[tuple[int, int, str]]] = {}
        for version, items in ranges.items():
            merged: list[tuple[int, int, str]] = []
            for first, last, name in sorted(items):
                if merged and first <= merged[-1][1] + 1:
                    previous = merged[-1]
                    merged[-1] = (previous[0], max(previous[1], last), previous[2])
                else:
                    merged.append((first, last, name))
            self._ranges[version] = merged
            self._starts[version] = [first for first, _, _ in merged]

    def __len__(self) -> int:
        return sum(len(ranges) for ranges in self._ranges.values())

    def lookup(self, address: str | None) -> str | None:
        """The name of the network holding ``address``, or ``None``
        (also for text that is not an address)."""
        found = _parse_ip(address) if address else None
        if found is None:
            return None
        version, value = found
        index = bisect.bisect_right(self._starts[version], value) - 1
        if index < 0:
            return None
        _, last, name = self._ranges[version][index]
        return name if value <= last else None


_IPV4_MAPPED = 0xFFFF << 32


def _parse_ip(address: str) -> tuple[int, int] | None:
    """``(version, integer)`` of an IP address, IPv4-mapped IPv6 addresses as
    IPv4. :func:`socket.inet_pton` is ten times faster than
    :func:`ipaddress.ip_address`, and as strict."""
    try:
        if ":" not in address:
            return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, address), "big")
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6, address), "big")
    except (OSError, ValueError):
        return None
    if value >> 32 == 0xFFFF:
        return 4, value ^ _IPV4_MAPPED
    return 6, value


def load_gateway_networks() -> dict[str, t.Any]:
    """The shipped data file of security gateway networks, as a dict."""
    from importlib.resources import files

    text = (
        files("flask_mailtrack.traffic")
        .joinpath("data/gateway_networks.json")
        .read_text(encoding="utf-8")
    )
    return t.cast("dict[str, t.Any]", json.loads(text))


@functools.cache
def gateway_networks() -> NetworkSet:
    """The networks of the shipped data file, loaded on first use."""
    data = load_gateway_networks()
    return NetworkSet(
        (network, provider["name"])
        for provider in data["providers"]
        for network in provider["networks"]
    )


# -- the verdict ---------------------------------------------------------------


def apply_verdict(
    result: TrackingResult,
    request: Request,
    configuration: Configuration,
    *,
    ip: str | None,
    now: float,
) -> None:
    """Set ``result.machine`` and ``result.machine_reasons`` from the rules.

    :param result: The result of a valid hit, with its request data.
    :param request: The request.
    :param configuration: Gives ``click_scan_seconds`` and ``machine_rules``.
    :param ip: The client address before anonymisation, so that network
        rules see the real address.
    :param now: The time of the hit.
    """
    environ = request.environ
    data = result.request_data
    if data is not None and "user_agent" in data:
        user_agent = data["user_agent"]
    else:
        user_agent = environ.get("HTTP_USER_AGENT")
        # The verdict cache is keyed on the text: keep it small.
        user_agent = user_agent[:512] if user_agent else user_agent
    get = environ.get
    found = _request_verdict(
        request.method,
        user_agent,
        ip[:64] if ip else None,
        # Only short values mean a prefetch; keep the cache keys small.
        get("HTTP_SEC_PURPOSE", "")[:32],
        get("HTTP_PURPOSE", "")[:32],
        get("HTTP_X_PURPOSE", "")[:32],
        get("HTTP_X_MOZ", "")[:32],
    )
    if (
        configuration.click_scan_seconds
        and result.is_click_tracking
        and result.issued_at is not None
        and now - result.issued_at <= configuration.click_scan_seconds
    ):
        found = (*found, (SCANNER, "click-too-fast"))
    for rule in configuration.machine_rules:
        try:
            label = rule(result, request)
        except Exception:
            logger.exception("Machine rule %r raised; it is skipped.", rule)
            continue
        if label:
            found = (*found, (str(label), getattr(rule, "__name__", repr(rule))))
    if found:
        result.machine = found[0][0]
        result.machine_reasons = [reason for _, reason in found]


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
