"""The SSRF guard: private addresses are refused before any connection, on every redirect hop."""

import asyncio
import ipaddress
from collections.abc import Callable

import httpx
import pytest

from runwire.tools.base import ToolContext, ToolError
from runwire.tools.netguard import is_blocked_address, vet_url
from tests.helpers import run_tool, tool_error


def http_get(url: str, ctx: ToolContext) -> dict[str, object]:
    return run_tool("http_request", {"method": "GET", "url": url}, ctx)


def refusal(url: str, ctx: ToolContext) -> ToolError:
    return tool_error("http_request", {"method": "GET", "url": url}, ctx)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:a00:1::",  # 6to4 around 10.0.0.1
    ],
)
def test_non_public_addresses_are_blocked(address: str) -> None:
    assert is_blocked_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:1.1.1.1", "2002:101:101::"]
)
def test_public_addresses_pass(address: str) -> None:
    assert not is_blocked_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost/",
        "http://LocalHost./",
        "http://api.localhost/",
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://2130706433/",  # 127.0.0.1 as one number
    ],
)
def test_private_targets_are_refused_unless_allow_listed(url: str, make_ctx: Callable[..., ToolContext]) -> None:
    error = refusal(url, make_ctx(allowed_hosts=frozenset()))
    assert error.code == "blocked_address"


def test_a_refused_host_gets_no_request(
    server: str, make_ctx: Callable[..., ToolContext], hits: Callable[[], int]
) -> None:
    before = hits()
    localhost_url = server.replace("127.0.0.1", "localhost") + "/count"
    assert refusal(localhost_url, make_ctx(allowed_hosts=frozenset())).code == "blocked_address"
    assert refusal(f"{server}/count", make_ctx(allowed_hosts=frozenset())).code == "blocked_address"
    assert hits() == before


def test_allow_listed_hosts_are_fetched(
    server: str, make_ctx: Callable[..., ToolContext], hits: Callable[[], int]
) -> None:
    before = hits()
    assert http_get(f"{server}/count", make_ctx(allowed_hosts=frozenset({"127.0.0.1"})))["status"] == 200
    localhost_url = server.replace("127.0.0.1", "localhost") + "/count"
    assert http_get(localhost_url, make_ctx(allowed_hosts=frozenset({"localhost"})))["status"] == 200
    assert hits() == before + 2


@pytest.mark.parametrize(
    "target",
    ["http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://localhost:{port}/count", "http://[::1]/"],
)
def test_redirects_into_private_addresses_are_refused(
    target: str, server: str, make_ctx: Callable[..., ToolContext], hits: Callable[[], int]
) -> None:
    before = hits()
    to = target.format(port=httpx.URL(server).port)
    error = refusal(f"{server}/redirect?{httpx.QueryParams(to=to)}", make_ctx(allowed_hosts=frozenset({"127.0.0.1"})))
    assert error.code == "blocked_address"
    assert hits() == before


def test_redirect_to_another_scheme_is_refused(server: str, ctx: ToolContext) -> None:
    error = refusal(f"{server}/redirect?{httpx.QueryParams(to='file:///etc/passwd')}", ctx)
    assert error.code == "blocked_address"


def test_unresolvable_host_is_a_network_error(ctx: ToolContext) -> None:
    assert refusal("http://no-such-host.invalid/", ctx).code == "network_error"


def test_vet_url_returns_the_vetted_addresses() -> None:
    addresses = asyncio.run(vet_url(httpx.URL("http://127.0.0.1:8080/x"), frozenset({"127.0.0.1"})))
    assert addresses == ["127.0.0.1"]
