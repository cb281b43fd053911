"""SSRF guard for the network tools: only public addresses, unless the host is allow-listed."""

import asyncio
import contextlib
import ipaddress
import socket

import httpx

from runwire.tools.base import ToolError
from runwire.tools.tls import client_tls_context

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")


def is_blocked_address(address: IPAddress) -> bool:
    """True for every address that is not plainly public.

    Cloud metadata endpoints need no entry of their own: 169.254.169.254 is link-local, fd00:ec2::254 private.
    """
    if isinstance(address, ipaddress.IPv6Address) and (embedded := address.ipv4_mapped or address.sixtofour):
        return is_blocked_address(embedded)
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address in _SHARED_ADDRESS_SPACE
    )


_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_allowed_host(host: str, port: int, allowed_hosts: frozenset[str]) -> bool:
    """Whether the allow-list opens `port` of `host`: an entry `host` opens every port, `host:port` that one only
    (an IPv6 address with a port is written `[::1]:8080`)."""
    named = f"[{host}]" if ":" in host else host
    return host in allowed_hosts or f"{named}:{port}" in allowed_hosts


async def vet_url(url: httpx.URL, allowed_hosts: frozenset[str]) -> list[str]:
    """Resolve the URL's host and return the addresses it may be fetched from, or raise ToolError."""
    if url.scheme not in _DEFAULT_PORTS:
        raise ToolError("blocked_address", f"only http and https URLs can be fetched, not {url.scheme!r}")
    host = url.raw_host.decode("ascii").lower().rstrip(".")
    allowed = is_allowed_host(host, url.port or _DEFAULT_PORTS[url.scheme], allowed_hosts)
    if not allowed and (host == "localhost" or host.endswith(".localhost")):
        raise ToolError("blocked_address", f"{host} is a local address")
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, url.port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ToolError("network_error", f"cannot resolve {host}: {error}") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(sockaddr[0]) for *_, sockaddr in found))
    blocked = [address for address in addresses if is_blocked_address(address)]
    if blocked and not allowed:
        # Which private address a name resolves to is itself something to keep from the user.
        raise ToolError("blocked_address", f"{host} is not a public address")
    return [str(address) for address in addresses]


class GuardedTransport(httpx.AsyncBaseTransport):
    """Sends each request to an address `vet_url` approved, trying them in order as a client would.

    The connection goes to the vetted IP itself, with the original Host header and TLS server name, so a
    second DNS answer (rebinding) can never swap in another address between the check and the connect.
    """

    def __init__(self, allowed_hosts: frozenset[str]) -> None:
        self._allowed_hosts = allowed_hosts
        self._inner = httpx.AsyncHTTPTransport(verify=client_tls_context())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        *others, last = await vet_url(request.url, self._allowed_hosts)
        for address in others:
            with contextlib.suppress(httpx.ConnectError):
                return await self._send_to(address, request)
        return await self._send_to(last, request)

    async def _send_to(self, address: str, request: httpx.Request) -> httpx.Response:
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=address),
            headers=request.headers,
            stream=request.stream,
            extensions={**request.extensions, "sni_hostname": request.url.raw_host.decode("ascii")},
        )
        return await self._inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self._inner.aclose()
