"""Domain errors and the one place that turns every error into the contract's JSON shape."""

from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response


class RunwireError(Exception):
    status_code = 500

    def __init__(
        self,
        message: str,
        *,
        details: Sequence[tuple[str, str]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)
        self.headers = headers


class Unauthorized(RunwireError):
    status_code = 401


class Invalid(RunwireError):
    status_code = 400


class Forbidden(RunwireError):
    status_code = 403


class NotFound(RunwireError):
    status_code = 404


class Conflict(RunwireError):
    status_code = 409


class RateLimited(RunwireError):
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many requests; try again in {retry_after} seconds.", headers={"Retry-After": str(retry_after)}
        )


class PayloadTooLarge(RunwireError):
    status_code = 413


class UnsupportedMediaType(RunwireError):
    status_code = 415


# RFC 9110 names; older Pythons still carry the RFC 7231 phrase for 413.
_PHRASES = {413: "Content Too Large"}


def error_response(
    status_code: int,
    message: str,
    *,
    details: Sequence[tuple[str, str]] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": _PHRASES.get(status_code) or HTTPStatus(status_code).phrase, "message": message}
    if details:
        body["details"] = [{"field": field, "message": text} for field, text in details]
    return JSONResponse(body, status_code=status_code, headers=headers)


def runwire_error_response(error: RunwireError) -> JSONResponse:
    return error_response(error.status_code, error.message, details=error.details, headers=error.headers)


def _field_path(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_details(errors: Sequence[Any]) -> list[tuple[str, str]]:
    details = []
    for error in errors:
        if error.get("type") == "json_invalid":
            details.append(("body", "The body is not valid JSON."))
        else:
            details.append((_field_path(error.get("loc", ())), str(error.get("msg", "is invalid"))))
    return details


def unexpected_error_response() -> JSONResponse:
    return error_response(500, "An unexpected error occurred; it has been logged.")


AuthCheck = Callable[[Request], Awaitable[bool]]


def install_error_handlers(app: FastAPI, *, request_is_authorised: AuthCheck) -> None:
    """Map every error to `{"error", "message"}`; `request_is_authorised` keeps 401 ahead of 400."""

    async def on_runwire_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RunwireError)
        return runwire_error_response(exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not await request_is_authorised(request):
            return error_response(401, "A valid session is required.")
        details = validation_details(exc.errors())
        if details and details[0][0] == "body" and len(details) == 1:
            message = details[0][1]
        else:
            message = "The request is invalid: " + "; ".join(f"{f}: {m}" for f, m in details)
        return error_response(400, message, details=details)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        messages = {
            404: "No such resource.",
            405: f"Method {request.method} is not allowed here.",
            413: "The request body is larger than this server accepts.",
        }
        message = messages.get(exc.status_code, str(exc.detail))
        return error_response(exc.status_code, message, headers=dict(exc.headers) if exc.headers else None)

    async def on_unexpected_error(request: Request, exc: Exception) -> Response:
        return unexpected_error_response()  # logged by the request layer, which the error reaches next

    app.add_exception_handler(RunwireError, on_runwire_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected_error)
