"""The fast lane of the hottest GETs: liveness, the run list and a run's detail without a query string.

The request middleware hands such a request straight to the route's endpoint, with the request and the path's
parameters, every query parameter taking its default: what FastAPI would pass it. That skips FastAPI's exception and
exit-stack layers, its routing through every router, its parameter parsing and its request wrapper: most of the cost
of a cheap request. Anything else (a query string to validate, another method, a path of another route) goes on to
the app, as does everything of the routes but how they are called: the OpenAPI schema, the route template the logs
and metrics name (set in the scope as FastAPI's routing would), and the answer to an endpoint's error, made by the
same function as the app's own handler makes it.

A route qualifies when its endpoint is a coroutine returning a Response, taking the path's parameters as plain
strings, the request, and query parameters with defaults: no dependency, header, cookie or body, whose checks the
lane would skip. A route that does not qualify is refused at start-up.
"""

import functools
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.convertors import StringConvertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from runwire.errors import RunwireError, runwire_error_response


def route_to(router: APIRouter, endpoint: Callable[..., Any]) -> APIRoute:
    """The route of `router` whose endpoint is `endpoint`."""
    (route,) = (route for route in router.routes if isinstance(route, APIRoute) and route.endpoint is endpoint)
    return route


class FastLane:
    def __init__(self, routes: Sequence[APIRoute]) -> None:
        for route in routes:
            _check_fast(route)
        self._routes = [(route, route.path_regex) for route in routes]

    def find(self, scope: Scope) -> ASGIApp | None:
        """What answers the request when it takes the lane; None when it does not take it."""
        if scope["method"] != "GET" or scope["query_string"] or scope.get("root_path"):
            return None
        for route, regex in self._routes:
            found = regex.match(scope["path"])
            if found is not None:
                return functools.partial(_answer, route, found.groupdict())
        return None


async def _answer(route: APIRoute, path_params: dict[str, str], scope: Scope, receive: Receive, send: Send) -> None:
    scope["route"], scope["path_params"] = route, path_params
    arguments: dict[str, Any] = dict(path_params)
    if route.dependant.request_param_name is not None:
        arguments[route.dependant.request_param_name] = Request(scope, receive, send)
    try:
        response: Response = await route.endpoint(**arguments)
    except RunwireError as error:
        response = runwire_error_response(error)
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
