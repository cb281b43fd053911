"""The OpenAPI schema names every status a route answers. FastAPI documents a route's success and its 422, which
Runwire never sends; the errors that come from the edge (the session, a malformed request, ownership, the cross-site
guard, body size and type, rate limits) are the same for every route of a kind, so they are added here, by rule, in
the contract's error shape. A route adds the errors of its own (a 409) with `responses=also_answers(...)`."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from runwire.deps import PUBLIC_PATHS
from runwire.middleware import WRITE_METHODS


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    error: str
    message: str
    details: list[ErrorDetail] = []


ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorBody"}


def error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}


def also_answers(status: int, description: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route that can answer an error of its own."""
    return {status: error_response(description)}


def edge_errors(method: str, path: str, *, takes_input: bool) -> dict[int, str]:
    """The error statuses every route of this method and path can answer, whatever it does; `takes_input` when it
    has parameters or a body."""
    errors = {400: "The path, a query value, a header or the body is malformed."} if takes_input else {}
    if path not in PUBLIC_PATHS:
        errors[401] = "No valid session."
    if "{" in path:
        errors[404] = "The resource does not exist."
        errors[403] = "The resource belongs to another user."
    if method in WRITE_METHODS:
        errors[403] = "The resource belongs to another user, or the request comes from an origin not allowed."
        errors |= {413: "The body is too large.", 415: "The body is not JSON.", 429: "Rate limited."}
    return errors


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            for path, operations in schema["paths"].items():
                for method, operation in operations.items():
                    responses = operation["responses"]
                    responses.pop("422", None)
                    takes_input = "parameters" in operation or "requestBody" in operation
                    for status, description in edge_errors(method.upper(), path, takes_input=takes_input).items():
                        responses.setdefault(str(status), error_response(description))
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                components.pop(unused, None)
            error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
            components |= error_schema.pop("$defs")
            components["ErrorBody"] = error_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
