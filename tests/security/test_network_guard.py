"""The network tools' guard: an allow-list entry with a port opens that port only, a redirect to another origin
carries no credentials, and a refusal does not tell which address a name resolved to."""

import socket
from collections.abc import Iterator

import httpx
import pytest

from runwire.config import Settings
from runwire.tools.base import ToolContext
from tests.helpers import RecordingContext, run_tool, serving, tool_error


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    """Two test servers on 127.0.0.1, on two ports."""
    with serving() as first, serving() as second:
        yield first, second


def _ctx(*allowed: str) -> ToolContext:
    return RecordingContext(allowed_hosts=frozenset(allowed))


def _get(url: str, ctx: ToolContext, headers: dict[str, str] | None = None) -> dict[str, object]:
    return run_tool("http_request", {"method": "GET", "url": url, "headers": headers or {}}, ctx)


def _port(url: str) -> int:
    port = httpx.URL(url).port
    assert port is not None
    return port


def test_an_entry_with_a_port_allows_that_port_only(servers: tuple[str, str]) -> None:
    allowed, other = servers
    ctx = _ctx(f"127.0.0.1:{_port(allowed)}")
    assert _get(f"{allowed}/json", ctx)["status"] == 200
    error = tool_error("http_request", {"method": "GET", "url": f"{other}/echo"}, ctx)
    assert error.code == "blocked_address"


def test_a_redirect_to_a_port_not_allowed_is_refused(servers: tuple[str, str]) -> None:
    allowed, other = servers
    ctx = _ctx(f"127.0.0.1:{_port(allowed)}")
    assert _get(f"{allowed}/redirect?{httpx.QueryParams(to='/json')}", ctx)["status"] == 200
    url = f"{allowed}/redirect?{httpx.QueryParams(to=f'{other}/echo')}"
    assert tool_error("http_request", {"method": "GET", "url": url}, ctx).code == "blocked_address"


def test_an_entry_without_a_port_allows_every_port(servers: tuple[str, str]) -> None:
    ctx = _ctx("127.0.0.1")
    assert [_get(f"{server}/json", ctx)["status"] for server in servers] == [200, 200]


SENT = {
    "Accept": "application/json",
    "Accept-Language": "en",
    "Content-Type": "text/plain",
    "User-Agent": "tester",
    "Authorization": "Bearer secret",
    "X-Api-Key": "key-secret",
    "Cookie": "session=cookie-secret",
    "X-Trace": "t1",
}


@pytest.mark.parametrize("cross_origin", [False, True])
def test_a_redirect_to_another_origin_carries_only_harmless_headers(
    servers: tuple[str, str], cross_origin: bool
) -> None:
    first, second = servers
    target = f"{second if cross_origin else first}/echo"
    echo = _get(f"{first}/redirect?{httpx.QueryParams(to=target)}", _ctx("127.0.0.1"), SENT)["body"]
    assert isinstance(echo, dict)
    received = {name: echo["headers"].get(name.lower()) for name in SENT}
    kept = {"Accept", "Accept-Language", "Content-Type", "User-Agent"}
    assert received == {name: value if not cross_origin or name in kept else None for name, value in SENT.items()}


def test_a_blocked_name_is_reported_without_the_address_it_resolved_to(servers: tuple[str, str]) -> None:
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
    except OSError:
        pytest.skip(f"{name} does not resolve here")
    url = servers[0].replace("127.0.0.1", name) + "/json"
    error = tool_error("http_request", {"method": "GET", "url": url}, _ctx())
    if error.code != "blocked_address":
        pytest.skip(f"{name} resolves to a public address here")
    assert address not in error.message and name in error.message


def test_allowed_hosts_setting_takes_hosts_and_host_ports() -> None:
    settings = Settings(tool_allowed_hosts="Example.COM, 127.0.0.1:8080,[::1]:9000")
    assert settings.tool_hosts == frozenset({"example.com", "127.0.0.1:8080", "[::1]:9000"})
