"""http_request and read_url against a real HTTP server on 127.0.0.1 (allow-listed unless a test says not)."""

from collections.abc import Callable

import httpx
import pytest

from runwire.tools import registry
from runwire.tools.base import ToolContext, ToolError
from tests.helpers import run_tool, tool, tool_error


def test_get_json(server: str, ctx: ToolContext, progress: list[tuple[int, str]]) -> None:
    output = run_tool("http_request", {"method": "GET", "url": f"{server}/json"}, ctx)
    assert output["status"] == 200
    assert output["body"] == {"hello": "world", "n": [1, 2]}
    assert isinstance(output["headers"], dict)
    assert output["headers"]["content-type"] == "application/json"
    assert progress == [(90, "received HTTP 200, 31 bytes")]


def test_text_body_is_decoded_with_its_charset(server: str, ctx: ToolContext) -> None:
    output = run_tool("http_request", {"method": "GET", "url": f"{server}/text"}, ctx)
    assert output["body"] == "plain text \u00e9"


@pytest.mark.parametrize(
    ("body", "sent", "content_type"),
    [({"a": 1}, '{"a":1}', "application/json"), ([1, 2], "[1,2]", "application/json"), ("raw text", "raw text", None)],
)
def test_post_body(server: str, ctx: ToolContext, body: object, sent: str, content_type: str | None) -> None:
    inputs = {"method": "POST", "url": f"{server}/echo", "body": body, "headers": {"X-Trace": "t1"}}
    echo = run_tool("http_request", inputs, ctx)["body"]
    assert isinstance(echo, dict)
    assert echo["method"] == "POST"
    assert echo["body"] == sent
    assert echo["headers"].get("content-type") == content_type
    assert echo["headers"]["x-trace"] == "t1"
    assert echo["host"] == server.removeprefix("http://")


def test_non_2xx_fails_with_the_status(server: str, ctx: ToolContext) -> None:
    error = tool_error("http_request", {"method": "GET", "url": f"{server}/error"}, ctx)
    assert error.code == "http_error"
    assert "500" in error.message


def test_timeout(server: str, ctx: ToolContext) -> None:
    inputs = {"method": "GET", "url": f"{server}/slow?seconds=2", "timeoutSeconds": 0.2}
    error = tool_error("http_request", inputs, ctx)
    assert error.code == "timeout"


def test_connection_refused_is_a_network_error(ctx: ToolContext) -> None:
    error = tool_error("http_request", {"method": "GET", "url": "http://127.0.0.1:1/"}, ctx)
    assert error.code == "network_error"


def test_body_over_the_cap_is_refused(server: str, make_ctx: Callable[..., ToolContext]) -> None:
    error = tool_error("http_request", {"method": "GET", "url": f"{server}/big"}, make_ctx(max_response_bytes=100_000))
    assert error.code == "response_too_large"


def test_body_under_the_cap_is_read(server: str, make_ctx: Callable[..., ToolContext]) -> None:
    output = run_tool("http_request", {"method": "GET", "url": f"{server}/big"}, make_ctx(max_response_bytes=3 << 20))
    assert output["body"] == "x" * (2 << 20)


def test_redirect_to_the_same_server_is_followed(server: str, ctx: ToolContext) -> None:
    output = run_tool("http_request", {"method": "GET", "url": f"{server}/redirect?to=/json"}, ctx)
    assert output["body"] == {"hello": "world", "n": [1, 2]}


def test_see_other_turns_a_post_into_a_get(server: str, ctx: ToolContext) -> None:
    inputs: dict[str, object] = {"method": "POST", "url": f"{server}/redirect?status=303&to=/echo", "body": {"a": 1}}
    echo = run_tool("http_request", inputs, ctx)["body"]
    assert isinstance(echo, dict)
    assert (echo["method"], echo["body"]) == ("GET", "")


def test_five_redirects_are_followed_and_a_sixth_is_refused(server: str, ctx: ToolContext) -> None:
    assert run_tool("http_request", {"method": "GET", "url": f"{server}/chain?hops=5"}, ctx)["body"] == "end of chain"
    error = tool_error("http_request", {"method": "GET", "url": f"{server}/chain?hops=6"}, ctx)
    assert error.code == "too_many_redirects"


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"method": "FETCH", "url": "http://example.com/"}, "inputs.method"),
        ({"method": "GET", "url": "ftp://example.com/"}, "inputs.url"),
        ({"method": "GET", "url": "example.com"}, "inputs.url"),
        ({"method": "GET", "url": "http://example.com/", "timeoutSeconds": 0}, "inputs.timeoutSeconds"),
        ({"method": "GET", "url": "http://example.com/", "timeoutSeconds": 301}, "inputs.timeoutSeconds"),
    ],
)
def test_http_request_inputs_are_checked(inputs: dict[str, object], field: str) -> None:
    with pytest.raises(ToolError) as raised:
        registry.parse_inputs(tool("http_request"), inputs)
    assert raised.value.code == "invalid_inputs"
    assert raised.value.message.startswith(field + ":")


def test_read_url_makes_html_readable(server: str, ctx: ToolContext) -> None:
    output = run_tool("read_url", {"url": f"{server}/html"}, ctx)
    assert output == {
        "title": "Test & page",
        "text": "Heading\nFirst paragraph with bold words.\none\ntwo",
    }


def test_read_url_returns_plain_text_as_is_and_truncates(server: str, ctx: ToolContext) -> None:
    assert run_tool("read_url", {"url": f"{server}/text"}, ctx) == {"title": None, "text": "plain text \u00e9"}
    assert run_tool("read_url", {"url": f"{server}/html", "maxChars": 7}, ctx)["text"] == "Heading"


def test_read_url_refuses_binary_content(server: str, ctx: ToolContext) -> None:
    assert tool_error("read_url", {"url": f"{server}/png"}, ctx).code == "unsupported_content"


def test_read_url_fails_like_http_request(server: str, ctx: ToolContext) -> None:
    assert tool_error("read_url", {"url": f"{server}/error"}, ctx).code == "http_error"
    assert tool_error("read_url", {"url": "http://10.0.0.1/"}, ctx).code == "blocked_address"


def test_authorization_is_kept_on_the_same_origin_and_dropped_across_origins(
    server: str, make_ctx: Callable[..., ToolContext]
) -> None:
    ctx = make_ctx(allowed_hosts=frozenset({"127.0.0.1", "localhost"}))
    other_origin = server.replace("127.0.0.1", "localhost") + "/echo"
    for target, kept in [("/echo", True), (other_origin, False)]:
        inputs: dict[str, object] = {
            "method": "GET",
            "url": f"{server}/redirect?{httpx.QueryParams(to=target)}",
            "headers": {"Authorization": "Bearer secret"},
        }
        echo = run_tool("http_request", inputs, ctx)["body"]
        assert isinstance(echo, dict)
        assert ("authorization" in echo["headers"]) is kept
