"""The route class of every API router, and the fast lane of the hottest GETs.

`JsonLimitsRoute` checks the contract's limits on JSON bodies once at the edge. A body breaking them (a number
outside ±(2^53 - 1) or not finite, a NUL character, nesting too deep) is refused before FastAPI validates it or any
dependency runs. The refusal is a `RequestValidationError` raised outside FastAPI's own body parsing (which would
turn it into a bare 400), so that the error handlers keep 401 ahead of 400; a body that is not JSON at all is
refused here the same way.

`FastLane` answers a GET of a few routes that carries no query string by calling the route's endpoint itself.
"""

import inspect
import json
import typing
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.convertors import StringConvertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

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


def route_to(router: APIRouter, endpoint: Callable[..., Any]) -> APIRoute:
    """The route of `router` whose endpoint is `endpoint`."""
    (route,) = (route for route in router.routes if isinstance(route, APIRoute) and route.endpoint is endpoint)
    return route


class ConditionalAnswer(Protocol):
    @property
    def body(self) -> bytes | None: ...  # None: not modified

    @property
    def etag(self) -> str: ...


def conditional_json(answer: ConditionalAnswer) -> Response:
    """A read on the fast path answered as JSON with its ETag, or 304 when the client's copy is current."""
    headers = {"ETag": answer.etag, "Cache-Control": "private, no-cache"}
    if answer.body is None:
        return Response(status_code=304, headers=headers)
    return Response(answer.body, media_type="application/json", headers=headers)


class FastLane(BaseRoute):
    """The first route of the app: a GET of one of `routes` with no query string is answered by calling the route's
    endpoint with the request and the path's parameters, every query parameter taking its default, which is what
    FastAPI would pass it. That skips FastAPI's routing through every router before it, its parameter parsing and its
    request wrapper: most of the cost of a cheap request. Anything else (a query string to validate, another method)
    goes on to the routes themselves, as does everything of the routes but how they are called: the OpenAPI schema,
    the error handlers (an endpoint's error goes up to them as from FastAPI's own call), and the route template the
    logs and metrics name.

    A route qualifies when its endpoint is a coroutine returning a Response, taking the path's parameters as plain
    strings, the request, and query parameters with defaults: no dependency, header, cookie or body, whose checks this
    would skip. A route that does not qualify is refused here, at start-up."""

    def __init__(self, routes: Sequence[APIRoute]) -> None:
        for route in routes:
            _check_fast(route)
        self._routes = [(route, route.path_regex) for route in routes]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and not scope["query_string"]
            and not scope.get("root_path")
        ):
            for route, regex in self._routes:
                found = regex.match(scope["path"])
                if found is not None:
                    return Match.FULL, {"route": route, "path_params": found.groupdict()}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: APIRoute = scope["route"]
        arguments: dict[str, Any] = dict(scope["path_params"])
        request = Request(scope, receive, send)
        if route.dependant.request_param_name is not None:
            arguments[route.dependant.request_param_name] = request
        response: Response = await route.endpoint(**arguments)
        await response(scope, receive, send)


def _check_fast(route: APIRoute) -> None:
    dependant, defaults = route.dependant, inspect.signature(route.endpoint).parameters
    problems = {
        "its endpoint is not a coroutine": not inspect.iscoroutinefunction(route.endpoint),
        "it answers another method than GET": route.methods != {"GET"},
        "its endpoint may return something other than a Response": not _returns_response(route.endpoint),
        "it has a dependency, a header, a cookie or a body": bool(
            dependant.dependencies or dependant.header_params or dependant.cookie_params or dependant.body_params
        ),
        "its endpoint takes the response, background tasks or a connection other than the request": any(
            name is not None
            for name in (
                dependant.response_param_name,
                dependant.background_tasks_param_name,
                dependant.http_connection_param_name,
                dependant.websocket_param_name,
                dependant.security_scopes_param_name,
            )
        ),
        "a path parameter is not a plain string": any(
            param.field_info.annotation is not str
            or not isinstance(route.param_convertors[param.name], StringConvertor)
            for param in dependant.path_params
        ),
        "a query parameter has no default of its own": any(
            defaults[param.name].default is inspect.Parameter.empty for param in dependant.query_params
        ),
    }
    refused = [problem for problem, found in problems.items() if found]
    if refused:
        raise TypeError(f"{route.path} cannot take the fast lane: {'; '.join(refused)}")


def _returns_response(endpoint: Callable[..., Any]) -> bool:
    returned = typing.get_type_hints(endpoint).get("return")
    return isinstance(returned, type) and issubclass(returned, Response)
