"""Machine-traffic verdicts: which tracking hits were not a person (see
:doc:`/machine`)."""

from __future__ import annotations

from ._rules import APPLE_MPP as APPLE_MPP
from ._rules import apply_verdict as apply_verdict
from ._rules import BOT as BOT
from ._rules import clear_caches as clear_caches
from ._rules import compile_crawler_patterns as compile_crawler_patterns
from ._rules import crawler_pattern as crawler_pattern
from ._rules import gateway_networks as gateway_networks
from ._rules import IMAGE_PROXY as IMAGE_PROXY
from ._rules import IMAGE_PROXY_NAMES as IMAGE_PROXY_NAMES
from ._rules import load_gateway_networks as load_gateway_networks
from ._rules import NetworkSet as NetworkSet
from ._rules import PREFETCH as PREFETCH
from ._rules import SCANNER as SCANNER
from ._rules import SCANNER_NAMES as SCANNER_NAMES
from ._rules import TOOL_NAMES as TOOL_NAMES
from ._rules import USER_AGENT_CACHE_SIZE as USER_AGENT_CACHE_SIZE
from ._rules import user_agent_verdict as user_agent_verdict

__all__ = [
    "APPLE_MPP",
    "BOT",
    "IMAGE_PROXY",
    "IMAGE_PROXY_NAMES",
    "NetworkSet",
    "PREFETCH",
    "SCANNER",
    "SCANNER_NAMES",
    "TOOL_NAMES",
    "USER_AGENT_CACHE_SIZE",
    "apply_verdict",
    "clear_caches",
    "compile_crawler_patterns",
    "crawler_pattern",
    "gateway_networks",
    "load_gateway_networks",
    "user_agent_verdict",
]
