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
    shipped in ``flask_mailtrack/traffic/data/gateway_networks.json`` with the source
    and date of each list (see that file's ``refresh`` text for how to update
    it). Matched by binary search over merged ranges.
``click-too-fast`` (``scanner``)
    A click at most ``click_scan_seconds`` after the link was made: gateways
    follow links on delivery, people read later. Off by default (``0``).

Then the callables of ``Configuration(machine_rules=...)`` run, in order:
each is called as ``rule(result, hit)``, with the
:class:`~flask_mailtrack.TrackingResult` and the :class:`Hit`, and returns a
label or ``None``; the reason recorded is the callable's ``__name__``. A
rule that raises is logged and skipped.

Requests repeat (every Gmail open carries the same user agent, from a few
proxy addresses), so the verdict of the rules that depend only on the request
is cached (:data:`USER_AGENT_CACHE_SIZE` entries; :func:`clear_caches`
empties it).
"""

from __future__ import annotations

from ._hit import HeaderLookup as HeaderLookup
from ._hit import Hit as Hit
from ._networks import gateway_networks as gateway_networks
from ._networks import load_gateway_networks as load_gateway_networks
from ._networks import NetworkSet as NetworkSet
from ._prefix_tree import compile_crawler_patterns as compile_crawler_patterns
from ._rules import APPLE_MPP as APPLE_MPP
from ._rules import apply_verdict as apply_verdict
from ._rules import BOT as BOT
from ._rules import clear_caches as clear_caches
from ._rules import crawler_pattern as crawler_pattern
from ._rules import IMAGE_PROXY as IMAGE_PROXY
from ._rules import IMAGE_PROXY_NAMES as IMAGE_PROXY_NAMES
from ._rules import machine_verdict as machine_verdict
from ._rules import PREFETCH as PREFETCH
from ._rules import PREFETCH_HEADERS as PREFETCH_HEADERS
from ._rules import SCANNER as SCANNER
from ._rules import SCANNER_NAMES as SCANNER_NAMES
from ._rules import TOOL_NAMES as TOOL_NAMES
from ._rules import USER_AGENT_CACHE_SIZE as USER_AGENT_CACHE_SIZE
from ._rules import user_agent_verdict as user_agent_verdict
from ._rules import Verdict as Verdict

__all__ = [
    "APPLE_MPP",
    "BOT",
    "HeaderLookup",
    "Hit",
    "IMAGE_PROXY",
    "IMAGE_PROXY_NAMES",
    "NetworkSet",
    "PREFETCH",
    "PREFETCH_HEADERS",
    "SCANNER",
    "SCANNER_NAMES",
    "TOOL_NAMES",
    "USER_AGENT_CACHE_SIZE",
    "Verdict",
    "clear_caches",
    "compile_crawler_patterns",
    "crawler_pattern",
    "gateway_networks",
    "load_gateway_networks",
    "machine_verdict",
    "user_agent_verdict",
]
