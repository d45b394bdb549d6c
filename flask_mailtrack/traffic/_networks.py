"""Sets of IP networks, and the shipped networks of mail security gateways.

The data file ``data/gateway_networks.json`` holds the published address
ranges of mail security gateways, with the source and date of each list (see
its ``refresh`` text for how to update it).
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import json
import socket
import typing as t


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
