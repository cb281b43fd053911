"""Which address a request comes from, for limits counted per client address."""

import ipaddress
from collections.abc import Sequence

from pydantic import IPvAnyNetwork

# Longer than any IPv6 address with a zone: what a trusted proxy passes on is kept, not trusted to be short.
_MAX_ADDRESS = 64


def _trusted(address: str, proxies: Sequence[IPvAnyNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(peer: str | None, forwarded_for: Sequence[str], proxies: Sequence[IPvAnyNetwork]) -> str:
    """The connection's peer, unless the peer is a trusted proxy: then the last untrusted address of
    X-Forwarded-For (each proxy appends the address it was reached from, so that is the one a trusted proxy saw;
    addresses further left are whatever the client wrote)."""
    if peer is None:
        return "unknown"
    if not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop[:_MAX_ADDRESS]
    return hops[0][:_MAX_ADDRESS] if hops else peer
