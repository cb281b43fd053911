"""Fetching for the network tools: guarded connections, manual redirects, a deadline and a size cap."""

import asyncio
from dataclasses import dataclass
from typing import Annotated

import httpx
from pydantic import AfterValidator, Field

from runwire.tools.base import ToolContext, ToolError
from runwire.tools.netguard import GuardedTransport

MAX_REDIRECTS = 5
DEFAULT_TIMEOUT_SECONDS = 30.0
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# The headers a redirect to another origin keeps: none of them can carry a credential.
_CROSS_ORIGIN_HEADERS = frozenset({"accept", "accept-language", "content-type", "user-agent"})


def _check_url(value: str) -> str:
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as error:
        raise ValueError(str(error)) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value


HttpUrl = Annotated[str, AfterValidator(_check_url), Field(json_schema_extra={"format": "uri"})]


@dataclass(frozen=True)
class Fetched:
    status: int
    headers: httpx.Headers
    content: bytes
    encoding: str

    @property
    def media_type(self) -> str:
        content_type: str = self.headers.get("content-type", "")
        return content_type.split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        return self.content.decode(self.encoding, "replace")


async def fetch(
    ctx: ToolContext,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: object = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> Fetched:
    """One request, redirects included, within `timeout_seconds`; any failure is a ToolError."""
    try:
        async with (
            asyncio.timeout(timeout_seconds),
            # trust_env=False: a proxy from the environment would resolve the host itself, behind the guard.
            httpx.AsyncClient(transport=GuardedTransport(ctx.allowed_hosts), trust_env=False, timeout=None) as client,
        ):
            fetched = await _follow_redirects(client, ctx, method, httpx.URL(url), httpx.Headers(headers), body)
    except TimeoutError:
        raise ToolError("timeout", f"no complete response from {url} within {timeout_seconds:g} s") from None
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise ToolError("network_error", f"request to {url} failed: {str(error) or type(error).__name__}") from None
    await ctx.report_progress(90, f"received HTTP {fetched.status}, {len(fetched.content)} bytes")
    return fetched


async def _follow_redirects(
    client: httpx.AsyncClient, ctx: ToolContext, method: str, url: httpx.URL, headers: httpx.Headers, body: object
) -> Fetched:
    # Redirects are followed here rather than by httpx, which would read each redirect's body without a cap.
    for _ in range(MAX_REDIRECTS + 1):
        content, json_body = (body, None) if isinstance(body, str) else (None, body)
        request = client.build_request(method, url, headers=headers, content=content, json=json_body)
        response = await client.send(request, stream=True)
        try:
            location = response.headers.get("location")
            if response.status_code not in _REDIRECT_STATUSES or location is None:
                return await _read(response, ctx.max_response_bytes)
        finally:
            await response.aclose()
        next_url = url.join(location)
        if next_url.netloc != url.netloc or next_url.scheme != url.scheme:
            headers = httpx.Headers(
                [(name, value) for name, value in headers.multi_items() if name in _CROSS_ORIGIN_HEADERS]
            )
        if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
            method, body = ("HEAD" if method == "HEAD" else "GET"), None
        url = next_url
    raise ToolError("too_many_redirects", f"more than {MAX_REDIRECTS} redirects")


async def _read(response: httpx.Response, max_bytes: int) -> Fetched:
    if not response.is_success:
        raise ToolError("http_error", f"the server answered {response.status_code} {response.reason_phrase}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise ToolError("response_too_large", f"the response is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return Fetched(response.status_code, response.headers, b"".join(chunks), response.encoding or "utf-8")
