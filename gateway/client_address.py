"""Who an anonymous caller is, for its rate limit: the connection's peer address or, when
that peer is one of the configured trusted proxies (`ERPGW_TRUSTED_PROXIES`), the address the
proxies say the request came from.

The forwarding chain (`X-Forwarded-For`, or `Forwarded` when there is none) is read from the
right, where the proxies appended their peers, skipping the trusted proxies: the first address
that is not one is the client. Everything left of it is what the client itself sent, and would
let it pick a fresh bucket for every request. `X-Forwarded-For` wins because it is what load
balancers append (AWS, Google Cloud, Azure, nginx, Envoy) while most pass a client's own
`Forwarded` through untouched; behind a proxy that only writes `Forwarded`, have it drop an
incoming `X-Forwarded-For`.

IPv6 callers are counted per /64, the block one subscriber gets: counted per address, one
host could spend a fresh bucket on every request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

__all__ = ["ClientAddress"]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_CACHE_SIZE = 4096
_IPV6_BUCKET = 64


class ClientAddress:
    """`RateLimitConfig.client_address` for the given trusted proxies (IPs or CIDRs)."""

    def __init__(self, trusted_proxies: Sequence[str] = ()) -> None:
        self.networks = tuple(ipaddress.ip_network(item, strict=False) for item in trusted_proxies)
        self._trusted: dict[str, bool] = {}

    def __call__(self, scope: Any) -> str:
        client = scope.get("client")
        peer: str = client[0] if client else "unknown"
        if not self.networks or not self._is_trusted_peer(peer):
            return _bucket(peer)
        address = peer
        for hop in reversed(_forwarded_chain(scope["headers"])):
            parsed = _parse(hop)
            if parsed is None:
                break  # a garbled hop: the last trusted proxy's peer is all we know
            address = str(parsed)
            if not self._is_trusted(parsed):
                break
        return _bucket(address)

    def _is_trusted_peer(self, peer: str) -> bool:
        known = self._trusted.get(peer)
        if known is None:
            parsed = _parse(peer)
            known = parsed is not None and self._is_trusted(parsed)
            if len(self._trusted) >= _CACHE_SIZE:
                self._trusted.clear()
            self._trusted[peer] = known
        return known

    def _is_trusted(self, address: IpAddress) -> bool:
        return any(address in network for network in self.networks)


def _forwarded_chain(headers: list[tuple[bytes, bytes]]) -> list[str]:
    forwarded_for: list[str] = []
    forwarded: list[str] = []
    for name, value in headers:
        if name == b"x-forwarded-for":
            forwarded_for.extend(value.decode("latin-1").split(","))
        elif name == b"forwarded":
            forwarded.extend(_for_params(value.decode("latin-1")))
    return forwarded_for or forwarded


def _for_params(value: str) -> list[str]:
    """The `for=` node of each element of a `Forwarded` header (RFC 7239), in order."""
    nodes = []
    for element in value.split(","):
        node = ""
        for pair in element.split(";"):
            key, _, text = pair.strip().partition("=")
            if key.lower() == "for":
                node = text
        nodes.append(node)
    return nodes


def _parse(hop: str) -> IpAddress | None:
    """The address of one hop (`192.0.2.1`, `192.0.2.1:80`, `"[2001:db8::1]:80"`, `::1`)."""
    text = hop.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _bucket(address: str) -> str:
    if ":" not in address:
        return address
    parsed = _parse(address)
    if parsed is None or parsed.version == 4:
        return str(parsed or address)
    return str(ipaddress.ip_network(f"{parsed}/{_IPV6_BUCKET}", strict=False))
