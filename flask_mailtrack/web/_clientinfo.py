"""What a tracking request says about its client: address, user agent, and
the headers that tell a prefetch from a person.

The client address is ``REMOTE_ADDR``, the peer of the TCP connection, unless
the operator declares how many reverse proxies stand in front of the server
(``Configuration(trusted_proxies=N)``). Only then is ``X-Forwarded-For``
read, and only its ``N``-th entry from the right: the entry the outermost
trusted proxy appended. Every entry further left was written by the client
and could be anything, which is why a client's ``X-Forwarded-For`` is never
trusted by default (pytracking's ``django-ipware`` call read it from anyone).
This is the rule of :class:`werkzeug.middleware.proxy_fix.ProxyFix` with
``x_for=N``.

With ``anonymize_ip`` the address is truncated (IPv4 to its /24, IPv6 to its
/48) before it is put into the request data, so no receiver of a signal,
webhook or store ever sees the full address.
"""

from __future__ import annotations

import ipaddress
import time
import typing as t

from werkzeug.http import parse_list_header

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Request

    from ..configuration import Configuration

#: Request headers copied into the request data, with their keys. Browsers
#: and mail clients send them when they load a page or an image ahead of a
#: person asking for it (Chromium ``Sec-Purpose: prefetch``, Safari and older
#: Chromium ``Purpose: prefetch``, Firefox ``X-Moz: prefetch``).
PREFETCH_HEADERS = (
    ("HTTP_SEC_PURPOSE", "sec_purpose"),
    ("HTTP_PURPOSE", "purpose"),
    ("HTTP_X_PURPOSE", "x_purpose"),
    ("HTTP_X_MOZ", "x_moz"),
)

# Header values are kept to this many characters: enough for any real user
# agent, and a client cannot make every receiver store megabytes.
_MAX_HEADER_LENGTH = 512


def client_ip(environ: t.Mapping[str, t.Any], trusted_proxies: int = 0) -> str | None:
    """The client address of a request.

    :param environ: The WSGI environment.
    :param trusted_proxies: Number of reverse proxies whose
        ``X-Forwarded-For`` entries are trusted. With ``0`` only
        ``REMOTE_ADDR`` counts. When the header has fewer entries than
        trusted proxies, the request did not come through all of them, and
        ``REMOTE_ADDR`` is used. A port written after the address is
        dropped.
    """
    if trusted_proxies:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded:
            values = parse_list_header(forwarded)
            if len(values) >= trusted_proxies:
                value = _without_port(values[-trusted_proxies].strip())
                if value:
                    return value[:_MAX_HEADER_LENGTH]
    remote = environ.get("REMOTE_ADDR")
    return remote if isinstance(remote, str) and remote else None


def _without_port(value: str) -> str:
    """The address of an ``X-Forwarded-For`` entry without the port some
    proxies append (Azure's front ends write ``203.0.113.7:51234``, and a
    bracketed IPv6 address may carry one too: ``[2001:db8::7]:443``). A bare
    IPv6 address, all colons, is returned as it is."""
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        if port.isdigit():
            return host
    return value


def anonymize_ip(address: str | None) -> str | None:
    """``address`` with its last IPv4 octet or last 80 IPv6 bits zeroed
    (an IPv4-mapped IPv6 address is truncated as the IPv4 address it is).

    Text that is not an IP address (a proxy may write ``unknown`` or a host
    name) is not returned at all, since it cannot be truncated safely.
    """
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 4:
        network = ipaddress.ip_network((int(ip), 24), strict=False)
    else:
        network = ipaddress.ip_network((int(ip), 48), strict=False)
    return str(network.network_address)


def request_data(
    request: Request,
    configuration: Configuration,
    now: float,
    *,
    ip: str | None,
) -> dict[str, t.Any]:
    """The request data of a tracking result, a JSON-serializable dict.

    Keys: ``user_agent``, ``user_ip``, ``method``, ``accept``, the prefetch
    headers (``sec_purpose``, ``purpose``, ``x_purpose``, ``x_moz``; ``None``
    when absent) and ``received_at`` (the time of the hit, ISO 8601 in UTC
    with milliseconds). Header values are cut to 512 characters.

    :param request: The tracking request.
    :param configuration: Gives ``anonymize_ip``.
    :param now: The time of the hit, in seconds since the epoch.
    :param ip: The client address from :func:`client_ip`; anonymised here
        when the configuration says so.
    """
    environ = request.environ
    if configuration.anonymize_ip:
        ip = anonymize_ip(ip)
    get = environ.get
    data: dict[str, t.Any] = {"user_ip": ip, "method": request.method}
    for key, name in _HEADER_KEYS:
        value = get(key)
        if not value:
            data[name] = None
        elif len(value) <= _MAX_HEADER_LENGTH and value.isascii():
            data[name] = value
        else:
            data[name] = _decode_header(value)
    data["received_at"] = utc_iso(now)
    return data


_HEADER_KEYS = (
    ("HTTP_USER_AGENT", "user_agent"),
    ("HTTP_ACCEPT", "accept"),
    *PREFETCH_HEADERS,
)


def _decode_header(value: str) -> str:
    # WSGI gives headers as latin-1 decoded bytes; a UTF-8 user agent (rare
    # but real) reads better decoded.
    try:
        value = value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        pass
    return value[:_MAX_HEADER_LENGTH]


# Formatting a date costs more than the rest of the request data; hits come
# many to a second, so the text of the current second is kept.
_second: tuple[int, str] = (-1, "")


def utc_iso(timestamp: float) -> str:
    """``timestamp`` as ISO 8601 text in UTC with milliseconds, such as
    ``2026-05-01T12:30:00.250Z``."""
    global _second
    second = int(timestamp)
    cached = _second
    if cached[0] != second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        cached = _second = (second, text)
    millis = int((timestamp - second) * 1000)
    return f"{cached[1]}.{millis:03d}Z"
