"""What a tracking request says about its client: address, user agent, and
the headers that tell a prefetch from a person, read from the request's
method, headers and peer address (no WSGI environ, no framework request):
:func:`read_hit` makes the :class:`~flask_mailtrack.traffic.Hit` the handler
and the machine-traffic rules work from, :func:`request_data_of` the request
data of its result.

The client address is ``REMOTE_ADDR``, the peer of the TCP connection, unless
the operator declares how many reverse proxies stand in front of the server
(``Configuration(trusted_proxies=N)``). Only then is ``X-Forwarded-For``
read, and only its ``N``-th entry from the right: the entry the outermost
trusted proxy appended. Every entry further left was written by the client
and could be anything, which is why a client's ``X-Forwarded-For`` is never
trusted by default (pytracking's ``django-ipware`` call read it, and
``X-Real-IP``, from anyone). This is the rule of
:class:`werkzeug.middleware.proxy_fix.ProxyFix` with ``x_for=N``.

A proxy that writes another header names it with ``proxy_header``:
``Forwarded`` (RFC 7239) is a list read like ``X-Forwarded-For`` (its
``for=`` parameter); any other header (nginx's ``X-Real-IP``,
``CF-Connecting-IP``) holds one address that the proxy sets, replacing
whatever the client sent, and is likewise read only with ``trusted_proxies``.

With ``anonymize_ip`` the address is truncated (IPv4 to its /24, IPv6 to its
/48) before it is put into the request data, so no receiver of a signal,
webhook or store ever sees the full address.
"""

from __future__ import annotations

import ipaddress
import typing as t

from werkzeug.datastructures import EnvironHeaders
from werkzeug.http import parse_list_header

from .._isotime import format_time_ms
from .._moved import warn_deprecated
from ..traffic import Hit
from ..traffic import PREFETCH_HEADERS

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Request

    from ..configuration import Configuration
    from ..traffic import HeaderLookup

# Header values are kept to this many characters: enough for any real user
# agent, and a client cannot make every receiver store megabytes.
_MAX_HEADER_LENGTH = 512


def client_address(
    headers: HeaderLookup,
    remote_addr: str | None,
    trusted_proxies: int = 0,
    proxy_header: str = "X-Forwarded-For",
) -> str | None:
    """The client address of a request.

    :param headers: The request headers; ``proxy_header`` is read from them
        when ``trusted_proxies`` is set.
    :param remote_addr: The peer of the connection (``REMOTE_ADDR``).
    :param trusted_proxies: Number of reverse proxies whose
        ``X-Forwarded-For`` entries are trusted. With ``0`` only
        ``remote_addr`` counts. When the header has fewer entries than
        trusted proxies, the request did not come through all of them, and
        ``remote_addr`` is used. A port written after the address is
        dropped.
    :param proxy_header: The header the proxies write: ``X-Forwarded-For``
        or ``Forwarded`` (lists, read as above), or a header holding the one
        address a trusted proxy sets, such as ``X-Real-IP`` (its last entry
        is used, should a proxy append instead of replace).

    .. versionadded:: 0.1
    .. versionchanged:: 0.1
        ``proxy_header``.
    """
    if trusted_proxies:
        value = _proxied_address(
            headers.get(proxy_header), proxy_header, trusted_proxies
        )
        if value:
            return value[:_MAX_HEADER_LENGTH]
    return remote_addr if isinstance(remote_addr, str) and remote_addr else None


# Headers every proxy appends to (one entry per hop); any other header is one
# address, set by the proxy.
_LIST_HEADERS = frozenset(("x-forwarded-for", "forwarded"))


def _proxied_address(
    value: str | None, proxy_header: str, trusted_proxies: int
) -> str | None:
    """The address the outermost trusted proxy wrote in ``value``, the text
    of ``proxy_header``, or ``None``."""
    if not value:
        return None
    values = parse_list_header(value)
    name = proxy_header.lower()
    if name in _LIST_HEADERS:
        if len(values) < trusted_proxies:
            return None
        entry = values[-trusted_proxies]
    elif values:
        entry = values[-1]
    else:
        return None
    if name == "forwarded":
        entry = _forwarded_for(entry)
    return _without_port(entry.strip())


def _forwarded_for(element: str) -> str:
    """The ``for=`` parameter of a ``Forwarded`` element such as
    ``for="[2001:db8::7]:443";proto=https``, unquoted; ``""`` without one."""
    for pair in element.split(";"):
        key, _, value = pair.partition("=")
        if key.strip().lower() == "for":
            return value.strip().strip('"')
    return ""


def read_hit(
    method: str,
    path: str,
    headers: HeaderLookup,
    remote_addr: str | None,
    *,
    trusted_proxies: int = 0,
    proxy_header: str = "X-Forwarded-For",
) -> Hit:
    """The :class:`~flask_mailtrack.traffic.Hit` of a request: its client
    address (see :func:`client_address`) and user agent (cut to 512
    characters) read from its headers.

    .. versionadded:: 0.1
    """
    return Hit(
        method,
        path,
        headers,
        remote_addr,
        client_address(headers, remote_addr, trusted_proxies, proxy_header)
        if trusted_proxies or not remote_addr
        else remote_addr,
        _header_text(headers.get("User-Agent")) or "",
    )


def request_data_of(
    hit: Hit, configuration: Configuration, now: float
) -> dict[str, t.Any]:
    """The request data of a tracking result, a JSON-serializable dict.

    Keys: ``user_ip``, ``method``, ``user_agent``, ``accept``, the prefetch
    headers (``sec_purpose``, ``purpose``, ``x_purpose``, ``x_moz``; ``None``
    when absent, see :data:`~flask_mailtrack.traffic.PREFETCH_HEADERS`) and
    ``received_at`` (the time of the hit, ISO 8601 in UTC with
    milliseconds). Header values are cut to 512 characters.

    :param hit: The request.
    :param configuration: Gives ``anonymize_ip``: the client address is
        then truncated here, before any receiver sees it.
    :param now: The time of the hit, in seconds since the epoch.

    .. versionadded:: 0.1
    """
    ip = hit.client_ip
    if configuration.anonymize_ip:
        ip = anonymize_ip(ip)
    get = hit.headers.get
    data: dict[str, t.Any] = {
        "user_ip": ip,
        "method": hit.method,
        "user_agent": hit.user_agent or None,
    }
    for name, key in _COPIED_HEADERS:
        value = get(name)
        # Most values are short ASCII text, kept as they are.
        if value and (len(value) > _MAX_HEADER_LENGTH or not value.isascii()):
            value = _header_text(value)
        data[key] = value or None
    data["received_at"] = format_time_ms(now)
    return data


_COPIED_HEADERS = (("Accept", "accept"), *PREFETCH_HEADERS)


def _header_text(value: str | None) -> str | None:
    """A header value as the request data keeps it: ``None`` when empty, at
    most 512 characters."""
    if not value:
        return None
    if len(value) <= _MAX_HEADER_LENGTH and value.isascii():
        return value
    # WSGI gives headers as latin-1 decoded bytes; a UTF-8 user agent (rare
    # but real) reads better decoded.
    try:
        value = value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        pass
    return value[:_MAX_HEADER_LENGTH]


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


def client_ip(environ: t.Mapping[str, t.Any], trusted_proxies: int = 0) -> str | None:
    """The client address of the request of a WSGI environ.

    .. deprecated:: 0.1
        Use :func:`client_address`, which reads headers and the peer address
        instead of a WSGI environ. Removed in 0.2.
    """
    _deprecated("client_ip", "client_address")
    headers = EnvironHeaders(environ)  # type: ignore[arg-type]
    return client_address(headers, environ.get("REMOTE_ADDR"), trusted_proxies)


def request_data(
    request: Request,
    configuration: Configuration,
    now: float,
    *,
    ip: str | None,
) -> dict[str, t.Any]:
    """The request data of a tracking result, from a werkzeug request.

    .. deprecated:: 0.1
        Use :func:`request_data_of`, which reads a
        :class:`~flask_mailtrack.traffic.Hit`. Removed in 0.2.
    """
    _deprecated("request_data", "request_data_of")
    hit = read_hit(request.method, request.path, request.headers, request.remote_addr)
    return request_data_of(hit._replace(client_ip=ip), configuration, now)


def _deprecated(name: str, replacement: str) -> None:
    warn_deprecated(
        f"'flask_mailtrack.web.{name}'",
        f"use 'flask_mailtrack.web.{replacement}'",
        stacklevel=3,
    )
