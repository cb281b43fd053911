import contextlib
import json
from typing import Any, Literal

from pydantic import Field

from runwire.tools.base import Tool, ToolContext, ToolInputs
from runwire.tools.builtin._http import DEFAULT_TIMEOUT_SECONDS, HttpUrl, fetch


class HttpRequestInputs(ToolInputs):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = Field(description="The HTTP method.")
    url: HttpUrl = Field(description="An http:// or https:// URL.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers.")
    body: Any = Field(default=None, description="An object or array is sent as JSON, a string as it is.")
    timeout_seconds: float = Field(
        default=DEFAULT_TIMEOUT_SECONDS, gt=0, le=300, description="Limit for the whole exchange."
    )


class HttpRequestTool(Tool[HttpRequestInputs]):
    id = "http_request"
    name = "HTTP request"
    description = (
        "Sends an HTTP request and returns the status, headers and body (parsed when it is JSON). "
        "Fails on network errors, timeouts, non-2xx answers and private addresses."
    )
    Inputs = HttpRequestInputs

    async def run(self, inputs: HttpRequestInputs, ctx: ToolContext) -> dict[str, object]:
        fetched = await fetch(
            ctx,
            inputs.method,
            inputs.url,
            headers=inputs.headers,
            body=inputs.body,
            timeout_seconds=inputs.timeout_seconds,
        )
        body: object = fetched.text
        if fetched.media_type == "application/json" or fetched.media_type.endswith("+json"):
            # A body labelled JSON that does not parse is still shown, as text.
            with contextlib.suppress(ValueError):
                body = json.loads(fetched.text)
        return {"status": fetched.status, "headers": dict(fetched.headers.items()), "body": body}
