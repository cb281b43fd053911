"""The route class of every API router: the contract's limits on JSON bodies, checked once at the edge.

A body breaking them (a number outside ±(2^53 - 1) or not finite, a NUL character, nesting too deep) is refused
before FastAPI validates it or any dependency runs. The refusal is a `RequestValidationError` raised outside
FastAPI's own body parsing (which would turn it into a bare 400), so that the error handlers keep 401 ahead of 400;
a body that is not JSON at all is refused here the same way.
"""

import json
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from runwire.jsonlimits import TOO_DEEP, Problem, json_problems
from runwire.middleware import is_json

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def parse_json_body(body: bytes) -> Any:
    """The body's JSON value; a RequestValidationError when it is not JSON or breaks the limits."""
    try:
        value = json.loads(body)
    except RecursionError:
        raise _refusal("json_limit", [("body", TOO_DEEP)]) from None
    except ValueError:
        raise _refusal("json_invalid", [("body", "is not valid JSON")]) from None
    problems = json_problems(value)
    if problems:
        raise _refusal("json_limit", problems)
    return value


class _LimitedJsonRequest(Request):
    """A request whose `json()` refuses what breaks the limits, and keeps the parsed body for FastAPI to use."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json_body(await self.body())
        return self._json


def _refusal(kind: str, problems: list[Problem]) -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": ("body", path), "msg": message} for path, message in problems])


class JsonLimitsRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def checked(request: Request) -> Response:
            request = _LimitedJsonRequest(request.scope, request.receive)
            if is_json(request.headers.get("content-type", "")) and await request.body():
                await request.json()
            return await handler(request)

        return checked


def api_router(prefix: str, tag: str) -> APIRouter:
    """The router of one domain's routes, every one of them a `JsonLimitsRoute`."""
    return APIRouter(prefix=prefix, tags=[tag], route_class=JsonLimitsRoute)


class ConditionalAnswer(Protocol):
    @property
    def body(self) -> bytes | None: ...  # None: not modified

    @property
    def etag(self) -> str: ...


class _ConditionalJson(Response):
    """The answer `conditional_json` makes, its headers written out as they go on the wire (what `Response` would
    make of them, without working them out for each request)."""

    def __init__(self, answer: ConditionalAnswer) -> None:
        self.background = None
        tagged = [(b"etag", answer.etag.encode("latin-1")), _NO_CACHE]
        if answer.body is None:
            self.status_code, self.body, self.raw_headers = 304, b"", tagged
        else:
            self.status_code, self.body = 200, answer.body
            self.raw_headers = [*tagged, (b"content-length", b"%d" % len(answer.body)), _JSON]


_NO_CACHE = (b"cache-control", b"private, no-cache")
_JSON = (b"content-type", b"application/json")


def conditional_json(answer: ConditionalAnswer) -> Response:
    """A read on the fast path answered as JSON with its ETag, or 304 when the client's copy is current."""
    return _ConditionalJson(answer)
